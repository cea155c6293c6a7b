"""
``ocppd.ocpp.last_seen``: the Heartbeats a node answers move their chargers'
``last_seen_at`` without the bus. The decision (``SeenCoalescer``) on its own;
the writer (``LastSeenWriter``) on a ``Clock`` against the real SQLite and
PostgreSQL; and ``TrafficPublisher`` handing it the Heartbeats it does not
publish.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.bus.envelope import Envelope
from ocppd.ocpp.frames import Call
from ocppd.ocpp.last_seen import WRITE_INTERVAL, LastSeenWriter, SeenCoalescer
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.store import chargers
from ocppd.store.database import Database
from ocppd.timeutil import from_timestamp
from tests.store.fixtures import make_postgres_database, make_sqlite_database

#: A reactor time: 2026-12-07T10:00:00Z.
START = 1_796_637_600.0
RESOLUTION = 30.0


class SeenCoalescerTests(SynchronousTestCase):
    """Which chargers are written when: at most once per resolution, with the newest time."""

    def setUp(self) -> None:
        self.coalescer = SeenCoalescer(RESOLUTION)

    def test_first_heartbeat_due_at_once_then_once_per_resolution(self) -> None:
        """A charger never written is due; then only once its last written time is 30 s old."""
        seen = self.coalescer.seen
        seen("CP1", 100.0)
        self.assertEqual(self.coalescer.due(101.0), {"CP1": 100.0})
        self.assertEqual(self.coalescer.due(102.0), {})
        seen("CP1", 110.0)
        seen("CP1", 120.0)
        self.assertEqual(self.coalescer.due(129.0), {}, "written before its resolution")
        seen("CP1", 129.5)
        self.assertEqual(self.coalescer.due(130.0), {"CP1": 129.5}, "the newest time")
        self.assertEqual(self.coalescer.due(200.0), {}, "nothing new seen")

    def test_chargers_apart(self) -> None:
        """Each charger has its own resolution: a new one is due while another waits."""
        self.coalescer.seen("CP1", 100.0)
        self.assertEqual(self.coalescer.due(100.0), {"CP1": 100.0})
        self.coalescer.seen("CP1", 105.0)
        self.coalescer.seen("CP2", 105.0)
        self.assertEqual(self.coalescer.due(106.0), {"CP2": 105.0})

    def test_quiet_charger_written_once_due_then_forgotten(self) -> None:
        """A charger that stops sending gets its last time written, and nothing is held after."""
        self.coalescer.seen("CP1", 100.0)
        self.coalescer.due(100.0)
        self.coalescer.seen("CP1", 110.0)
        self.assertEqual(self.coalescer.due(115.0), {})
        self.assertEqual(self.coalescer.due(130.0), {"CP1": 110.0})
        self.coalescer.due(140.0)
        self.assertEqual((self.coalescer.pending, self.coalescer._written), ({}, {}))

    def test_failed_write_due_again_at_once(self) -> None:
        """A failed batch is pending and due again; a newer time seen meanwhile wins."""
        self.coalescer.seen("CP1", 100.0)
        self.coalescer.seen("CP2", 100.0)
        batch = self.coalescer.due(100.0)
        self.coalescer.seen("CP2", 103.0)
        self.coalescer.failed(batch)
        self.assertEqual(self.coalescer.due(105.0), {"CP1": 100.0, "CP2": 103.0})

    def test_everything_takes_what_is_not_due(self) -> None:
        """At stop every pending time is written, due or not."""
        self.coalescer.seen("CP1", 100.0)
        self.coalescer.due(100.0)
        self.coalescer.seen("CP1", 110.0)
        self.coalescer.seen("CP2", 111.0)
        self.assertEqual(self.coalescer.everything(), {"CP1": 110.0, "CP2": 111.0})
        self.assertEqual(self.coalescer.pending, {})


class RecordingDatabase:
    """``Database.run`` that records each call and answers with ``results`` in turn."""

    def __init__(self) -> None:
        self.runs: list[tuple[Any, tuple[Any, ...]]] = []
        self.results: list[Deferred[None]] = []

    def run(self, func: Any, *args: Any) -> Deferred[None]:
        self.runs.append((func, args))
        return self.results.pop(0) if self.results else succeed(None)


class WriterScheduleTests(SynchronousTestCase):
    """The writer's loop: one run per tick with chargers due, none without; a flush at stop."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.database = RecordingDatabase()
        self.writer = LastSeenWriter(self.database, self.clock)  # type: ignore[arg-type]

    def written(self) -> list[list[tuple[str, datetime]]]:
        return [args[0] for func, args in self.database.runs]

    def test_one_transaction_per_tick(self) -> None:
        self.writer.startService()
        for n in range(3):
            self.writer.seen(f"CP{n}")
        self.clock.advance(1)
        self.writer.seen("CP0")  # the newest of CP0's times is written
        self.assertEqual(self.database.runs, [], "written on the request path")
        self.clock.advance(WRITE_INTERVAL - 1)
        at = from_timestamp(START)
        self.assertEqual(
            self.written(),
            [[("CP0", at + timedelta(seconds=1)), ("CP1", at), ("CP2", at)]],
        )
        self.assertIs(self.database.runs[0][0], chargers.touch_last_seen_many)
        self.clock.advance(WRITE_INTERVAL)
        self.assertEqual(len(self.database.runs), 1, "a tick with nothing due wrote")
        self.successResultOf(self.writer.stopService())

    def test_stop_writes_what_is_pending(self) -> None:
        """What is not due yet is written when the writer stops, and its loop ends."""
        self.writer.startService()
        self.writer.seen("CP1")
        self.clock.advance(WRITE_INTERVAL)
        self.writer.seen("CP1")
        self.successResultOf(self.writer.stopService())
        self.assertEqual(len(self.database.runs), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_without_start_writes_what_is_pending(self) -> None:
        """A writer never started (its start failed before it) still writes at stop."""
        self.writer.seen("CP1")
        self.successResultOf(self.writer.stopService())
        self.assertEqual(self.written(), [[("CP1", from_timestamp(START))]])

    def test_stop_waits_for_a_write_in_flight(self) -> None:
        in_flight: Deferred[None] = Deferred()
        self.database.results.append(in_flight)
        self.writer.startService()
        self.writer.seen("CP1")
        self.clock.advance(WRITE_INTERVAL)
        self.writer.seen("CP2")
        stopped = self.writer.stopService()
        self.assertNoResult(stopped)
        self.assertEqual(len(self.database.runs), 1)
        in_flight.callback(None)
        self.successResultOf(stopped)
        self.assertEqual(self.written()[1], [("CP2", from_timestamp(START + WRITE_INTERVAL))])

    def test_failed_write_logged_and_tried_again(self) -> None:
        """A failed write is logged once a minute at most, and its chargers written next tick."""
        self.writer.startService()
        for _ in range(3):
            self.database.results.append(fail(RuntimeError("database away")))
        self.writer.seen("CP1")
        for _ in range(4):
            self.clock.advance(WRITE_INTERVAL)
        self.assertEqual(len(self.database.runs), 4)
        self.assertEqual(self.written()[3], [("CP1", from_timestamp(START))])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.successResultOf(self.writer.stopService())

    def test_database_error_warned_without_traceback(self) -> None:
        """The database away: one warning a minute naming the driver's error, no traceback."""
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.writer.startService()
        error = sa.exc.OperationalError("UPDATE ...", {}, Exception("connection refused"))
        for _ in range(2):
            self.database.results.append(fail(error))
        self.writer.seen("CP1")
        for _ in range(3):
            self.clock.advance(WRITE_INTERVAL)
        self.assertEqual(self.written()[2], [("CP1", from_timestamp(START))])
        mine = [e for e in events if e.get("log_namespace", "").startswith("ocppd.ocpp.last_seen")]
        self.assertEqual([e["log_level"] for e in mine], [LogLevel.warn])
        self.assertEqual(mine[0]["error"], "Exception: connection refused")
        self.assertNotIn("log_failure", mine[0])
        self.assertEqual(self.flushLoggedErrors(), [])
        self.successResultOf(self.writer.stopService())

    def test_interval_bounded_by_resolution(self) -> None:
        with self.assertRaises(ValueError):
            LastSeenWriter(self.database, self.clock, interval=31, resolution=30)  # type: ignore[arg-type]


class LastSeenStoreTests(TestCase):
    """The writer on the real store: ``last_seen_at`` moves with Heartbeats, never back."""

    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def setUp(self) -> None:
        self.database = self.make_database()
        self.clock = Clock()
        self.clock.advance(START)
        self.writer = LastSeenWriter(self.database, self.clock)
        for charge_point_id in ("CP1", "CP2"):
            self.database.run_sync(
                chargers.add_charge_point, charge_point_id, None, now=from_timestamp(0)
            )

    def last_seen(self, charge_point_id: str) -> datetime | None:
        record = self.database.run_sync(chargers.get_charge_point, charge_point_id)
        assert record is not None
        return record.last_seen_at

    @inlineCallbacks
    def test_heartbeats_move_last_seen_at_per_resolution(self) -> Any:
        self.writer.seen("CP1")
        yield self.writer.write_due()
        self.assertEqual(self.last_seen("CP1"), from_timestamp(START))
        self.assertIsNone(self.last_seen("CP2"))
        self.clock.advance(10)
        self.writer.seen("CP1")
        self.assertIsNone(self.writer.write_due(), "written within the resolution")
        self.clock.advance(RESOLUTION)
        self.writer.seen("CP1")
        yield self.writer.write_due()
        self.assertEqual(self.last_seen("CP1"), from_timestamp(START + 10 + RESOLUTION))

    @inlineCallbacks
    def test_never_moves_back(self) -> Any:
        """A later time stored meanwhile (the processor's, another node's) stays."""
        self.writer.seen("CP1")
        later = from_timestamp(START + 60)
        self.database.run_sync(chargers.touch_last_seen, "CP1", later)
        yield self.writer.write_due()
        self.assertEqual(self.last_seen("CP1"), later)

    @inlineCallbacks
    def test_stop_writes_what_is_pending(self) -> Any:
        self.writer.startService()
        self.writer.seen("CP1")
        self.clock.advance(WRITE_INTERVAL)  # the loop writes CP1
        self.clock.advance(1)
        self.writer.seen("CP1")
        self.writer.seen("CP2")
        yield self.writer.stopService()  # after the loop's write, what is not due yet
        at = from_timestamp(START + WRITE_INTERVAL + 1)
        self.assertEqual((self.last_seen("CP1"), self.last_seen("CP2")), (at, at))


class PostgresLastSeenStoreTests(LastSeenStoreTests):
    def make_database(self) -> Database:
        return make_postgres_database(self)


class RecordingBus:
    def __init__(self) -> None:
        self.published: list[str] = []

    def publish(self, routing_key: str, envelope: Envelope) -> Deferred[None]:
        self.published.append(routing_key)
        return succeed(None)


class HeartbeatsNotPublishedTests(SynchronousTestCase):
    """With a writer (the log keeps no Heartbeats), a Heartbeat goes to it, not to the bus."""

    def inbound(self, traffic: TrafficPublisher, action: str) -> None:
        call = Call(unique_id="1", action=action, payload={})
        self.assertIsNone(traffic.inbound("CP1", call, {}, wait=False))

    def test_heartbeat_to_the_writer_the_rest_to_the_bus(self) -> None:
        clock, bus = Clock(), RecordingBus()
        writer = LastSeenWriter(RecordingDatabase(), clock)  # type: ignore[arg-type]
        traffic = TrafficPublisher(bus, node="n1", clock=clock, heartbeats=writer)  # type: ignore[arg-type]
        self.inbound(traffic, "Heartbeat")
        self.inbound(traffic, "DataTransfer")
        self.assertEqual(bus.published, ["ocpp.in.DataTransfer"])
        self.assertEqual(writer.coalescer.pending, {"CP1": 0.0})

    def test_published_without_a_writer(self) -> None:
        """``[ocpp] log_heartbeats = true``: published as always."""
        bus = RecordingBus()
        traffic = TrafficPublisher(bus, node="n1", clock=Clock())  # type: ignore[arg-type]
        self.inbound(traffic, "Heartbeat")
        self.assertEqual(bus.published, ["ocpp.in.Heartbeat"])
