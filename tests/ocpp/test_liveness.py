"""
ocppd.ocpp.liveness: chargers whose node died go offline after [ocpp]
liveness_timeout, chargers a live node holds never do; Clock-driven, on the
real SQLite and PostgreSQL (several nodes sharing one database).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.consumers.processor import OcppProcessor
from ocppd.ocpp.liveness import ChargerLiveness
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.store import chargers, connections
from ocppd.store.database import Database
from ocppd.timeutil import format_iso, from_timestamp
from tests.store.fixtures import make_postgres_database, make_sqlite_database

#: A reactor time: 2026-11-29T10:00:00Z.
START = 1_795_946_400.0
TIMEOUT = 180


class RecordingBus:
    """Accepts every publish and keeps it (the one IBus method EventPublisher uses)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Envelope]] = []

    def publish(self, routing_key: str, envelope: Envelope) -> Any:
        self.published.append((routing_key, envelope))
        return succeed(None)


class HeldSocket:
    """The one attribute the registry's ``held`` reads, plus what ``register`` touches."""

    def __init__(self, charge_point_id: str, connection_id: str) -> None:
        self.charge_point_id = charge_point_id
        self.connection_id = connection_id


class Node:
    """One node's registry and liveness, on the shared database and clock."""

    def __init__(self, test: LivenessTests, node_id: str) -> None:
        self.node_id = node_id
        self.registry = ConnectionRegistry()
        traffic = TrafficPublisher(test.bus, node=node_id, clock=test.clock)  # type: ignore[arg-type]
        self.liveness = ChargerLiveness(
            test.database, self.registry, traffic, test.clock, node=node_id, timeout=TIMEOUT
        )
        self._test = test

    def connect(self, charge_point_id: str, connection_id: str) -> None:
        """A socket opened here and its connect event stored, as the processor does."""
        self.registry.register(HeldSocket(charge_point_id, connection_id))  # type: ignore[arg-type]
        self._test.database.run_sync(
            connections.connected,
            charge_point_id,
            connection_id=connection_id,
            node=self.node_id,
            at=self._test.now(),
        )


class LivenessTests(TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def setUp(self) -> None:
        self.database = self.make_database()
        self.clock = Clock()
        self.clock.advance(START)
        self.bus = RecordingBus()
        for n in range(1, 5):
            self.database.run_sync(chargers.add_charge_point, f"CP{n}", None, now=self.now())

    def now(self) -> Any:
        return from_timestamp(self.clock.seconds())

    def online(self) -> dict[str, bool]:
        return {
            f"CP{n}": self.database.run_sync(chargers.get_charge_point, f"CP{n}").online  # type: ignore[union-attr]
            for n in range(1, 5)
        }

    def offline_events(self) -> list[tuple[str | None, str, str]]:
        return [
            (e.charge_point_id, e.payload["connectionId"], e.payload["reason"])
            for key, e in self.bus.published
            if key == topology.CHARGER_DISCONNECTED
        ]

    @inlineCallbacks
    def run_for(self, nodes: list[Node], seconds: float) -> Any:
        """Every node renews and sweeps each interval for ``seconds``, as its loop would."""
        elapsed = 0.0
        while elapsed < seconds:
            for node in nodes:
                yield node.liveness._tick()
            step = nodes[0].liveness.interval
            self.clock.advance(step)
            elapsed += step

    @inlineCallbacks
    def test_dead_node_chargers_swept_live_node_chargers_kept(self) -> Any:
        """
        Node a dies (no disconnect events, no renewals): after the timeout node
        b's sweep marks a's chargers offline, announced; b's own stay online.
        """
        a, b = Node(self, "a"), Node(self, "b")
        a.connect("CP1", "a1")
        a.connect("CP2", "a2")
        b.connect("CP3", "b3")
        yield self.run_for([a, b], TIMEOUT)  # both alive: nothing swept
        self.assertEqual(self.online(), {"CP1": True, "CP2": True, "CP3": True, "CP4": False})
        self.assertEqual(self.offline_events(), [])
        # a is killed: only b renews and sweeps from now on.
        yield self.run_for([b], TIMEOUT - b.liveness.interval)
        self.assertEqual(self.online()["CP1"], True, "swept before the timeout")
        yield self.run_for([b], 2 * b.liveness.interval)
        self.assertEqual(self.online(), {"CP1": False, "CP2": False, "CP3": True, "CP4": False})
        self.assertEqual(
            self.offline_events(),
            [("CP1", "a1", "liveness expired"), ("CP2", "a2", "liveness expired")],
        )
        # Announced at their last sign of life (a's last renewal), not at the sweep:
        # the processor moves last_seen_at to it.
        last_renewal = format_iso(from_timestamp(START + TIMEOUT - a.liveness.interval))
        self.assertEqual({e.payload["at"] for _, e in self.bus.published}, {last_renewal})

    @inlineCallbacks
    def test_swept_connections_end_at_the_last_sign_of_life(self) -> Any:
        """
        The sweep's announcements, stored by the processor, close the dead node's
        connections in the history at its last renewal; the live node's stay open.
        """
        a, b = Node(self, "a"), Node(self, "b")
        a.connect("CP1", "a1")
        b.connect("CP3", "b3")
        yield self.run_for([a, b], TIMEOUT)
        yield self.run_for([b], TIMEOUT + b.liveness.interval)
        processor = OcppProcessor(None, self.database, clock=self.clock)  # type: ignore[arg-type]
        for key, envelope in self.bus.published:
            if key == topology.CHARGER_DISCONNECTED:
                self.database.run_sync(processor.apply, envelope)
        (dead,) = self.database.run_sync(connections.recent_connections, "CP1")
        last_renewal = from_timestamp(START + TIMEOUT - a.liveness.interval)
        self.assertEqual(
            (dead.connection_id, dead.disconnected_at, dead.close_reason),
            ("a1", last_renewal, "liveness expired"),
        )
        (live,) = self.database.run_sync(connections.recent_connections, "CP3")
        self.assertIsNone(live.disconnected_at)

    @inlineCallbacks
    def test_charger_moved_to_another_node_is_not_renewed_by_the_old(self) -> Any:
        """A node renews only rows that record its own socket: a moved charger is the new node's."""
        a, b = Node(self, "a"), Node(self, "b")
        a.connect("CP1", "a1")
        self.clock.advance(1)
        b.connect("CP1", "b1")  # reconnected to b; a has not noticed its socket died yet
        yield self.run_for([a], TIMEOUT + 2 * a.liveness.interval)  # b died meanwhile
        self.assertEqual(self.online()["CP1"], False)
        self.assertEqual(self.offline_events(), [("CP1", "b1", "liveness expired")])

    @inlineCallbacks
    def test_restart_releases_the_node_own_chargers_at_once(self) -> Any:
        """At start a node marks offline what the store says it held; other nodes' stay."""
        a, b = Node(self, "a"), Node(self, "b")
        a.connect("CP1", "a1")
        b.connect("CP2", "b2")
        restarted = Node(self, "a")
        released = yield restarted.liveness.release_held()
        self.assertEqual(released, 1)
        self.assertEqual(self.online(), {"CP1": False, "CP2": True, "CP3": False, "CP4": False})
        self.assertEqual(self.offline_events(), [("CP1", "a1", "node restarted")])

    @inlineCallbacks
    def test_stalled_node_puts_its_chargers_back_online(self) -> Any:
        """A node that could not renew past the timeout (swept) restores what it still holds."""
        a, b = Node(self, "a"), Node(self, "b")
        a.connect("CP1", "a1")
        yield self.run_for([b], TIMEOUT + 2 * b.liveness.interval)
        self.assertEqual(self.online()["CP1"], False)
        yield a.liveness.renew()
        self.assertEqual(self.online()["CP1"], True)

    @inlineCallbacks
    def test_connect_stored_late_gets_a_whole_timeout(self) -> Any:
        """A connect event stored long after it happened (a bus backlog) is not swept at once."""
        a = Node(self, "a")
        at = self.now()
        self.clock.advance(TIMEOUT * 2)
        a.registry.register(HeldSocket("CP1", "a1"))  # type: ignore[arg-type]
        self.database.run_sync(
            chargers.set_connected, "CP1", connection_id="a1", node="a", at=at, alive_at=self.now()
        )
        yield a.liveness.sweep()
        self.assertEqual(self.online()["CP1"], True)

    def record_runs(self, node: Node) -> list[tuple[str, float]]:
        """Each renewal and sweep of ``node``'s loop, with its time; both answer at once."""
        runs: list[tuple[str, float]] = []

        def recorded(what: str, result: object) -> Any:
            return lambda: runs.append((what, self.clock.seconds())) or succeed(result)

        self.patch(node.liveness, "renew", recorded("renew", None))
        self.patch(node.liveness, "sweep", recorded("sweep", 0))
        return runs

    def test_loop_renews_every_third_of_the_timeout(self) -> None:
        """Started, it renews and sweeps at once and every timeout / 3 until stopped."""
        a = Node(self, "a")
        runs = self.record_runs(a)
        a.liveness.startService()
        self.clock.pump([TIMEOUT / 3] * 3)
        self.successResultOf(a.liveness.stopService())
        self.clock.advance(TIMEOUT)
        times = [START + n * TIMEOUT / 3 for n in range(4)]
        self.assertEqual(runs, [(what, at) for at in times for what in ("renew", "sweep")])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_waits_for_a_renewal_under_way_and_skips_its_sweep(self) -> None:
        """The database closes after the stop: nothing of the loop runs on it after."""
        a = Node(self, "a")
        runs = self.record_runs(a)
        renewal: Deferred[None] = Deferred()
        self.patch(a.liveness, "renew", lambda: runs.append(("renew", 0)) or renewal)
        a.liveness.startService()
        stopped = a.liveness.stopService()
        self.assertNoResult(stopped)
        renewal.callback(None)
        self.successResultOf(stopped)
        self.assertEqual(runs, [("renew", 0)])

    def test_failed_renewal_logged_no_sweep_tried_again(self) -> None:
        """A renewal that fails is logged and not followed by a sweep; the next interval renews."""
        a = Node(self, "a")
        runs = self.record_runs(a)
        renew = a.liveness.renew
        failing = [fail(RuntimeError("database away"))]
        self.patch(a.liveness, "renew", lambda: failing.pop() if failing else renew())
        a.liveness.startService()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(runs, [])
        self.clock.advance(a.liveness.interval)
        self.assertEqual([what for what, _ in runs], ["renew", "sweep"])
        self.successResultOf(a.liveness.stopService())


class PostgresLivenessTests(LivenessTests):
    def make_database(self) -> Database:
        return make_postgres_database(self)
