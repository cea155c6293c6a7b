"""
Tests for the consumers' group commit: a batch of envelopes in one transaction,
each failing alone, on both engines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from twisted.internet import reactor
from twisted.internet.defer import DeferredList, inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery
from ocppd.consumers import sessions
from ocppd.consumers.base import BusConsumer, DeferredWrites, FollowUp
from ocppd.consumers.processor import SQLITE_CONCURRENCY, SQLITE_MAX_BATCH, OcppProcessor
from ocppd.representations import session_json
from ocppd.store import chargers, messages, tags, transactions
from ocppd.store.database import Database
from ocppd.store.records import TransactionRecord
from ocppd.store.tables import processed_messages
from tests.consumers.test_processor import NOW, inbound, meter, start_session
from tests.store.fixtures import make_postgres_database, make_sqlite_database


class PoisonedProcessor(OcppProcessor):
    """Fails, after doing all its work, on the envelopes named poisonous."""

    def __init__(self, database: Database) -> None:
        # Heartbeats logged: the batch tests use them as the append-only message.
        super().__init__(None, database, log_heartbeats=True, clock=reactor)  # type: ignore[arg-type]
        self.poison: set[str] = set()

    def effects(
        self, conn: Connection, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp] | None:
        follow_ups = super().effects(conn, envelope, writes)
        if envelope.id in self.poison:
            raise RuntimeError("poisoned")
        return follow_ups


def wait_until(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Poll ``condition`` (another thread's progress) until it holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.01)


def heartbeat() -> Envelope:
    return inbound("Heartbeat", {}, {"currentTime": "2026-11-29T12:00:00.000Z"})


def status(value: str) -> Envelope:
    request = {"connectorId": 1, "errorCode": "NoError", "status": value}
    return inbound("StatusNotification", request)


class BatchTestsMixin:
    database: Database

    def make_database(self) -> Database:
        raise NotImplementedError

    def setUp(self) -> None:
        self.database = self.make_database()
        self.processor = PoisonedProcessor(self.database)
        self.database.run_sync(chargers.add_charge_point, "CP1", None, now=NOW)
        self.database.run_sync(tags.add_id_tag, "TAG1", now=NOW)
        self.tx = start_session(self.database, "CP1")

    def apply(self, envelopes: list[Envelope]) -> list[Any]:
        return self.database.run_sync(self.processor.apply_batch, envelopes)

    def logged(self) -> list[str]:
        rows = self.database.run_sync(messages.list_messages, "CP1", limit=1000)
        return [row.message_id for row in reversed(rows)]

    def handle(self, envelopes: list[Envelope]) -> Any:
        """Deliver ``envelopes`` at once, as the bus does; [(succeeded, result)] each."""
        handled = [self.processor.handle(Delivery(e, e.type, "processor", 1)) for e in envelopes]
        return DeferredList(handled, consumeErrors=True)

    def test_a_failure_fails_the_batch(self) -> None:
        """The first failing envelope raises, and its whole transaction rolls back."""
        good_beat, bad_meter = heartbeat(), meter(self.tx, "2026-11-29T11:20:00Z", "9000")
        self.processor.poison = {bad_meter.id}
        self.assertRaises(RuntimeError, self.apply, [good_beat, bad_meter, status("Charging")])
        self.assertEqual(self.logged(), [])
        claims = self.database.run_sync(
            lambda conn: conn.execute(sa.select(processed_messages.c.message_id)).all()
        )
        self.assertEqual(claims, [])

    @inlineCallbacks
    def test_each_fails_alone(self) -> Any:
        """
        A log-only envelope and one that writes directly fail without taking
        the batch with them: the consumer applies the batch again one
        envelope at a time, their writes vanish, the others' stay, in order.
        """
        good_beat, bad_beat = heartbeat(), heartbeat()
        good_meter = meter(self.tx, "2026-11-29T11:10:00Z", "2000")
        bad_meter = meter(self.tx, "2026-11-29T11:20:00Z", "9000")
        charging = status("Charging")
        self.processor.poison = {bad_beat.id, bad_meter.id}
        results = yield self.handle([good_beat, bad_beat, good_meter, bad_meter, charging])

        self.assertEqual([ok for ok, _ in results], [True, False, True, False, True])
        self.assertEqual(str(results[1][1].value), "poisoned")
        self.assertEqual([result for ok, result in results if ok], [True] * 3)
        self.assertEqual(
            self.logged(),
            [
                f"{e.id}:{part}"
                for e in (good_beat, good_meter, charging)
                for part in ("call", "answer")
            ],
        )
        session = self.database.run_sync(transactions.get_transaction, self.tx)
        self.assertEqual((session.last_meter_wh, session.energy_wh), (2000, 1000))
        samples = self.database.run_sync(transactions.list_meter_values, transaction_id=self.tx)
        self.assertEqual([sample.value for sample in samples], ["2000"])
        connectors = self.database.run_sync(chargers.list_connectors, "CP1")
        self.assertEqual([c.status for c in connectors], ["Charging"])

    @inlineCallbacks
    def test_failed_envelopes_apply_on_retry(self) -> Any:
        """Failed envelopes leave no claim: the retry applies them, once."""
        bad_beat = heartbeat()
        bad_meter = meter(self.tx, "2026-11-29T11:20:00Z", "9000")
        self.processor.poison = {bad_beat.id, bad_meter.id}
        yield self.handle([heartbeat(), bad_beat, bad_meter])
        self.processor.poison = set()
        self.assertEqual(self.apply([bad_beat, bad_meter]), [(True, []), (True, self.ANY)])
        # Neither has a claim (the Heartbeat only appends, the MeterValues'
        # effects are idempotent): each applies again to no effect.
        self.assertEqual(self.apply([bad_beat, bad_meter]), [(True, []), (True, self.ANY)])
        session = self.database.run_sync(transactions.get_transaction, self.tx)
        self.assertEqual(session.last_meter_wh, 9000)
        self.assertEqual(len(self.logged()), 6)

    def test_duplicates_apply_once(self) -> None:
        """
        The same envelope twice in a batch, and again in the next, has its
        effects once: a claimed one is refused, one that only appends (a
        Heartbeat, unclaimed) appends nothing new, nor does a MeterValues
        (unclaimed too: its effects are idempotent).
        """
        beat = heartbeat()
        reading = meter(self.tx, "2026-11-29T11:10:00Z", "2000")
        charging = status("Charging")
        outcomes = self.apply([beat, reading, charging, beat, reading, charging])
        self.assertEqual([o[0] for o in outcomes], [True, True, True, False, False, False])
        outcomes = self.apply([charging, reading, beat])
        self.assertEqual([o[0] for o in outcomes], [False, True, True])
        self.assertEqual(len(self.logged()), 6)
        charger = self.database.run_sync(chargers.get_charge_point, "CP1")
        self.assertEqual(charger.last_seen_at.isoformat(), "2026-11-29T12:00:00+00:00")
        claims = self.database.run_sync(
            lambda conn: conn.execute(sa.select(processed_messages.c.message_id)).scalars().all()
        )
        self.assertEqual(claims, [charging.id])
        samples = self.database.run_sync(transactions.list_meter_values, transaction_id=self.tx)
        self.assertEqual(len(samples), 1)

    def test_redelivered_meter_values_change_nothing(self) -> None:
        """
        MeterValues delivered again, after a newer reading, in a batch or
        alone: no sample or log row twice, the meter stays on the newest
        reading, and each announces its live estimate again.
        """
        older = meter(self.tx, "2026-11-29T11:10:00Z", "2000")
        newer = meter(self.tx, "2026-11-29T11:20:00Z", "3000")
        first = self.apply([older, newer])
        session = self.database.run_sync(transactions.get_transaction, self.tx)
        self.assertEqual((session.last_meter_wh, session.energy_wh), (3000, 2000))
        again = self.apply([newer, older]) + self.apply([older]) + self.apply([newer])
        self.assertEqual([applied for applied, _ in again], [True] * 4)
        keys = [[f.routing_key for f in follow_ups] for _, follow_ups in again]
        self.assertEqual(keys, [["session.updated"]] * 4)
        # What a newer reading made true is announced again as it was.
        self.assertEqual(again[0], first[1])
        self.assertEqual(self.database.run_sync(transactions.get_transaction, self.tx), session)
        samples = self.database.run_sync(transactions.list_meter_values, transaction_id=self.tx)
        self.assertEqual(sorted(sample.value for sample in samples), ["2000", "3000"])
        self.assertEqual(len(self.logged()), 4)

    def test_a_run_shows_each_session_once(self) -> None:
        """
        A run of MeterValues of one session: on SQLite its ``session_json``
        is made once (then copied with each message's energy; on PostgreSQL
        each message reads its own row), and each ``session.updated`` shows
        the session as that message left it.
        """
        readings = [
            meter(self.tx, "2026-11-29T11:10:00Z", "2000"),
            meter(self.tx, "2026-11-29T11:20:00Z", "3000"),
            meter(self.tx, "2026-11-29T11:15:00Z", "2500"),  # older: the meter stays
            meter(self.tx, "2026-11-29T11:30:00Z", "4000"),
        ]
        made = []

        def counted(record: TransactionRecord) -> dict[str, Any]:
            made.append(record.id)
            return session_json(record)

        self.patch(sessions, "session_json", counted)
        together = self.apply(readings)
        once = self.database.dialect == "sqlite"
        self.assertEqual(made, [self.tx] if once else [self.tx] * 4)
        shown = [follow_ups[0].payload["session"] for _, follow_ups in together]
        self.assertEqual([s["energyWh"] for s in shown], [1000, 2000, 2000, 3000])
        self.assertEqual(len({id(s) for s in shown}), 4)  # a dict each
        final = self.database.run_sync(transactions.get_transaction, self.tx)
        self.assertEqual(shown[-1], session_json(final))

    def test_alone_a_failure_raises(self) -> None:
        """A single envelope's failure rolls back its transaction, claim included."""
        bad_beat = heartbeat()
        self.processor.poison = {bad_beat.id}
        self.assertRaises(RuntimeError, self.apply, [bad_beat])
        self.processor.poison = set()
        self.assertTrue(self.database.run_sync(self.processor.apply, bad_beat))
        self.assertEqual(len(self.logged()), 2)

    def test_last_seen_is_the_batch_latest(self) -> None:
        """Heartbeats of one charger in a batch move last_seen_at to the latest of them."""
        beats = [
            inbound("Heartbeat", {}, {}, at=f"2026-11-29T12:0{minute}:00.000Z")
            for minute in (3, 7, 5)
        ]
        self.apply(beats)
        charger = self.database.run_sync(chargers.get_charge_point, "CP1")
        self.assertEqual(charger.last_seen_at.isoformat(), "2026-11-29T12:07:00+00:00")

    def test_last_seen_written_at_most_every_resolution(self) -> None:
        """last_seen_at is rewritten once LAST_SEEN_RESOLUTION has passed, not per message."""

        def beat_at(time: str) -> str:
            self.apply([inbound("Heartbeat", {}, {}, at=f"2026-11-29T{time}.000Z")])
            charger = self.database.run_sync(chargers.get_charge_point, "CP1")
            return str(charger.last_seen_at.time())

        self.assertEqual(beat_at("12:00:00"), "12:00:00")
        self.assertEqual(beat_at("12:00:10"), "12:00:00")
        self.assertEqual(beat_at("12:00:29"), "12:00:00")
        self.assertEqual(beat_at("12:00:30"), "12:00:30")
        self.assertEqual(beat_at("11:59:00"), "12:00:30")  # a late message never moves it back
        self.assertEqual(beat_at("12:05:00"), "12:05:00")

    @inlineCallbacks
    def test_a_failing_deferred_write_fails_only_its_message(self) -> Any:
        """
        A MeterValues of a charger that is gone fails only at the batch's end
        (its samples' foreign key), failing the whole transaction: the batch
        is applied again one message at a time, and only that one fails.
        """
        request = {
            "connectorId": 1,
            "meterValue": [{"timestamp": "2026-11-29T11:10:00Z", "sampledValue": [{"value": "5"}]}],
        }
        ghost = Envelope.create(
            topology.ocpp_in("MeterValues"),
            {
                "uniqueId": "g",
                "action": "MeterValues",
                "request": request,
                "response": {},
                "receivedAt": "2026-11-29T12:00:00.000Z",
            },
            node="n1",
            charge_point_id="GHOST",
        )
        beat, reading = heartbeat(), meter(self.tx, "2026-11-29T11:10:00Z", "2000")
        results = yield self.handle([beat, ghost, reading])
        self.assertEqual([ok for ok, _ in results], [True, False, True])
        self.assertIsInstance(results[1][1].value, sa.exc.IntegrityError)
        self.assertEqual(
            self.logged(),
            [f"{e.id}:{part}" for e in (beat, reading) for part in ("call", "answer")],
        )
        samples = self.database.run_sync(transactions.list_meter_values, transaction_id=self.tx)
        self.assertEqual([sample.value for sample in samples], ["2000"])

    class _Any:
        def __eq__(self, other: object) -> bool:
            return True

    ANY: Any = _Any()


class SQLiteBatchTests(BatchTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def test_batch_size(self) -> None:
        """
        On SQLite the processor takes and commits more messages at once: each
        commit rewrites every page its batch touched (processor.SQLITE_MAX_BATCH).
        """
        self.assertEqual(
            (self.processor.concurrency, self.processor.max_batch),
            (SQLITE_CONCURRENCY, SQLITE_MAX_BATCH),
        )
        self.assertGreater(SQLITE_MAX_BATCH, BusConsumer.max_batch)
        # Room for the next batch to fill while one commits.
        self.assertGreaterEqual(SQLITE_CONCURRENCY, 2 * SQLITE_MAX_BATCH)


class PostgresBatchTests(BatchTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_postgres_database(self)

    def test_concurrent_redelivery_applies_once(self) -> None:
        """
        Two nodes' processors apply the same MeterValues at once, without a
        claim: the second waits on the first's session row, then finds its
        meter moved and its samples and log rows there, and adds nothing.
        """
        reading = meter(self.tx, "2026-11-29T11:10:00Z", "2000")
        other = PoisonedProcessor(self.database)
        engine = self.database.engine
        outcomes: dict[str, Any] = {}
        release = threading.Event()

        def apply(name: str, processor: OcppProcessor, hold: bool) -> None:
            with engine.begin() as conn:
                outcomes[name] = processor.apply_batch(conn, [reading])
                if hold:
                    release.wait(30)

        def waiting_on_a_lock() -> int:
            with engine.connect() as conn:
                return int(
                    conn.exec_driver_sql(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database()"
                    ).scalar_one()
                )

        first = threading.Thread(target=apply, args=("first", self.processor, True))
        second = threading.Thread(target=apply, args=("second", other, False))
        first.start()
        self.addCleanup(release.set)
        wait_until(lambda: "first" in outcomes)
        second.start()
        # The second node's transaction is blocked on the first's while it is open.
        wait_until(lambda: waiting_on_a_lock() > 0)
        self.assertNotIn("second", outcomes)
        release.set()
        first.join(30)
        second.join(30)
        [(applied, follow_ups)] = outcomes["second"]
        self.assertTrue(applied)
        self.assertEqual([f.routing_key for f in follow_ups], ["session.updated"])
        self.assertEqual(outcomes["second"], outcomes["first"])
        session = self.database.run_sync(transactions.get_transaction, self.tx)
        self.assertEqual((session.last_meter_wh, session.energy_wh), (2000, 1000))
        samples = self.database.run_sync(transactions.list_meter_values, transaction_id=self.tx)
        self.assertEqual(len(samples), 1)
        self.assertEqual(len(self.logged()), 2)

    def test_batch_size(self) -> None:
        """On PostgreSQL the processor keeps the batches RabbitMQ's prefetch was measured with."""
        self.assertEqual(
            (self.processor.concurrency, self.processor.max_batch),
            (OcppProcessor.concurrency, BusConsumer.max_batch),
        )
