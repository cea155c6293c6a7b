"""
Tests for ocppd.ocpp.protocol's handshake edge, on a StringTransport: the
bytes a client may send before it is answered, and a client that leaves
while it is being admitted.
"""

from __future__ import annotations

from autobahn.twisted.websocket import WebSocketServerProtocol
from autobahn.websocket import protocol as autobahn_protocol
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp.admission import Admitted
from ocppd.ocpp.handshake import HandshakeError
from ocppd.ocpp.protocol import OcppServerFactory, OcppServerProtocol
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from tests.ocpp.fakes import RecordingTraffic

LIMIT = 2048
PEER = IPv4Address("TCP", "192.0.2.1", 40000)
REQUEST_LINE = b"GET /ocpp/CP1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"
HANDSHAKE = REQUEST_LINE + (
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
)


class SocketLikeTransport(StringTransport):
    """A StringTransport that, like a TCP transport, lets a protocol unregister no producer."""

    def unregisterProducer(self) -> None:
        self.producer = None


class PendingAdmission:
    """Admission whose decisions the test makes, recording who asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []
        self.decisions: list[Deferred[Admitted]] = []

    def admit(self, path: str, authorization: str | None, *, address: str) -> Deferred[Admitted]:
        self.asked.append((path, address))
        decision: Deferred[Admitted] = Deferred()
        self.decisions.append(decision)
        return decision


class HandshakeEdgeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.admission = PendingAdmission()
        self.registry = ConnectionRegistry()
        self.traffic = RecordingTraffic()
        factory = OcppServerFactory(
            admission=self.admission,  # type: ignore[arg-type]
            registry=self.registry,
            handler=None,  # type: ignore[arg-type]
            schemas=SchemaRegistry.load(),
            traffic=self.traffic,  # type: ignore[arg-type]
            clock=Clock(),
            call_timeout=30,
            max_message_size=65536,
            ping_interval=60,
            ping_timeout=30,
            open_handshake_timeout=10,
            max_handshake_size=LIMIT,
        )
        # No Autobahn timers on the global reactor: these tests use no time.
        factory.setProtocolOptions(openHandshakeTimeout=0, autoPingInterval=0)
        protocol = factory.buildProtocol(PEER)
        assert isinstance(protocol, OcppServerProtocol)
        self.protocol = protocol
        self.transport = SocketLikeTransport(peerAddress=PEER)
        protocol.makeConnection(self.transport)

    def status_line(self) -> bytes:
        return self.transport.value().split(b"\r\n", 1)[0]

    def test_handshake_within_the_limit_is_admitted(self) -> None:
        """A normal handshake reaches admission (with the peer's address) and opens."""
        self.protocol.dataReceived(HANDSHAKE)
        self.assertEqual(self.admission.asked, [("/ocpp/CP1", "192.0.2.1")])
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.assertIn(b" 101 ", self.status_line())
        self.assertIn("CP1", self.registry)

    def test_options_are_the_factorys_not_copied_per_connection(self) -> None:
        """
        The protocol options stay on the factory's protocol class (set after
        the factory was made too): none is in a connection's own attributes.
        """
        options = set(WebSocketServerProtocol.CONFIG_ATTRS)
        self.assertEqual(options & set(vars(self.protocol)), set())
        self.assertEqual(self.protocol.openHandshakeTimeout, 0)
        self.assertEqual(self.protocol.maxMessagePayloadSize, 65536)
        self.protocol.dataReceived(HANDSHAKE)
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.assertIn(b" 101 ", self.status_line())

    def test_open_connection_keeps_no_handshake(self) -> None:
        """Once open, the request's headers and bytes and our response are let go."""
        self.protocol.dataReceived(HANDSHAKE)
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.assertIn(b" 101 ", self.status_line())
        self.assertEqual(self.protocol.http_headers, {})
        self.assertEqual(
            (self.protocol.http_request_data, self.protocol.http_response_data), (b"", b"")
        )
        self.assertIsInstance(self.protocol.send_queue, list)

    def test_endless_header_closes_and_bounds_the_buffer(self) -> None:
        """
        Header bytes without an end: past max_handshake_size the client gets
        431 and the connection is closed; the buffer never held more than the
        limit, and bytes arriving after the close are not kept.
        """
        self.protocol.dataReceived(REQUEST_LINE)
        chunk = b"X-Padding: " + b"a" * 500 + b"\r\n"
        largest = 0
        for _ in range(100):
            self.protocol.dataReceived(chunk)
            largest = max(largest, len(self.protocol.data))
        self.assertLessEqual(largest, LIMIT)
        self.assertEqual(len(self.protocol.data), 0)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.status_line(), b"HTTP/1.1 431 opening handshake too large")
        self.assertEqual(self.admission.asked, [])

    def test_one_oversized_read_is_not_kept(self) -> None:
        """A single read larger than the limit is refused without being buffered."""
        self.protocol.dataReceived(REQUEST_LINE + b"X: " + b"a" * (LIMIT * 10))
        self.assertEqual(len(self.protocol.data), 0)
        self.assertTrue(self.transport.disconnecting)

    def test_bytes_during_admission_count(self) -> None:
        """
        Bytes sent after the request while admission runs are buffered too:
        they count against the limit, and the late admission opens nothing.
        """
        self.protocol.dataReceived(HANDSHAKE)
        self.protocol.dataReceived(b"a" * (LIMIT + 1))
        self.assertTrue(self.transport.disconnecting)
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.assertNotIn("CP1", self.registry)
        self.assertEqual(self.traffic.events, [])

    def test_client_gone_during_admission_is_not_opened(self) -> None:
        """
        A client that hangs up while its admission runs is not registered
        when the admission completes (it would stay "online" for good).
        """
        self.protocol.dataReceived(HANDSHAKE)
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.assertNotIn("CP1", self.registry)
        self.assertEqual(self.traffic.events, [])
        self.assertNotIn(b" 101 ", self.transport.value())

    def test_refusal_headers(self) -> None:
        """A refusal's own headers (Retry-After) are sent with its status."""
        self.protocol.dataReceived(HANDSHAKE)
        self.admission.decisions[0].errback(
            HandshakeError(429, "too many failed attempts", headers=(("Retry-After", "4"),))
        )
        response = self.transport.value()
        self.assertEqual(self.status_line(), b"HTTP/1.1 429 too many failed attempts")
        self.assertIn(b"\r\nRetry-After: 4\r\n", response)
        self.assertTrue(self.transport.disconnecting)

    def test_frames_dropped_once_closing(self) -> None:
        """
        An answer that arrives after the charger began the closing handshake
        is dropped, not an error (Autobahn raises Disconnected for it).
        """
        self.protocol.dataReceived(HANDSHAKE)
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.protocol.dataReceived(b"\x88\x82abcd" + bytes([0x03 ^ 0x61, 0xE8 ^ 0x62]))
        self.transport.clear()
        self.protocol.send_text('[3,"1",{}]')
        self.assertEqual(self.transport.value(), b"")

    def test_frames_sent_on_an_open_connection(self) -> None:
        """
        On an open connection a frame goes straight to the transport, counted
        in Autobahn's traffic statistics, without building Autobahn's debug
        line (whose coloured arguments cost every frame).
        """
        self.protocol.dataReceived(HANDSHAKE)
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.transport.clear()
        before = self.protocol.trafficStats.outgoingOctetsWireLevel
        self.patch(autobahn_protocol, "hltype", self.fail)
        self.protocol.send_text('[3,"1",{}]')
        self.assertEqual(self.transport.value(), b"\x81\x0a" + b'[3,"1",{}]')
        self.assertEqual(self.protocol.trafficStats.outgoingOctetsWireLevel - before, 12)
