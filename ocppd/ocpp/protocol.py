"""
The OCPP-J WebSocket endpoint on Autobahn: ``ws://HOST:9000/ocpp/{chargePointId}``.

This module only moves bytes: the handshake decision is ``admission``'s, the
conversation is ``connection.ChargerConnection``'s.
"""

from __future__ import annotations

import uuid
from typing import Any

import txaio
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITransport
from twisted.internet.protocol import connectionDone
from twisted.internet.tcp import Server as TcpServer
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from ocppd.logs import Logger
from ocppd.metrics.ocpp import OcppMetrics
from ocppd.ocpp.accept_gate import AcceptGate
from ocppd.ocpp.admission import WWW_AUTHENTICATE, Admitted, ChargerAdmission
from ocppd.ocpp.connection import CallHandler, ChargerConnection
from ocppd.ocpp.handshake import SUBPROTOCOL, HandshakeError, choose_subprotocol
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.presence.interface import IPresence, PresenceUnavailable
from ocppd.proxies import TrustedProxies, websocket_client_address
from ocppd.ratelog import RepeatLog
from ocppd.websocket import SharedProtocolOptions, harden
from ocppd.wsframes import masked_text_frame, payload_limit, text_frame_header, unmask

#: Handshakes answered at once before the listener stops accepting ([ocpp] max_handshakes).
DEFAULT_MAX_HANDSHAKES = 256
#: Seconds an accepted connection counts at the accept gate before its request is
#: complete. A charger sends it at once; a storm's requests wait in their sockets'
#: buffers until the reactor reads them, counted, so that the gate closes before
#: thousands are accepted. One that sends nothing stops counting after this.
REQUEST_GRACE = 1.0

CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003

#: Autobahn's logger for a connection whose handshake was refused.
_AUTOBAHN_ERRORS_ONLY = txaio.make_logger(level="error")  # type: ignore[attr-defined]


class _SendQueue(list[Any]):
    """
    Autobahn's queue of chopped or synchronous sends, which ocppd never makes:
    a list with ``popleft`` costs an idle connection 56 bytes, an empty deque 760.
    """

    __slots__ = ()

    def popleft(self) -> Any:
        return self.pop(0)


class OcppServerProtocol(WebSocketServerProtocol):
    # Not ``log``: that is Autobahn's own txaio logger, which honours its level.
    _log = Logger()
    factory: OcppServerFactory

    connection: ChargerConnection | None = None
    _admitted: Admitted | None = None
    #: Why admission refused the handshake, for failHandshake.
    _refusal: HandshakeError | None = None
    #: The presence fence this socket's claim on the charger got (None without presence).
    _fence: int | None = None
    #: Counted by the factory's accept gate: accepted (its request complete, or
    #: within REQUEST_GRACE of the accept), not yet answered.
    _handshaking = False
    #: Ends the count of a connection whose request is not complete in time.
    _grace: IDelayedCall | None = None
    #: Complete single-frame text messages in and out skip Autobahn's
    #: per-frame Python (``_receive_text_frames``, ``send_text``); False: all
    #: frames through Autobahn (the tests compare the two).
    fast_frames = True
    #: An answer on a plain TCP connection with nothing buffered by Twisted is
    #: sent at once (``_write_answer``) instead of through Twisted's write
    #: buffer, which costs two epoll_ctl calls per answer; False: always
    #: ``transport.write`` (the tests and benchmarks compare the two).
    direct_send = True
    #: What the direct send got from a socket the peer had reset: the read
    #: after it sees only the end of the stream, Twisted's write would have
    #: left the reset for that read (``connectionLost``).
    _send_lost: BaseException | None = None
    # Autobahn's protocol options the fast path reads (set on the factory's
    # protocol class by SharedProtocolOptions; Autobahn declares none of them).
    maxFramePayloadSize: int
    maxMessagePayloadSize: int
    maskServerFrames: bool
    autoFragmentSize: int

    @property
    def _address(self) -> str:
        """
        The client's IP address ("" on a transport without one): the peer's,
        or behind a trusted proxy the one its ``X-Forwarded-For`` names.
        """
        return websocket_client_address(self, self.factory.trusted_proxies)

    @inlineCallbacks
    def onConnect(self, request: ConnectionRequest) -> Any:  # type: ignore[override]
        # The request is complete: the node takes the handshake on (the accept
        # gate counts it again if its grace ran out), and its timeout starts
        # again for the node's own work (admission, the presence claim),
        # however long the request took.
        self._end_grace()
        self._take_on()
        self._start_handshake_timeout()
        try:
            admitted = yield self.factory.admission.admit(
                request.path, request.headers.get("authorization"), address=self._address
            )
            # Claimed before the socket opens: this node holds the charger's
            # newest connection, and the node that held it closes its socket.
            fence = yield self.factory.claim(admitted.charge_point_id)
        except HandshakeError as e:
            self._refusal = e
            raise ConnectionDeny(e.status, e.reason) from None
        except Exception:
            # A fault of ours (the database, a bug): the traceback goes to the
            # log, the charger gets a fixed status line. Autobahn would put the
            # exception's text (SQL included) into the HTTP status line.
            self._log.failure(
                "OCPP handshake from {peer} for {path} failed", peer=request.peer, path=request.path
            )
            raise ConnectionDeny(
                ConnectionDeny.INTERNAL_SERVER_ERROR, "Internal Server Error"
            ) from None
        self._admitted = admitted
        self._fence = fence
        if self.state == self.STATE_CLOSED:
            # The charger hung up while we claimed: nothing will open.
            self.factory.release(admitted.charge_point_id, fence)
        # OCPP-J 1.6 3.2: without an agreed subprotocol the handshake completes
        # without the header and onOpen closes the connection.
        return choose_subprotocol(request.protocols)

    def failHandshake(self, reason: str, code: int = 400, responseHeaders: Any = None) -> None:
        """
        Every refused handshake ends here, whoever refused it (admission, the
        size bound, Autobahn for a malformed request), and is logged once.
        """
        refusal = self._refusal
        self._log.emit(
            LogLevel.info if refusal is None else refusal.level,
            "Refused OCPP handshake from {address} for {charge_point_id} ({path}): "
            "{status} {reason}",
            address=self._address,
            charge_point_id=None if refusal is None else refusal.charge_point_id,
            path=getattr(self, "http_request_path", None),
            status=code,
            reason=reason,
        )
        if not responseHeaders:
            responseHeaders = [] if refusal is None else list(refusal.headers)
            if code == 401:
                responseHeaders.append(("WWW-Authenticate", WWW_AUTHENTICATE))
        # Autobahn would log the refusal twice more ("failing", then a warning
        # as it drops the connection); nothing else happens on it afterwards.
        self.log = _AUTOBAHN_ERRORS_ONLY
        self._handshake_over()
        super().failHandshake(reason, code, responseHeaders)

    def succeedHandshake(self, res: Any) -> None:
        # Autobahn would open a connection that is gone: admission is
        # asynchronous, and meanwhile the charger may have hung up or been
        # dropped (an oversized handshake); a registered ghost would stay
        # "online" for good.
        if self.state == self.STATE_CLOSED:
            return
        self._handshake_over()
        super().succeedHandshake(res)

    def _connectionMade(self) -> None:
        super()._connectionMade()
        self.send_queue = _SendQueue()  # type: ignore[assignment]
        self._start_handshake_timeout()
        # Counted from the accept (a storm's accepted connections are taken
        # on before their requests are read), but only for REQUEST_GRACE
        # without a complete request: a client that sends nothing cannot
        # hold the gate shut (ocppd.ocpp.accept_gate).
        self._take_on()
        self._grace = self.factory.clock.callLater(REQUEST_GRACE, self._request_late)

    def _take_on(self) -> None:
        if not self._handshaking:
            self._handshaking = True
            self.factory.gate.started()

    def _request_late(self) -> None:
        """No complete request within REQUEST_GRACE: no longer counted, until it completes."""
        self._grace = None
        self._handshake_over()

    def _end_grace(self) -> None:
        grace, self._grace = self._grace, None
        if grace is not None and grace.active():
            grace.cancel()

    def _start_handshake_timeout(self) -> None:
        """
        (Re)start ``[ocpp] open_handshake_timeout``: at the accept, for the
        client's request, and again once it is complete, for our answer.
        Autobahn's own timer only counts from the accept; this one is kept
        where Autobahn keeps its, so Autobahn cancels it as its own (when the
        connection opens or is lost) and its expiry drops the connection as
        Autobahn's would.
        """
        call: IDelayedCall | None = self.openHandshakeTimeoutCall
        if call is not None and call.active():
            call.cancel()
        timeout = self.factory.open_handshake_timeout
        call = None
        if timeout > 0:
            call = self.factory.clock.callLater(timeout, self.onOpenHandshakeTimeout)
        # Autobahn declares it None-only (its own timer's type is untyped).
        self.openHandshakeTimeoutCall = call  # type: ignore[assignment]

    def _handshake_over(self) -> None:
        """Answered, refused or gone: the gate may accept the next connection."""
        self._end_grace()
        if self._handshaking:
            self._handshaking = False
            self.factory.gate.finished()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._handshake_over()
        if self._send_lost is not None and reason.check(ConnectionDone):
            # The direct send took the socket's reset (a socket reports its
            # error once); without it the read would have got it and ended
            # the connection with ConnectionLost, not the end of the stream.
            reason = Failure(self._send_lost)
        super().connectionLost(reason)

    def _forget_handshake(self) -> None:
        """
        The request's headers and raw bytes and our response's, which Autobahn
        keeps for good; nothing reads them once the connection is open, and
        they are about 1 KiB of every idle charger's memory.
        """
        self.http_headers = {}
        self.http_request_data = b""
        self.http_response_data = b""  # type: ignore[assignment]
        self.http_request_params = {}

    def onOpen(self) -> None:
        admitted = self._admitted
        assert admitted is not None
        self._forget_handshake()
        if self.websocket_protocol_in_use != SUBPROTOCOL:
            self._log.info(
                "Closing {charge_point_id}: no {subprotocol} subprotocol offered",
                charge_point_id=admitted.charge_point_id,
                subprotocol=SUBPROTOCOL,
            )
            self.close(CLOSE_PROTOCOL_ERROR, f"subprotocol {SUBPROTOCOL} required")
            return
        self.connection = self.factory.connection_opened(self, admitted, self._fence)

    def dataReceived(self, data: bytes) -> None:
        # Autobahn's dataReceived only adds a debug line whose arguments
        # (hltype/hlval colouring) are built before the level check: a few
        # percent of a Heartbeat's CPU (bench/RESULTS.md). The rest is this.
        if self.state != self.STATE_OPEN:
            if self.state == self.STATE_CONNECTING:
                self._bound_handshake(data)
            if self.state == self.STATE_CLOSED:
                # Autobahn would keep appending it to a buffer nobody reads.
                return
        elif self.fast_frames and self._between_messages():
            self._receive_text_frames(data)
            return
        self._dataReceived(data)

    def _between_messages(self) -> bool:
        """
        Autobahn holds nothing of a frame or message (every field its
        ``processData`` continues from), and nothing is configured that its
        per-frame path would do beyond unmasking, validating and delivering:
        no extension, octet or frame logging, timings or "message" observers.
        """
        return (
            not self.data
            and self.current_frame is None
            and not self.inside_message
            and not self.failedByMe
            and self._perMessageCompress is None
            and self.applyMask
            and not self.logOctets
            and not self.logFrames
            and not self.trackedTimings
            and self._listeners is None
        )

    def _receive_text_frames(self, data: bytes) -> None:
        """
        What Autobahn does for each complete, masked, final text frame of
        valid UTF-8 at the start of ``data`` (count, unmask, validate,
        deliver), in one pass per frame; the bytes from the first other frame
        on (control, fragment, partial, binary, unmasked, oversized, invalid
        UTF-8), or once a message changed the state, go to Autobahn untouched,
        as if it had processed the frames before them itself.
        """
        stats = self.trafficStats
        # Autobahn counts a read as it arrives, before any frame of it.
        stats.incomingOctetsWireLevel += len(data)
        limit = payload_limit(self.maxFramePayloadSize, self.maxMessagePayloadSize)
        offset = 0
        while True:
            frame = masked_text_frame(data, offset, limit)
            if frame is None:
                break
            payload_start, payload_end, mask = frame
            try:
                text = unmask(data[payload_start:payload_end], mask).decode("utf-8")
            except UnicodeDecodeError:
                # Autobahn fails the connection (1007) exactly as always.
                break
            offset = payload_end
            length = payload_end - payload_start
            stats.incomingOctetsWebSocketLevel += length
            stats.incomingOctetsAppLevel += length
            stats.incomingWebSocketFrames += 1
            if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
                # A data frame stands for the pong Autobahn waits for (its onFrameEnd).
                self._cancelAutoPingTimeoutCall()
            stats.incomingWebSocketMessages += 1
            self._text_received(text)
            if self.state != self.STATE_OPEN:
                # Closed or closing by the message: Autobahn goes on (or not) from here.
                break
        if offset < len(data):
            self.data = data[offset:] if offset else data
            self.consumeData()

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        # The common case of Autobahn's sendData (an open connection, nothing
        # queued, no chopping, no octet logging), without the debug line whose
        # coloured arguments it builds for every frame before the level check.
        transport = self.transport
        if (
            sync
            or chopsize
            or self.send_queue
            or self.logOctets  # type: ignore[attr-defined]  # set by Autobahn on connect
            or self.state != self.STATE_OPEN
            or transport is None
        ):
            super().sendData(data, sync, chopsize)
            return
        transport.write(data)
        self.trafficStats.outgoingOctetsWireLevel += len(data)

    def _bound_handshake(self, data: bytes) -> None:
        """
        Until the handshake is answered, Autobahn keeps every byte received
        (the request headers, and whatever follows while admission runs):
        past ``max_handshake_size`` the connection is refused and its buffer
        dropped. A WebSocket client sends nothing after its request until the
        101, so only a misbehaving one gets here.
        """
        if len(self.data) + len(data) <= self.factory.max_handshake_size:
            return
        self.data = b""
        self.failHandshake("opening handshake too large", 431)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.connection is None or not self.connection.open:
            # Replaced by a newer connection of the charger (here or on another
            # node) and closing: what the old socket still says is not handled.
            return
        if isBinary:
            self.close(CLOSE_UNSUPPORTED_DATA, "OCPP-J uses text frames")
            return
        # Autobahn has already validated text frames as UTF-8.
        self.connection.text_received(payload.decode("utf-8"))

    def _text_received(self, text: str) -> None:
        """``onMessage`` of a text message the fast path decoded."""
        connection = self.connection
        if connection is not None and connection.open:
            connection.text_received(text)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.connection is not None:
            self.factory.connection_closed(self.connection, code, reason, fence=self._fence)
            self.connection = None
        elif self._admitted is not None and self._fence is not None:
            # Claimed, but never opened (no subprotocol, or closed meanwhile).
            self.factory.release(self._admitted.charge_point_id, self._fence)
        self._fence = None

    def close_with_protocol_code(self, code: int, reason: str) -> None:
        """
        Close with a code from RFC 6455's protocol range (1001-1003), which
        ``sendClose`` refuses; Autobahn itself sends those through
        ``sendCloseFrame``, e.g. 1009 for an oversized message.
        """
        self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8"), isReply=False)

    # MessageTransport, for ChargerConnection
    def send_text(self, text: str) -> None:
        if self.state != WebSocketServerProtocol.STATE_OPEN:
            # The closing handshake has begun (the charger sent Close, e.g. to
            # reset) while an answer was on its way from the bus: nobody reads
            # it any more, and Autobahn would raise Disconnected.
            return
        payload = text.encode("utf-8")
        length = len(payload)
        transport = self.transport
        if (
            self.fast_frames
            and transport is not None
            and not self.send_queue
            and self._perMessageCompress is None
            and not self.maskServerFrames
            and not (0 < self.maxMessagePayloadSize < length)
            and not (0 < self.autoFragmentSize < length)
            and not self.logOctets  # type: ignore[attr-defined]  # set by Autobahn on connect
            and not self.logFrames  # type: ignore[attr-defined]
            and not self.trackedTimings
        ):
            # What sendMessage, sendFrame and sendData do for one unmasked,
            # unfragmented, uncompressed text frame, counters included.
            frame = text_frame_header(length) + payload
            if self.direct_send:
                self._write_answer(transport, frame)
            else:
                transport.write(frame)
            stats = self.trafficStats
            stats.outgoingWebSocketMessages += 1
            stats.outgoingOctetsAppLevel += length
            stats.outgoingOctetsWebSocketLevel += length
            stats.outgoingWebSocketFrames += 1
            stats.outgoingOctetsWireLevel += len(frame)
            return
        self.sendMessage(payload, isBinary=False)

    def _write_answer(self, transport: ITransport, frame: bytes) -> None:
        """
        Send ``frame`` at once on a plain TCP connection of Twisted's whose
        write buffer is empty, as Twisted's ``doWrite`` would on the reactor's
        next iteration, and hand Twisted's ``write`` only what the socket did
        not take (everything after an error): it buffers it, in order before
        any later answer (the buffer is no longer empty), and deals with the
        error as before. Saves registering the socket for writing and
        unregistering it (two epoll_ctl) per answer. Anything else (TLS, a
        wrapper, a producer, a closing connection) is ``transport.write``.
        """
        if (
            type(transport) is TcpServer
            and not transport.TLS
            and transport.connected
            and not transport.disconnecting
            and not transport._writeDisconnecting
            and not transport._writeDisconnected
            and transport.producer is None
            and not transport.dataBuffer
            and not transport._tempDataBuffer
        ):
            sent = transport.writeSomeData(frame)
            if isinstance(sent, BaseException):
                self._send_lost = sent
            elif sent >= len(frame):
                return
            elif sent > 0:
                frame = frame[sent:]
        transport.write(frame)

    def close(self, code: int, reason: str) -> None:
        if code == 1000 or 3000 <= code <= 4999:
            self.sendClose(code, reason)
        else:
            self.close_with_protocol_code(code, reason)


class OcppServerFactory(SharedProtocolOptions, WebSocketServerFactory):  # type: ignore[misc]
    protocol = OcppServerProtocol  # type: ignore[assignment]
    _log = Logger()

    def __init__(
        self,
        *,
        admission: ChargerAdmission,
        registry: ConnectionRegistry,
        handler: CallHandler,
        schemas: SchemaRegistry,
        traffic: TrafficPublisher,
        clock: IReactorTime,
        call_timeout: float,
        max_message_size: int,
        ping_interval: float,
        ping_timeout: float,
        open_handshake_timeout: float,
        max_handshake_size: int,
        max_handshakes: int = DEFAULT_MAX_HANDSHAKES,
        presence: IPresence | None = None,
        trusted_proxies: TrustedProxies | None = None,
        metrics: OcppMetrics | None = None,
    ) -> None:
        super().__init__(protocols=[SUBPROTOCOL], server="ocppd")
        #: The node's OCPP counts while metrics are on (``[metrics] listen``).
        self.metrics = metrics
        harden(
            self,
            max_message_size=max_message_size,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_handshake_timeout=open_handshake_timeout,
        )
        self.max_handshake_size = max_handshake_size
        #: Stops the listener's accepts while ``max_handshakes`` wait for their answer.
        self.gate = AcceptGate(max_handshakes)
        #: The opening handshake's timeout is the protocol's own (Autobahn's
        #: counts from the accept only): see ``_start_handshake_timeout``.
        self.open_handshake_timeout = open_handshake_timeout
        self.clock = clock
        self.setProtocolOptions(openHandshakeTimeout=0)
        self.admission = admission
        self.registry = registry
        self._handler = handler
        self._schemas = schemas
        self._traffic = traffic
        self._clock = clock
        self._call_timeout = call_timeout
        # Failed and refused calls of every connection, logged rate-limited.
        self._call_failures = RepeatLog(ChargerConnection.log, clock)
        self.presence = presence
        #: Proxies whose X-Forwarded-For names the charger's address (``[web] trusted_proxies``).
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        if presence is not None:
            presence.on_lost(self._claim_lost)

    @inlineCallbacks
    def claim(self, charge_point_id: str) -> Any:
        """The fence of a new claim on the charger (None without presence); 503 if unreachable."""
        if self.presence is None:
            return None
        try:
            fence = yield self.presence.claim(charge_point_id)
        except PresenceUnavailable:
            # Presence logs the outage once; each refusal is one info line (the
            # chargers retry, and a fleet retrying must not flood the log).
            refusal = HandshakeError(503, "Service Unavailable")
            refusal.charge_point_id = charge_point_id
            raise refusal from None
        return fence

    def release(self, charge_point_id: str, fence: int | None) -> Deferred[None] | None:
        """Give up a claim whose socket closed (logged, never raised: the lease ends it anyway)."""
        if self.presence is None or fence is None:
            return None

        def failed(failure: Any) -> None:
            self._log.warn(
                "Could not release {charge_point_id} in presence ({reason}); its claim expires"
                " within the lease",
                charge_point_id=charge_point_id,
                reason=failure.getErrorMessage(),
            )

        return self.presence.release(charge_point_id, fence).addCallbacks(lambda _: None, failed)

    def _claim_lost(self, charge_point_id: str, fence: int) -> None:
        self.registry.evict(charge_point_id, fence)

    def connection_opened(
        self, protocol: OcppServerProtocol, admitted: Admitted, fence: int | None = None
    ) -> ChargerConnection:
        connection = ChargerConnection(
            admitted.charge_point_id,
            connection_id=uuid.uuid4().hex,
            registration_status=admitted.registration_status,
            transport=protocol,
            handler=self._handler,
            schemas=self._schemas,
            traffic=self._traffic,
            clock=self._clock,
            call_timeout=self._call_timeout,
            failures=self._call_failures,
            metrics=self.metrics,
        )
        if self.metrics is not None:
            self.metrics.opened()
        if not self.registry.register(connection, fence):
            return connection  # an older claim than the current connection's: closing
        self._log.info(
            "Charge point {charge_point_id} connected from {peer}",
            charge_point_id=connection.charge_point_id,
            peer=protocol.peer,
        )
        self._traffic.connected(
            connection.charge_point_id,
            connection_id=connection.connection_id,
            remote=protocol.peer or "",
            fence=fence,
        )
        return connection

    def connection_closed(
        self,
        connection: ChargerConnection,
        code: int | None,
        reason: str | None,
        fence: int | None = None,
    ) -> None:
        connection.connection_lost(f"connection closed ({code})")
        if self.metrics is not None:
            self.metrics.closed(code)
        self._log.info(
            "Charge point {charge_point_id} disconnected ({code} {reason})",
            charge_point_id=connection.charge_point_id,
            code=code,
            reason=reason,
        )
        self._traffic.disconnected(
            connection.charge_point_id,
            connection_id=connection.connection_id,
            code=code,
            reason=reason,
            fence=fence,
        )
        # Only the current connection's claim: a replaced or evicted one is
        # already superseded (and its release would change nothing anyway).
        if self.registry.fence(connection) is not None:
            self.release(connection.charge_point_id, fence)
        # Last: a shutdown waiting for the registry to empty resumes right here,
        # and the disconnect event must already be on the bus by then.
        self.registry.unregister(connection)
