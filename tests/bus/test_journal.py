"""
The embedded bus's journal (``ocppd.bus.journal``, ``ocppd.store.journal``):
the group commit, what the bus writes and settles, and the replay at start,
on the in-memory journal and on the store (SQLite and PostgreSQL); and the
IBus contract of a ``MemoryBus`` journaling to the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from twisted.internet import reactor
from twisted.internet.defer import (
    CancelledError,
    Deferred,
    gatherResults,
    inlineCallbacks,
    succeed,
)
from twisted.internet.task import Clock, deferLater
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError, Delivery, IBus
from ocppd.bus.journal import (
    DeadMark,
    GroupCommit,
    InMemoryJournal,
    Journal,
    JournalBatch,
    JournalRecord,
)
from ocppd.bus.memory import MemoryBus
from ocppd.bus.topology import Topology, make_topology
from ocppd.store.database import Database
from ocppd.store.journal import (
    _DELETE_RANGE,
    _INSERT_LIVE,
    _SQLITE_DELETE_RANGE,
    _SQLITE_INSERT_LIVE,
    StoreJournal,
    seq_ranges,
)
from ocppd.store.tables import bus_journal
from tests.bus.contract import BusContractTests, HandlerError
from tests.store.fixtures import make_postgres_database, make_sqlite_database


def envelope(key: str, n: int = 0) -> Envelope:
    return Envelope.create(key, {"n": n}, node="node-1", charge_point_id="CP-1")


def record(seq: int, queue: str = "q") -> JournalRecord:
    return JournalRecord(
        seq=seq, queue=queue, routing_key="session.x", message_id=f"m{seq}", body=b"{}"
    )


class ControlledJournal:
    """A journal whose writes finish when the test says so."""

    def __init__(self) -> None:
        self.batches: list[JournalBatch] = []
        self.writes: list[Deferred[None]] = []

    def load(self) -> list[JournalRecord]:
        return []

    def write(self, batch: JournalBatch) -> Deferred[None]:
        self.batches.append(batch)
        d: Deferred[None] = Deferred()
        self.writes.append(d)
        return d


class GroupCommitTests(SynchronousTestCase):
    def test_idle_write_goes_at_once_then_batches(self) -> None:
        """
        A record on an idle journal is written at once; what arrives while that
        write is in flight goes in the next write, all together.
        """
        journal = ControlledJournal()
        commit = GroupCommit(journal)
        first = commit.add([record(1)])
        self.assertEqual(len(journal.batches), 1)
        later = [commit.add([record(n)]) for n in (2, 3, 4)]
        commit.remove(1)
        self.assertEqual(len(journal.batches), 1)
        self.assertNoResult(first)
        journal.writes[0].callback(None)
        self.successResultOf(first)
        self.assertEqual(len(journal.batches), 2)
        self.assertEqual([r.seq for r in journal.batches[1].added], [2, 3, 4])
        self.assertEqual(journal.batches[1].removed, {1})
        for d in later:
            self.assertNoResult(d)
        journal.writes[1].callback(None)
        for d in later:
            self.successResultOf(d)
        self.assertFalse(commit.busy)
        self.successResultOf(commit.when_idle())

    def test_settlements_of_a_turn_go_together(self) -> None:
        """
        With a clock, acks wait for the end of the reactor turn: a consumer's
        batch of acks is one write, not a write of the first and one of the rest.
        A publish meanwhile is written at once and takes them along.
        """
        journal = ControlledJournal()
        clock = Clock()
        commit = GroupCommit(journal, clock)
        for seq in (1, 2, 3):
            commit.remove(seq)
        self.assertEqual(journal.batches, [])
        clock.advance(0)
        self.assertEqual([b.removed for b in journal.batches], [{1, 2, 3}])
        journal.writes[0].callback(None)
        commit.remove(4)
        commit.mark(5, DeadMark(5, "E: x", "2026-12-07T00:00:00.000Z"))
        published = commit.add([record(6)])
        self.assertEqual(len(journal.batches), 2)
        self.assertEqual(
            (journal.batches[1].removed, set(journal.batches[1].marked), journal.batches[1].added),
            ({4}, {5}, [record(6)]),
        )
        journal.writes[1].callback(None)
        self.successResultOf(published)
        clock.advance(0)  # nothing left for the turn's own write
        self.assertEqual(len(journal.batches), 2)
        self.assertFalse(commit.busy)

    def test_add_then_calls_each_waiter_one_that_raises_too(self) -> None:
        """
        ``add_then``'s functions get the write's outcome; one that raises is
        logged and does not keep the others of its write waiting.
        """
        journal = ControlledJournal()
        commit = GroupCommit(journal)
        outcomes: list[object] = []

        def broken(result: object) -> None:
            raise RuntimeError("a waiter's bug")

        commit.add_then([record(1)], outcomes.append)
        commit.add_then([record(2)], broken)
        commit.add_then([record(3)], outcomes.append)
        journal.writes[0].callback(None)
        self.assertEqual(outcomes, [None])
        journal.writes[1].errback(ValueError("disk full"))
        self.assertEqual(len(outcomes), 2)
        self.assertIsInstance(outcomes[1], Failure)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.flushLoggedErrors(ValueError)
        self.assertFalse(commit.busy)

    def test_failed_write_fails_its_records_keeps_settlements(self) -> None:
        """
        A failed write fails the publishes it carried; its settlements are kept
        and written with the next change.
        """
        journal = ControlledJournal()
        commit = GroupCommit(journal)
        commit.remove(7)
        commit.mark(8, DeadMark(5, "E: x", "2026-12-07T00:00:00.000Z"))
        self.assertEqual(len(journal.batches), 1)
        d = commit.add([record(9)])
        journal.writes[0].callback(None)
        journal.writes[1].errback(RuntimeError("database gone"))
        self.failureResultOf(d, RuntimeError)
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(len(journal.batches), 2)
        commit.remove(9)
        self.assertEqual(len(journal.batches), 3)
        self.assertEqual(journal.batches[2].removed, {9})


class InMemoryJournalBusTests(SynchronousTestCase):
    """What the bus journals, on a fake clock and the in-memory journal."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.topology = make_topology(
            [("work", ["session.#"]), ("other", ["session.started"])], prefix="t"
        )

    def make(self, journal: Journal, **kwargs: Any) -> MemoryBus:
        bus = MemoryBus(self.topology, reactor=self.clock, journal=journal, **kwargs)
        bus.startService()
        return bus

    def test_record_per_durable_queue_until_acked(self) -> None:
        """One record per bound queue; each goes when its queue acknowledges."""
        journal = InMemoryJournal()
        bus = self.make(journal)
        self.successResultOf(bus.publish("session.started", envelope("session.started")))
        self.assertEqual(sorted(r.queue for r in journal.records.values()), ["other", "work"])
        self.successResultOf(bus.consume("work", lambda d: None))
        self.clock.advance(0)
        self.assertEqual([r.queue for r in journal.records.values()], ["other"])

    def test_ephemeral_queue_not_journaled(self) -> None:
        """Pushes (ephemeral queues) are delivered but never written to the journal."""
        base = make_topology([("push", ["session.#"])], prefix="t")
        topology = attrs.evolve(
            base, queues=tuple(attrs.evolve(q, ephemeral=True) for q in base.queues)
        )
        journal = ControlledJournal()
        bus = MemoryBus(topology, reactor=self.clock, journal=journal)
        bus.startService()
        got: list[Delivery] = []
        self.successResultOf(bus.consume("push", got.append))
        self.successResultOf(bus.publish("session.x", envelope("session.x")))
        self.clock.advance(0)
        self.assertEqual(len(got), 1)
        self.assertEqual(journal.batches, [])

    def test_publish_fires_once_durable(self) -> None:
        """``publish`` fires only once the journal write is done; nothing is delivered before."""
        journal = ControlledJournal()
        bus = self.make(journal)
        got: list[Delivery] = []
        self.successResultOf(bus.consume("work", got.append))
        d = bus.publish("session.updated", envelope("session.updated"))
        self.clock.advance(0)
        self.assertNoResult(d)
        self.assertEqual(got, [])
        journal.writes[0].callback(None)
        self.successResultOf(d)
        self.clock.advance(0)
        self.assertEqual(len(got), 1)

    def test_stop_drains_what_is_being_journaled(self) -> None:
        """
        A stop waits for a message whose journal write is in flight: once
        written, it is delivered before the drain ends (a disconnect event
        published while the daemon stops is stored).
        """
        journal = ControlledJournal()
        bus = self.make(journal, drain_timeout=10)
        got: list[Delivery] = []
        self.successResultOf(bus.consume("work", got.append))
        published = bus.publish("session.updated", envelope("session.updated"))
        stopped = bus.stopService()
        self.clock.advance(1)
        self.assertNoResult(stopped)
        journal.writes[0].callback(None)
        self.successResultOf(published)
        self.clock.advance(0)
        self.assertEqual(len(got), 1)
        # The settlement goes to the journal before the stop is over.
        self.assertNoResult(stopped)
        self.assertEqual(journal.batches[1].removed, {1})
        journal.writes[1].callback(None)
        self.successResultOf(stopped)

    def test_publish_cancelled_before_its_write_is_still_queued(self) -> None:
        """
        A publisher that stops waiting before the journal write ends (a
        charger's answer cut at its deadline) loses nothing: once written, the
        message is queued and delivered, and counted as published. (Its
        bookkeeping once ran on the publisher's Deferred: cancelled, the
        message stayed in the journal and out of its queue until a restart.)
        """
        journal = ControlledJournal()
        bus = self.make(journal)
        got: list[Delivery] = []
        self.successResultOf(bus.consume("work", got.append))
        d = bus.publish("session.updated", envelope("session.updated"), flow=True)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        journal.writes[0].callback(None)
        self.clock.advance(0)
        self.assertEqual(len(got), 1)
        self.assertEqual((bus.stats.publish_confirmed, bus.stats.publish_failed), (1, 0))

    def test_failed_journal_write_refuses_publish(self) -> None:
        """A journal that cannot write makes ``publish`` fail with BusError."""
        journal = ControlledJournal()
        bus = self.make(journal)
        d = bus.publish("session.updated", envelope("session.updated"))
        journal.writes[0].errback(RuntimeError("disk full"))
        self.failureResultOf(d, BusError)
        self.flushLoggedErrors(RuntimeError)
        self.assertEqual(bus.queue_length("work"), 0)

    def test_dead_letters_marked_replayed_discarded(self) -> None:
        """Dead letters are marked in the journal, unmarked on replay, removed on discard."""
        journal = InMemoryJournal()
        bus = self.make(journal, retry_delays=(1,), max_attempts=1)

        def fail(delivery: Delivery) -> None:
            raise HandlerError("down")

        consumer = self.successResultOf(bus.consume("work", fail))
        self.successResultOf(bus.publish("session.updated", envelope("session.updated")))
        self.clock.advance(0)
        self.flushLoggedErrors(HandlerError)
        [kept] = journal.records.values()
        assert kept.dead is not None
        self.assertEqual((kept.dead.attempts, kept.dead.reason), (1, "HandlerError: down"))
        self.successResultOf(consumer.stop())
        self.assertEqual(len(self.successResultOf(bus.replay_dead_letters("work")).replayed), 1)
        self.clock.advance(0)  # settlements are written at the end of the turn
        [kept] = journal.records.values()
        self.assertIsNone(kept.dead)
        self.successResultOf(bus.consume("work", fail))
        self.clock.advance(0)
        self.flushLoggedErrors(HandlerError)
        self.assertEqual(self.successResultOf(bus.discard_dead_letters("work")), 1)
        self.clock.advance(0)
        self.assertEqual(journal.records, {})

    def test_restart_replays_in_order_before_new_traffic(self) -> None:
        """
        A new bus on the journal of one that died delivers what was not acked,
        in publication order, before what is published after its start; its
        dead letters are dead letters again.
        """
        journal = InMemoryJournal()
        old = self.make(journal, max_attempts=1)

        def fail(delivery: Delivery) -> None:
            raise HandlerError("poison")

        poison = self.successResultOf(old.consume("other", fail))
        sent = [envelope("session.updated", n) for n in range(3)]
        for e in sent:
            self.successResultOf(old.publish("session.updated", e))
        self.successResultOf(old.publish("session.started", envelope("session.started", 9)))
        self.clock.advance(0)
        self.flushLoggedErrors(HandlerError)
        self.successResultOf(poison.stop())
        # The old bus "dies": never stopped, its memory gone.
        new = self.make(journal)
        got: list[Delivery] = []
        self.successResultOf(new.consume("work", got.append))
        later = envelope("session.updated", 99)
        self.successResultOf(new.publish("session.updated", later))
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(
            [d.envelope.payload["n"] for d in got], [0, 1, 2, 9, 99], "replay order, then new"
        )
        self.assertEqual([d.envelope.id for d in got[:3]], [e.id for e in sent])
        [letter] = self.successResultOf(new.dead_letters("other"))
        self.assertEqual(letter.reason, "HandlerError: poison")
        self.assertEqual(letter.envelope.payload, {"n": 9})
        self.assertEqual([r.queue for r in journal.records.values()], ["other"])


class StoreJournalMixin:
    """The journal on a real database; subclasses say which (``make_database``)."""

    def make_database(self) -> Database:
        raise NotImplementedError

    @property
    def _case(self) -> TestCase:
        assert isinstance(self, TestCase)
        return self

    @inlineCallbacks
    def test_write_mark_remove_load(self) -> Any:
        """What is written is loaded by seq; marks are kept and undone; removals remove."""
        database = self.make_database()
        journal = StoreJournal(database, "node-a")
        other = StoreJournal(database, "node-b")
        mark = DeadMark(attempts=5, reason="E: ⚡ bad", failed_at="2026-12-07T01:02:03.456Z")
        body = envelope("session.x").to_bytes()
        yield journal.write(
            JournalBatch(added=[attrs_record(3, body), attrs_record(1, body), record(2)])
        )
        yield other.write(JournalBatch(added=[record(1)]))
        yield journal.write(JournalBatch(marked={3: mark, 2: mark}, removed={1}))
        yield journal.write(JournalBatch(marked={2: None}))
        loaded = journal.load()
        self._case.assertEqual([r.seq for r in loaded], [2, 3])
        self._case.assertEqual(loaded[0], record(2))
        self._case.assertEqual(loaded[1].dead, mark)
        self._case.assertEqual(loaded[1].body, body)
        self._case.assertEqual([r.seq for r in other.load()], [1])

    @inlineCallbacks
    def test_live_record_stored_as_blob_without_dead_mark(self) -> Any:
        """
        A publish's record (written without its dead-letter columns, its body
        handed to SQLite as a bytearray) is the body as a binary value, the
        dead-letter columns NULL: what ``load`` and a dead mark read back.
        """
        database = self.make_database()
        journal = StoreJournal(database, "node-a")
        body = envelope("session.x").to_bytes()
        yield journal.write(JournalBatch(added=[attrs_record(1, body)]))
        t = bus_journal.c

        def stored(conn: Any) -> Any:
            return conn.execute(
                sa.select(t.body, t.dead_attempts, t.dead_reason, t.dead_failed_at)
            ).one()

        row = yield database.run(stored)
        self._case.assertEqual(tuple(row), (body, None, None, None))
        self._case.assertIsInstance(row.body, bytes)
        if database.dialect == "sqlite":
            kind = yield database.run(
                lambda conn: conn.exec_driver_sql("SELECT typeof(body) FROM bus_journal").scalar()
            )
            self._case.assertEqual(kind, "blob")

    @inlineCallbacks
    def test_removals_in_runs_remove_only_theirs(self) -> Any:
        """
        Settled seqs go in runs of consecutive numbers (one range each): the
        seqs between runs stay, and so do another node's with the same seqs.
        """
        database = self.make_database()
        journal = StoreJournal(database, "node-a")
        other = StoreJournal(database, "node-b")
        yield journal.write(JournalBatch(added=[record(seq) for seq in range(1, 13)]))
        yield other.write(JournalBatch(added=[record(seq) for seq in range(1, 13)]))
        yield journal.write(JournalBatch(removed={1, 2, 3, 5, 7, 8, 12}))
        self._case.assertEqual([r.seq for r in journal.load()], [4, 6, 9, 10, 11])
        self._case.assertEqual([r.seq for r in other.load()], list(range(1, 13)))

    @inlineCallbacks
    def test_bus_replays_after_crash(self) -> Any:
        """
        A bus whose process died (never stopped) leaves its unacknowledged
        messages in the store; a new bus delivers them first, in order, and
        the journal empties once they are acknowledged.
        """
        database = self.make_database()
        topology = make_topology([("work", ["session.#"])], prefix="t")
        old = MemoryBus(topology, reactor=reactor, journal=StoreJournal(database, "n"))
        old.startService()
        sent = [envelope("session.updated", n) for n in range(20)]
        for e in sent:
            yield old.publish("session.updated", e)
        self._case.assertEqual(len(StoreJournal(database, "n").load()), 20)
        new = MemoryBus(topology, reactor=reactor, journal=StoreJournal(database, "n"))
        new.startService()
        self._case.addCleanup(new.stopService)
        got: list[Delivery] = []
        yield new.consume("work", got.append)
        later = envelope("session.updated", 99)
        yield new.publish("session.updated", later)
        while len(got) < 21:
            yield deferLater(reactor, 0.01)
        self._case.assertEqual([d.envelope.id for d in got], [e.id for e in [*sent, later]])
        yield new.stopService()
        self._case.assertEqual(StoreJournal(database, "n").load(), [])

    @inlineCallbacks
    def test_dead_letters_survive_restart(self) -> Any:
        """A dead letter is a dead letter again after a restart, and can be replayed then."""
        database = self.make_database()
        topology = make_topology([("work", ["session.#"])], prefix="t")
        old = MemoryBus(
            topology, reactor=reactor, max_attempts=1, journal=StoreJournal(database, "n")
        )
        old.startService()

        def fail(delivery: Delivery) -> None:
            raise HandlerError("poison")

        consumer = yield old.consume("work", fail)
        sent = envelope("session.updated", 7)
        yield old.publish("session.updated", sent)
        while not (yield old.dead_letters("work")):
            yield deferLater(reactor, 0.01)
        self._case.flushLoggedErrors(HandlerError)
        yield consumer.stop()
        yield old.stopService()
        new = MemoryBus(topology, reactor=reactor, journal=StoreJournal(database, "n"))
        new.startService()
        self._case.addCleanup(new.stopService)
        [letter] = yield new.dead_letters("work")
        self._case.assertEqual((letter.id, letter.reason), (sent.id, "HandlerError: poison"))
        got: list[Delivery] = []
        yield new.consume("work", got.append)
        self._case.assertEqual(len((yield new.replay_dead_letters("work")).replayed), 1)
        while not got:
            yield deferLater(reactor, 0.01)
        self._case.assertEqual(got[0].envelope.id, sent.id)
        yield new.stopService()
        self._case.assertEqual(StoreJournal(database, "n").load(), [])

    @inlineCallbacks
    def test_group_commit(self) -> Any:
        """Publishes that arrive while a write is in the database share the next one."""
        database = self.make_database()
        store = StoreJournal(database, "n")
        writes: list[int] = []

        class Counting:
            def load(self) -> list[JournalRecord]:
                return store.load()

            def write(self, batch: JournalBatch) -> Deferred[None]:
                writes.append(len(batch.added))
                return store.write(batch)

        topology = make_topology([("work", ["session.#"])], prefix="t")
        bus = MemoryBus(topology, reactor=reactor, journal=Counting())
        bus.startService()
        self._case.addCleanup(bus.stopService)
        yield gatherResults(
            [bus.publish("session.updated", envelope("session.updated", n)) for n in range(50)]
        )
        self._case.assertEqual(writes, [1, 49])
        self._case.assertEqual(len(store.load()), 50)


def attrs_record(seq: int, body: bytes) -> JournalRecord:
    return JournalRecord(
        seq=seq, queue="work", routing_key="ocpp.in.MeterValues", message_id=f"m{seq}", body=body
    )


class SeqRangesTests(SynchronousTestCase):
    def test_runs(self) -> None:
        """Consecutive seqs make one run; any order in, ascending runs out."""
        self.assertEqual(seq_ranges([]), [])
        self.assertEqual(seq_ranges({7}), [(7, 7)])
        self.assertEqual(seq_ranges([5, 3, 4, 9, 1, 10]), [(1, 1), (3, 5), (9, 10)])


class SQLiteStoreJournalTests(StoreJournalMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def test_held_statements_are_the_prepared_ones(self) -> None:
        """``write_journal_held``'s SQL is what the journal's statements compile to on SQLite."""
        dialect = sqlite_dialect.dialect()
        self.assertEqual(_INSERT_LIVE._for(dialect).sql, _SQLITE_INSERT_LIVE)
        self.assertEqual(_DELETE_RANGE._for(dialect).sql, _SQLITE_DELETE_RANGE)

    @inlineCallbacks
    def test_publishes_and_removals_written_on_the_held_connection(self) -> Any:
        """
        New records and removals go through ``Database.run_held`` (a batch
        that marks dead letters through SQLAlchemy): the same rows either way.
        """
        database = self.make_database()
        journal = StoreJournal(database, "node-a")
        held: list[Any] = []
        run_held = database.run_held

        def counted(func: Any, *args: Any) -> Any:
            held.append(func)
            return run_held(func, *args)

        database.run_held = counted  # type: ignore[method-assign]
        yield journal.write(JournalBatch(added=[record(1), record(2), record(3)]))
        yield journal.write(JournalBatch(added=[record(4)], removed={1, 2}))
        self.assertEqual(len(held), 2)
        self.assertEqual(journal.load(), [record(3), record(4)])
        mark = DeadMark(attempts=5, reason="E: x", failed_at="2026-12-07T01:02:03.456Z")
        yield journal.write(JournalBatch(marked={3: mark}))
        self.assertEqual(journal.load()[0].dead, mark)


class RunHeldTests(TestCase):
    """``Database.run_held``: a transaction on the DB-API connection the Database holds."""

    @inlineCallbacks
    def test_commits_or_rolls_back_on_one_connection(self) -> Any:
        database = make_sqlite_database(self)
        insert = "INSERT INTO bus_journal (node, seq, queue, routing_key, message_id, body) "
        insert += "VALUES ('n', ?, 'q', 'k', 'm', x'00')"
        connections: list[Any] = []

        def write(dbapi: Any, seq: int, fail: bool) -> int:
            connections.append(dbapi)
            self.assertTrue(dbapi.in_transaction)
            dbapi.execute(insert, (seq,))
            if fail:
                raise ValueError("after the insert")
            return seq

        self.assertEqual((yield database.run_held(write, 1, False)), 1)
        failed = database.run_held(write, 2, True)
        yield self.assertFailure(failed, ValueError)
        self.assertEqual((yield database.run_held(write, 3, False)), 3)
        seqs = yield database.run(
            lambda conn: [
                row[0] for row in conn.exec_driver_sql("SELECT seq FROM bus_journal ORDER BY seq")
            ]
        )
        self.assertEqual(seqs, [1, 3])
        self.assertEqual(len(set(map(id, connections))), 1)
        self.assertFalse(connections[0].in_transaction)

    def test_sqlite_only(self) -> None:
        database = Database.from_url("postgresql://nobody@localhost/none")
        self.assertRaises(ValueError, database.run_held, lambda dbapi: None)


class PostgresStoreJournalTests(StoreJournalMixin, TestCase):
    def make_database(self) -> Database:
        return make_postgres_database(self)


class _StoreBusContract(BusContractTests):
    def make_database(self) -> Database:
        raise NotImplementedError

    def make_bus(
        self, topology: Topology, retry_delays: Sequence[float], max_attempts: int
    ) -> Deferred[IBus]:
        bus = MemoryBus(
            topology,
            reactor=reactor,
            retry_delays=retry_delays,
            max_attempts=max_attempts,
            drain_timeout=2.0,
            journal=StoreJournal(self.make_database(), "node-1"),
        )
        bus.startService()
        self._case.addCleanup(bus.stopService)
        return succeed(bus)


class SQLiteJournalBusContractTests(_StoreBusContract, TestCase):
    """The IBus contract, against the embedded bus journaling to SQLite."""

    def make_database(self) -> Database:
        return make_sqlite_database(self)


class PostgresJournalBusContractTests(_StoreBusContract, TestCase):
    """The IBus contract, against the embedded bus journaling to PostgreSQL."""

    def make_database(self) -> Database:
        return make_postgres_database(self)
