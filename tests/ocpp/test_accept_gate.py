"""
Tests for ocppd.ocpp.accept_gate: the OCPP listener stops accepting while too
many handshakes wait for their answer, and ocppd.listen's default backlog.
"""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer, IReactorFDSet
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from ocppd.listen import with_default_backlog
from ocppd.ocpp.accept_gate import AcceptGate
from ocppd.ocpp.admission import Admitted
from ocppd.ocpp.handshake import HandshakeError
from ocppd.ocpp.protocol import REQUEST_GRACE, OcppServerFactory, OcppServerProtocol
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from tests.ocpp.fakes import RecordingTraffic
from tests.ocpp.test_protocol import HANDSHAKE, PEER, PendingAdmission, SocketLikeTransport


@implementer(IPushProducer)
class RecordingPort:
    """A listening port that records its pauses and resumes."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:
        self.calls.append("pause")

    def resumeProducing(self) -> None:
        self.calls.append("resume")

    def stopProducing(self) -> None:
        self.calls.append("stop")


class AcceptGateTests(SynchronousTestCase):
    def test_pauses_at_the_limit_and_resumes_below_it(self) -> None:
        """The ports pause when ``limit`` handshakes wait and resume at ``resume_at``, once each."""
        gate = AcceptGate(4, resume_at=2)
        port = RecordingPort()
        self.assertTrue(gate.watch(port))
        for _ in range(3):
            gate.started()
        self.assertEqual(port.calls, [])
        gate.started()
        self.assertEqual((port.calls, gate.paused), (["pause"], True))
        # Twisted may accept a few more in the same turn: no second pause.
        gate.started()
        gate.finished()
        gate.finished()
        self.assertEqual(port.calls, ["pause"])
        gate.finished()
        self.assertEqual((port.calls, gate.paused, gate.waiting), (["pause", "resume"], False, 2))
        gate.finished()
        self.assertEqual(port.calls, ["pause", "resume"])

    def test_default_resume_point_is_below_the_limit(self) -> None:
        """Without ``resume_at`` the gate reopens an eighth below the limit (at least one)."""
        self.assertEqual(AcceptGate(256).resume_at, 224)
        self.assertEqual(AcceptGate(1).resume_at, 0)
        with self.assertRaises(ValueError):
            AcceptGate(0)

    def test_port_watched_while_closed_is_paused(self) -> None:
        """A port watched while the gate is closed is paused at once; a forgotten one is left."""
        gate = AcceptGate(1)
        first, second = RecordingPort(), RecordingPort()
        gate.watch(first)
        gate.started()
        gate.watch(second)
        self.assertEqual(second.calls, ["pause"])
        gate.forget(first)
        gate.finished()
        self.assertEqual((first.calls, second.calls), (["pause"], ["pause", "resume"]))

    def test_a_port_that_cannot_pause_is_not_watched(self) -> None:
        self.assertFalse(AcceptGate(1).watch(object()))


class RealPortTests(TestCase):
    def test_a_paused_tcp_port_stops_accepting(self) -> None:
        """
        Twisted's listening port pauses: the reactor stops reading its socket
        (no accept) and reads it again on resume; the kernel keeps who knocks.
        """
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        fdset = IReactorFDSet(reactor)
        gate = AcceptGate(1)
        self.assertTrue(gate.watch(port))
        self.assertIn(port, fdset.getReaders())
        gate.started()
        self.assertNotIn(port, fdset.getReaders())
        gate.finished()
        self.assertIn(port, fdset.getReaders())

    def test_a_resumed_port_accepts_no_more_than_the_room_left(self) -> None:
        """
        Twisted's accepts per read grow by 20 each time a read fills them (in
        a storm, every read): at a resume the gate sets them to the room left.
        """
        port = reactor.listenTCP(0, Factory.forProtocol(Protocol), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        gate = AcceptGate(64, resume_at=40)
        gate.watch(port)
        port.numberAccepts = 2000
        for _ in range(64):
            gate.started()
        for _ in range(24):
            gate.finished()
        self.assertEqual((gate.paused, port.numberAccepts), (False, 24))


class FactoryGateTests(SynchronousTestCase):
    """
    Each connection of the OCPP factory counts from its accept until its
    handshake is answered (without a complete request, for a grace only); the
    handshake's timeout runs on the factory's clock, from the accept and again
    from the complete request.
    """

    def setUp(self) -> None:
        self.admission = PendingAdmission()
        self.registry = ConnectionRegistry()
        self.clock = Clock()
        self.factory = OcppServerFactory(
            admission=self.admission,  # type: ignore[arg-type]
            registry=self.registry,
            handler=None,  # type: ignore[arg-type]
            schemas=SchemaRegistry.load(),
            traffic=RecordingTraffic(),  # type: ignore[arg-type]
            clock=self.clock,
            call_timeout=30,
            max_message_size=65536,
            ping_interval=60,
            ping_timeout=30,
            open_handshake_timeout=10,
            max_handshake_size=8192,
            max_handshakes=2,
        )
        # No Autobahn timers on the global reactor: the handshake's is on self.clock.
        self.factory.setProtocolOptions(autoPingInterval=0)
        self.port = RecordingPort()
        self.factory.gate.watch(self.port)

    def connect(self) -> tuple[OcppServerProtocol, SocketLikeTransport]:
        protocol = self.factory.buildProtocol(PEER)
        assert isinstance(protocol, OcppServerProtocol)
        transport = SocketLikeTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        return protocol, transport

    def test_accepts_pause_while_handshakes_wait(self) -> None:
        """
        Two connections accepted close the gate (their requests not read yet:
        a storm's wait in their sockets); the first answered (101) opens it
        again, and the open connection no longer counts.
        """
        first, _ = self.connect()
        self.assertEqual((self.factory.gate.waiting, self.port.calls), (1, []))
        second, _ = self.connect()
        self.assertEqual(self.port.calls, ["pause"])
        first.dataReceived(HANDSHAKE)
        second.dataReceived(HANDSHAKE)
        self.assertEqual(self.factory.gate.waiting, 2)
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.assertIn("CP1", self.registry)
        self.assertEqual((self.factory.gate.waiting, self.port.calls), (1, ["pause", "resume"]))
        first.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.gate.waiting, 1)

    def test_a_refusal_ends_the_wait(self) -> None:
        """A refused handshake (here 401) counts once, however its connection then ends."""
        protocol, transport = self.connect()
        protocol.dataReceived(HANDSHAKE)
        self.admission.decisions[0].errback(HandshakeError(401, "Unauthorized"))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(self.factory.gate.waiting, 0)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.gate.waiting, 0)

    def test_a_client_gone_during_admission_ends_the_wait_once(self) -> None:
        """Hung up while admitted: counted off at the loss, not again at the late decision."""
        protocol, _ = self.connect()
        protocol.dataReceived(HANDSHAKE)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.gate.waiting, 0)
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.assertEqual(self.factory.gate.waiting, 0)
        self.assertNotIn("CP1", self.registry)

    def test_silent_clients_hold_the_gate_only_for_their_grace(self) -> None:
        """
        Connections that do not complete their request (a slow-loris client)
        count for REQUEST_GRACE only: they cannot hold the listener shut for
        the chargers. One that completes it later counts again until answered.
        """
        late, _ = self.connect()
        self.connect()
        self.assertEqual(self.port.calls, ["pause"])
        self.clock.advance(REQUEST_GRACE)
        self.assertEqual((self.factory.gate.waiting, self.port.calls), (0, ["pause", "resume"]))
        late.dataReceived(HANDSHAKE)
        self.assertEqual(self.factory.gate.waiting, 1)
        self.admission.decisions[0].errback(HandshakeError(401, "Unauthorized"))
        self.assertEqual(self.factory.gate.waiting, 0)

    def test_a_prompt_request_ends_the_grace(self) -> None:
        """A request completed within the grace keeps counting past it, until answered."""
        protocol, _ = self.connect()
        protocol.dataReceived(HANDSHAKE)
        self.clock.advance(REQUEST_GRACE * 2)
        self.assertEqual(self.factory.gate.waiting, 1)
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.assertEqual(self.factory.gate.waiting, 0)

    def test_a_silent_client_times_out_from_its_accept(self) -> None:
        """No complete request within ``open_handshake_timeout`` of the accept: dropped."""
        _, transport = self.connect()
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)

    def test_the_timeout_starts_again_when_the_request_is_complete(self) -> None:
        """
        A request completed 8 s after the accept gets the whole timeout for
        its answer (admission may wait behind a storm's): dropped only 10 s
        after the request, if still unanswered.
        """
        protocol, transport = self.connect()
        self.clock.advance(8)
        protocol.dataReceived(HANDSHAKE)
        self.clock.advance(9.9)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.1)
        self.assertTrue(transport.disconnecting)
        # The drop ends its wait at the gate as any loss does.
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.factory.gate.waiting, 0)

    def test_no_timeout_left_once_open(self) -> None:
        """An answered handshake leaves no timer: the open connection is never dropped by it."""
        protocol, transport = self.connect()
        protocol.dataReceived(HANDSHAKE)
        self.admission.decisions[0].callback(Admitted("CP1", "Accepted"))
        self.assertEqual([call for call in self.clock.getDelayedCalls() if call.active()], [])
        self.clock.advance(60)
        self.assertFalse(transport.disconnecting)


class DefaultBacklogTests(SynchronousTestCase):
    def test_added_where_none_is_named(self) -> None:
        """TCP, TLS and UNIX listeners without a backlog get the default; others stay."""
        cases = {
            "tcp:9000": "tcp:9000:backlog=4096",
            "tcp:9000:interface=127.0.0.1": "tcp:9000:interface=127.0.0.1:backlog=4096",
            "tcp6:port=9000:interface=\\:\\:1": "tcp6:port=9000:interface=\\:\\:1:backlog=4096",
            "ssl:9443:privateKey=k.pem": "ssl:9443:privateKey=k.pem:backlog=4096",
            "unix:/run/ocppd.sock": "unix:/run/ocppd.sock:backlog=4096",
            "9000": "9000:backlog=4096",
            "tcp:9000:backlog=50": "tcp:9000:backlog=50",
            "TCP:9000:Backlog=10": "TCP:9000:Backlog=10",
            "systemd:domain=INET:index=0": "systemd:domain=INET:index=0",
        }
        for given, expected in cases.items():
            self.assertEqual(with_default_backlog(given, 4096), expected, given)
