"""
Tests for the embedded bus's journal file beside a SQLite store
(``ocppd.store.journal``): its name, its table, and the upgrade that moves the
records an older version left in the store's ``bus_journal``.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.journal import DeadMark, JournalBatch, JournalRecord
from ocppd.bus.memory import MemoryBus
from ocppd.store import chargers, messages
from ocppd.store.database import Database, default_sqlite_url
from ocppd.store.journal import (
    JournalFileTooNew,
    StoreJournal,
    journal_database,
    journal_file,
    load_journal,
    move_store_records,
    prepare_journal_file,
    remove_records,
)
from tests.consumers.test_journal_settlement import meter_values
from tests.consumers.test_processor import REGISTERED
from tests.integration.daemon import poll, start_daemon
from tests.store.fixtures import make_sqlite_database


class JournalFileNameTests(SynchronousTestCase):
    def test_beside_the_store(self) -> None:
        """The store file's stem and ``-bus-journal``, in the same directory."""
        self.assertEqual(
            journal_file("sqlite:////data/ocppd.sqlite3"), "/data/ocppd-bus-journal.sqlite3"
        )
        self.assertEqual(journal_file("sqlite:////data/store"), "/data/store-bus-journal")

    def test_none_when_in_the_store(self) -> None:
        """PostgreSQL and an in-memory SQLite keep the journal in the store."""
        self.assertIsNone(journal_file("postgresql://localhost/ocppd"))
        self.assertIsNone(journal_file("sqlite://"))
        self.assertIsNone(journal_database("sqlite:///:memory:"))


def record(seq: int, envelope: Envelope, dead: DeadMark | None = None) -> JournalRecord:
    return JournalRecord(
        seq=seq,
        queue=topology.PROCESSOR_QUEUE,
        routing_key=envelope.type,
        message_id=envelope.id,
        body=envelope.to_bytes(),
        dead=dead,
    )


class JournalFileTests(TestCase):
    def setUp(self) -> None:
        self.store = make_sqlite_database(self)
        journal = journal_database(self.store.engine.url, reactor=reactor)
        assert journal is not None
        self.addCleanup(journal.stop)
        journal.start()
        self.journal = journal

    @inlineCallbacks
    def test_prepared_once(self) -> Any:
        """The table is created if missing, and kept as it is after."""
        self.journal.run_sync(prepare_journal_file)
        self.assertTrue(os.path.exists(journal_file(self.store.engine.url) or ""))
        written = record(1, meter_values(1))
        yield StoreJournal(self.journal, "n").write(JournalBatch(added=[written]))
        self.journal.run_sync(prepare_journal_file)
        self.assertEqual(self.file_records("n"), [written])
        version = self.journal.run_sync(
            lambda conn: conn.exec_driver_sql("PRAGMA user_version").scalar()
        )
        self.assertEqual(version, 1)

    def test_newer_format_refused(self) -> None:
        """A file a newer version wrote is not used as if it were this version's."""
        self.journal.run_sync(lambda conn: conn.exec_driver_sql("PRAGMA user_version = 7"))
        self.assertRaises(JournalFileTooNew, self.journal.run_sync, prepare_journal_file)

    def store_records(self, node: str) -> list[JournalRecord]:
        return self.store.run_sync(load_journal, node)

    def file_records(self, node: str) -> list[JournalRecord]:
        return self.journal.run_sync(load_journal, node)

    @inlineCallbacks
    def left_by_an_older_version(self) -> Any:
        """Records in the store's bus_journal: two of node n (one dead), one of another node."""
        mark = DeadMark(attempts=3, reason="E: bad", failed_at="2026-12-07T01:02:03.456Z")
        left = [record(4, meter_values(4)), record(9, meter_values(9), dead=mark)]
        yield StoreJournal(self.store, "n").write(JournalBatch(added=left))
        yield StoreJournal(self.store, "other").write(
            JournalBatch(added=[record(1, meter_values(1))])
        )
        return left

    @inlineCallbacks
    def test_moved(self) -> Any:
        """The node's records go to the file as they were; another node's stay."""
        left = yield self.left_by_an_older_version()
        self.journal.run_sync(prepare_journal_file)
        self.assertEqual(move_store_records(self.store, self.journal, "n"), 2)
        self.assertEqual(self.file_records("n"), left)
        self.assertEqual(self.store_records("n"), [])
        self.assertEqual(len(self.store_records("other")), 1)
        self.assertEqual(move_store_records(self.store, self.journal, "n"), 0)
        self.assertEqual(self.file_records("n"), left)

    @inlineCallbacks
    def test_crash_between_copy_and_removal(self) -> Any:
        """
        Copied to the file, then the process died before the store's
        removal: the next start moves them again, and each is there once.
        """
        left = yield self.left_by_an_older_version()
        self.journal.run_sync(prepare_journal_file)
        run_sync = self.store.run_sync

        def dies_at_removal(func: Any, *args: Any, **kwargs: Any) -> Any:
            if func is remove_records:
                raise SystemExit("killed")
            return run_sync(func, *args, **kwargs)

        self.store.run_sync = dies_at_removal  # type: ignore[method-assign]
        self.assertRaises(SystemExit, move_store_records, self.store, self.journal, "n")
        del self.store.run_sync
        self.assertEqual(self.file_records("n"), left)
        self.assertEqual(self.store_records("n"), left)
        # The next start.
        self.assertEqual(move_store_records(self.store, self.journal, "n"), 2)
        self.assertEqual(self.file_records("n"), left)
        self.assertEqual(self.store_records("n"), [])

    @inlineCallbacks
    def test_moved_records_delivered(self) -> Any:
        """The bus on the file delivers what an older version left in the store."""
        left = yield self.left_by_an_older_version()
        self.journal.run_sync(prepare_journal_file)
        move_store_records(self.store, self.journal, "n")
        bus = MemoryBus(
            topology.default_topology(), reactor=reactor, journal=StoreJournal(self.journal, "n")
        )
        bus.startService()
        self.addCleanup(bus.stopService)
        got: list[str] = []

        def handler(delivery: Any) -> Deferred[None]:
            got.append(delivery.envelope.id)
            return succeed(None)

        yield bus.consume(topology.PROCESSOR_QUEUE, handler)
        yield poll(lambda: succeed(list(got)), until=lambda ids: ids == [left[0].message_id])
        [letter] = yield bus.dead_letters(topology.PROCESSOR_QUEUE)
        self.assertEqual(letter.envelope.id, left[1].message_id)


class UpgradeTests(TestCase):
    @inlineCallbacks
    def test_daemon_delivers_what_the_store_journal_held(self) -> Any:
        """
        A daemon of this version, started on a store whose bus_journal holds
        a record an older version left, moves it to its journal file, and its
        processor applies it.
        """
        first = yield start_daemon(self)
        yield first.query(chargers.add_charge_point, "CP1", None, now=REGISTERED)
        data_dir = first.node.config.ocppd.data_dir
        yield first.service.stopService()
        os.remove(journal_file(default_sqlite_url(data_dir)) or "")
        envelope = meter_values(3)
        store = Database.from_url(default_sqlite_url(data_dir), reactor=reactor)
        store.start()
        yield StoreJournal(store, "test-node").write(JournalBatch(added=[record(1, envelope)]))
        store.stop()
        second = yield start_daemon(self, f"ocppd.data_dir={data_dir}")
        yield second.wait_for(messages.list_messages, "CP1", until=lambda rows: len(rows) == 2)
        self.assertEqual((yield second.query(load_journal, "test-node")), [])
        journal = second.node.journal_database
        yield poll(
            lambda: journal.run(load_journal, "test-node"), until=lambda records: records == []
        )
