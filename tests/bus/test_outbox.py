"""
The outbox (``ocppd.bus.outbox``) and its relay (``ocppd.bus.relay``), on
SQLite and on the real PostgreSQL: events staged in a transaction are
published once it commits, kept while the bus refuses them, published in
order once it takes them again, and never published for a rollback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import TestCase

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError
from ocppd.bus.outbox import Outbox
from ocppd.bus.relay import OutboxRelay
from ocppd.store import outbox as store
from ocppd.store import tables
from ocppd.store.database import Database
from tests.store.fixtures import make_postgres_database, make_sqlite_database

#: A reactor time: 2026-11-29T10:00:00Z.
START = 1_795_946_400.0


class FlakyBus:
    """An IBus publish that refuses while ``down`` and records what it took."""

    def __init__(self) -> None:
        self.down = False
        self.published: list[tuple[str, Envelope]] = []
        self.refused = 0

    def publish(self, routing_key: str, envelope: Envelope) -> Deferred[None]:
        if self.down:
            self.refused += 1
            return fail(BusError("broker down"))
        self.published.append((routing_key, envelope))
        return succeed(None)

    def numbers(self) -> list[int]:
        return [envelope.payload["n"] for _, envelope in self.published]


if TYPE_CHECKING:
    _Base = TestCase
else:
    _Base = object


class OutboxTestsMixin(_Base):
    """The same behaviour on every engine; ``make_database`` picks it."""

    def make_database(self) -> Database:
        raise NotImplementedError

    def setUp(self) -> None:
        self.database = self.make_database()
        self.clock = Clock()
        self.clock.advance(START)
        self.bus = FlakyBus()
        self.relay = self.make_relay("n1")
        self.outbox = Outbox(node="n1", clock=self.clock, relay=self.relay)
        self.warnings: list[dict[str, Any]] = []

        def observer(event: dict[str, Any]) -> None:
            if event.get("log_level") == LogLevel.warn and "outbox" in str(
                event.get("log_namespace", "")
            ) + str(event.get("log_format", "")):
                self.warnings.append(event)

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def make_relay(self, node: str) -> OutboxRelay:
        relay = OutboxRelay(
            self.database,
            self.bus,  # type: ignore[arg-type]
            node=node,
            clock=self.clock,
            batch=10,
            poll_interval=1e9,
        )
        relay.start()
        self.addCleanup(relay.stop)
        return relay

    def stage(self, *numbers: int, outbox: Outbox | None = None) -> Deferred[Any]:
        """Stage one event per number in one transaction and flush."""
        staging = outbox or self.outbox

        def change(conn: Any) -> None:
            for n in numbers:
                staging.stage(conn, "cms.tag.created", {"n": n})

        return self.database.run(change).addCallback(lambda _: staging.flush())

    def pending(self) -> int:
        return int(self.database.run_sync(store.count_events))

    @inlineCallbacks
    def test_published_once_committed_and_forgotten(self) -> Any:
        """A flush publishes what was staged, in order, then the rows are gone."""
        yield self.stage(1, 2, 3)
        self.assertEqual(self.bus.numbers(), [1, 2, 3])
        self.assertEqual(self.pending(), 0)
        envelope = self.bus.published[0][1]
        self.assertEqual((envelope.type, envelope.node), ("cms.tag.created", "n1"))

    @inlineCallbacks
    def test_rolled_back_change_announces_nothing(self) -> Any:
        """Events staged in a transaction that rolls back are never published."""

        def change(conn: Any) -> None:
            self.outbox.stage(conn, "cms.tag.created", {"n": 1})
            raise ValueError("the change failed")

        with self.assertRaises(ValueError):
            yield self.database.run(change)
        yield self.outbox.flush()
        self.assertEqual((self.bus.published, self.pending()), ([], 0))

    @inlineCallbacks
    def test_kept_while_the_bus_refuses_then_published_in_order(self) -> Any:
        """
        While the bus refuses, a flush fires at once (nobody waits on the
        broker), the events stay in the table, and the relay retries with
        back-off; once the bus takes them they go out in staging order, each
        once, with the envelope id it was staged with.
        """
        self.bus.down = True
        yield self.stage(1, 2)
        yield self.stage(3)  # backing off: returns at once
        self.assertEqual(self.pending(), 3)
        ids = [
            Envelope.from_bytes(row.envelope.encode()).id
            for row in self.database.run_sync(
                store.pending_events, node="n1", adopt_before=self.relay_now(), limit=10
            )
        ]
        # Twenty back-offs: the delays grow to 30 s and stay there.
        for _ in range(20):
            self.clock.advance(30)
            yield self.relay_idle()
        self.assertEqual(self.pending(), 3)
        # At most one attempt (of the three) per back-off.
        self.assertLessEqual(self.bus.refused, 3 * 22)
        self.bus.down = False
        self.clock.advance(30)
        yield self.relay_idle()
        self.assertEqual(self.bus.numbers(), [1, 2, 3])
        self.assertEqual([e.id for _, e in self.bus.published], ids)
        self.assertEqual(self.pending(), 0)
        # One warning when it started, one a minute at most while it lasted.
        self.assertLessEqual(len(self.warnings), 1 + 20 * 30 // 60)

    @inlineCallbacks
    def test_more_than_a_batch(self) -> Any:
        """Twenty-five events with batches of ten: all, in order."""
        yield self.stage(*range(25))
        # The flush fired after the first batch: nobody waits for a backlog.
        self.assertEqual(self.bus.numbers()[:10], list(range(10)))
        yield self.relay_idle()
        self.assertEqual(self.bus.numbers(), list(range(25)))

    @inlineCallbacks
    def test_other_nodes_rows_adopted_only_when_old(self) -> Any:
        """
        A node publishes its own rows; another node's only once they are older
        than ``adopt_after`` (that node is gone), so a live node's events are
        not published twice by every node.
        """
        other = Outbox(node="n2", clock=self.clock, relay=None)
        yield self.stage(7, outbox=other)
        yield self.relay.wake()
        self.assertEqual(self.bus.numbers(), [])
        self.clock.advance(self.relay.adopt_after + 1)
        yield self.relay.wake()
        self.assertEqual(self.bus.numbers(), [7])

    @inlineCallbacks
    def test_published_again_with_the_same_id_when_not_forgotten(self) -> Any:
        """
        The relay died between the bus's confirm and the deletion: the row is
        published again with the same envelope id (consumers deduplicate).
        """
        remove = store.remove_events
        calls = []

        def failing(conn: Any, ids: list[int]) -> int:
            calls.append(ids)
            if len(calls) == 1:
                raise RuntimeError("database went away")
            return remove(conn, ids)

        self.patch(store, "remove_events", failing)
        yield self.stage(1)
        self.flushLoggedErrors(RuntimeError)
        self.clock.advance(1)
        yield self.relay_idle()
        first, again = self.bus.published
        self.assertEqual(first[1].id, again[1].id)
        self.assertEqual(self.pending(), 0)

    @inlineCallbacks
    def test_store_outage_logs_one_traceback(self) -> Any:
        """
        While the store is away every pass of the relay fails: the first
        failure is logged with its traceback, the others only counted.
        """

        def failing(conn: Any, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("database went away")

        self.patch(store, "pending_events", failing)
        for _ in range(5):
            yield self.relay.wake()
            self.clock.advance(self.relay.retry_delays[-1])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_table_is_in_the_schema(self) -> None:
        self.assertIn("outbox", tables.metadata.tables)

    def relay_now(self) -> Any:
        from ocppd.timeutil import from_timestamp

        return from_timestamp(self.clock.seconds() + 1)

    def relay_idle(self) -> Deferred[None]:
        """Fires once a pass under way (if any) has ended."""
        running = self.relay._pass
        return running if running is not None else succeed(None)


class SQLiteOutboxTests(OutboxTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)


class PostgresOutboxTests(OutboxTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_postgres_database(self)
