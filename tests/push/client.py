"""
Real WAMP clients for the push tests: autobahn-python's ``ApplicationSession``
over a real socket, with no ocppd-specific code besides the ticket it presents,
and a raw WebSocket client for what a well-behaved library never sends.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import (
    WampWebSocketClientFactory,
    WampWebSocketClientProtocol,
    WebSocketClientFactory,
    WebSocketClientProtocol,
)
from autobahn.wamp.serializer import JsonSerializer
from autobahn.wamp.types import CloseDetails, ComponentConfig
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint


class Refused(Exception):
    """The router ended the session before WELCOME (ABORT): ``reason`` is its URI."""

    def __init__(self, reason: str, message: str | None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class _ClientProtocol(WampWebSocketClientProtocol):
    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        super().onClose(wasClean, code, reason)
        # A refused handshake never creates the session: tell the test.
        session = self.factory.test_session
        if not session.joined.called:
            session.joined.errback(Refused("handshake refused", reason))


class PushClient(ApplicationSession):
    """A plain autobahn-python session that authenticates with a WAMP ticket."""

    def __init__(self, config: ComponentConfig, ticket: str | None) -> None:
        super().__init__(config)
        self.ticket = ticket
        self.joined: Deferred[PushClient] = Deferred()
        self.left: Deferred[CloseDetails] = Deferred()
        self.gone: Deferred[None] = Deferred()
        self.welcome: Any = None

    def onConnect(self) -> None:
        methods = ["ticket"] if self.ticket is not None else ["anonymous"]
        self.join(self.config.realm, authmethods=methods, authid="browser")

    def onChallenge(self, challenge: Any) -> str:
        assert challenge.method == "ticket", challenge.method
        assert self.ticket is not None
        return self.ticket

    def onJoin(self, details: Any) -> None:
        self.welcome = details
        self.joined.callback(self)

    def onLeave(self, details: CloseDetails) -> None:
        if not self.joined.called:
            self.joined.errback(Refused(details.reason, details.message))
        if not self.left.called:
            self.left.callback(details)
        super().onLeave(details)

    def onDisconnect(self) -> None:
        if not self.joined.called:
            self.joined.errback(Refused("disconnected", None))
        if not self.gone.called:
            self.gone.callback(None)

    @inlineCallbacks
    def listen(self, topic: str) -> Any:
        """Subscribe to ``topic``; a queue of each EVENT's first argument."""
        events: DeferredQueue[Any] = DeferredQueue()
        yield self.subscribe(lambda event: events.put(event), topic)
        return events


def join(
    port: int, ticket: str | None, *, realm: str = "ocppd", origin: str | None = None
) -> Deferred[PushClient]:
    """Open ``ws://127.0.0.1:port/push`` and join; fires once WELCOME arrived."""
    session = PushClient(ComponentConfig(realm=realm), ticket)
    factory = WampWebSocketClientFactory(
        lambda: session,
        url=f"ws://127.0.0.1:{port}/push",
        serializers=[JsonSerializer()],
        origin=origin,
    )
    factory.protocol = _ClientProtocol
    factory.test_session = session
    factory.setProtocolOptions(autoPingInterval=0)
    connected = TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    connected.addErrback(session.joined.errback)
    return session.joined


class RawProtocol(WebSocketClientProtocol):
    def onOpen(self) -> None:
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.messages.put(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionError(f"handshake failed: {reason}"))
        self.factory.closed.callback((code, reason))


def raw(
    port: int, *, protocols: list[str] | None = None, origin: str | None = None
) -> Deferred[RawProtocol]:
    """A bare WebSocket to /push: the test writes WAMP (or garbage) by hand."""
    factory = WebSocketClientFactory(
        f"ws://127.0.0.1:{port}/push",
        protocols=["wamp.2.json"] if protocols is None else protocols,
        origin=origin,
    )
    factory.protocol = RawProtocol
    factory.setProtocolOptions(autoPingInterval=0)
    factory.opened = Deferred()
    factory.closed = Deferred()
    factory.messages = DeferredQueue()
    TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory).addErrback(
        factory.opened.errback
    )
    return factory.opened
