"""
A charger's CALL is answered within [ocpp] answer_timeout whatever the store
or the bus do (issue 14, item 7): a frozen database or an unconfirmed publish
gives an InternalError the charger resends, and Heartbeat never waits on
either. Clock-driven, with a store and a bus that never answer.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.bus.outcome import Outcome, outcome_of
from ocppd.ocpp.connection import ChargerConnection
from ocppd.ocpp.frames import Call
from ocppd.ocpp.handlers import CentralSystemHandlers
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.ocpp.tagcache import IdTagCache
from ocppd.store.database import Database
from tests.ocpp.fakes import FakeTransport, RecordingTraffic
from tests.store.fixtures import make_sqlite_database

SCHEMAS = SchemaRegistry.load()
TIMEOUT = 10.0
START = {"connectorId": 1, "idTag": "TAG1", "meterStart": 0, "timestamp": "2026-11-29T11:00:00Z"}


class FrozenDatabase:
    """A store that never answers (its calls are remembered, with their cancellation)."""

    def __init__(self) -> None:
        self.calls: list[Deferred[Any]] = []
        self.cancelled: list[Deferred[Any]] = []

    def run(self, func: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred(self.cancelled.append)
        self.calls.append(d)
        return d


class FrozenTraffic(RecordingTraffic):
    """A bus that takes messages but never confirms those the answer waits for."""

    def __init__(self) -> None:
        super().__init__()
        self.unconfirmed: list[Deferred[None]] = []

    def inbound(
        self, charge_point_id: str, call: Call, response: dict[str, Any], *, wait: bool
    ) -> Outcome | None:
        self.events.append(("inbound", (call.action, response, wait)))
        if not wait:
            return None
        d: Deferred[None] = Deferred()
        self.unconfirmed.append(d)
        return outcome_of(d)


def charger_connection(
    database: FrozenDatabase, traffic: Any, transport: FakeTransport, clock: Clock
) -> ChargerConnection:
    """Charger CP1's connection to handlers that answer within ``TIMEOUT``."""
    handlers = CentralSystemHandlers(
        database=database,  # type: ignore[arg-type]
        tags=IdTagCache(database, clock, ttl=60),  # type: ignore[arg-type]
        traffic=traffic,
        clock=clock,
        heartbeat_interval=300,
        answer_timeout=TIMEOUT,
    )
    return ChargerConnection(
        "CP1",
        connection_id="c1",
        registration_status="Accepted",
        transport=transport,
        handler=handlers,
        schemas=SCHEMAS,
        traffic=traffic,
        clock=clock,
        call_timeout=30,
    )


class AnswerTimeoutTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.database = FrozenDatabase()
        self.traffic = FrozenTraffic()
        self.transport = FakeTransport()
        self.connection = charger_connection(
            self.database, self.traffic, self.transport, self.clock
        )

    def send(self, unique_id: str, action: str, payload: dict[str, Any]) -> None:
        self.connection.text_received(json.dumps([2, unique_id, action, payload]))

    def test_frozen_store_start_answered_internal_error_at_the_bound(self) -> None:
        """A StartTransaction stuck on the store: nothing until the bound, then InternalError."""
        self.send("s1", "StartTransaction", START)
        self.clock.advance(TIMEOUT - 0.01)
        self.assertEqual(self.transport.sent, [])
        self.clock.advance(0.01)
        self.assertEqual(self.transport.frames(), [[4, "s1", "InternalError", "try again", {}]])
        # The store call was cancelled (a queued one then never runs).
        self.assertEqual(self.database.cancelled, self.database.calls)

    def test_next_call_served_after_a_timeout(self) -> None:
        """The connection is not stuck behind the stalled call: the next CALL is handled."""
        self.send("s1", "StartTransaction", START)
        self.send("h1", "Heartbeat", {})
        self.clock.advance(TIMEOUT)
        frames = self.transport.frames()
        self.assertEqual(frames[0][:3], [4, "s1", "InternalError"])
        self.assertEqual(frames[1][:2], [3, "h1"])

    def test_unconfirmed_publish_answered_internal_error_at_the_bound(self) -> None:
        """A MeterValues whose publish the broker never confirms: InternalError at the bound."""
        reading = {"timestamp": "2026-11-29T11:00:00Z", "sampledValue": [{"value": "1"}]}
        self.send("m1", "MeterValues", {"connectorId": 1, "meterValue": [reading]})
        self.clock.advance(TIMEOUT - 0.01)
        self.assertEqual(self.transport.sent, [])
        self.clock.advance(0.01)
        self.assertEqual(self.transport.frames(), [[4, "m1", "InternalError", "try again", {}]])
        self.assertTrue(self.traffic.unconfirmed[0].called)
        # The confirm arriving late is dropped, not an error.
        self.traffic.unconfirmed[0].callback(None)

    def test_heartbeat_independent_of_store_and_bus(self) -> None:
        """With the store and the bus both frozen a Heartbeat is answered at once."""
        self.send("h1", "Heartbeat", {})
        self.assertEqual(self.transport.last()[:2], [3, "h1"])
        self.assertEqual(self.database.calls, [])

    def test_late_answer_before_the_bound_is_sent(self) -> None:
        """A slow store and bus that answer within the bound are not cut short."""
        self.send("b1", "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        self.clock.advance(TIMEOUT / 2)
        self.database.calls[0].callback({})  # the batched lookup found no record: Rejected
        # A BootNotification is answered once the bus has it (docs/bus.md).
        self.traffic.unconfirmed[0].callback(None)
        self.assertEqual(self.transport.last()[:2], [3, "b1"])
        self.assertEqual(self.transport.last()[2]["status"], "Rejected")
        self.clock.advance(TIMEOUT)
        self.assertEqual(len(self.transport.sent), 1)


class DatabaseCancelTests(TestCase):
    """Database.run's cancellation, on the real (one-thread) SQLite pool."""

    def setUp(self) -> None:
        self.database: Database = make_sqlite_database(self)

    @inlineCallbacks
    def test_cancelled_while_queued_never_runs(self) -> Any:
        """A call cancelled before a thread took it fails at once and never runs."""
        release = threading.Event()
        ran: list[str] = []
        busy = self.database.run(lambda conn: release.wait(10))
        queued = self.database.run(lambda conn: ran.append("queued"))
        queued.cancel()
        self.failureResultOf(queued, CancelledError)
        release.set()
        yield busy
        yield self.database.run(lambda conn: None)  # the pool has moved past it
        self.assertEqual(ran, [])

    @inlineCallbacks
    def test_cancelled_while_running_commits_and_drops_the_result(self) -> Any:
        """A call cancelled while it runs finishes (its commit stands); no late error."""
        started, release = threading.Event(), threading.Event()

        def slow(conn: Any) -> str:
            started.set()
            release.wait(10)
            conn.exec_driver_sql("CREATE TABLE late (x INTEGER)")
            return "done"

        running = self.database.run(slow)
        started.wait(10)
        running.cancel()
        self.failureResultOf(running, CancelledError)
        release.set()
        tables = yield self.database.run(
            lambda conn: conn.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE name = 'late'"
            ).scalar()
        )
        self.assertEqual(tables, "late")


class FlowControlAnswerTests(SynchronousTestCase):
    """
    On the embedded bus a MeterValues is answered only while the processor's
    backlog is not above ``flow_limit`` (``MemoryBus`` flow control), and
    still within the answer's bound: a charger that waited too long gets an
    InternalError, and its message stays queued for the processor.
    """

    LIMIT = 2

    def setUp(self) -> None:
        from ocppd.bus.memory import MemoryBus
        from ocppd.bus.topology import default_topology
        from ocppd.ocpp.traffic import TrafficPublisher

        self.clock = Clock()
        topology = default_topology()
        self.bus = MemoryBus(topology, reactor=self.clock, flow_limit=self.LIMIT)
        self.bus.startService()
        (self.queue,) = [q.name for q in topology.queues if q.name.endswith("processor")]
        #: The processor's deliveries it has not finished: (uniqueId, Deferred).
        self.held: list[tuple[str, Deferred[None]]] = []

        def handler(delivery: Any) -> Deferred[None]:
            d: Deferred[None] = Deferred()
            self.held.append((delivery.envelope.payload["uniqueId"], d))
            return d

        self.successResultOf(self.bus.consume(self.queue, handler))
        database = FrozenDatabase()
        traffic = TrafficPublisher(self.bus, node="n1", clock=self.clock)
        self.transport = FakeTransport()
        self.connection = charger_connection(database, traffic, self.transport, self.clock)

    def meter_values(self, count: int) -> None:
        for n in range(count):
            reading = {"timestamp": "2026-11-29T11:00:00Z", "sampledValue": [{"value": str(n)}]}
            call = [2, f"m{n}", "MeterValues", {"connectorId": 1, "meterValue": [reading]}]
            self.connection.text_received(json.dumps(call))
        self.clock.advance(0)

    def answered(self) -> list[list[Any]]:
        return [frame[:2] for frame in self.transport.frames()]

    def finish(self) -> None:
        self.held.pop(0)[1].callback(None)
        self.clock.advance(0)

    def test_answers_wait_for_the_processor(self) -> None:
        """Answers beyond the backlog's limit go out, in order, as the processor takes messages."""
        self.meter_values(5)
        # The processor holds m0; m1 and m2 are ready (the limit), m3 and m4 above it.
        self.assertEqual(self.answered(), [[3, "m0"], [3, "m1"], [3, "m2"]])
        self.finish()
        self.assertEqual(self.answered(), [[3, "m0"], [3, "m1"], [3, "m2"], [3, "m3"]])
        self.finish()
        self.assertEqual([m for _, m in self.answered()], ["m0", "m1", "m2", "m3", "m4"])
        self.assertEqual(self.bus.stats.flow_waited, 3)

    def test_waiting_too_long_is_an_internal_error_and_loses_nothing(self) -> None:
        """
        Past ``answer_timeout`` a waiting answer is an InternalError (the
        charger resends); its message was accepted and reaches the processor.
        """
        self.meter_values(5)
        self.clock.advance(TIMEOUT)
        frames = self.transport.frames()
        self.assertEqual([f[:2] for f in frames[:3]], [[3, "m0"], [3, "m1"], [3, "m2"]])
        self.assertEqual(frames[3:], [[4, "m3", "InternalError", "try again", {}]])
        # The connection handles m4 once m3 is answered: it waits its own bound.
        self.clock.advance(TIMEOUT)
        self.assertEqual(self.transport.frames()[4], [4, "m4", "InternalError", "try again", {}])
        for _ in range(5):
            self.finish()
        self.assertEqual(self.held, [])
        self.assertEqual(self.bus.queue_length(self.queue), 0)
        self.assertEqual(len(self.transport.frames()), 5)


class SlowJournalAnswerTests(SynchronousTestCase):
    """
    On the embedded bus, a MeterValues whose journal write outlasts the
    answer's bound is refused with InternalError (the charger resends), and
    its message still reaches the processor once written: the deadline
    cancels the answer, not the bus's own bookkeeping of the write.
    """

    def test_cut_before_its_write_still_reaches_the_processor(self) -> None:
        from ocppd.bus.memory import MemoryBus
        from ocppd.bus.topology import default_topology
        from ocppd.ocpp.traffic import TrafficPublisher
        from tests.bus.test_journal import ControlledJournal

        clock = Clock()
        topology = default_topology()
        journal = ControlledJournal()
        bus = MemoryBus(topology, reactor=clock, journal=journal)
        bus.startService()
        (queue,) = [q.name for q in topology.queues if q.name.endswith("processor")]
        delivered: list[str] = []
        self.successResultOf(
            bus.consume(queue, lambda d: delivered.append(d.envelope.payload["uniqueId"]))
        )
        traffic = TrafficPublisher(bus, node="n1", clock=clock)
        transport = FakeTransport()
        connection = charger_connection(FrozenDatabase(), traffic, transport, clock)
        reading = {"timestamp": "2026-11-29T11:00:00Z", "sampledValue": [{"value": "1"}]}
        connection.text_received(
            json.dumps([2, "m1", "MeterValues", {"connectorId": 1, "meterValue": [reading]}])
        )
        clock.advance(TIMEOUT)
        self.assertEqual(transport.frames(), [[4, "m1", "InternalError", "try again", {}]])
        journal.writes[0].callback(None)
        clock.advance(0)
        self.assertEqual(delivered, ["m1"])
        self.assertEqual(len(transport.frames()), 1)
