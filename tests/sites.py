"""
A test's own HTTP server on an ephemeral loopback port, whose open
connections are closed with it: a browser or a client pool keeps its
connections alive, and without this the test would end with their channels
and their idle timeouts left in the reactor.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import deferLater
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site


def listen_closing(testcase: SynchronousTestCase, site: Site) -> IListeningPort:
    """Listen on 127.0.0.1 (any port) until ``testcase`` ends, then close every connection."""
    channels: list[Any] = []
    build = site.buildProtocol

    def tracked(addr: Any) -> Any:
        channel = build(addr)
        channels.append(channel)
        return channel

    site.buildProtocol = tracked  # type: ignore[method-assign]
    port: IListeningPort = reactor.listenTCP(0, site, interface="127.0.0.1")  # type: ignore[attr-defined]

    def close() -> Deferred[None]:
        stopped = maybeDeferred(port.stopListening)
        for channel in channels:
            transport = getattr(channel, "transport", None)
            if transport is not None and getattr(transport, "connected", False):
                transport.abortConnection()
        # An aborted connection is lost in the next reactor turn.
        return stopped.addCallback(lambda _: deferLater(reactor, 0.05, lambda: None))

    testcase.addCleanup(close)
    return port
