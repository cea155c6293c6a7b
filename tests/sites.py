"""
A test's own HTTP server on an ephemeral loopback port, whose open
connections are closed with it: a browser or a client pool keeps its
connections alive, and without this the test would end with their channels
and their idle timeouts left in the reactor.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site


def listen_closing(testcase: SynchronousTestCase, site: Site) -> IListeningPort:
    """Listen on 127.0.0.1 (any port) until ``testcase`` ends, then close every connection."""
    channels: list[Any] = []
    build = site.buildProtocol

    def tracked(addr: Any) -> Any:
        protocol = build(addr)
        # Site's protocol is a proxy around the HTTPChannel, which holds the
        # transport (the proxy has none: closing through it closed nothing).
        channels.append(getattr(protocol, "_channel", protocol))
        return protocol

    site.buildProtocol = tracked  # type: ignore[method-assign]
    port: IListeningPort = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]

    def open_transports() -> list[Any]:
        transports = [getattr(channel, "transport", None) for channel in channels]
        return [t for t in transports if t is not None and not t.disconnected]

    @inlineCallbacks
    def close() -> Any:
        yield maybeDeferred(port.stopListening)
        for transport in open_transports():
            transport.abortConnection()
        # An aborted connection is lost in a later reactor turn: wait for it
        # (a bound for a hang only; a stalled reactor takes what it takes).
        deadline = reactor.seconds() + 30  # type: ignore[attr-defined]
        while open_transports() and reactor.seconds() < deadline:  # type: ignore[attr-defined]
            yield deferLater(reactor, 0.01, lambda: None)

    testcase.addCleanup(close)
    return port
