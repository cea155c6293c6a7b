"""
The push channel's WebSocket edge on Autobahn: handshake checks, bytes in and
out, and the bound on what a slow browser can make the node buffer.

The WAMP conversation is :class:`~ocppd.push.session.PushSession`'s; this
module only moves bytes (the same split as ``ocppd.ocpp.protocol``).

Flow control: once the WebSocket is open, the protocol registers a streaming
producer with its transport. Twisted pauses it when the transport's write
buffer passes its high-water mark (64 KiB), i.e. when the kernel no longer
takes what we write because the browser does not read. From then on every
byte written counts against ``max_buffer``; past it the connection is aborted
(buffers discarded at once). Resuming resets the count. So a stalled browser
costs at most about ``max_buffer`` + 64 KiB of memory and never delays the
others: writes never block, and the fan-out does not wait for anyone.
"""

from __future__ import annotations

from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import PreparedMessage
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from ocppd.logs import Logger
from ocppd.proxies import TrustedProxies, websocket_client_address
from ocppd.push.broker import Broker
from ocppd.push.origins import OriginPolicy
from ocppd.push.session import (
    CLOSE_NORMAL,
    Authenticator,
    Clock,
    PushSession,
    SessionLimits,
)
from ocppd.websocket import harden

SUBPROTOCOL = "wamp.2.json"


def prepare_event(data: bytes) -> PreparedMessage:
    """An EVENT framed once for every subscriber (server frames are unmasked)."""
    return PreparedMessage(data, False, False, True)


@implementer(IPushProducer)
class _Backpressure:
    """Told by the transport when its write buffer is over / back under its mark."""

    def __init__(self) -> None:
        self.paused = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        pass


class PushServerProtocol(WebSocketServerProtocol):
    # Not ``log``: that is Autobahn's own txaio logger.
    _log = Logger()
    factory: PushServerFactory

    session: PushSession | None = None
    _flow: _Backpressure | None = None
    #: Bytes written since the transport asked us to pause.
    backlog = 0

    @property
    def _client_address(self) -> str:
        """The browser's address, behind a trusted proxy too (``[web] trusted_proxies``)."""
        return websocket_client_address(self, self.factory.trusted_proxies)

    def onConnect(self, request: ConnectionRequest) -> str:
        # request.host lost the port; the header has it.
        host = request.headers.get("host")
        if not self.factory.origins.allows(request.origin or None, host):
            self._log.info(
                "Refused push handshake from {peer}: origin {origin} not allowed",
                peer=self._client_address,
                origin=request.origin,
            )
            raise ConnectionDeny(403, "origin not allowed")
        if SUBPROTOCOL not in request.protocols:
            raise ConnectionDeny(400, f"the push channel speaks the {SUBPROTOCOL} subprotocol")
        return SUBPROTOCOL

    def onOpen(self) -> None:
        transport: Any = self.transport
        # Twisted Web's channel registered itself as the producer of this
        # transport before the WebSocket took the connection over.
        transport.unregisterProducer()
        self._flow = _Backpressure()
        transport.registerProducer(self._flow, True)
        self.session = self.factory.session_opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.session is not None:
            self.session.received(payload, isBinary)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.lost()
            self.factory.session_closed(self, session)

    # --- Peer, for PushSession ------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.state == self.STATE_OPEN:
            self.sendMessage(data, isBinary=False)
            self._written(len(data))

    def send_shared(self, frame: Any) -> None:
        if self.state == self.STATE_OPEN:
            self.sendPreparedMessage(frame)
            self._written(len(frame.payloadHybi))

    def close(self, code: int, reason: str) -> None:
        if self.state != self.STATE_OPEN:
            return
        if code == CLOSE_NORMAL:
            self.sendClose(code, reason)
        else:
            # 1002 is outside what sendClose accepts (1000, 3000-4999).
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode()[:123], isReply=False)

    # --- the bound --------------------------------------------------------------------

    def _written(self, size: int) -> None:
        flow = self._flow
        if flow is None:
            return
        if not flow.paused:
            self.backlog = 0
            return
        self.backlog += size
        if self.backlog > self.factory.max_buffer:
            session = self.session
            self._log.warn(
                "Cutting off push session {session} at {peer}: it does not read, "
                "{backlog} bytes waiting beyond the socket buffer",
                session=session.session_id if session is not None else None,
                peer=self._client_address,
                backlog=self.backlog,
            )
            self.factory.cut_off += 1
            if session is not None:
                session.lost()
            self.dropConnection(abort=True)


class PushServerFactory(WebSocketServerFactory):
    protocol = PushServerProtocol  # type: ignore[assignment]
    _log = Logger()

    def __init__(
        self,
        *,
        broker: Broker,
        authenticate: Authenticator,
        clock: Clock,
        limits: SessionLimits,
        origins: OriginPolicy,
        max_message_size: int,
        max_buffer: int,
        ping_interval: float,
        ping_timeout: float,
        open_handshake_timeout: float,
        session_ids: Any,
        trusted_proxies: TrustedProxies | None = None,
    ) -> None:
        super().__init__(protocols=[SUBPROTOCOL], server="ocppd")
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        # No permessage-deflate: frames are prepared once for every subscriber.
        harden(
            self,
            max_message_size=max_message_size,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_handshake_timeout=open_handshake_timeout,
        )
        self.broker = broker
        self.origins = origins
        self.max_buffer = max_buffer
        self._authenticate = authenticate
        self._clock = clock
        self._limits = limits
        self._session_ids = session_ids
        self.protocols_open: dict[PushServerProtocol, None] = {}
        #: How many sessions were cut off for not reading (for tests and the metrics).
        self.cut_off = 0
        #: How many sessions opened since the start (for the metrics).
        self.opened = 0
        self._close_waiters: list[Deferred[None]] = []

    def session_opened(self, protocol: PushServerProtocol) -> PushSession:
        session = PushSession(
            session_id=self._session_ids(),
            peer=protocol,
            broker=self.broker,
            authenticate=self._authenticate,
            clock=self._clock,
            limits=self._limits,
        )
        self.protocols_open[protocol] = None
        self.opened += 1
        session.opened()
        return session

    def session_closed(self, protocol: PushServerProtocol, session: PushSession) -> None:
        self.protocols_open.pop(protocol, None)
        if not self.protocols_open:
            waiters, self._close_waiters = self._close_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def when_all_closed(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        if not self.protocols_open:
            d.callback(None)
        else:
            self._close_waiters.append(d)
        return d
