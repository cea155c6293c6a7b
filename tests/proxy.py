"""
A TCP proxy a test controls, to freeze a service without touching it: the
shared PostgreSQL and RabbitMQ stay up for every other test, only the
connections made through the proxy stall.

``freeze()`` stops forwarding in both directions while keeping every
connection open (the peers see a service that stopped answering, as when a
database or broker process hangs); ``thaw()`` forwards again, nothing lost.
The test that freezes must thaw (``addCleanup(proxy.thaw)``) and close it.
``down()`` is a service that crashed: new connections refused, open ones cut
without a goodbye; ``up()`` listens again on the same port.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.trial.unittest import TestCase


class _Half(Protocol):
    """One side of a proxied connection; writes what it reads to its peer."""

    def __init__(self, proxy: FreezableProxy) -> None:
        self.proxy = proxy
        self.peer: _Half | None = None
        self.held: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        if self.proxy.frozen or self.peer is None:
            self.held.append(data)
            return
        self.peer.transport.write(data)

    def flush(self) -> None:
        if self.peer is not None and self.held:
            data, self.held = b"".join(self.held), []
            self.peer.transport.write(data)

    def connectionLost(self, reason: Any = None) -> None:
        self.proxy.halves.discard(self)
        if self.peer is not None:
            self.peer.transport.loseConnection()


class _Downstream(_Half):
    """The side the client connected to; opens the upstream side."""

    def connectionMade(self) -> None:
        self.proxy.halves.add(self)
        endpoint = TCP4ClientEndpoint(reactor, self.proxy.host, self.proxy.port)
        factory = Factory.forProtocol(lambda: _Half(self.proxy))
        endpoint.connect(factory).addCallbacks(self._upstream, self._failed)

    def _upstream(self, upstream: _Half) -> None:
        self.proxy.halves.add(upstream)
        upstream.peer, self.peer = self, upstream
        if not self.proxy.frozen:
            self.flush()

    def _failed(self, failure: Any) -> None:
        self.transport.loseConnection()


class FreezableProxy:
    """Listens on an ephemeral loopback port and forwards to ``host:port``."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.frozen = False
        self.halves: set[_Half] = set()
        self.listening: IListeningPort | None = None
        #: The port clients connect to, once started.
        self.local_port = 0

    def start(self) -> Deferred[int]:
        """Listen (on ``local_port`` once it is known); fires with the local port."""
        factory = Factory.forProtocol(lambda: _Downstream(self))
        endpoint = TCP4ServerEndpoint(reactor, self.local_port, interface="127.0.0.1")

        def listening(port: IListeningPort) -> int:
            self.listening = port
            self.local_port = int(port.getHost().port)
            return self.local_port

        return endpoint.listen(factory).addCallback(listening)

    def freeze(self) -> None:
        """Stop forwarding; connections stay open, data waits."""
        self.frozen = True

    def thaw(self) -> None:
        """Forward again, what waited first."""
        self.frozen = False
        for half in list(self.halves):
            half.flush()

    def down(self) -> Deferred[Any]:
        """Refuse new connections and abort the open ones (no FIN: as a crashed server)."""
        for half in list(self.halves):
            half.transport.abortConnection()
        listening, self.listening = self.listening, None
        if listening is None:
            return succeed(None)
        return maybeDeferred(listening.stopListening)

    def up(self) -> Deferred[int]:
        """Accept connections again, on the same port."""
        return self.start()

    def close(self) -> Deferred[Any]:
        """Stop listening and close every proxied connection."""
        self.thaw()
        for half in list(self.halves):
            half.transport.loseConnection()
        listening, self.listening = self.listening, None
        if listening is None:
            return succeed(None)
        return maybeDeferred(listening.stopListening)


def start_proxy(testcase: TestCase, host: str, port: int) -> Deferred[FreezableProxy]:
    """A running proxy to ``host:port``, thawed and closed when ``testcase`` ends."""
    proxy = FreezableProxy(host, port)
    testcase.addCleanup(proxy.close)
    return proxy.start().addCallback(lambda _: proxy)
