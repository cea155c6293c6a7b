"""A TCP proxy the test turns off and on: a service "down" without stopping the shared one."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Factory
from twisted.protocols.portforward import ProxyServer


class _Server(ProxyServer):
    def connectionMade(self) -> None:
        self.factory.open.add(self)
        super().connectionMade()

    def connectionLost(self, reason: Any) -> None:
        self.factory.open.discard(self)
        super().connectionLost(reason)


class _Factory(Factory):
    protocol = _Server

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.open: set[_Server] = set()


class TcpProxy:
    """127.0.0.1:``port`` forwarded to ``host``:``target``; ``down`` refuses and cuts."""

    def __init__(self, host: str, target: int) -> None:
        self._factory = _Factory(host, target)
        self._listening: Any = reactor.listenTCP(0, self._factory, interface="127.0.0.1")
        self.port: int = self._listening.getHost().port

    @inlineCallbacks
    def down(self) -> Any:
        """New connections refused, open ones cut without a goodbye (as a crashed server)."""
        yield self._listening.stopListening()
        self._listening = None
        for server in list(self._factory.open):
            server.transport.abortConnection()
            if server.peer is not None:
                server.peer.transport.abortConnection()

    def up(self) -> None:
        self._listening = reactor.listenTCP(self.port, self._factory, interface="127.0.0.1")

    def stop(self) -> Deferred[Any] | None:
        if self._listening is None:
            return None
        return self.down()
