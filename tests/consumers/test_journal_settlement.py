"""
Tests for the processor's acknowledgement on the embedded bus, at every crash
point: nothing unapplied is lost, and what is redelivered is stored once.

- PostgreSQL (the journal in the store): the processor removes its
  deliveries' journal records in the transaction of their batch
  (``MemoryBus.journal_settler``): nothing acknowledged is redelivered.
- SQLite (the journal in a file of its own, ``ocppd.store.journal``): the
  processor commits, then the bus removes the records in its journal's next
  group commit; a crash between the two replays the messages, which the
  processor's claims (``processed_messages``) make a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.trial.unittest import TestCase

from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.journal import JournalBatch, JournalRecord, JournalSettler
from ocppd.bus.memory import MemoryBus
from ocppd.consumers.processor import OcppProcessor
from ocppd.store import chargers, messages
from ocppd.store.database import Database
from ocppd.store.journal import (
    StoreJournal,
    load_journal,
)
from ocppd.store.tables import meter_values as meter_values_t
from tests.consumers.test_processor import REGISTERED, inbound
from tests.integration.daemon import poll
from tests.store.fixtures import make_journal_file, make_postgres_database, make_sqlite_database


class SimulatedCrash(Exception):
    """The process died here: the transaction in progress never commits."""


class SettlementsNeverWritten:
    """
    A ``StoreJournal`` in a process that dies right after its consumers'
    commits: what the bus publishes is written, its own settlements (acks,
    dead-letter marks) never are.
    """

    def __init__(self, journal: StoreJournal) -> None:
        self._journal = journal
        self.settlements: list[JournalBatch] = []

    def load(self) -> list[JournalRecord]:
        return self._journal.load()

    def write(self, batch: JournalBatch) -> Deferred[None]:
        if batch.added:
            return self._journal.write(JournalBatch(added=batch.added))
        self.settlements.append(batch)
        return Deferred()  # the process is gone before it is written

    def settler_for(self, database: object) -> JournalSettler | None:
        return self._journal.settler_for(database)


def meter_values(n: int) -> Envelope:
    return inbound(
        "MeterValues",
        {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": f"2026-11-29T11:{n:02}:00Z",
                    "sampledValue": [{"value": str(1000 + n)}],
                }
            ],
        },
    )


class JournalSettlementMixin:
    """The processor on the embedded bus journaling to ``journal_database``."""

    def make_database(self) -> Database:
        raise NotImplementedError

    def make_journal_database(self) -> Database:
        """Where the journal is: the store (PostgreSQL) or its journal file (SQLite)."""
        raise NotImplementedError

    @property
    def _case(self) -> TestCase:
        assert isinstance(self, TestCase)
        return self

    def setUp(self) -> None:
        self.database = self.make_database()
        self.journal_database = self.make_journal_database()
        self.database.run_sync(chargers.add_charge_point, "CP1", None, now=REGISTERED)

    @inlineCallbacks
    def start(self, journal: Any, envelopes: list[Envelope] = ()) -> Any:  # type: ignore[assignment]
        """
        A bus on ``journal`` with ``envelopes`` published, then a processor
        consuming it (stopped at the test's end): the bus and the processor.
        """
        bus = MemoryBus(topology.default_topology(), reactor=reactor, journal=journal)
        bus.startService()
        for envelope in envelopes:
            yield bus.publish(envelope.type, envelope)
        processor = OcppProcessor(bus, self.database, clock=reactor)
        self._case.addCleanup(processor.stop)
        yield processor.start(topology.PROCESSOR_QUEUE)
        return bus, processor

    def logged(self) -> Deferred[list[Any]]:
        return self.database.run(messages.list_messages, "CP1")

    def journaled(self) -> Deferred[list[str]]:
        """The message ids left in the journal (as a restart would load them)."""
        return self.journal_database.run(
            lambda conn: [record.message_id for record in load_journal(conn, "n")]
        )

    def stored(self) -> Deferred[int]:
        """How many meter samples the store holds."""
        return self.database.run(
            lambda conn: conn.execute(
                sa.select(sa.func.count()).select_from(meter_values_t)
            ).scalar()
        )

    @inlineCallbacks
    def test_crash_before_commit_loses_nothing(self) -> Any:
        """
        A batch whose transaction never commits takes its removals with it:
        after a restart every message is delivered again and stored once,
        and then the journal is empty.
        """
        run = self.database.run
        crashed = 0

        def crashing(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            def then_crash(conn: Any, *args: Any, **kwargs: Any) -> Any:
                nonlocal crashed
                func(conn, *args, **kwargs)
                crashed += 1
                raise SimulatedCrash()

            name = getattr(func, "__name__", "")
            applying = name in ("_apply_settling", "apply_batch")
            return run(then_crash if applying else func, *args, **kwargs)

        self.database.run = crashing  # type: ignore[method-assign]
        sent = [meter_values(n) for n in range(3)]
        bus, processor = yield self.start(StoreJournal(self.journal_database, "n"), sent)
        # The batch, then each message alone (only the culprit would be retried).
        yield poll(lambda: succeed(crashed), until=lambda count: count >= 1 + len(sent))
        yield processor.stop()
        yield bus.stopService()
        self._case.flushLoggedErrors(SimulatedCrash)
        del self.database.run
        self._case.assertEqual((yield self.journaled()), [envelope.id for envelope in sent])
        self._case.assertEqual((yield self.logged()), [])
        # The restart: the journal's records are delivered again.
        bus, processor = yield self.start(StoreJournal(self.journal_database, "n"))
        self._case.addCleanup(bus.stopService)
        yield poll(self.logged, until=lambda rows: len(rows) == 2 * len(sent))
        yield poll(self.journaled, until=lambda ids: ids == [])

    @inlineCallbacks
    def test_redelivery_after_commit_is_deduplicated(self) -> Any:
        """
        A message applied and committed whose record is still there (its
        handler failed after the commit, say) is delivered again, stored
        once, and its record then goes.
        """
        journal = StoreJournal(self.journal_database, "n")
        envelope = meter_values(7)
        record = JournalRecord(
            seq=1,
            queue=topology.PROCESSOR_QUEUE,
            routing_key=envelope.type,
            message_id=envelope.id,
            body=envelope.to_bytes(),
        )
        yield journal.write(JournalBatch(added=[record]))
        alone = OcppProcessor(None, self.database, clock=reactor)  # type: ignore[arg-type]
        yield self.database.run(alone.apply, envelope)
        bus, _ = yield self.start(journal)
        self._case.addCleanup(bus.stopService)
        yield poll(self.journaled, until=lambda ids: ids == [])
        self._case.assertEqual(len((yield self.logged())), 2)


class SQLiteJournalSettlementTests(JournalSettlementMixin, TestCase):
    """The journal in its own file, beside the store's."""

    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def make_journal_database(self) -> Database:
        return make_journal_file(self, self.database)

    def test_no_settler(self) -> None:
        """The processor's transactions cannot remove records of another file."""
        bus = MemoryBus(
            topology.default_topology(),
            reactor=reactor,
            journal=StoreJournal(self.journal_database, "n"),
        )
        self.assertIsNone(bus.journal_settler(self.database))

    @inlineCallbacks
    def test_crash_after_commit_replays_once(self) -> Any:
        """
        The processor committed, and the process died before the bus wrote
        the removals: the records are still there, a restart delivers the
        messages again, the processor's claims make that a no-op (nothing
        stored twice), and the records then go.
        """
        journal = SettlementsNeverWritten(StoreJournal(self.journal_database, "n"))
        sent = [meter_values(n) for n in range(5)]
        bus, processor = yield self.start(journal, sent)
        yield poll(self.logged, until=lambda rows: len(rows) == 2 * len(sent))
        # The bus's own acknowledgement: removals, lost with the process.
        yield poll(
            lambda: succeed(journal.settlements),
            until=lambda batches: sum(len(b.removed) for b in batches) == len(sent),
        )
        yield processor.stop()
        samples = yield self.stored()
        self.assertEqual(samples, len(sent))
        self.assertEqual((yield self.journaled()), [envelope.id for envelope in sent])
        # The restart.
        bus, processor = yield self.start(StoreJournal(self.journal_database, "n"))
        self.addCleanup(bus.stopService)
        yield poll(self.journaled, until=lambda ids: ids == [])
        self.assertEqual(len((yield self.logged())), 2 * len(sent))
        self.assertEqual((yield self.stored()), samples)


class PostgresJournalSettlementTests(JournalSettlementMixin, TestCase):
    """The journal in the store: the processor's own transaction settles."""

    def make_database(self) -> Database:
        return make_postgres_database(self)

    def make_journal_database(self) -> Database:
        return self.database

    @inlineCallbacks
    def test_crash_after_commit_redelivers_nothing(self) -> Any:
        """
        Once a batch committed, its journal records are gone with it: a
        process that dies before the bus writes anything of its own
        redelivers nothing, and the bus writes no removal at all.
        """
        journal = SettlementsNeverWritten(StoreJournal(self.journal_database, "n"))
        sent = [meter_values(n) for n in range(5)]
        _, processor = yield self.start(journal, sent)
        yield poll(self.logged, until=lambda rows: len(rows) == 2 * len(sent))
        yield processor.stop()
        self.assertEqual(journal.settlements, [])
        self.assertEqual((yield self.journaled()), [])
