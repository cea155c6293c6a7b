"""In-reactor WebSocket and raw-HTTP clients for the OCPP endpoint tests."""

from __future__ import annotations

import base64
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS

#: Seconds the test client waits for the server's Close, then for it to drop TCP.
CLOSE_TIMEOUT = 15


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class TestClientProtocol(WebSocketClientProtocol):
    def onConnect(self, response: Any) -> None:
        self.factory.negotiated = response.protocol

    def onOpen(self) -> None:
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.messages.put(payload.decode("utf-8"))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionError(f"handshake failed: {reason}"))
        self.factory.closed.callback((code, reason))

    def send_text(self, text: str) -> None:
        self.sendMessage(text.encode("utf-8"))


class TestClient:
    """One OCPP WebSocket connection driven by the test."""

    def __init__(self, factory: Any, protocol: TestClientProtocol) -> None:
        self.factory = factory
        self.protocol = protocol
        self.messages: DeferredQueue[str] = factory.messages
        self.closed: Deferred[tuple[int | None, str | None]] = factory.closed

    def send(self, text: str) -> None:
        self.protocol.send_text(text)

    def send_bytes(self, data: bytes, binary: bool = False) -> None:
        self.protocol.sendMessage(data, isBinary=binary)

    def close(self) -> None:
        self.protocol.sendClose(1000)


def connect(
    port: int,
    charge_point_id: str,
    key: str | None,
    *,
    protocols: list[str] | None = None,
    max_size: int = 0,
    tls_trust: Certificate | None = None,
) -> Deferred[TestClient]:
    """Open an OCPP WebSocket; with ``tls_trust``, over TLS to ``localhost`` trusting that CA."""
    scheme = "wss" if tls_trust is not None else "ws"
    url = f"{scheme}://localhost:{port}/ocpp/{charge_point_id}"
    headers = {"Authorization": basic_auth(charge_point_id, key)} if key is not None else {}
    factory = WebSocketClientFactory(
        url, protocols=["ocpp1.6"] if protocols is None else protocols, headers=headers
    )
    factory.protocol = TestClientProtocol
    # The closing handshake's timers are long: under CI's load the reactor can
    # stall for over a second between the client's Close and the server's
    # reading it, and Autobahn's default 1 s then aborts the connection, which
    # the server sees as 1006 instead of the client's 1000.
    factory.setProtocolOptions(
        autoPingInterval=0,
        maxMessagePayloadSize=max_size,
        closeHandshakeTimeout=CLOSE_TIMEOUT,
        serverConnectionDropTimeout=CLOSE_TIMEOUT,
    )
    factory.opened = Deferred()
    factory.closed = Deferred()
    factory.messages = DeferredQueue()
    factory.negotiated = None
    endpoint: Any = TCP4ClientEndpoint(reactor, "127.0.0.1", port)
    if tls_trust is not None:
        endpoint = wrapClientTLS(optionsForClientTLS("localhost", trustRoot=tls_trust), endpoint)
    endpoint.connect(factory).addErrback(factory.opened.errback)
    return factory.opened.addCallback(lambda protocol: TestClient(factory, protocol))


class _Collect(Protocol):
    def __init__(self, request: bytes, done: Deferred[bytes]) -> None:
        self.request, self.done, self.data = request, done, b""

    def connectionMade(self) -> None:
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason: Any) -> None:
        self.done.callback(self.data)


def raw_handshake(port: int, path: str, headers: dict[str, str] | None = None) -> Deferred[bytes]:
    """Send a WebSocket upgrade request; fire with every byte the server sent until it closed."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return raw_request(port, ("\r\n".join(lines) + "\r\n\r\n").encode())


def raw_request(port: int, request: bytes) -> Deferred[bytes]:
    """Send ``request`` as is; fire with every byte the server sent until it closed."""
    done: Deferred[bytes] = Deferred()
    factory = Factory.forProtocol(lambda: _Collect(request, done))
    TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    return done
