"""
``ocppd.metrics``: the counts the parts keep, and the families the collector
makes of them at a scrape, with no sockets (Clock, the embedded bus, fakes).
The whole node's ``/metrics`` is tested in tests/integration/test_metrics.py.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import attrs
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError, Delivery
from ocppd.bus.memory import MemoryBus
from ocppd.bus.topology import QueueSpec, bind, make_topology
from ocppd.metrics.collector import message_age, node_registry
from ocppd.metrics.histogram import Histogram
from ocppd.metrics.ocpp import OcppMetrics, close_code_label
from ocppd.ocpp.accept_gate import AcceptGate
from ocppd.ocpp.connection import ChargerConnection
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.store.database import POOL_WAIT_BUCKETS
from ocppd.timeutil import format_iso, from_timestamp
from tests.bus.contract import HandlerError
from tests.ocpp.fakes import FakeTransport, RecordingTraffic, ScriptedHandler

SCHEMAS = SchemaRegistry.load()
#: The Clock's start in these tests: 2026-01-01T00:00:00Z.
T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def envelope(key: str, at: float) -> Envelope:
    return Envelope.create(key, {}, node="n1", now=from_timestamp(at))


class FakeNode:
    """What the collector reads of a node, with an embedded bus on a Clock."""

    def __init__(self) -> None:
        self.reactor = Clock()
        self.reactor.advance(T0)
        base = make_topology([("work", ["session.#"])], prefix="t")
        push = QueueSpec("push", (bind("session.#", "t"),), durable=False, ephemeral=True)
        self.bus = MemoryBus(
            attrs.evolve(base, queues=(*base.queues, push)),
            reactor=self.reactor,
            retry_delays=(1,),
            max_attempts=2,
        )
        self.bus.startService()
        self.registry = ConnectionRegistry()
        self.ocpp_factory = SimpleNamespace(gate=AcceptGate(2))
        self.database = SimpleNamespace(
            pool_waits=Histogram(POOL_WAIT_BUCKETS), running=True, pool_state=lambda: (3, 1)
        )
        self.push = SimpleNamespace(session_count=2, factory=SimpleNamespace(opened=5, cut_off=1))
        self.ocpp = OcppMetrics()
        self.metrics = node_registry(self, self.ocpp)

    def scrape(self) -> Samples:
        text = generate_latest(self.metrics).decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def turns(self, n: int = 5) -> None:
        for _ in range(n):
            self.reactor.advance(0)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


class LabelTests(SynchronousTestCase):
    def test_close_codes_bucketed(self) -> None:
        cases = {
            None: "none",
            1000: "1000",
            1001: "1001",
            1006: "1006",
            1009: "1009",
            4000: "4000",
            4001: "4xxx",
            4999: "4xxx",
            3000: "3xxx",
            1004: "other",
            2000: "other",
            65535: "other",
        }
        self.assertEqual({code: close_code_label(code) for code in cases}, cases)

    def test_hostile_names_add_no_series(self) -> None:
        """A thousand invented actions and error codes are one series each: ``other``."""
        metrics = OcppMetrics()
        for n in range(1000):
            metrics.answered(f"Evil{n}", "CALLRESULT", 0.001)
            metrics.rejected(f"Made{n}Up", "NotImplemented")
            metrics.command_settled(f"Cmd{n}", f"Code{n}", 0.1)
            metrics.answered("Heartbeat", f"NoSuchCode{n}", 0.001)
        self.assertEqual(metrics.inbound["other"]["CALLRESULT"], 1000)
        self.assertEqual(metrics.inbound["other"]["NotImplemented"], 1000)
        self.assertEqual(metrics.inbound["Heartbeat"]["other"], 1000)
        self.assertEqual(metrics.outbound["other"]["other"], 1000)
        self.assertEqual(set(metrics.answer_seconds), {"other", "Heartbeat"})
        self.assertNotIn("Evil1", metrics.inbound)

    def test_histogram_buckets_are_cumulative(self) -> None:
        histogram = Histogram((0.1, 1.0))
        for seconds in (0.05, 0.1, 0.5, 2.0, 3.0):
            histogram.observe(seconds)
        self.assertEqual(histogram.cumulative(), [("0.1", 2), ("1.0", 3), ("+Inf", 5)])
        self.assertEqual(histogram.count, 5)
        self.assertAlmostEqual(histogram.total, 5.65)

    def test_message_age(self) -> None:
        self.assertEqual(message_age(None, T0), 0.0)
        self.assertEqual(message_age("not a time", T0), 0.0)
        self.assertEqual(message_age(format_iso(from_timestamp(T0 - 7)), T0), 7.0)
        # A publisher's clock ahead of ours is no negative lag.
        self.assertEqual(message_age(format_iso(from_timestamp(T0 + 7)), T0), 0.0)


class ConnectionCountTests(SynchronousTestCase):
    """What a ChargerConnection counts, timed by its Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.transport = FakeTransport()
        self.handler = ScriptedHandler()
        self.metrics = OcppMetrics()
        self.connection = ChargerConnection(
            "CP1",
            connection_id="c1",
            registration_status="Accepted",
            transport=self.transport,
            handler=self.handler,  # type: ignore[arg-type]
            schemas=SCHEMAS,
            traffic=RecordingTraffic(),  # type: ignore[arg-type]
            clock=self.clock,
            call_timeout=30,
            metrics=self.metrics,
        )

    def test_answer_latency_and_outcomes(self) -> None:
        now = {"currentTime": "2026-01-01T00:00:00.000Z"}
        self.connection.text_received('[2,"h1","Heartbeat",{}]')
        self.clock.advance(0.003)
        self.handler.pending[-1].callback(now)
        self.handler.ready["Heartbeat"] = now
        self.connection.text_received('[2,"h2","Heartbeat",{}]')
        self.handler.ready["Authorize"] = BusError("broker away")
        self.connection.text_received('[2,"a1","Authorize",{"idTag":"T"}]')
        self.connection.text_received('[2,"x1","Nope",{}]')
        self.connection.text_received("not json")
        inbound = self.metrics.inbound
        self.assertEqual(inbound["Heartbeat"]["CALLRESULT"], 2)
        self.assertEqual(inbound["Authorize"]["InternalError"], 1)
        self.assertEqual(inbound["other"]["NotImplemented"], 1)
        self.assertEqual(inbound["other"]["FormationViolation"], 1)
        latency = self.metrics.answer_seconds["Heartbeat"]
        # 3 ms for the first (it waited on its Deferred), none for the second.
        self.assertEqual(latency.count, 2)
        self.assertAlmostEqual(latency.total, 0.003)
        self.assertEqual(latency.cumulative()[0:3], [("0.0005", 1), ("0.001", 1), ("0.0025", 1)])
        # Refused before any handler: counted, not timed.
        self.assertNotIn("other", self.metrics.answer_seconds)

    def test_command_round_trips_and_endings(self) -> None:
        answered = self.connection.call("ClearCache", {})
        sent = json.loads(self.transport.sent[-1])
        self.clock.advance(0.25)
        self.connection.text_received(json.dumps([3, sent[1], {"status": "Accepted"}]))
        self.successResultOf(answered)
        refused = self.connection.call("Reset", {"type": "Soft"})
        sent = json.loads(self.transport.sent[-1])
        self.connection.text_received(json.dumps([4, sent[1], "NotSupported", "no", {}]))
        self.failureResultOf(refused)
        late = self.connection.call("ClearCache", {})
        self.clock.advance(30)
        self.failureResultOf(late)
        queued = [self.connection.call("ClearCache", {}) for _ in range(2)]
        self.connection.connection_lost()
        for d in queued:
            self.failureResultOf(d)
        outbound = self.metrics.outbound
        self.assertEqual(outbound["ClearCache"]["CALLRESULT"], 1)
        self.assertEqual(outbound["Reset"]["NotSupported"], 1)
        self.assertEqual(outbound["ClearCache"]["timeout"], 1)
        self.assertEqual(outbound["ClearCache"]["disconnected"], 2)
        round_trips = self.metrics.command_seconds["ClearCache"]
        self.assertEqual(round_trips.count, 1)
        self.assertAlmostEqual(round_trips.total, 0.25)

    def test_off_counts_nothing(self) -> None:
        """Without metrics a connection keeps no counts (and reads no clock for them)."""
        connection = ChargerConnection(
            "CP2",
            connection_id="c2",
            registration_status="Accepted",
            transport=self.transport,
            handler=self.handler,  # type: ignore[arg-type]
            schemas=SCHEMAS,
            traffic=RecordingTraffic(),  # type: ignore[arg-type]
            clock=self.clock,
            call_timeout=30,
        )
        self.handler.ready["Heartbeat"] = {"currentTime": "2026-01-01T00:00:00.000Z"}
        connection.text_received('[2,"h1","Heartbeat",{}]')
        self.assertEqual(self.metrics.inbound["Heartbeat"]["CALLRESULT"], 0)


class BusFamilyTests(SynchronousTestCase):
    """The bus's counts (embedded bus) as the collector shows them."""

    def setUp(self) -> None:
        self.node = FakeNode()
        self.bus = self.node.bus

    def test_publishes_retries_dead_letters(self) -> None:
        def failing(delivery: Delivery) -> None:
            raise HandlerError("no")

        self.successResultOf(self.bus.consume("work", failing))
        now = self.node.reactor.seconds()
        self.successResultOf(self.bus.publish("session.updated", envelope("session.updated", now)))
        self.failureResultOf(self.bus.publish("no.such.key", envelope("x", now)), BusError)
        self.node.turns()
        samples = self.node.scrape()
        self.assertEqual(value(samples, "ocppd_bus_publishes_total", outcome="confirmed"), 1)
        self.assertEqual(value(samples, "ocppd_bus_publishes_total", outcome="failed"), 1)
        self.assertEqual(value(samples, "ocppd_bus_flow_waits_total"), 0)
        # Counted by the bus (tests.bus.test_memory.FlowControlTests).
        self.bus.stats.flow_waited = 3
        self.assertEqual(value(self.node.scrape(), "ocppd_bus_flow_waits_total"), 3)
        self.assertEqual(value(samples, "ocppd_bus_retries_total", queue="work"), 1)
        self.assertEqual(value(samples, "ocppd_bus_dead_lettered_total", queue="work"), 0)
        self.node.reactor.advance(1)
        self.node.turns()
        samples = self.node.scrape()
        self.assertEqual(value(samples, "ocppd_bus_dead_lettered_total", queue="work"), 1)
        self.assertEqual(value(samples, "ocppd_bus_dead_letters", queue="work"), 1)
        self.flushLoggedErrors(HandlerError)

    def test_consumer_lag_is_the_oldest_unfinished_message(self) -> None:
        held: list[Deferred[None]] = []

        def slow(delivery: Delivery) -> Deferred[None]:
            held.append(Deferred())
            return held[-1]

        self.successResultOf(self.bus.consume("work", slow))
        samples = self.node.scrape()
        self.assertEqual(value(samples, "ocppd_consumer_lag_seconds", queue="work"), 0)
        start = self.node.reactor.seconds()
        for n in range(3):
            self.bus.publish("session.updated", envelope("session.updated", start + n))
        self.node.turns()
        self.node.reactor.advance(10)
        samples = self.node.scrape()
        # The first is in the handler for 10 s; the two behind it are younger.
        self.assertEqual(value(samples, "ocppd_consumer_lag_seconds", queue="work"), 10)
        held[0].callback(None)
        self.node.turns()
        samples = self.node.scrape()
        self.assertEqual(value(samples, "ocppd_consumer_lag_seconds", queue="work"), 9)
        for d in held[1:]:
            d.callback(None)
        self.node.turns()
        for d in held[2:]:
            d.callback(None)
        self.node.turns()
        samples = self.node.scrape()
        self.assertEqual(value(samples, "ocppd_consumer_lag_seconds", queue="work"), 0)

    def test_push_drops(self) -> None:
        def failing(delivery: Delivery) -> None:
            raise HandlerError("browser gone")

        self.successResultOf(self.bus.consume("push", failing))
        now = self.node.reactor.seconds()
        for _ in range(3):
            self.bus.publish("session.updated", envelope("session.updated", now))
        self.node.turns()
        samples = self.node.scrape()
        self.assertEqual(value(samples, "ocppd_push_events_dropped_total", reason="failed"), 3)
        self.assertEqual(value(samples, "ocppd_push_events_dropped_total", reason="overflow"), 0)
        self.flushLoggedErrors(HandlerError)

    def test_push_overflow(self) -> None:
        """The embedded notifier queue keeps the newest: each one pushed out is counted."""
        from ocppd.bus.topology import EPHEMERAL_MAX_LENGTH

        now = self.node.reactor.seconds()
        for _ in range(EPHEMERAL_MAX_LENGTH + 4):
            self.bus.publish("session.updated", envelope("session.updated", now))
        samples = self.node.scrape()
        self.assertEqual(value(samples, "ocppd_push_events_dropped_total", reason="overflow"), 4)


class NodeFamilyTests(SynchronousTestCase):
    def test_every_family_present(self) -> None:
        node = FakeNode()
        node.ocpp.opened()
        node.ocpp.closed(1006)
        node.ocpp.answered("Heartbeat", "CALLRESULT", 0.0002)
        node.database.pool_waits.observe(0.002)
        samples = node.scrape()
        self.assertEqual(value(samples, "ocppd_chargers_connected"), 0)
        self.assertEqual(value(samples, "ocppd_ocpp_connections_opened_total"), 1)
        self.assertEqual(
            (
                value(samples, "ocppd_ocpp_handshakes_waiting"),
                value(samples, "ocppd_ocpp_accept_pauses_total"),
            ),
            (0, 0),
        )
        gate = node.ocpp_factory.gate
        gate.started()
        gate.started()
        gate.finished()
        samples = node.scrape()
        self.assertEqual(value(samples, "ocppd_ocpp_handshakes_waiting"), 1)
        self.assertEqual(value(samples, "ocppd_ocpp_accept_pauses_total"), 1)
        self.assertEqual(value(samples, "ocppd_ocpp_connections_closed_total", code="1006"), 1)
        self.assertEqual(
            value(
                samples,
                "ocppd_ocpp_messages_total",
                action="Heartbeat",
                direction="in",
                outcome="CALLRESULT",
            ),
            1,
        )
        self.assertEqual(
            value(samples, "ocppd_ocpp_answer_seconds_bucket", action="Heartbeat", le="0.0005"), 1
        )
        self.assertEqual(value(samples, "ocppd_push_sessions"), 2)
        self.assertEqual(value(samples, "ocppd_push_sessions_opened_total"), 5)
        self.assertEqual(value(samples, "ocppd_push_sessions_cut_off_total"), 1)
        self.assertEqual(value(samples, "ocppd_db_pool_wait_seconds_bucket", le="0.001"), 0)
        self.assertEqual(value(samples, "ocppd_db_pool_wait_seconds_bucket", le="0.005"), 1)
        self.assertEqual(value(samples, "ocppd_db_pool_waiting"), 3)
        self.assertEqual(value(samples, "ocppd_db_pool_busy_threads"), 1)
        self.assertIn(("process_cpu_seconds_total", frozenset()), samples)
        # Zero counts stay out: no series per possible label set.
        series = [name for name, _ in samples if name == "ocppd_ocpp_messages_total"]
        self.assertEqual(len(series), 1)


class DatabasePoolTests(TestCase):
    """The store's pool as the metrics read it: waits observed, queue and busy threads now."""

    @inlineCallbacks
    def test_waits_and_state(self) -> Any:
        from twisted.internet import reactor

        from ocppd.store.database import Database

        path = os.path.abspath(self.mktemp())
        database = Database.from_url(f"sqlite:///{path}", reactor=reactor)
        database.start()
        self.addCleanup(database.stop)
        self.assertEqual(database.pool_state(), (0, 0))
        running, release = threading.Event(), threading.Event()

        def hold(conn: Any) -> None:
            running.set()
            release.wait(10)

        first = database.run(hold)
        yield deferToThread(running.wait, 10)
        # SQLite has one thread: the second transaction waits for it.
        second = database.run(lambda conn: None)
        self.assertEqual(database.pool_state(), (1, 1))
        release.set()
        yield first
        yield second
        # Observed on the reactor as each finished: the second waited for the first.
        self.assertEqual(database.pool_waits.count, 2)
