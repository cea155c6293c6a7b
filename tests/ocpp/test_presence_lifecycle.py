"""
The OCPP endpoint with presence (``ocppd.ocpp.protocol`` + ``registry`` +
``ocppd.presence``): each admitted socket claims its charger, the newest
connection wins across nodes, and an old node's socket changes nothing once
replaced. Two factories with their own registries stand for two nodes, on one
embedded hub (fake clock) and on the real Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.ocpp.admission import Admitted
from ocppd.ocpp.protocol import OcppServerFactory, OcppServerProtocol
from ocppd.ocpp.registry import CLOSE_REPLACED, ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.presence.interface import IPresence, Owner, PresenceUnavailable
from ocppd.presence.memory import MemoryPresence, MemoryPresenceHub
from ocppd.presence.redis import RedisPresence
from tests.integration.daemon import cancel_spent_autobahn_timers
from tests.ocpp.fakes import RecordingTraffic, ScriptedHandler
from tests.ocpp.test_protocol import HANDSHAKE, PEER, SocketLikeTransport
from tests.presence.contract import eventually
from tests.presence.test_redis import delete_prefix, require_redis
from tests.redis.links import started_link

HEARTBEAT = '[2,"hb-1","Heartbeat",{}]'


class AdmitAll:
    def admit(self, path: str, authorization: str | None, *, address: str) -> Deferred[Admitted]:
        return succeed(Admitted(path.rsplit("/", 1)[-1], "Accepted"))


class Node:
    """One node's OCPP endpoint: factory, registry, presence; sockets on StringTransports."""

    def __init__(self, presence: IPresence | None, clock: Any) -> None:
        self.presence = presence
        self.registry = ConnectionRegistry()
        self.traffic = RecordingTraffic()
        self.handler = ScriptedHandler()
        self.handler.ready["Heartbeat"] = {"currentTime": "2026-01-01T00:00:00Z"}
        self.factory = OcppServerFactory(
            admission=AdmitAll(),  # type: ignore[arg-type]
            registry=self.registry,
            handler=self.handler,
            schemas=SchemaRegistry.load(),
            traffic=self.traffic,  # type: ignore[arg-type]
            clock=clock,
            call_timeout=30,
            max_message_size=65536,
            ping_interval=60,
            ping_timeout=30,
            open_handshake_timeout=10,
            max_handshake_size=8192,
            presence=presence,
        )
        self.factory.setProtocolOptions(openHandshakeTimeout=0, autoPingInterval=0)

    def connect(self, handshake: bytes = HANDSHAKE) -> tuple[OcppServerProtocol, Any]:
        protocol = self.factory.buildProtocol(PEER)
        assert isinstance(protocol, OcppServerProtocol)
        transport = SocketLikeTransport(peerAddress=PEER)
        protocol.makeConnection(transport)
        protocol.dataReceived(handshake)
        return protocol, transport


def close_code(transport: Any) -> int | None:
    """The code of the close frame the server sent on ``transport`` (unmasked), if any."""
    data = transport.value()
    start = data.find(b"\r\n\r\n")
    frames = data[start + 4 :] if start >= 0 else b""
    index = frames.find(b"\x88")
    if index < 0:
        return None
    return int.from_bytes(frames[index + 2 : index + 4], "big")


class MemoryLifecycleTests(SynchronousTestCase):
    def setUp(self) -> None:
        # Closing sockets schedules Autobahn's close timeouts on the global
        # reactor, which this test never runs: cancelled, or a later test trips on them.
        self.addCleanup(cancel_spent_autobahn_timers)
        self.clock = Clock()
        hub = MemoryPresenceHub(self.clock)
        self.a = Node(MemoryPresence(node_id="a", clock=self.clock, lease=30, hub=hub), self.clock)
        self.b = Node(MemoryPresence(node_id="b", clock=self.clock, lease=30, hub=hub), self.clock)

    def owner(self) -> Owner | None:
        assert self.a.presence is not None
        return self.successResultOf(self.a.presence.owner("CP1"))

    def test_open_claims(self) -> None:
        protocol, transport = self.a.connect()
        self.assertIn(b" 101 ", transport.value())
        self.assertEqual(self.owner(), Owner("a", 1))
        self.assertEqual(self.a.traffic.fences, [("connected", "CP1", 1)])
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.owner())
        self.assertEqual(self.a.traffic.fences[-1], ("disconnected", "CP1", 1))

    def test_newest_connection_wins_across_nodes(self) -> None:
        """
        CP1 on b, then on a: b closes its socket (4000) as soon as it is told,
        forgets it, and nothing the old socket says or does afterwards counts.
        """
        old, old_transport = self.b.connect()
        self.assertIn("CP1", self.b.registry)
        new, _ = self.a.connect()
        self.assertEqual(self.owner(), Owner("a", 2))
        self.clock.advance(0)  # the takeover message
        self.assertNotIn("CP1", self.b.registry)
        self.assertEqual(close_code(old_transport), CLOSE_REPLACED)
        # A frame from the old socket while it closes is not handled.
        old.onMessage(HEARTBEAT.encode(), False)
        self.assertEqual(self.b.handler.calls, [])
        # Its close, later, releases nothing: a still owns CP1.
        old.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.owner(), Owner("a", 2))
        self.assertEqual(self.b.traffic.fences[-1], ("disconnected", "CP1", 1))
        # The new socket is served.
        new.onMessage(HEARTBEAT.encode(), False)
        self.assertEqual([call.action for call in self.a.handler.calls], ["Heartbeat"])

    def test_renewal_finds_a_missed_takeover(self) -> None:
        """Were the takeover message lost, b's next renewal closes the socket."""
        _, old_transport = self.b.connect()
        assert self.a.presence is not None and self.b.presence is not None
        self.b.presence.start()
        hub = self.a.presence.hub  # type: ignore[attr-defined]
        hub._nodes.pop("b")  # b no longer hears takeovers
        self.a.connect()
        self.clock.advance(0)
        self.assertIn("CP1", self.b.registry)
        self.clock.advance(10)  # lease / 3
        self.assertNotIn("CP1", self.b.registry)
        self.assertEqual(close_code(old_transport), CLOSE_REPLACED)
        self.assertEqual(self.owner(), Owner("a", 2))
        self.b.presence.stop()

    def test_reconnect_on_same_node(self) -> None:
        old, old_transport = self.a.connect()
        self.a.connect()
        self.assertEqual(close_code(old_transport), CLOSE_REPLACED)
        old.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.owner(), Owner("a", 2))
        self.assertIn("CP1", self.a.registry)

    def test_older_claim_opening_last_is_closed(self) -> None:
        """Two handshakes racing on one node: the socket with the older fence is closed."""
        assert self.a.presence is not None
        fences = iter([2, 1])
        self.a.factory.claim = lambda cp: succeed(next(fences))  # type: ignore[method-assign]
        _, newer = self.a.connect()
        _, older_transport = self.a.connect()
        self.assertEqual(close_code(older_transport), CLOSE_REPLACED)
        self.assertIsNone(close_code(newer))
        self.assertEqual(self.a.registry.fence(self.a.registry.get("CP1")), 2)  # type: ignore[arg-type]

    def test_presence_unavailable_refuses_with_503(self) -> None:
        assert self.a.presence is not None
        self.a.presence.claim = lambda cp: fail(PresenceUnavailable("down"))  # type: ignore[method-assign]
        _, transport = self.a.connect()
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 503 "))
        self.assertNotIn("CP1", self.a.registry)

    def test_client_gone_during_claim_is_released(self) -> None:
        assert self.a.presence is not None
        pending: Deferred[int] = Deferred()
        real_claim = self.a.presence.claim
        self.a.presence.claim = lambda cp: pending  # type: ignore[method-assign]
        protocol, _ = self.a.connect()
        protocol.connectionLost(Failure(ConnectionDone()))
        real_claim("CP1").chainDeferred(pending)
        self.assertIsNone(self.owner())
        self.assertNotIn("CP1", self.a.registry)

    def test_no_subprotocol_releases(self) -> None:
        protocol, _ = self.a.connect(HANDSHAKE.replace(b"Sec-WebSocket-Protocol: ocpp1.6\r\n", b""))
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.owner())


class RedisLifecycleTests(TestCase):
    """Two nodes' endpoints on the real Redis: the takeover crosses processes' channels."""

    @inlineCallbacks
    def node(self, node_id: str) -> Generator[Deferred[Any], Any, Node]:
        presence = RedisPresence(
            node_id=node_id,
            clock=reactor,  # type: ignore[arg-type]
            lease=30,
            link=started_link(self, self.url),
            prefix=self.prefix,
        )
        presence.start()
        self.addCleanup(presence.stop)
        self.assertTrue((yield presence.when_connected(10)))
        return Node(presence, reactor)

    def setUp(self) -> None:
        # First, so it runs last: the close handshakes leave txaio timer buckets.
        self.addCleanup(cancel_spent_autobahn_timers)
        self.url = require_redis()
        self.prefix = "t" + uuid.uuid4().hex[:10]
        self.addCleanup(delete_prefix, self.prefix)

    @inlineCallbacks
    def test_newest_connection_wins_across_nodes(self) -> Generator[Deferred[Any], Any, None]:
        a = yield self.node("a")
        b = yield self.node("b")
        old, old_transport = b.connect()
        yield eventually(lambda: "CP1" in b.registry)
        new, _ = a.connect()
        yield eventually(lambda: "CP1" in a.registry)
        yield eventually(lambda: "CP1" not in b.registry)
        self.assertEqual(close_code(old_transport), CLOSE_REPLACED)
        old.onMessage(HEARTBEAT.encode(), False)
        self.assertEqual(b.handler.calls, [])
        old.connectionLost(Failure(ConnectionDone()))
        assert a.presence is not None
        self.assertEqual((yield a.presence.owner_node("CP1")), "a")
        new.connectionLost(Failure(ConnectionDone()))
        yield eventually(lambda: a.presence.owner("CP1").addCallback(lambda o: o is None))  # type: ignore[union-attr]
