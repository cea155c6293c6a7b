"""
The storage suite, one mixin run twice: on SQLite and on the real PostgreSQL
(``OCPPD_TEST_POSTGRES_URL``; it fails on CI and skips elsewhere when
PostgreSQL is unreachable). Every test gets a database of its own.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

import attrs
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd.measurands import ENERGY_REGISTER, MeterSample
from ocppd.ocpp.authorization_key import REDACTED
from ocppd.store import (
    audit,
    chargers,
    dashboard,
    messages,
    meter_history,
    meter_runs,
    migrate,
    processed,
    records,
    sql,
    stations,
    tables,
    tags,
    tariffs,
    transactions,
    users,
)
from ocppd.store.database import Database, create_engine
from ocppd.store.errors import AlreadyExists, NotFound
from ocppd.store.prepared import Prepared, driver_rows
from ocppd.store.records import Allocation
from tests.store.fixtures import (
    inbound_frame,
    make_postgres_database,
    make_sqlite_database,
    postgres_url,
    sqlite_url,
)

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
R = TypeVar("R")


#: The message log's columns of an inbound exchange's answer (revision 0023).
ANSWER_COLUMNS = ("answer_type", "answer_payload")


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


def exchange(n: int, answer: str = "CALLRESULT", body: Any = ...) -> tuple[Any, ...]:
    """
    The log's row of inbound exchange ``n``: an Authorize at minute ``n``
    and its answer (``body``, by default ``{"a": n}``), as the processor writes it.
    """
    return messages.log_values(
        f"e{n}:call",
        "CP1",
        "in",
        "CALL",
        "Authorize",
        f"u{n}",
        {"n": n},
        minutes(n),
        answer,
        {"a": n} if body is ... else body,
    )


def found(record: R | None) -> R:
    """``record``, which must have been found."""
    if record is None:
        raise AssertionError("no such record")
    return record


if TYPE_CHECKING:
    _Base = TestCase
else:
    _Base = object  # not a TestCase itself, or trial would run it without an engine


class StoreTestsMixin(_Base):
    """Behaviour every engine must show; ``make_database`` picks the engine."""

    database: Database

    def make_database(self) -> Database:
        raise NotImplementedError

    def empty_database_url(self) -> str:
        raise NotImplementedError

    def setUp(self) -> None:
        self.database = self.make_database()
        self.query = self.database.run_sync
        self.query(chargers.add_charge_point, "CP1", "hash1", now=T0)
        self.query(chargers.add_charge_point, "CP2", None, now=T0)
        self.query(tags.add_id_tag, "TAG1", now=T0)

    def test_id_tags_are_case_insensitive(self) -> None:
        """OCPP 1.6 IdToken is case-insensitive: any spelling finds, owns and stops the same tag."""
        self.query(tags.add_id_tag, "ab12cd", parent_id_tag="tag1", now=T0)
        record = self.query(tags.get_id_tag, "Ab12Cd")
        self.assertEqual((record.id_tag, record.parent_id_tag), ("AB12CD", "TAG1"))
        self.assertRaises(AlreadyExists, self.query, tags.add_id_tag, "AB12CD", now=T0)
        first = self.allocate(tag="tag1")
        resend = self.allocate(tag="Tag1")
        self.assertEqual((resend.transaction_id, resend.created), (first.transaction_id, False))
        self.assertTrue(self.allocate(cp="CP2", tag="TAG1", meter=1).concurrent)
        self.assertEqual(
            self.query(transactions.get_transaction, first.transaction_id).id_tag, "TAG1"
        )

    def test_id_tag_whose_upper_case_is_longer(self) -> None:
        """
        A 20-character idTag keeps 20 characters in its canonical case: ß
        (upper case SS) stays ß, so PostgreSQL's 20-character column takes
        the start, the stop and the tag (it refused them, found by the fuzz).
        """
        tag, canonical = "ß" * 19 + "a", "ß" * 19 + "A"
        self.assertEqual(tags.canonical_id_tag(tag), canonical)
        self.assertEqual(tags.canonical_id_tag("straße"), "STRAßE")
        self.query(tags.add_id_tag, tag, now=T0)
        self.assertEqual(self.query(tags.get_id_tag, canonical).id_tag, canonical)
        allocation = self.allocate(tag=tag)
        outcome = self.query(
            transactions.record_stop,
            charge_point_id="CP1",
            transaction_id=allocation.transaction_id,
            meter_stop_wh=500,
            stopped_at=minutes(60),
            id_tag=tag,
            now=T0,
        )
        self.assertEqual(outcome, "stopped")
        record = self.query(transactions.get_transaction, allocation.transaction_id)
        self.assertEqual((record.id_tag, record.stop_id_tag), (canonical, canonical))

    # -- helpers -------------------------------------------------------------

    def allocate(
        self,
        cp: str = "CP1",
        connector: int = 1,
        tag: str = "TAG1",
        meter: int = 100,
        status: str = "Accepted",
        at: datetime = T0,
        confirmed: bool = True,
    ) -> Allocation:
        return self.query(
            transactions.allocate_transaction,
            charge_point_id=cp,
            connector_id=connector,
            id_tag=tag,
            id_tag_status=status,
            meter_start_wh=meter,
            started_at=at,
            now=T0,
            confirmed=confirmed,
        )

    def stop(self, tx: int, cp: str = "CP1", meter: int = 500, at: datetime | None = None) -> str:
        return self.query(
            transactions.record_stop,
            charge_point_id=cp,
            transaction_id=tx,
            meter_stop_wh=meter,
            stopped_at=at or minutes(60),
            reason="Local",
            id_tag="TAG1",
            now=T0,
        )

    def meter(self, tx: int | None, *samples: MeterSample, cp: str = "CP1") -> int:
        return self.query(
            transactions.add_meter_values,
            charge_point_id=cp,
            connector_id=1,
            transaction_id=tx,
            samples=list(samples),
            now=T0,
        )

    def transaction(self, tx: int) -> records.TransactionRecord:
        record = self.query(transactions.get_transaction, tx)
        assert record is not None
        return record

    def meter_values_of(self, tx: int) -> list[records.MeterValueRecord]:
        return self.query(lambda conn: transactions.list_meter_values(conn, transaction_id=tx))

    # -- schema and database -------------------------------------------------

    def test_migrations_match_the_tables(self) -> None:
        """The migrations produce exactly ``tables.metadata``: alembic finds no difference."""
        with self.database.engine.connect() as conn, warnings.catch_warnings():
            # SQLite cannot reflect an expression index (users' name sort):
            # compared on PostgreSQL only, without a word here.
            warnings.filterwarnings("ignore", ".*expression-based index.*ix_users_name_sort")
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": True,
                    # 0018's trigram indexes, made only where pg_trgm may be installed.
                    "include_object": migrate.include_object,
                },
            )
            self.assertEqual(compare_metadata(context, tables.metadata), [])
        self.assertEqual(migrate.current_revision(self.database.engine), migrate.head_revision())
        self.assertEqual(migrate.head_revision(), "0024")

    def test_upgrade_to_0005_redacts_authorization_keys(self) -> None:
        """
        Revision 0005 removes AuthorizationKey values the message log and the
        audit log kept in clear before; every other row is left as it was.
        """
        url = self.empty_database_url()
        migrate.upgrade(url, "0004")
        database = Database.from_url(url)
        self.addCleanup(database.stop)
        change = {"key": "AuthorizationKey", "value": "the-old-secret-0123"}
        other = {"key": "HeartbeatInterval", "value": "60"}
        reported = {
            "configurationKey": [{"key": "authorizationkey", "readonly": False, "value": "x"}]
        }

        def row(n: int, action: str, message_type: str, payload: Any) -> dict[str, Any]:
            logged = messages.log_row(
                message_id=f"m{n}",
                charge_point_id="CP1",
                direction="out",
                message_type=message_type,
                action=action,
                unique_id=f"u{n}",
                payload=payload,
                at=T0,
            )
            # Revision 0004's columns: an answer of its own row came with 0023.
            return {k: v for k, v in logged.items() if k not in ANSWER_COLUMNS}

        def store(conn: Connection) -> None:
            messages.append_log(
                conn,
                [
                    row(1, "ChangeConfiguration", "CALL", change),
                    row(2, "ChangeConfiguration", "CALL", other),
                    row(3, "GetConfiguration", "CALLRESULT", reported),
                ],
            )
            for action, detail in [
                ("command.change-configuration", {"request": change}),
                ("command.get-configuration", {"request": {}, "response": reported}),
            ]:
                audit.add_audit_entry(
                    conn,
                    at=T0,
                    actor_user_id=None,
                    action=action,
                    outcome="answered",
                    detail=detail,
                )

        database.run_sync(store)
        migrate.upgrade(url)
        logged = [m.payload for m in database.run_sync(messages.list_messages, "CP1")]
        self.assertEqual(
            logged,
            [
                {
                    "configurationKey": [
                        {"key": "authorizationkey", "readonly": False, "value": REDACTED}
                    ]
                },
                other,
                {"key": "AuthorizationKey", "value": REDACTED},
            ],
        )
        audited = [e.detail for e in database.run_sync(audit.list_audit_entries)]
        self.assertEqual(audited[0], {"request": {"key": "AuthorizationKey", "value": REDACTED}})
        self.assertEqual(audited[1]["response"], logged[0])

    def test_upgrade_to_0022_reorders_the_sample_key(self) -> None:
        """
        Revision 0022 keeps every sample and what makes one the same (its
        unique key's columns), leads the key with (charger, transaction,
        time) and drops the (transaction, time) index; its downgrade puts
        both back as they were.
        """
        url = self.empty_database_url()
        migrate.upgrade(url, "0021")
        engine = create_engine(url, max_threads=1)
        self.addCleanup(engine.dispose)
        mv = tables.meter_values

        def sample(tx: int, minute: int, measurand: str) -> tuple[Any, ...]:
            at = minutes(minute)
            return ("CP1", 1, tx, at, "1", 1, measurand, "", "Wh", "", "", None, at)

        def rows() -> list[tuple[Any, ...]]:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.select(mv).order_by(mv.c.id))]

        def append(*samples: tuple[Any, ...]) -> int:
            with engine.begin() as conn:
                return transactions.append_meter_values(conn, list(samples))

        def layout() -> tuple[set[str], list[str]]:
            inspector = sa.inspect(engine)
            (unique,) = inspector.get_unique_constraints("meter_values")
            self.assertEqual(unique["name"], "uq_meter_values_sample")
            names = {index["name"] for index in inspector.get_indexes("meter_values")}
            # SQLite lists the constraint's own index among them; PostgreSQL does not.
            return names - {"uq_meter_values_sample"}, unique["column_names"]

        with engine.begin() as conn:
            chargers.add_charge_point(conn, "CP1", None, now=T0)
        self.assertEqual(append(sample(7, 1, "Voltage"), sample(7, 1, "Power.Active.Import")), 2)
        self.assertEqual(append(sample(0, 2, "Voltage")), 1)
        before = rows()
        old_layout = layout()
        self.assertIn("ix_meter_values_transaction_id_timestamp", old_layout[0])
        migrate.upgrade(url, "0022")
        self.assertEqual(rows(), before)
        indexes, key = layout()
        self.assertEqual(indexes, {"ix_meter_values_charge_point_id_timestamp"})
        self.assertEqual(key[:3], ["charge_point_id", "transaction_id", "timestamp"])
        # As tables.py declares it (alembic's comparison does not see an order).
        (declared,) = [c for c in mv.constraints if c.name == "uq_meter_values_sample"]
        self.assertEqual(key, [column.name for column in declared.columns])  # type: ignore[attr-defined]
        self.assertEqual(sorted(key), sorted(old_layout[1]))
        # Still the same sample: a resent one is skipped, a new one stored.
        self.assertEqual(append(sample(7, 1, "Voltage")), 0)
        self.assertEqual(append(sample(7, 3, "Voltage")), 1)
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0021")
        self.assertEqual(layout(), old_layout)
        self.assertEqual(len(rows()), 4)
        migrate.upgrade(engine)
        self.assertEqual(migrate.current_revision(engine), migrate.head_revision())

    def test_upgrade_to_0024_and_back(self) -> None:
        """
        Revision 0024 keeps every sample and narrows the (charger, time) index
        to the samples a charger's meter charts read, which read the same
        before and after; its downgrade puts the index of every sample back.
        """
        url = self.empty_database_url()
        migrate.upgrade(url, "0023")
        engine = create_engine(url, max_threads=1)
        self.addCleanup(engine.dispose)
        mv = tables.meter_values

        def sample(minute: int, measurand: str, phase: str = "") -> tuple[Any, ...]:
            at = minutes(minute)
            return ("CP1", 1, 7, at, "1", None, measurand, phase, "W", "", "", None, at)

        def rows() -> list[tuple[Any, ...]]:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(sa.select(mv).order_by(mv.c.id))]

        def indexes() -> dict[str, list[str | None]]:
            found = sa.inspect(engine).get_indexes("meter_values")
            # SQLite lists the sample key's own index among them; PostgreSQL does not.
            return {
                index["name"]: index["column_names"]
                for index in found
                if index["name"] and index["name"] != "uq_meter_values_sample"
            }

        def chart() -> dict[int, list[MeterSample]]:
            with engine.connect() as conn:
                return meter_history.point_meter_history(
                    conn, "CP1", since=minutes(0), until=minutes(10), points=10
                )

        with engine.begin() as conn:
            chargers.add_charge_point(conn, "CP1", None, now=T0)
            samples = [
                sample(1, ENERGY_REGISTER),
                sample(1, "Power.Active.Import"),
                sample(1, "Power.Active.Import", "L1"),
                sample(1, "Voltage"),
                sample(2, ENERGY_REGISTER),
            ]
            self.assertEqual(transactions.append_meter_values(conn, samples), 5)
        before, charted = rows(), chart()
        self.assertEqual(
            [(s.measurand, s.phase) for s in charted[1]],
            [(ENERGY_REGISTER, None), ("Power.Active.Import", None), (ENERGY_REGISTER, None)],
        )
        full = {"ix_meter_values_charge_point_id_timestamp": ["charge_point_id", "timestamp"]}
        self.assertEqual(indexes(), full)
        migrate.upgrade(url)
        self.assertEqual(indexes(), {"ix_meter_values_chart": ["charge_point_id", "timestamp"]})
        self.assertEqual(rows(), before)
        self.assertEqual(chart(), charted)
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0023")
        self.assertEqual(indexes(), full)
        self.assertEqual(rows(), before)
        self.assertEqual(chart(), charted)
        migrate.upgrade(engine)
        self.assertEqual(migrate.current_revision(engine), migrate.head_revision())

    def test_upgrade_to_0023_and_back(self) -> None:
        """
        Revision 0023 leaves the log's rows as they were (a frame each) and
        lists them as before; its downgrade splits every exchange written
        since into its call's and its answer's rows, in the listing's order
        and with its ids, and the log goes on after them. An answer logged
        already (an old row whose call was pruned, logged again) is not
        logged twice.
        """
        url = self.empty_database_url()
        migrate.upgrade(url, "0022")
        engine = create_engine(url, max_threads=1)
        self.addCleanup(engine.dispose)
        log = tables.message_log
        frame_columns = [c for c in log.c if c.name not in ANSWER_COLUMNS]

        def frame(message_id: str, direction: str, kind: str, n: int) -> dict[str, Any]:
            return {
                "message_id": message_id,
                "charge_point_id": "CP1",
                "direction": direction,
                "message_type": kind,
                "action": "Authorize",
                "unique_id": f"u{n}",
                "payload": {"n": n},
                "created_at": minutes(n),
            }

        def insert_frames(*frames: dict[str, Any]) -> None:
            with engine.begin() as conn:
                conn.execute(log.insert(), list(frames))

        def old_listing() -> list[tuple[Any, ...]]:
            """The log as revision 0022 lists it: a row a frame, newest first."""
            with engine.connect() as conn:
                query = sa.select(*frame_columns).order_by(log.c.id.desc())
                return [tuple(row) for row in conn.execute(query)]

        def listing() -> list[tuple[Any, ...]]:
            with engine.connect() as conn:
                frames = messages.list_messages(conn, "CP1", limit=1000)
            return [attrs.astuple(frame) for frame in frames]

        def answer_columns() -> set[str]:
            columns = {c["name"] for c in sa.inspect(engine).get_columns("message_log")}
            return columns & set(ANSWER_COLUMNS)

        insert_frames(
            frame("e0:call", "in", "CALL", 0),
            frame("e0:answer", "out", "CALLRESULT", 0),
            frame("c1:call", "out", "CALL", 1),
            frame("e2:call", "in", "CALL", 2),
            frame("e2:answer", "out", "CALLERROR", 2),
        )
        before = old_listing()
        migrate.upgrade(url)
        self.assertEqual(answer_columns(), set(ANSWER_COLUMNS))
        upgraded = listing()
        self.assertEqual([frame[1:] for frame in upgraded], [row[1:] for row in before])
        self.assertEqual([frame[0] for frame in upgraded], [2 * row[0] for row in before])
        error = {"code": "InternalError", "description": "", "details": {}}

        with engine.begin() as conn:
            # e2's call pruned, then e2 logged again: its old answer row stays.
            conn.execute(log.delete().where(log.c.message_id == "e2:call"))
            written = [exchange(3, "CALLRESULT", {"a": 3}), exchange(4, "CALLERROR", error)]
            written += [exchange(5, "CALLRESULT", None), exchange(2, "CALLERROR", error)]
            self.assertEqual(messages.append_log_values(conn, written), 4)
        frames = listing()
        self.assertEqual(
            [frame[1] for frame in frames],
            [
                "e2:answer", "e2:call", "e5:answer", "e5:call", "e4:answer", "e4:call",
                "e3:answer", "e3:call", "e2:answer", "c1:call", "e0:answer", "e0:call",
            ],
        )  # fmt: skip
        with engine.begin() as conn:
            command.downgrade(migrate.alembic_config(conn), "0022")
        self.assertEqual(answer_columns(), set())
        # Every frame as its own row, with the id it was listed with; e2's
        # answer of the new row is its old row.
        self.assertEqual(old_listing(), frames[1:])
        # The log goes on after the split rows (PostgreSQL: past the ids given).
        insert_frames(frame("c6:call", "out", "CALL", 6))
        self.assertEqual([row[1] for row in old_listing()[:2]], ["c6:call", "e2:call"])
        migrate.upgrade(engine)
        self.assertEqual(migrate.current_revision(engine), migrate.head_revision())
        self.assertEqual([frame[1:] for frame in listing()], [row[1:] for row in old_listing()])

    def test_upgrade_by_url_twice(self) -> None:
        """``upgrade(url)`` migrates an empty database; a second upgrade changes nothing."""
        url = self.empty_database_url()
        migrate.upgrade(url)
        migrate.upgrade(url)
        database = Database.from_url(url)
        self.addCleanup(database.stop)
        self.assertEqual(migrate.current_revision(database.engine), migrate.head_revision())
        names = set(sa.inspect(database.engine).get_table_names())
        self.assertEqual(names, {*tables.metadata.tables, "alembic_version"})

    def test_check_constraints_exist(self) -> None:
        """The migrated tables refuse values outside an enumeration (the CHECKs were created)."""

        def insert_bad_status(conn: Connection) -> None:
            conn.execute(tables.id_tags.insert().values(id_tag="BAD", status="Lost", created_at=T0))

        self.assertRaises(sa.exc.IntegrityError, self.query, insert_bad_status)

    def test_records_have_every_column(self) -> None:
        """Each record has exactly its table's columns as attributes."""
        pairs = [
            (records.StationRecord, tables.stations),
            (records.TariffRecord, tables.tariffs),
            (records.UserRecord, tables.users),
            (records.ChargePointRecord, tables.charge_points),
            (records.ConnectorRecord, tables.connectors),
            (records.IdTagRecord, tables.id_tags),
            (records.TransactionRecord, tables.transactions),
            (records.UnmatchedStopRecord, tables.unmatched_stops),
            (records.MeterValueRecord, tables.meter_values),
        ]
        for record, table in pairs:
            self.assertEqual(
                [field.name for field in attrs.fields(record)], list(table.c.keys()), record
            )
        # A logged frame: a row's columns but its answer's (a frame of its own).
        self.assertEqual(
            [field.name for field in attrs.fields(records.MessageRecord)],
            [name for name in tables.message_log.c.keys() if name not in ANSWER_COLUMNS],
        )

    @inlineCallbacks
    def test_run_from_the_reactor(self) -> Any:
        """``run`` returns a Deferred that fires with the function's result, off the reactor."""
        d = self.database.run(chargers.get_charge_point, "CP1")
        self.assertIsInstance(d, Deferred)
        record = yield d
        self.assertEqual((record.charge_point_id, record.key_hash), ("CP1", "hash1"))
        self.assertIsNone((yield self.database.run(chargers.get_charge_point, "NOPE")))

    @inlineCallbacks
    def test_run_rolls_back_on_error(self) -> Any:
        """An exception fails the Deferred and rolls the whole transaction back."""

        def add_then_fail(conn: Connection) -> None:
            tags.add_id_tag(conn, "NEWTAG", now=T0)
            raise ZeroDivisionError()

        yield self.assertFailure(self.database.run(add_then_fail), ZeroDivisionError)
        self.assertIsNone((yield self.database.run(tags.get_id_tag, "NEWTAG")))

    @inlineCallbacks
    def test_run_needs_start(self) -> Any:
        """``run`` on a stopped Database fails at once instead of queueing forever."""
        self.database.stop()
        yield self.assertFailure(self.database.run(chargers.get_charge_point, "CP1"), RuntimeError)

    def test_utc_round_trip(self) -> None:
        """A time with any offset is stored as its UTC instant and read back aware, in UTC."""
        local = datetime(2026, 11, 29, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
        self.query(tags.add_id_tag, "TZ", expires_at=local, now=T0)
        record = found(self.query(tags.get_id_tag, "TZ"))
        expires = found(record.expires_at)
        self.assertEqual(expires, local)
        self.assertIs(expires.tzinfo, UTC)
        self.assertEqual(expires.isoformat(), "2026-11-29T10:30:15.123456+00:00")
        self.assertEqual(record.created_at, T0)
        # Stored naive UTC, whatever the offset it came with.
        with self.database.engine.connect() as conn:
            raw = conn.execute(
                sa.text("SELECT expires_at FROM id_tags WHERE id_tag = 'TZ'")
            ).scalar()
        self.assertIn("10:30:15", str(raw))

    def test_naive_times_refused(self) -> None:
        """A naive datetime is an error, never silently taken for UTC."""
        self.assertRaises(
            sa.exc.StatementError,
            self.query,
            tags.add_id_tag,
            "NAIVE",
            expires_at=datetime(2026, 1, 1),
            now=T0,
        )

    def test_already_exists(self) -> None:
        """Duplicates raise AlreadyExists and leave the transaction usable."""
        self.assertRaises(AlreadyExists, self.query, chargers.add_charge_point, "CP1", None, now=T0)
        self.assertRaises(AlreadyExists, self.query, tags.add_id_tag, "TAG1", now=T0)
        self.query(users.add_user, "Jo@Example.com", "h", "admin", now=T0)
        self.assertRaises(
            AlreadyExists, self.query, users.add_user, " jo@example.COM", "h", "customer", now=T0
        )
        self.query(stations.add_station, "Main", now=T0)
        self.assertRaises(AlreadyExists, self.query, stations.add_station, "Main", now=T0)
        self.query(tariffs.add_tariff, "Std", currency="EUR", price_per_kwh=30, now=T0)
        self.assertRaises(
            AlreadyExists,
            self.query,
            tariffs.add_tariff,
            "Std",
            currency="EUR",
            price_per_kwh=1,
            now=T0,
        )

        def duplicate_then_continue(conn: Connection) -> str | None:
            try:
                chargers.add_charge_point(conn, "CP1", None, now=T0)
            except AlreadyExists:
                pass
            chargers.add_charge_point(conn, "CP3", None, now=T0)
            record = chargers.get_charge_point(conn, "CP3")
            return None if record is None else record.registration_status

        self.assertEqual(self.query(duplicate_then_continue), "Accepted")

    def test_not_found(self) -> None:
        """Changing a charger that does not exist raises NotFound."""
        self.assertRaises(NotFound, self.query, chargers.set_charge_point_key, "NOPE", "h")
        self.assertRaises(
            NotFound, self.query, chargers.set_registration_status, "NOPE", "Accepted"
        )
        self.assertRaises(
            NotFound, self.query, chargers.record_boot, "NOPE", vendor="V", model="M", at=T0
        )

    def test_invalid_values_refused(self) -> None:
        """Unknown statuses and roles, and non-integer money, are ValueErrors."""
        self.assertRaises(ValueError, self.query, chargers.set_registration_status, "CP1", "Maybe")
        self.assertRaises(ValueError, self.query, users.add_user, "a@b.c", "h", "root", now=T0)
        self.assertRaises(ValueError, self.query, tags.add_id_tag, "T", status="Lost", now=T0)
        for kwargs in (
            {"currency": "eur", "price_per_kwh": 1},
            {"currency": "EUR", "price_per_kwh": 0.3},
            {"currency": "EUR", "price_per_kwh": -1},
        ):
            self.assertRaises(ValueError, self.query, tariffs.add_tariff, "X", now=T0, **kwargs)

    # -- reference data ------------------------------------------------------

    def test_charger_with_station_and_tariff(self) -> None:
        """A charger refers to its station and tariff; money and coordinates are integers."""
        station = self.query(
            stations.add_station,
            "Main St",
            address="1 Main St",
            latitude=52_520_008,
            longitude=13_404_954,
            now=T0,
        )
        tariff = self.query(
            tariffs.add_tariff,
            "Std",
            currency="EUR",
            price_per_kwh=35,
            price_per_minute=2,
            session_fee=50,
            now=T0,
        )
        self.query(
            chargers.add_charge_point, "CP3", "h", station_id=station, tariff_id=tariff, now=T0
        )
        record = found(self.query(chargers.get_charge_point, "CP3"))
        self.assertEqual(
            (record.station_id, record.tariff_id, record.online), (station, tariff, False)
        )
        self.assertEqual(
            found(self.query(stations.get_station_by_name, "Main St")).latitude, 52_520_008
        )
        self.assertEqual(found(self.query(stations.get_station, station)).name, "Main St")
        saved = found(self.query(tariffs.get_tariff_by_name, "Std"))
        self.assertEqual(
            (saved.id, saved.currency, saved.price_per_kwh, saved.session_fee),
            (tariff, "EUR", 35, 50),
        )
        self.assertEqual(self.query(tariffs.get_tariff, tariff), saved)
        self.assertIsNone(self.query(tariffs.get_tariff, tariff + 1))

    def test_users_and_tags(self) -> None:
        """Emails are stored lower-cased and found in any case; tags list in id order."""
        user_id = self.query(users.add_user, "Jo@Example.com", "hash", "customer", now=T0)
        user = found(self.query(users.get_user_by_email, "JO@example.com"))
        self.assertEqual((user.id, user.email, user.role), (user_id, "jo@example.com", "customer"))
        self.assertEqual(self.query(users.get_user, user_id), user)
        self.assertNotIn("hash", repr(user))
        self.query(
            tags.add_id_tag,
            "A-TAG",
            status="Blocked",
            parent_id_tag="TAG1",
            user_id=user_id,
            now=T0,
        )
        self.assertEqual(
            [(t.id_tag, t.status, t.user_id) for t in self.query(tags.list_id_tags)],
            [("A-TAG", "Blocked", user_id), ("TAG1", "Accepted", None)],
        )

    def test_pending_registration(self) -> None:
        """An unknown charger is registered Pending once; a known one is never changed."""
        register = chargers.register_pending_charge_point
        self.assertTrue(self.query(register, "NEW", "h", max_pending=5, now=T0))
        self.assertTrue(self.query(register, "NEW", "other", max_pending=5, now=T0))
        self.assertTrue(self.query(register, "CP1", "other", max_pending=5, now=T0))
        new = found(self.query(chargers.get_charge_point, "NEW"))
        self.assertEqual((new.registration_status, new.key_hash), ("Pending", "h"))
        self.assertEqual(found(self.query(chargers.get_charge_point, "CP1")).key_hash, "hash1")
        self.query(chargers.set_registration_status, "NEW", "Accepted")
        self.query(chargers.set_charge_point_key, "NEW", "h2")
        new = found(self.query(chargers.get_charge_point, "NEW"))
        self.assertEqual((new.registration_status, new.key_hash), ("Accepted", "h2"))

    def test_pending_registrations_capped(self) -> None:
        """Once max_pending chargers are Pending, no other is registered."""
        register = chargers.register_pending_charge_point
        self.assertTrue(self.query(register, "NEW1", None, max_pending=2, now=T0))
        self.assertTrue(self.query(register, "NEW2", None, max_pending=2, now=T0))
        self.assertFalse(self.query(register, "NEW3", None, max_pending=2, now=T0))
        self.assertIsNone(self.query(chargers.get_charge_point, "NEW3"))

    def test_key_rotation(self) -> None:
        """
        A pending key is kept beside the key until confirmed (then the only
        one) or dropped; an operator's key replaces both; an upgrade of the
        hash applies only to the hash it upgrades.
        """

        def keys() -> tuple[str | None, str | None]:
            record = found(self.query(chargers.get_charge_point, "CP1"))
            return record.key_hash, record.pending_key_hash

        self.assertTrue(self.query(chargers.set_pending_key, "CP1", "p1"))
        self.assertFalse(self.query(chargers.set_pending_key, "NOPE", "p1"))
        self.query(chargers.drop_pending_key, "CP1", "other")
        self.assertEqual(keys(), ("hash1", "p1"))
        self.query(chargers.drop_pending_key, "CP1", "p1")
        self.assertEqual(keys(), ("hash1", None))
        self.query(chargers.set_pending_key, "CP1", "p2")
        self.query(chargers.key_confirmed, "CP1", "p2")
        self.assertEqual(keys(), ("p2", None))
        # A confirmation of an earlier key leaves a later pending one pending.
        self.query(chargers.set_pending_key, "CP1", "p3")
        self.query(chargers.key_confirmed, "CP1", "p2b")
        self.assertEqual(keys(), ("p2b", "p3"))
        self.query(chargers.set_charge_point_key, "CP1", "operator")
        self.assertEqual(keys(), ("operator", None))
        self.assertFalse(self.query(chargers.upgrade_key_hash, "CP1", old="stale", new="x"))
        self.assertTrue(self.query(chargers.upgrade_key_hash, "CP1", old="operator", new="up"))
        self.assertEqual(keys(), ("up", None))

    # -- charger state -------------------------------------------------------

    def test_file_statuses_kept_newest_first(self) -> None:
        """Firmware and diagnostics states are stored apart; a late older one changes nothing."""
        record = chargers.record_file_status
        self.assertTrue(self.query(record, "CP1", "firmware", status="Installing", at=minutes(9)))
        self.assertFalse(self.query(record, "CP1", "firmware", status="Downloading", at=minutes(5)))
        self.query(record, "CP1", "diagnostics", status="Uploaded", at=minutes(7))
        self.assertFalse(self.query(record, "NOPE", "firmware", status="Idle", at=minutes(9)))
        cp = found(self.query(chargers.get_charge_point, "CP1"))
        self.assertEqual(
            (cp.firmware_status, cp.firmware_status_at, cp.diagnostics_status),
            ("Installing", minutes(9), "Uploaded"),
        )

    def test_boot_recorded_and_not_undone_by_an_older_boot(self) -> None:
        """A boot's fields are stored; an older boot processed late changes nothing."""
        self.query(
            chargers.record_boot,
            "CP1",
            vendor="Acme",
            model="X",
            firmware_version="2.0",
            iccid="8931",
            at=minutes(10),
        )
        self.query(
            chargers.record_boot,
            "CP1",
            vendor="Acme",
            model="X",
            firmware_version="1.0",
            at=minutes(5),
        )
        record = found(self.query(chargers.get_charge_point, "CP1"))
        self.assertEqual(
            (record.vendor, record.model, record.firmware_version, record.iccid, record.boot_at),
            ("Acme", "X", "2.0", "8931", minutes(10)),
        )
        self.assertEqual(record.last_seen_at, minutes(10))

    def test_connector_status_out_of_order(self) -> None:
        """A StatusNotification older than the stored one is ignored; equal or newer applies."""

        def status(value: str, at: datetime, connector: int = 1) -> bool:
            return self.query(
                chargers.set_connector_status,
                "CP1",
                connector,
                status=value,
                error_code="NoError",
                info=f"at {at:%H:%M}",
                at=at,
            )

        self.assertTrue(status("Charging", minutes(10)))
        self.assertFalse(status("Preparing", minutes(5)))
        self.assertEqual(self.query(chargers.list_connectors, "CP1")[0].status, "Charging")
        self.assertTrue(status("Finishing", minutes(10)))
        self.assertTrue(status("Available", minutes(11)))
        self.assertTrue(status("Available", minutes(1), connector=0))
        connectors = self.query(chargers.list_connectors, "CP1")
        self.assertEqual(
            [(c.connector_id, c.status, c.info, c.status_at) for c in connectors],
            [(0, "Available", "at 10:01", minutes(1)), (1, "Available", "at 10:11", minutes(11))],
        )
        self.assertEqual(self.query(chargers.list_connectors, "CP2"), [])

    def test_stale_disconnect_leaves_the_charger_online(self) -> None:
        """Only the current connection's disconnect marks the charger offline."""
        self.assertTrue(
            self.query(chargers.set_connected, "CP1", connection_id="old", node="n1", at=minutes(1))
        )
        self.assertTrue(
            self.query(chargers.set_connected, "CP1", connection_id="new", node="n2", at=minutes(2))
        )
        self.assertFalse(
            self.query(chargers.set_disconnected, "CP1", connection_id="old", at=minutes(3))
        )
        record = found(self.query(chargers.get_charge_point, "CP1"))
        self.assertEqual((record.online, record.connection_id, record.node), (True, "new", "n2"))
        self.assertTrue(
            self.query(chargers.set_disconnected, "CP1", connection_id="new", at=minutes(4))
        )
        record = found(self.query(chargers.get_charge_point, "CP1"))
        self.assertEqual((record.online, record.last_seen_at), (False, minutes(4)))

    def test_late_connect_event_is_ignored(self) -> None:
        """The connect of an older socket processed after a newer one's does not replace it."""
        self.query(chargers.set_connected, "CP1", connection_id="new", node="n2", at=minutes(2))
        self.assertFalse(
            self.query(chargers.set_connected, "CP1", connection_id="old", node="n1", at=minutes(1))
        )
        self.assertFalse(
            self.query(chargers.set_disconnected, "CP1", connection_id="old", at=minutes(3))
        )
        record = found(self.query(chargers.get_charge_point, "CP1"))
        self.assertEqual((record.online, record.connection_id), (True, "new"))

    def test_fence_orders_connects_across_node_clocks(self) -> None:
        """
        Presence fences order connect events whatever the nodes' clocks say: the
        newer connection (greater fence) stamped earlier by a node whose clock
        is behind still wins, and the older one's late events change nothing.
        """

        def connect(connection_id: str, at: int, fence: int | None) -> bool:
            return bool(
                self.query(
                    chargers.set_connected,
                    "CP1",
                    connection_id=connection_id,
                    node=connection_id,
                    at=minutes(at),
                    fence=fence,
                )
            )

        def disconnect(connection_id: str, at: int, fence: int | None) -> bool:
            return bool(
                self.query(
                    chargers.set_disconnected,
                    "CP1",
                    connection_id=connection_id,
                    at=minutes(at),
                    fence=fence,
                )
            )

        self.assertTrue(connect("b", 5, 10))
        self.assertTrue(connect("a", 4, 11))  # a's clock is behind
        self.assertFalse(connect("b", 6, 10))  # b's connect event delivered twice, late
        self.assertFalse(disconnect("b", 7, 10))
        record = found(self.query(chargers.get_charge_point, "CP1"))
        self.assertEqual((record.online, record.node), (True, "a"))
        # An event without a fence (a node of an older version) orders by time.
        self.assertFalse(connect("old", 3, None))
        self.assertTrue(disconnect("a", 8, 11))
        self.assertFalse(found(self.query(chargers.get_charge_point, "CP1")).online)

    def test_disconnect_before_its_own_connect_leaves_charger_offline(self) -> None:
        """
        A connection's disconnect processed before its connect (the two came
        from different nodes' events): the charger stays offline, and the
        late connect, no newer, changes nothing. A later connection still wins.
        """

        def connect(connection_id: str, at: int, fence: int) -> bool:
            return bool(
                self.query(
                    chargers.set_connected,
                    "CP1",
                    connection_id=connection_id,
                    node="n",
                    at=minutes(at),
                    fence=fence,
                )
            )

        def disconnect(connection_id: str, at: int, fence: int) -> bool:
            return bool(
                self.query(
                    chargers.set_disconnected,
                    "CP1",
                    connection_id=connection_id,
                    at=minutes(at),
                    fence=fence,
                )
            )

        self.assertTrue(connect("a", 1, 10))
        self.assertTrue(disconnect("b", 3, 11))  # b's connect is still on its way
        self.assertFalse(connect("b", 2, 11))
        self.assertFalse(found(self.query(chargers.get_charge_point, "CP1")).online)
        self.assertFalse(disconnect("a", 4, 10))  # older: nothing
        self.assertTrue(connect("c", 5, 12))
        record = found(self.query(chargers.get_charge_point, "CP1"))
        self.assertEqual((record.online, record.connection_id), (True, "c"))

    def test_last_seen_only_moves_forward(self) -> None:
        """A late message does not move ``last_seen_at`` back."""
        self.query(chargers.touch_last_seen, "CP1", minutes(5))
        self.query(chargers.touch_last_seen, "CP1", minutes(1))
        self.query(chargers.set_connected, "CP1", connection_id="c", node="n", at=minutes(2))
        self.assertEqual(
            found(self.query(chargers.get_charge_point, "CP1")).last_seen_at, minutes(5)
        )
        self.query(chargers.touch_last_seen, "CP1", minutes(6))
        self.assertEqual(
            found(self.query(chargers.get_charge_point, "CP1")).last_seen_at, minutes(6)
        )

    def test_presence_and_boot_times_compare_as_instants(self) -> None:
        """
        Connect, disconnect and boot times in any zone are stored and compared
        as their UTC instant (their statements bind times themselves, in SET
        and WHERE alike): a later wall clock in an eastern zone is not later.
        """
        east, west = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))
        self.assertTrue(
            self.query(
                chargers.set_connected,
                "CP1",
                connection_id="a",
                node="n",
                at=minutes(2).astimezone(west),
                fence=None,
            )
        )
        self.assertFalse(
            self.query(
                chargers.set_connected,
                "CP1",
                connection_id="b",
                node="n",
                at=minutes(1).astimezone(east),
            )
        )
        self.query(
            chargers.record_boot, "CP1", vendor="V", model="new", at=minutes(3).astimezone(west)
        )
        self.query(
            chargers.record_boot, "CP1", vendor="V", model="old", at=minutes(2).astimezone(east)
        )
        record = found(self.query(chargers.get_charge_point, "CP1"))
        self.assertEqual(
            (record.connection_id, record.connected_at, record.model, record.boot_at),
            ("a", minutes(2), "new", minutes(3)),
        )
        self.assertIs(found(record.connected_at).tzinfo, UTC)
        self.assertTrue(
            self.query(
                chargers.set_disconnected, "CP1", connection_id="a", at=minutes(4).astimezone(east)
            )
        )
        record = found(self.query(chargers.get_charge_point, "CP1"))
        self.assertEqual((record.online, record.last_seen_at), (False, minutes(4)))

    # -- sessions ------------------------------------------------------------

    def test_allocation_is_idempotent(self) -> None:
        """The same start fingerprint gets the same id; any difference gets a new one."""
        first = self.allocate()
        self.assertEqual((first.created, first.concurrent), (True, False))
        again = self.allocate()
        self.assertEqual(again, Allocation(first.transaction_id, created=False, concurrent=False))
        # The same instant written with another offset is the same start.
        same_instant = T0.astimezone(timezone(timedelta(hours=-5)))
        self.assertEqual(self.allocate(at=same_instant).transaction_id, first.transaction_id)
        others = {
            self.allocate(meter=101).transaction_id,
            self.allocate(connector=2).transaction_id,
            self.allocate(at=minutes(1)).transaction_id,
            self.allocate(cp="CP2").transaction_id,
        }
        self.assertEqual(len(others), 4)
        self.assertNotIn(first.transaction_id, others)

    @inlineCallbacks
    def test_allocation_under_concurrent_callers(self) -> Any:
        """Many concurrent resends of one start get one id; exactly one created it."""
        calls = [
            self.database.run(
                transactions.allocate_transaction,
                charge_point_id="CP1",
                connector_id=1,
                id_tag="TAG1",
                id_tag_status="Accepted",
                meter_start_wh=100,
                started_at=T0,
                now=T0,
            )
            for _ in range(8)
        ]
        results = yield DeferredList(calls, fireOnOneErrback=True, consumeErrors=True)
        allocations = [allocation for _, allocation in results]
        self.assertEqual(len({a.transaction_id for a in allocations}), 1)
        self.assertEqual(sum(a.created for a in allocations), 1)
        self.assertEqual(len(self.query(transactions.active_transactions)), 1)

    def test_session_row(self) -> None:
        """The new session is active, with the tag's owner and the charger's tariff."""
        user_id = self.query(users.add_user, "u@example.com", "h", "customer", now=T0)
        self.query(tags.add_id_tag, "OWNED", user_id=user_id, now=T0)
        tariff = self.query(tariffs.add_tariff, "Std", currency="EUR", price_per_kwh=30, now=T0)
        self.query(chargers.add_charge_point, "CP3", None, tariff_id=tariff, now=T0)
        tx = self.allocate(cp="CP3", tag="OWNED").transaction_id
        record = self.transaction(tx)
        self.assertEqual(
            (record.status, record.user_id, record.tariff_id, record.meter_start_wh),
            ("active", user_id, tariff, 100),
        )
        self.assertEqual((record.started_at, record.energy_wh, record.cost), (T0, None, None))
        # An explicit user wins; an unknown tag still gets a session (offline start).
        other = self.query(users.add_user, "v@example.com", "h", "customer", now=T0)
        explicit = self.query(
            transactions.allocate_transaction,
            charge_point_id="CP1",
            connector_id=2,
            id_tag="OWNED",
            id_tag_status="Accepted",
            meter_start_wh=0,
            started_at=T0,
            user_id=other,
            now=T0,
        )
        self.assertEqual(self.transaction(explicit.transaction_id).user_id, other)
        unknown = self.allocate(tag="NOBODY", status="Invalid", connector=3)
        record = self.transaction(unknown.transaction_id)
        self.assertEqual((record.id_tag_status, record.user_id), ("Invalid", None))
        self.assertEqual([t.id for t in self.query(transactions.active_transactions, "CP3")], [tx])

    def test_concurrent_tag(self) -> None:
        """An Accepted tag active on another connector makes a start concurrent, resends too."""
        first = self.allocate()
        elsewhere = self.allocate(cp="CP2", meter=7)
        self.assertTrue(elsewhere.concurrent)
        self.assertEqual(self.transaction(elsewhere.transaction_id).id_tag_status, "ConcurrentTx")
        self.assertTrue(self.allocate(cp="CP2", meter=7).concurrent)  # a resend: same answer
        self.assertTrue(self.allocate(connector=2, meter=8).concurrent)  # same charger
        # A session answered with another status does not count.
        self.query(tags.add_id_tag, "TAG2", now=T0)
        self.allocate(tag="TAG2", status="Blocked")
        self.assertFalse(self.allocate(cp="CP2", tag="TAG2", meter=1).concurrent)
        # Once the first stops, the tag is free again.
        self.assertEqual(self.stop(first.transaction_id), "stopped")
        self.assertFalse(self.allocate(cp="CP2", meter=9).concurrent)

    def unconfirmed(self, **kwargs: Any) -> Allocation:
        """A start allocated as the request path does: invisible until confirmed."""
        values = {
            "charge_point_id": "CP1",
            "connector_id": 1,
            "id_tag": "TAG1",
            "id_tag_status": "Accepted",
            "meter_start_wh": 100,
            "started_at": T0,
            "now": T0,
            **kwargs,
        }
        return self.query(transactions.allocate_transaction, confirmed=False, **values)

    def test_unconfirmed_start_is_seen_by_no_reader(self) -> None:
        """
        A start whose StartTransaction the bus never took (refused with
        InternalError) is no session to anyone: not active, not listed, not on
        the dashboard, no ConcurrentTx for the tag elsewhere.
        """
        pending = self.unconfirmed()
        self.assertTrue(pending.created)
        tx = pending.transaction_id
        self.assertEqual(self.query(transactions.active_transactions), [])
        self.assertIsNone(self.query(transactions.get_transaction, tx))
        self.assertEqual(self.query(transactions.list_sessions_page, limit=10), [])
        self.assertIsNone(
            self.query(
                transactions.session_started_after,
                charge_point_id="CP1",
                id_tag="TAG1",
                since=T0,
            )
        )
        figures = self.query(dashboard.dashboard, now=minutes(1))
        self.assertEqual((figures["activeSessions"], figures["recentSessions"]), (0, []))
        # The tag is free on another charger: that start is Accepted, not ConcurrentTx.
        elsewhere = self.allocate(cp="CP2")
        self.assertFalse(elsewhere.concurrent)

    def test_resent_unconfirmed_start_gets_its_id_and_is_confirmed_once(self) -> None:
        """A resend finds the same row; confirming is idempotent and makes it active."""
        tx = self.unconfirmed().transaction_id
        again = self.unconfirmed()
        self.assertEqual((again.transaction_id, again.created), (tx, False))
        self.assertTrue(self.query(transactions.confirm_transaction, tx))
        self.assertFalse(self.query(transactions.confirm_transaction, tx))
        self.assertEqual([t.id for t in self.query(transactions.active_transactions)], [tx])
        self.assertEqual(self.allocate().transaction_id, tx)

    def test_resent_unconfirmed_start_decides_concurrency_again(self) -> None:
        """
        Nobody was answered for an unconfirmed start, so its resend is answered
        against the sessions active now.
        """
        first = self.unconfirmed()
        self.assertFalse(first.concurrent)
        # Meanwhile the tag started (and was answered) on another charger.
        self.allocate(cp="CP2")
        resent = self.unconfirmed()
        self.assertEqual((resent.transaction_id, resent.concurrent), (first.transaction_id, True))
        record = found(
            self.query(transactions.get_transaction, first.transaction_id, unconfirmed=True)
        )
        self.assertEqual(record.id_tag_status, "ConcurrentTx")

    def test_stop_confirms_an_unconfirmed_session(self) -> None:
        """A stop for its id proves the charger was answered, so the bus had the start."""
        tx = self.unconfirmed().transaction_id
        self.assertEqual(self.stop(tx), "stopped")
        record = self.transaction(tx)
        self.assertEqual((record.status, record.confirmed), ("completed", True))

    def test_unconfirmed_starts_expire(self) -> None:
        """Only unconfirmed rows older than the bound are deleted; a later resend gets a new id."""
        old = self.unconfirmed().transaction_id
        young = self.unconfirmed(meter_start_wh=5, now=minutes(30)).transaction_id
        kept = self.allocate(meter=7).transaction_id
        deleted = self.query(transactions.expire_unconfirmed, created_before=minutes(10), limit=10)
        self.assertEqual(deleted, 1)
        self.assertIsNone(self.query(transactions.get_transaction, old, unconfirmed=True))
        self.assertIsNotNone(self.query(transactions.get_transaction, young, unconfirmed=True))
        self.assertIsNotNone(self.query(transactions.get_transaction, kept))
        self.assertNotEqual(self.unconfirmed().transaction_id, old)

    def test_stop_outcomes(self) -> None:
        """Stopped once, then duplicate; unknown ids and other chargers' ids are unmatched."""
        tx = self.allocate().transaction_id
        self.assertEqual(self.stop(tx), "stopped")
        self.assertEqual(self.stop(tx, meter=999), "duplicate")
        record = self.transaction(tx)
        self.assertEqual(
            (record.status, record.meter_stop_wh, record.energy_wh, record.stopped_at),
            ("completed", 500, 400, minutes(60)),
        )
        self.assertEqual((record.stop_reason, record.stop_id_tag), ("Local", "TAG1"))

        other = self.allocate(cp="CP2", meter=0).transaction_id
        self.assertEqual(self.stop(other, cp="CP1"), "unknown")
        self.assertEqual(self.transaction(other).status, "active")
        self.assertEqual(self.stop(424242), "unknown")
        self.assertEqual(self.stop(424242), "unknown")  # resent: stored once
        self.assertEqual(self.stop(2**40), "unknown")  # not even a 32-bit id
        unmatched = self.query(transactions.list_unmatched_stops, "CP1")
        self.assertEqual([u.transaction_id for u in unmatched], [other, 424242, 2**40])
        self.assertEqual((unmatched[1].meter_stop_wh, unmatched[1].reason), (500, "Local"))
        self.assertEqual(self.query(transactions.list_unmatched_stops, "CP2"), [])

    def test_energy_never_negative(self) -> None:
        """A meter that went backwards (replaced mid-session) gives zero energy, not less."""
        tx = self.allocate(meter=5000).transaction_id
        self.meter(tx, MeterSample(timestamp=minutes(5), value="4000"))
        self.assertEqual(self.transaction(tx).energy_wh, 0)
        self.assertEqual(self.stop(tx, meter=10), "stopped")
        self.assertEqual(self.transaction(tx).energy_wh, 0)

    # -- meter values --------------------------------------------------------

    def test_meter_values_stored_once(self) -> None:
        """A resent MeterValues adds nothing; a sample differing in any key field is new."""
        tx = self.allocate().transaction_id
        sample = MeterSample(timestamp=minutes(5), value="200", context="Sample.Periodic")
        self.assertEqual(self.meter(tx, sample), 1)
        self.assertEqual(self.meter(tx, sample), 0)
        self.assertEqual(self.meter(tx, sample, sample), 0)
        variants = [
            attrs.evolve(sample, phase="L1"),
            attrs.evolve(sample, location="Inlet"),
            attrs.evolve(sample, context=None),
            attrs.evolve(sample, measurand="Power.Active.Import", unit="W"),
            attrs.evolve(sample, timestamp=minutes(6)),
        ]
        self.assertEqual(self.meter(tx, *variants), 5)
        self.assertEqual(self.meter(tx, *variants), 0)
        # Without a transaction (the NULL that unique indices would not catch).
        self.assertEqual(self.meter(None, sample), 1)
        self.assertEqual(self.meter(None, sample), 0)
        values = self.query(
            lambda conn: transactions.list_meter_values(conn, charge_point_id="CP1")
        )
        self.assertEqual(len(values), 7)
        loose = [v for v in values if v.transaction_id is None]
        self.assertEqual(len(loose), 1)
        self.assertEqual(
            (loose[0].phase, loose[0].location, loose[0].context, loose[0].unit),
            (None, None, "Sample.Periodic", "Wh"),
        )

    def test_meter_values_listed_in_time_order(self) -> None:
        """A session's samples come in timestamp order, whatever order they arrived in."""
        tx = self.allocate().transaction_id
        self.meter(tx, MeterSample(timestamp=minutes(9), value="900"))
        self.meter(
            tx,
            MeterSample(timestamp=minutes(3), value="300"),
            MeterSample(timestamp=minutes(6), value="600"),
        )
        self.assertEqual([v.value for v in self.meter_values_of(tx)], ["300", "600", "900"])
        self.assertEqual(self.meter_values_of(tx)[0].timestamp, minutes(3))
        self.assertEqual(self.meter_values_of(tx)[0].transaction_id, tx)

    def test_kwh_converted_to_wh(self) -> None:
        """Energy in kWh is stored as sent and as integer Wh, rounded half up; others get None."""
        tx = self.allocate(meter=1000).transaction_id
        self.meter(
            tx,
            MeterSample(timestamp=minutes(1), value="1.0005", unit="kWh"),
            MeterSample(timestamp=minutes(1), value="2.5", unit="Wh", phase="L1"),
            MeterSample(
                timestamp=minutes(1), value="11000", measurand="Power.Active.Import", unit="W"
            ),
            MeterSample(
                timestamp=minutes(1),
                value="1",
                measurand="Energy.Reactive.Import.Register",
                unit="kvarh",
            ),
        )
        values = {(v.measurand, v.phase): (v.value, v.value_wh) for v in self.meter_values_of(tx)}
        self.assertEqual(
            values,
            {
                ("Energy.Active.Import.Register", None): ("1.0005", 1001),
                ("Energy.Active.Import.Register", "L1"): ("2.5", 3),
                ("Power.Active.Import", None): ("11000", None),
                ("Energy.Reactive.Import.Register", None): ("1", None),
            },
        )
        # Only the phase-less register moves the session's energy.
        self.assertEqual(
            (self.transaction(tx).last_meter_wh, self.transaction(tx).energy_wh), (1001, 1)
        )

    def test_running_energy_and_late_meter_after_stop(self) -> None:
        """Energy follows the newest register reading while active and is final after the stop."""
        tx = self.allocate(meter=1000).transaction_id
        self.meter(
            tx,
            MeterSample(timestamp=minutes(5), value="1.5", unit="kWh"),
            MeterSample(timestamp=minutes(10), value="2000"),
        )
        record = self.transaction(tx)
        self.assertEqual(
            (record.last_meter_wh, record.last_meter_at, record.energy_wh),
            (2000, minutes(10), 1000),
        )
        self.meter(tx, MeterSample(timestamp=minutes(7), value="1800"))  # older: no effect
        self.assertEqual(self.transaction(tx).energy_wh, 1000)
        self.assertEqual(self.stop(tx, meter=3000), "stopped")
        self.meter(tx, MeterSample(timestamp=minutes(90), value="9999"))  # after the stop
        record = self.transaction(tx)
        self.assertEqual(
            (record.energy_wh, record.last_meter_wh, record.meter_stop_wh), (2000, 2000, 3000)
        )
        self.assertEqual(
            [(v.value, v.value_wh) for v in self.meter_values_of(tx)],
            [("1.5", 1500), ("1800", 1800), ("2000", 2000), ("9999", 9999)],
        )

    def test_other_chargers_meter_values_do_not_touch_a_session(self) -> None:
        """Samples quoting another charger's transaction id are kept but change nothing of it."""
        tx = self.allocate(meter=0).transaction_id
        self.assertEqual(
            self.meter(tx, MeterSample(timestamp=minutes(5), value="7777"), cp="CP2"), 1
        )
        self.assertEqual(self.transaction(tx).energy_wh, None)
        self.assertEqual(self.meter_values_of(tx), [])
        on_cp2 = self.query(
            lambda conn: transactions.list_meter_values(conn, charge_point_id="CP2")
        )
        self.assertEqual([(v.value, v.transaction_id) for v in on_cp2], [("7777", tx)])

    def test_metered_session_is_the_session_read_after_the_meter(self) -> None:
        """
        ``metered_session`` (the processor's one statement, on the driver's
        cursor) moves the meter as ``advance_session_meter`` does and returns
        what ``get_transaction`` then reads: after a newer reading (the
        update's own row), an older one, none, a stop; and nothing for an
        unconfirmed session, another charger's, an unknown one, or none.
        """

        def metered(tx: int | None, *samples: MeterSample, cp: str = "CP1") -> Any:
            readings = transactions.meter_readings(
                charge_point_id=cp,
                connector_id=1,
                transaction_id=tx,
                samples=list(samples),
                now=minutes(1),
            )
            return self.query(transactions.metered_session, readings, now=minutes(1))

        tx = self.allocate(meter=1000).transaction_id
        newer = metered(tx, MeterSample(timestamp=minutes(5), value="1.5", unit="kWh"))
        self.assertEqual((newer.energy_wh, newer.updated_at), (500, minutes(1)))
        self.assertEqual(newer, self.transaction(tx))
        self.assertEqual(metered(tx, MeterSample(timestamp=minutes(4), value="1")), newer)
        power = MeterSample(timestamp=minutes(6), value="7", measurand="Power.Active.Import")
        self.assertEqual(metered(tx, power), newer)
        self.stop(tx)
        self.assertEqual(
            metered(tx, MeterSample(timestamp=minutes(70), value="9999")), self.transaction(tx)
        )
        self.assertIsNone(metered(tx, MeterSample(timestamp=minutes(80), value="1"), cp="CP2"))
        self.assertIsNone(metered(424242, MeterSample(timestamp=minutes(5), value="1")))
        self.assertIsNone(metered(None, MeterSample(timestamp=minutes(5), value="1")))
        unconfirmed = self.allocate(connector=2, meter=0, confirmed=False).transaction_id
        self.assertIsNone(metered(unconfirmed, MeterSample(timestamp=minutes(5), value="1")))
        self.assertIsNone(metered(unconfirmed, MeterSample(timestamp=minutes(6), value="2")))

    def test_first_record_is_from_mapping_of_first(self) -> None:
        """
        ``Prepared.first_record`` builds what ``from_mapping`` of ``first``
        does (columns in another order than the fields, times converted,
        a single field too), None for no row; keyword-only fields are refused.
        """
        tx = self.allocate(meter=1000).transaction_id
        by_id = tables.transactions.c.id == sa.bindparam("tx_id")
        session = Prepared(sa.select(*reversed(tables.transactions.c)).where(by_id))
        started = Prepared(sa.select(tables.transactions.c.started_at).where(by_id))

        @attrs.frozen
        class Started:
            started_at: datetime

        @attrs.frozen
        class KeywordStarted:
            started_at: datetime = attrs.field(kw_only=True)

        def read(conn: Any) -> list[Any]:
            return [
                session.first_record(conn, {"tx_id": tx}, records.TransactionRecord),
                records.from_mapping(
                    records.TransactionRecord, session.first(conn, {"tx_id": tx}) or {}
                ),
                started.first_record(conn, {"tx_id": tx}, Started),
                session.first_record(conn, {"tx_id": tx + 1}, records.TransactionRecord),
            ]

        record, mapped, only, missing = self.query(read)
        self.assertEqual(record, mapped)
        self.assertEqual(record, self.transaction(tx))
        self.assertEqual(only, Started(record.started_at))
        self.assertIsNone(missing)
        self.assertRaises(
            TypeError,
            self.query,
            lambda conn: started.first_record(conn, {"tx_id": tx}, KeywordStarted),
        )

    def test_metered_sessions_are_metered_session_in_turn(self) -> None:
        """
        ``metered_sessions`` (the processor's statements of consecutive
        MeterValues, one pipeline on PostgreSQL) returns and changes what
        ``metered_session`` called in turn does: each reading sees the ones
        before it and none after, the same session several times included.
        """
        sequence: list[tuple[int | None, str, MeterSample]] = [
            (
                1,
                "CP1",
                MeterSample(timestamp=minutes(3), value="7", measurand="Power.Active.Import"),
            ),
            (1, "CP1", MeterSample(timestamp=minutes(5), value="1.5", unit="kWh")),
            (1, "CP1", MeterSample(timestamp=minutes(4), value="1", unit="kWh")),
            (
                1,
                "CP1",
                MeterSample(timestamp=minutes(6), value="7", measurand="Power.Active.Import"),
            ),
            (2, "CP1", MeterSample(timestamp=minutes(5), value="1200")),
            (1, "CP2", MeterSample(timestamp=minutes(9), value="9999")),
            (None, "CP1", MeterSample(timestamp=minutes(5), value="1")),
            (424242, "CP1", MeterSample(timestamp=minutes(5), value="1")),
            (1, "CP1", MeterSample(timestamp=minutes(7), value="2500")),
            (3, "CP1", MeterSample(timestamp=minutes(7), value="2500")),
        ]

        def run(ids: dict[int, int], together: bool) -> list[Any]:
            metered = [
                (
                    transactions.meter_readings(
                        charge_point_id=cp,
                        connector_id=1,
                        transaction_id=ids.get(tx, tx) if tx is not None else None,
                        samples=[sample],
                        now=minutes(1),
                    ),
                    minutes(1),
                )
                for tx, cp, sample in sequence
            ]

            def in_turn(conn: Connection) -> list[Any]:
                return [
                    transactions.metered_session(conn, readings, now=now)
                    for readings, now in metered
                ]

            if together:
                return self.query(transactions.metered_sessions, metered)
            return self.query(in_turn)

        def sessions(at: datetime) -> dict[int, int]:
            # Started at another time each: otherwise the same start, the same session.
            first = self.allocate(connector=1, meter=1000, at=at).transaction_id
            second = self.allocate(connector=2, tag="TAG2", meter=0, at=at).transaction_id
            third = self.allocate(
                connector=3, tag="TAG3", meter=0, at=at, confirmed=False
            ).transaction_id
            self.stop(second, meter=0)
            return {1: first, 2: second, 3: third}

        together_ids = sessions(T0)
        together = run(together_ids, together=True)
        in_turn_ids = sessions(T0 + timedelta(seconds=1))
        in_turn = run(in_turn_ids, together=False)

        def seen(results: list[Any], ids: dict[int, int]) -> list[Any]:
            names = {v: k for k, v in ids.items()}
            return [
                None if r is None else (names[r.id], r.energy_wh, r.last_meter_at, r.status)
                for r in results
            ]

        self.assertEqual(seen(together, together_ids), seen(in_turn, in_turn_ids))
        self.assertEqual(
            [None if r is None else r.energy_wh for r in together],
            [None, 500, 500, 500, 0, None, None, None, 1500, None],
        )
        self.assertEqual(self.transaction(together_ids[1]).energy_wh, 1500)

    def test_metered_sessions_of_interleaved_sessions(self) -> None:
        """
        Two and three MeterValues of one session among another's in one run
        (several rounds of one statement each on PostgreSQL): each sees the
        ones of its session before it, a reading older than the session's
        last changes nothing, a stopped session only reads, and every result
        is the message's own, in the messages' order.
        """
        first = self.allocate(connector=1, meter=1000).transaction_id
        second = self.allocate(connector=2, tag="TAG2", meter=0).transaction_id
        stopped = self.allocate(connector=3, tag="TAG3", meter=0).transaction_id
        self.stop(stopped, meter=300)
        sequence = [
            (first, minutes(1), "1500"),
            (second, minutes(1), "200"),
            (stopped, minutes(2), "900"),
            (first, minutes(2), "1400"),
            (second, minutes(0.5), "900"),
            (stopped, minutes(3), "950"),
            (first, minutes(3), "2500"),
        ]
        metered = [
            (
                transactions.meter_readings(
                    charge_point_id="CP1",
                    connector_id=1,
                    transaction_id=tx,
                    samples=[MeterSample(timestamp=at, value=value)],
                    now=minutes(10 + place),
                ),
                minutes(10 + place),
            )
            for place, (tx, at, value) in enumerate(sequence)
        ]
        results = self.query(transactions.metered_sessions, metered)
        seen = [
            None if r is None else (r.id, r.energy_wh, r.last_meter_at, r.status, r.updated_at)
            for r in results
        ]
        self.assertEqual(
            seen,
            [
                (first, 500, minutes(1), "active", minutes(10)),
                (second, 200, minutes(1), "active", minutes(11)),
                (stopped, 300, None, "completed", T0),
                (first, 400, minutes(2), "active", minutes(13)),
                (second, 200, minutes(1), "active", minutes(11)),
                (stopped, 300, None, "completed", T0),
                (first, 1500, minutes(3), "active", minutes(16)),
            ],
        )
        self.assertEqual(
            (self.transaction(first).last_meter_wh, self.transaction(first).energy_wh),
            (2500, 1500),
        )
        self.assertEqual(self.transaction(second).last_meter_wh, 200)

    def metered_rolled_back(
        self, metered: list[tuple[Any, datetime]], *, together: bool
    ) -> tuple[list[Any], list[dict[str, Any]]]:
        """
        ``metered_sessions`` of ``metered`` (``together``) or
        ``metered_session`` of each in turn, in a transaction rolled back
        after: the records returned and every session's row as it left them.
        """

        class RolledBack(Exception):
            pass

        def rolled_back(conn: Connection) -> None:
            if together:
                results = transactions.metered_sessions(conn, metered)
            else:
                results = [
                    transactions.metered_session(conn, readings, now=now)
                    for readings, now in metered
                ]
            rows = conn.execute(
                sa.select(tables.transactions).order_by(tables.transactions.c.id)
            ).all()
            raise RolledBack(list(results), [row._asdict() for row in rows])

        try:
            self.query(rolled_back)
        except RolledBack as e:
            return e.args[0], e.args[1]
        raise AssertionError("not rolled back")

    def test_metered_sessions_leave_what_metered_session_leaves(self) -> None:
        """
        On the same sessions (each way in a transaction rolled back after),
        ``metered_sessions`` returns the very records that ``metered_session``
        called in turn returns, and leaves every column of every session as
        it does: each message with its own arrival time, a session metered
        several times in the run, readings older, equal, newer and without
        energy, in several ``IN`` lists on SQLite, another charger's,
        unconfirmed, stopped and unknown sessions.
        """
        first = self.allocate(connector=1, meter=1000).transaction_id
        second = self.allocate(connector=2, tag="TAG2", meter=0).transaction_id
        stopped = self.allocate(connector=3, tag="TAG3", meter=0).transaction_id
        self.stop(stopped, meter=300)
        unconfirmed = self.allocate(connector=4, tag="TAG4", meter=0, confirmed=False)
        others = self.allocate(cp="CP2", connector=1, tag="TAG5", meter=50).transaction_id
        power = "Power.Active.Import"
        sequence: list[tuple[int | None, str, float, str, str]] = [
            (first, "CP1", 1, "1500", ENERGY_REGISTER),
            (second, "CP1", 1, "200", ENERGY_REGISTER),
            (first, "CP1", 1, "1600", ENERGY_REGISTER),  # the same time: no change
            (stopped, "CP1", 2, "900", ENERGY_REGISTER),
            (unconfirmed.transaction_id, "CP1", 2, "40", ENERGY_REGISTER),
            (first, "CP1", 0.5, "1400", ENERGY_REGISTER),  # older: no change
            (first, "CP1", 3, "7", power),  # no energy: only read
            (others, "CP1", 4, "90", ENERGY_REGISTER),  # another charger's: none
            (others, "CP2", 4, "20", ENERGY_REGISTER),  # below its start: 0 Wh
            (None, "CP1", 5, "1", ENERGY_REGISTER),
            (424242, "CP1", 5, "1", ENERGY_REGISTER),
            (second, "CP1", 0.5, "900", ENERGY_REGISTER),
            (first, "CP1", 6, "2500", ENERGY_REGISTER),
            (unconfirmed.transaction_id, "CP1", 3, "60", ENERGY_REGISTER),
        ]
        metered = [
            (
                transactions.meter_readings(
                    charge_point_id=cp,
                    connector_id=1,
                    transaction_id=tx,
                    samples=[MeterSample(timestamp=minutes(at), value=value, measurand=measurand)],
                    now=minutes(10 + place),
                ),
                minutes(10 + place),
            )
            for place, (tx, cp, at, value, measurand) in enumerate(sequence)
        ]

        self.patch(meter_runs, "IDS_PER_SELECT", 2)
        in_turn = self.metered_rolled_back(metered, together=False)
        together = self.metered_rolled_back(metered, together=True)
        self.assertEqual(together, in_turn)
        results, rows = together
        self.assertEqual(
            [None if r is None else (r.id, r.energy_wh, r.updated_at) for r in results],
            [
                (first, 500, minutes(10)),
                (second, 200, minutes(11)),
                (first, 500, minutes(10)),
                (stopped, 300, T0),
                None,
                (first, 500, minutes(10)),
                (first, 500, minutes(10)),
                None,
                (others, 0, minutes(18)),
                None,
                None,
                (second, 200, minutes(11)),
                (first, 1500, minutes(22)),
                None,
            ],
        )
        # The unconfirmed session's meter moved all the same, as the UPDATE moves it.
        by_id = {row["id"]: row for row in rows}
        self.assertEqual(by_id[unconfirmed.transaction_id]["last_meter_wh"], 60)
        self.assertEqual(self.transaction(first).energy_wh, None)  # rolled back

    def test_metered_sessions_read_moved_times_as_stored(self) -> None:
        """
        A session metered several times in one run: each record after a
        move is the one its row reads (``metered_session``'s), its times
        aware UTC (``UTC`` itself), also when the reading's time and the
        arrival came in another offset or as a subclass of datetime.
        """

        class Stamp(datetime):
            pass

        plus_two = timezone(timedelta(hours=2))
        first = self.allocate(connector=1, meter=1000).transaction_id
        times = [
            (minutes(1), minutes(10)),
            (minutes(2).astimezone(plus_two), minutes(11).astimezone(plus_two)),
            (minutes(3), minutes(12)),
            (Stamp.fromtimestamp(minutes(4).timestamp(), UTC), minutes(13)),
            (minutes(5).replace(fold=1), minutes(14)),
        ]
        metered = [
            (
                transactions.meter_readings(
                    charge_point_id="CP1",
                    connector_id=1,
                    transaction_id=first,
                    samples=[MeterSample(timestamp=at, value=str(2000 + place))],
                    now=now,
                ),
                now,
            )
            for place, (at, now) in enumerate(times)
        ]

        def seen(results: list[Any]) -> list[Any]:
            return [
                (
                    r,
                    [
                        (type(value), value.tzinfo, value.fold)
                        for value in (r.last_meter_at, r.updated_at, r.started_at, r.created_at)
                    ],
                )
                for r in results
            ]

        together = self.metered_rolled_back(metered, together=True)[0]
        in_turn = self.metered_rolled_back(metered, together=False)[0]
        self.assertEqual(seen(together), seen(in_turn))
        self.assertEqual(
            [(r.last_meter_wh, r.energy_wh, r.last_meter_at, r.updated_at) for r in together],
            [(2000 + place, 1000 + place, at, now) for place, (at, now) in enumerate(times)],
        )
        for r in together:
            self.assertIs(type(r.last_meter_at), datetime)
            self.assertIs(r.last_meter_at.tzinfo, UTC)
            self.assertIs(r.updated_at.tzinfo, UTC)
            self.assertEqual(r.last_meter_at.fold, 0)

    def test_session_meters_are_metered_sessions(self) -> None:
        """
        ``session_meters`` (what the processor takes) gives per message the
        record ``metered_sessions`` gives (``SessionMeter.record``), the
        same record where the meter did not move; on SQLite one record of
        each session for the run, however often its meter moved.
        """
        first = self.allocate(connector=1, meter=1000).transaction_id
        second = self.allocate(connector=2, tag="TAG2", meter=0).transaction_id
        sequence = [
            (first, 1, "1500", ENERGY_REGISTER),
            (second, 1, "200", ENERGY_REGISTER),
            (first, 2, "1600", ENERGY_REGISTER),
            (first, 3, "7", "Power.Active.Import"),  # no energy: not moved
            (first, 4, "1700", ENERGY_REGISTER),
        ]
        metered = [
            (
                transactions.meter_readings(
                    charge_point_id="CP1",
                    connector_id=1,
                    transaction_id=tx,
                    samples=[MeterSample(timestamp=minutes(at), value=value, measurand=measurand)],
                    now=minutes(10 + place),
                ),
                minutes(10 + place),
            )
            for place, (tx, at, value, measurand) in enumerate(sequence)
        ]

        class RolledBack(Exception):
            pass

        def rolled_back(conn: Connection) -> None:
            raise RolledBack(transactions.session_meters(conn, metered), conn.dialect.name)

        try:
            self.query(rolled_back)
        except RolledBack as e:
            meters, dialect = e.args
        records = [meter.record() for meter in meters]
        self.assertEqual(records, self.metered_rolled_back(metered, together=True)[0])
        self.assertEqual([r.energy_wh for r in records], [500, 200, 600, 600, 700])
        self.assertEqual(meters[3][1:], meters[2][1:])
        if dialect == "sqlite":
            self.assertIs(meters[0].session, meters[2].session)
            self.assertIs(meters[0].session, meters[4].session)
            self.assertEqual(meters[0].session.energy_wh, 500)  # as the run first read it
        else:
            # Each message's row, as ``metered_sessions`` reads it.
            for meter in meters:
                self.assertIs(meter.record(), meter.session)

    def test_many_samples_in_one_message(self) -> None:
        """A long transactionData (more rows than one INSERT chunk) is stored whole, once."""
        tx = self.allocate().transaction_id
        samples = [MeterSample(timestamp=minutes(i / 60), value=str(i)) for i in range(1200)]
        self.assertEqual(self.meter(tx, *samples), 1200)
        self.assertEqual(self.meter(tx, *samples), 0)
        self.assertEqual(self.transaction(tx).last_meter_wh, 1199)

    # -- message log and consumers -------------------------------------------

    def test_message_log_is_idempotent(self) -> None:
        """A message id is logged once; the log pages newest first; payloads round-trip."""

        def log(message_id: str, payload: Any = None) -> bool:
            return self.query(
                messages.log_message,
                message_id=message_id,
                charge_point_id="CP1",
                direction="in",
                message_type="CALL",
                action="Heartbeat",
                unique_id="u1",
                payload={"a": [1, "é", None]} if payload is None else payload,
                at=T0,
            )

        self.assertTrue(log("m1"))
        self.assertFalse(log("m1", payload={"changed": True}))
        self.assertTrue(log("m2", payload=[]))
        self.assertTrue(log("m3", payload={}))
        rows = self.query(messages.list_messages, "CP1")
        self.assertEqual([r.message_id for r in rows], ["m3", "m2", "m1"])
        self.assertEqual(rows[2].payload, {"a": [1, "é", None]})
        self.assertEqual(
            (rows[2].direction, rows[2].action, rows[2].created_at), ("in", "Heartbeat", T0)
        )
        page = self.query(messages.list_messages, "CP1", limit=1, before_id=rows[1].id)
        self.assertEqual([r.message_id for r in page], ["m1"])
        self.assertEqual(self.query(messages.list_messages, "CP2"), [])
        self.assertRaises(
            ValueError,
            self.query,
            messages.log_message,
            message_id="m9",
            charge_point_id="CP1",
            direction="sideways",
            message_type="CALL",
            action=None,
            unique_id=None,
            payload=None,
            at=T0,
        )

    def logged_rows(self) -> list[Any]:
        """The message log's rows as stored, oldest first."""
        log = tables.message_log
        return self.query(lambda conn: conn.execute(sa.select(log).order_by(log.c.id)).all())

    def test_exchange_is_one_row_of_two_frames(self) -> None:
        """
        An inbound exchange is one row, listed as its call and then its
        answer (a CALLERROR, a rejected frame's, a null result alike); a
        command is a row of one frame; the same rows again store nothing.
        """
        error = {"code": "FormationViolation", "description": "bad", "details": {}}
        logged = [
            ("e1:call", "in", "CALL", "MeterValues", "u1", {"n": 1}, T0, "CALLRESULT", {}),
            ("c2:call", "out", "CALL", "Reset", "u2", {"type": "Soft"}, minutes(1), None, None),
            ("e3:call", "in", "CALL", None, "-1", {"raw": "{"}, minutes(2), "CALLERROR", error),
            ("e4:call", "in", "CALL", "Heartbeat", "u4", {}, minutes(3), "CALLRESULT", None),
        ]
        rows = [
            messages.log_values(
                message_id, "CP1", direction, kind, action, unique, body, at, *answer
            )
            for message_id, direction, kind, action, unique, body, at, *answer in logged
        ]
        self.assertEqual(self.query(messages.append_log_values, rows), 4)
        self.assertEqual(self.query(messages.append_log_values, rows), 0)
        ids = [row.id for row in self.logged_rows()]
        self.assertEqual(len(ids), 4)
        frames = self.query(messages.list_messages, "CP1")
        self.assertEqual(
            [
                (f.id, f.message_id, f.direction, f.message_type, f.action, f.payload, f.created_at)
                for f in frames
            ],
            [
                (2 * ids[3] + 1, "e4:answer", "out", "CALLRESULT", "Heartbeat", None, minutes(3)),
                (2 * ids[3], "e4:call", "in", "CALL", "Heartbeat", {}, minutes(3)),
                (2 * ids[2] + 1, "e3:answer", "out", "CALLERROR", None, error, minutes(2)),
                (2 * ids[2], "e3:call", "in", "CALL", None, {"raw": "{"}, minutes(2)),
                (2 * ids[1], "c2:call", "out", "CALL", "Reset", {"type": "Soft"}, minutes(1)),
                (2 * ids[0] + 1, "e1:answer", "out", "CALLRESULT", "MeterValues", {}, T0),
                (2 * ids[0], "e1:call", "in", "CALL", "MeterValues", {"n": 1}, T0),
            ],
        )
        self.assertEqual([f.unique_id for f in frames[:2]], ["u4", "u4"])
        # Only an inbound CALL has an answer, and only a CALLRESULT or CALLERROR.
        for direction, kind, answer in [
            ("out", "CALL", "CALLRESULT"),
            ("in", "CALLRESULT", "CALLRESULT"),
            ("in", "CALL", "CALL"),
        ]:
            with self.assertRaises(ValueError):
                messages.log_values("x", "CP1", direction, kind, None, None, {}, T0, answer, {})

    def test_pages_split_an_exchange(self) -> None:
        """
        Paged with any limit, the frames are those of one listing, each
        once, in order: a page may end with an answer, whose call starts
        the next page; rows of one frame (as before revision 0023) mix in.
        """

        def single(message_id: str, direction: str, kind: str, n: int) -> tuple[Any, ...]:
            return messages.log_values(
                message_id, "CP1", direction, kind, "Authorize", f"u{n}", {"n": n}, minutes(n)
            )

        rows = [
            single("e0:call", "in", "CALL", 0),
            single("e0:answer", "out", "CALLRESULT", 0),
            exchange(1),
            single("c2:call", "out", "CALL", 2),
            exchange(3, "CALLERROR"),
            single("r4:reply", "in", "CALLRESULT", 4),
            exchange(5),
        ]
        self.query(messages.append_log_values, rows)
        other = messages.log_values(
            "x:call", "CP2", "in", "CALL", None, None, {}, T0, "CALLRESULT", {}
        )
        self.query(messages.append_log_values, [other])
        everything = self.query(messages.list_messages, "CP1", limit=1000)
        self.assertEqual(
            [f.message_id for f in everything],
            [
                "e5:answer", "e5:call", "r4:reply", "e3:answer", "e3:call", "c2:call",
                "e1:answer", "e1:call", "e0:answer", "e0:call",
            ],
        )  # fmt: skip
        for limit in range(1, 12):
            paged: list[records.MessageRecord] = []
            before: int | None = None
            while True:
                page = self.query(messages.list_messages, "CP1", limit=limit, before_id=before)
                self.assertLessEqual(len(page), limit)
                if not page:
                    break
                paged += page
                before = page[-1].id
            self.assertEqual(paged, everything, limit)
        # The page after an answer begins with its call.
        answer = everything[0]
        after = self.query(messages.list_messages, "CP1", limit=2, before_id=answer.id)
        self.assertEqual([f.message_id for f in after], ["e5:call", "r4:reply"])

    def test_claim_message(self) -> None:
        """A consumer claims a message once; another consumer has its own claims."""
        self.assertTrue(self.query(processed.claim_message, "processor", "e1", now=T0))
        self.assertFalse(self.query(processed.claim_message, "processor", "e1", now=T0))
        self.assertTrue(self.query(processed.claim_message, "audit", "e1", now=T0))
        self.assertEqual(self.query(processed.forget_processed, before=minutes(1)), 2)
        self.assertTrue(self.query(processed.claim_message, "processor", "e1", now=T0))

    def test_claim_rolls_back_with_the_effects(self) -> None:
        """If the consumer's effects fail, the claim goes too, so the retry applies them."""

        def apply(conn: Connection) -> None:
            self.assertTrue(processed.claim_message(conn, "processor", "e1", now=T0))
            raise RuntimeError("effects failed")

        self.assertRaises(RuntimeError, self.query, apply)
        self.assertTrue(self.query(processed.claim_message, "processor", "e1", now=T0))

    def test_claim_messages_in_one_statement(self) -> None:
        """A batch claims the ids not applied before; an id twice in the batch is claimed once."""
        self.assertTrue(self.query(processed.claim_message, "processor", "old", now=T0))
        batch = [("old", T0), ("e1", T0), ("e2", minutes(1)), ("e1", T0)]
        self.assertEqual(self.query(processed.claim_messages, "processor", batch), {"e1", "e2"})
        self.assertEqual(self.query(processed.claim_messages, "processor", batch), set())
        self.assertEqual(self.query(processed.claim_messages, "audit", [("e1", T0)]), {"e1"})
        self.assertEqual(self.query(processed.claim_messages, "audit", [("e1", T0)]), set())

    def test_claim_messages_in_pages(self) -> None:
        """
        More claims than one statement takes on SQLite (several pages of
        bound values): each claimed once, the new ones returned, every row
        stored with its own time, as ``claim_message`` stores one.
        """
        self.assertTrue(self.query(processed.claim_message, "processor", "m7", now=T0))
        batch = [(f"m{n}", minutes(n / 100)) for n in range(800)] + [("m5", T0)]
        claimed = self.query(processed.claim_messages, "processor", batch)
        self.assertEqual(claimed, {f"m{n}" for n in range(800)} - {"m7"})
        stored = self.query(
            lambda conn: dict(
                conn.execute(
                    sa.select(
                        tables.processed_messages.c.message_id,
                        tables.processed_messages.c.processed_at,
                    )
                ).all()
            )
        )
        self.assertEqual(
            stored, {f"m{n}": (T0 if n == 7 else minutes(n / 100)) for n in range(800)}
        )

    def test_release_claim(self) -> None:
        """A released claim lets the message be applied again; other consumers keep theirs."""

        def claim_and_release(conn: Connection) -> None:
            self.assertEqual(processed.claim_messages(conn, "processor", [("e1", T0)]), {"e1"})
            processed.claim_message(conn, "audit", "e1", now=T0)
            processed.release_claim(conn, "processor", "e1")

        self.query(claim_and_release)
        self.assertTrue(self.query(processed.claim_message, "processor", "e1", now=T0))
        self.assertFalse(self.query(processed.claim_message, "audit", "e1", now=T0))

    def test_append_log_many_rows_in_order(self) -> None:
        """Rows appended at once keep their order and skip ids logged before."""

        def row(message_id: str, action: str) -> dict[str, Any]:
            return inbound_frame(message_id, T0, action=action, payload={"n": message_id})

        self.assertEqual(self.query(messages.append_log, [row("m1", "Heartbeat")]), 1)
        rows = [row(f"m{n}", "MeterValues") for n in range(1, 250)]
        self.assertEqual(self.query(messages.append_log, rows), 248)
        stored = self.query(messages.list_messages, "CP1", limit=1000)
        self.assertEqual([r.message_id for r in reversed(stored)], [f"m{n}" for n in range(1, 250)])
        self.assertEqual((stored[0].action, stored[-1].action), ("MeterValues", "Heartbeat"))
        # Values go through the columns' types as with conn.execute: JSON, UTC time.
        self.assertEqual((stored[0].payload, stored[0].created_at), ({"n": "m249"}, T0))
        self.assertEqual(self.query(messages.append_log, []), 0)

    def test_append_log_values_stores_what_append_log_stores(self) -> None:
        """
        The processor's tuples (``log_values``, ``append_log_values``) store
        the rows ``log_row`` dicts store through ``append_log``: every column,
        JSON of any shape (null, nested, text) and times of any zone alike;
        a known id is skipped; a direction or type outside the log's is refused.
        """
        cet = timezone(timedelta(hours=1))
        frames = [
            ("call", "in", "CALL", "MeterValues", "u1", {"n": [1, {"x": None}]}, T0),
            ("answer", "out", "CALLRESULT", "MeterValues", "u1", {}, T0.astimezone(cet)),
            ("reply", "in", "CALLERROR", None, None, None, T0 + timedelta(microseconds=1)),
            ("raw", "in", "CALL", "Heart\u00dfbeat", "u\x01", "text", T0 + timedelta(days=1)),
        ]

        def logged(prefix: str) -> list[tuple[Any, ...]]:
            rows = self.query(
                lambda conn: conn.execute(
                    sa.select(tables.message_log)
                    .where(tables.message_log.c.message_id.like(f"{prefix}%"))
                    .order_by(tables.message_log.c.id)
                ).all()
            )
            return [(row.message_id[len(prefix) :], *row[2:]) for row in rows]

        as_dicts = [
            messages.log_row(
                message_id=f"d:{suffix}",
                charge_point_id="CP1",
                direction=direction,
                message_type=message_type,
                action=action,
                unique_id=unique_id,
                payload=payload,
                at=at,
            )
            for suffix, direction, message_type, action, unique_id, payload, at in frames
        ]
        as_tuples = [
            messages.log_values(f"t:{suffix}", "CP1", direction, kind, action, unique, body, at)
            for suffix, direction, kind, action, unique, body, at in frames
        ]
        self.assertEqual(
            [tuple(row.values()) for row in as_dicts],
            [(f"d{values[0][1:]}", *values[1:]) for values in as_tuples],
        )
        self.assertEqual(tuple(as_dicts[0]), messages.LOG_COLUMNS)
        self.assertEqual(self.query(messages.append_log, as_dicts), 4)
        self.assertEqual(self.query(messages.append_log_values, as_tuples), 4)
        self.assertEqual(self.query(messages.append_log_values, as_tuples[1:]), 0)
        self.assertEqual(logged("t"), logged("d"))
        self.assertEqual(len(logged("t")), 4)
        with self.assertRaises(ValueError):
            messages.log_values("x", "CP1", "up", "CALL", None, None, None, T0)
        with self.assertRaises(ValueError):
            messages.log_values("x", "CP1", "in", "PING", None, None, None, T0)

    def test_append_log_times_converted_per_instant(self) -> None:
        """Rows sharing an instant (in any zone) store it alike; a naive time is refused."""
        cet = timezone(timedelta(hours=1))

        row = inbound_frame
        rows = [row("a", T0), row("b", T0.astimezone(cet)), row("c", T0 + timedelta(seconds=1))]
        self.assertEqual(self.query(messages.append_log, rows), 3)
        stored = {r.message_id: r.created_at for r in self.query(messages.list_messages, "CP1")}
        self.assertEqual(stored, {"a": T0, "b": T0, "c": T0 + timedelta(seconds=1)})
        with self.assertRaises(ValueError):
            self.query(messages.append_log, [row("d", T0), row("e", T0.replace(tzinfo=None))])

    def test_forget_messages_oldest_first_in_chunks(self) -> None:
        """Rows stored before the cutoff go, the oldest first, at most ``limit`` at a time."""

        def row(n: int) -> dict[str, Any]:
            return inbound_frame(f"m{n}", T0 + timedelta(hours=n), unique_id=str(n))

        self.assertEqual(self.query(messages.forget_messages, before=T0), 0)  # empty log
        self.query(messages.append_log, [row(n) for n in range(10)])
        # A gap in the ids (rows deleted by hand) changes nothing.
        self.query(
            lambda conn: conn.execute(sa.text("DELETE FROM message_log WHERE unique_id = '2'"))
        )
        cutoff = T0 + timedelta(hours=7)

        def left() -> list[str]:
            return sorted(r.unique_id for r in self.query(messages.list_messages, "CP1"))

        self.assertEqual(self.query(messages.forget_messages, before=cutoff, limit=3), 3)
        self.assertEqual(left(), ["4", "5", "6", "7", "8", "9"])
        self.assertEqual(self.query(messages.forget_messages, before=cutoff, limit=3), 3)
        self.assertEqual(left(), ["7", "8", "9"])
        self.assertEqual(self.query(messages.forget_messages, before=cutoff, limit=3), 0)
        self.assertEqual(self.query(messages.forget_messages, before=T0 + timedelta(days=1)), 3)
        self.assertEqual(left(), [])

    def test_appends_store_what_conn_execute_stores(self) -> None:
        """
        ``append_new_rows`` (on PostgreSQL an array per column) stores every
        column as SQLAlchemy's own INSERT does: NULLs (some rows, or every
        row, of a column), times in any zone, a 64-bit transaction id, JSON
        null beside SQL NULL, text that looks like array syntax.
        """
        cet = timezone(timedelta(hours=1))

        def sample(n: int, **changes: Any) -> dict[str, Any]:
            row = {
                "charge_point_id": "CP1",
                "connector_id": n % 3,
                "transaction_id": 2**40 + n,
                "timestamp": minutes(n).astimezone(cet) if n % 2 else minutes(n),
                "value": ['{1,"a"}', "NULL", "", "42.5"][n % 4],
                "value_wh": None if n % 3 else 1000 * n,
                "measurand": "Energy.Active.Import.Register",
                "phase": ["", "L1", "L2-N"][n % 3],
                "unit": None if n % 2 else "Wh",
                "context": "Sample.Periodic",
                "location": "",
                "format": None,
                "received_at": T0,
            }
            return row | changes

        def log(n: int, payload: Any) -> dict[str, Any]:
            return inbound_frame(f"m{n}", minutes(n), unique_id=None, payload=payload)

        samples = [sample(n) for n in range(8)]
        frames = [log(0, None), log(1, {"a": [1, None]}), log(2, "x"), log(3, None)]
        sample_rows = [tuple(s[c] for c in transactions.SAMPLE_COLUMNS) for s in samples]
        self.assertEqual(self.query(transactions.append_meter_values, sample_rows), 8)
        self.assertEqual(self.query(messages.append_log, frames), 4)
        self.query(
            lambda conn: (
                conn.execute(
                    tables.meter_values.insert(), [s | {"charge_point_id": "CP2"} for s in samples]
                ),
                conn.execute(
                    tables.message_log.insert(),
                    [
                        f | {"message_id": "x" + f["message_id"], "charge_point_id": "CP2"}
                        for f in frames
                    ],
                ),
            )
        )

        rows = self.stored_by_charger(tables.meter_values, {"id", "charge_point_id"})
        self.assertEqual(rows["CP1"], rows["CP2"])
        self.assertEqual(len(rows["CP1"]), 8)
        logged = self.stored_by_charger(tables.message_log, {"id", "charge_point_id", "message_id"})
        self.assertEqual(logged["CP1"], logged["CP2"])
        self.assertEqual(len(logged["CP1"]), 4)
        listed = self.query(transactions.list_meter_values, charge_point_id="CP1")
        self.assertEqual(
            sorted((v.transaction_id, v.value, v.value_wh, v.unit, v.timestamp) for v in listed),
            [
                (s["transaction_id"], s["value"], s["value_wh"], s["unit"], s["timestamp"])
                for s in samples
            ],
        )

    def test_appends_of_many_pages_store_what_conn_execute_stores(self) -> None:
        """
        The processor's appends (tuples of values, several statements of
        different sizes on SQLite) store every value as SQLAlchemy's own
        INSERT does, whatever kind of value a column's bind processor gets:
        times in other offsets, a datetime subclass, the second of an
        ambiguous local hour (fold=1), a whole second and its last
        microsecond; JSON with non-ASCII text and integers beyond 64 bits,
        JSON null and SQL NULL.
        """
        berlin = ZoneInfo("Europe/Berlin")

        class Instant(datetime):
            pass

        times = [
            T0,
            T0.replace(microsecond=999_999),
            T0.astimezone(timezone(timedelta(hours=5, minutes=30))),
            Instant(2026, 10, 25, 2, 30, tzinfo=berlin, fold=1),
            datetime(2026, 10, 25, 2, 30, tzinfo=berlin),
            Instant(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        ]
        samples = [
            (
                "CP1",
                1,
                n,
                times[n % len(times)] + timedelta(minutes=n // len(times)),
                str(n),
                n if n % 2 else None,
                "Energy.Active.Import.Register",
                "",
                "Wh",
                "",
                "",
                None,
                times[n % 3],
            )
            for n in range(150)  # pages of 64, 64, 16, 4 and 2 rows on SQLite
        ]
        payloads = [{"text": "Zürich ✓ 日本"}, {"big": 2**70, "small": -(2**63)}, None, [1.5]]
        frames = [
            messages.log_values(
                f"m{n}",
                "CP1",
                "in",
                "CALL",
                "DataTransfer",
                None,
                payloads[n % len(payloads)],
                times[n % len(times)],
                "CALLRESULT" if n % 2 else None,
                payloads[(n + 1) % len(payloads)] if n % 2 else None,
            )
            for n in range(103)
        ]
        self.assertEqual(self.query(transactions.append_meter_values, samples), 150)
        self.assertEqual(self.query(messages.append_log_values, frames), 103)

        def keyed(columns: tuple[str, ...], row: tuple[Any, ...], **changes: Any) -> dict[str, Any]:
            return dict(zip(columns, row, strict=True)) | changes

        self.query(
            lambda conn: (
                conn.execute(
                    tables.meter_values.insert(),
                    [
                        keyed(transactions.SAMPLE_COLUMNS, row, charge_point_id="CP2")
                        for row in samples
                    ],
                ),
                conn.execute(
                    tables.message_log.insert(),
                    [
                        keyed(
                            messages.LOG_COLUMNS,
                            row,
                            message_id="x" + row[0],
                            charge_point_id="CP2",
                        )
                        for row in frames
                    ],
                ),
            )
        )
        rows = self.stored_by_charger(tables.meter_values, {"id", "charge_point_id"})
        self.assertEqual(rows["CP1"], rows["CP2"])
        self.assertEqual(len(rows["CP1"]), 150)
        logged = self.stored_by_charger(tables.message_log, {"id", "charge_point_id", "message_id"})
        self.assertEqual(logged["CP1"], logged["CP2"])
        self.assertEqual(len(logged["CP1"]), 103)
        # Both kinds of null are there: JSON null and SQL NULL.
        self.assertIn(("null", None), {(row[4], row[7]) for row in logged["CP1"]})

    def stored_by_charger(
        self, table: sa.Table, skip: set[str]
    ) -> dict[str, list[tuple[Any, ...]]]:
        """``table``'s rows by charger, in the order stored: every column but ``skip`` as text."""
        columns = [sa.cast(c, sa.Text) for c in table.c if c.name not in skip]
        by_charger: dict[str, list[tuple[Any, ...]]] = {}
        for row in self.query(
            lambda conn: conn.execute(
                sa.select(table.c.charge_point_id, *columns).order_by(table.c.id)
            ).all()
        ):
            by_charger.setdefault(row[0], []).append(tuple(row[1:]))
        return by_charger

    def test_appends_skip_duplicates_within_and_across_batches(self) -> None:
        """
        Rows of one batch sharing a unique key store the first of them; a
        resent batch stores nothing; the count is always how many were new.
        """

        def sample(second: int, value: str) -> dict[str, Any]:
            return transactions.meter_readings(
                charge_point_id="CP1",
                connector_id=1,
                transaction_id=7,
                samples=[MeterSample(timestamp=minutes(second / 60), value=value)],
                now=T0,
            ).rows[0]

        batch = [sample(1, "a"), sample(2, "b"), sample(1, "a again"), sample(3, "c")]
        self.assertEqual(self.query(transactions.append_meter_values, batch), 3)
        self.assertEqual(self.query(transactions.append_meter_values, batch), 0)
        self.assertEqual(self.query(transactions.append_meter_values, [sample(4, "d"), *batch]), 1)
        values = self.query(transactions.list_meter_values, charge_point_id="CP1")
        self.assertEqual(sorted(v.value for v in values), ["a", "b", "c", "d"])
        frames = [inbound_frame("m1", T0), inbound_frame("m2", T0), inbound_frame("m1", T0)]
        self.assertEqual(self.query(messages.append_log, frames), 2)
        self.assertEqual(self.query(messages.append_log, frames), 0)

    def test_appended_samples_are_what_an_insert_stores(self) -> None:
        """
        ``append_meter_values`` (tuples through the driver) stores every
        column as SQLAlchemy's own INSERT of the same values does: times,
        NULLs, empty strings, integers, text as sent.
        """
        samples = [
            MeterSample(timestamp=minutes(1), value="1.5", unit="kWh"),
            MeterSample(
                timestamp=datetime(2026, 11, 29, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
                value="7",
                measurand="Power.Active.Import",
                phase="L1",
                unit="W",
                context="Sample.Clock",
                location="Inlet",
                format=None,
            ),
        ]

        def rows(transaction_id: int) -> list[tuple[Any, ...]]:
            return transactions.meter_readings(
                charge_point_id="CP1",
                connector_id=2,
                transaction_id=transaction_id,
                samples=samples,
                now=minutes(2),
            ).rows

        def stored(conn: Connection) -> tuple[list[Any], list[Any]]:
            query = sa.select(tables.meter_values).order_by(tables.meter_values.c.id)
            records = [row._asdict() for row in conn.execute(query)]
            # The driver's own values too (SQLite's text of a time, say).
            raw = conn.exec_driver_sql("SELECT * FROM meter_values ORDER BY id").all()
            keys = [column.name for column in tables.meter_values.c]
            raws = [dict(zip(keys, row, strict=True)) for row in raw]
            for row in records + raws:
                del row["id"], row["transaction_id"]
            return records, raws

        self.assertEqual(self.query(transactions.append_meter_values, rows(1)), 2)
        self.query(
            lambda conn: conn.execute(
                tables.meter_values.insert(),
                [dict(zip(transactions.SAMPLE_COLUMNS, row, strict=True)) for row in rows(2)],
            )
        )
        records, raws = self.query(stored)
        self.assertEqual(len(records), 4)
        self.assertEqual(records[:2], records[2:])
        self.assertEqual(raws[:2], raws[2:])

    def test_touch_last_seen_many(self) -> None:
        """Each charger moves to its latest time in the batch, never back."""
        self.query(chargers.touch_last_seen, "CP2", minutes(10))
        seen = [("CP1", minutes(3)), ("CP2", minutes(4)), ("CP1", minutes(7)), ("CP1", minutes(5))]
        self.query(chargers.touch_last_seen_many, seen)
        self.assertEqual(self.query(chargers.get_charge_point, "CP1").last_seen_at, minutes(7))
        self.assertEqual(self.query(chargers.get_charge_point, "CP2").last_seen_at, minutes(10))
        self.query(chargers.touch_last_seen_many, [])


class SQLiteStoreTests(StoreTestsMixin, TestCase):
    """The store on SQLite, the embedded default."""

    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def empty_database_url(self) -> str:
        return sqlite_url(self)

    def test_connection_settings(self) -> None:
        """Each connection has WAL, FULL sync, foreign keys and a busy timeout; one thread."""
        with self.database.engine.connect() as conn:
            self.assertEqual(conn.exec_driver_sql("PRAGMA journal_mode").scalar(), "wal")
            self.assertEqual(conn.exec_driver_sql("PRAGMA foreign_keys").scalar(), 1)
            self.assertEqual(conn.exec_driver_sql("PRAGMA busy_timeout").scalar(), 10_000)
            self.assertEqual(conn.exec_driver_sql("PRAGMA synchronous").scalar(), 2)  # FULL
            self.assertEqual(conn.exec_driver_sql("PRAGMA temp_store").scalar(), 2)  # MEMORY
            self.assertEqual(conn.exec_driver_sql("PRAGMA cache_size").scalar(), -65536)
            self.assertEqual(conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar(), 4000)
            self.assertEqual(
                conn.exec_driver_sql("PRAGMA journal_size_limit").scalar(), 64 * 1024 * 1024
            )
        self.assertEqual(self.database.threadpool.max, 1)

    def test_session_samples_by_the_sample_key(self) -> None:
        """
        A session's samples are sought in the unique sample key by charger
        and transaction, not by walking the charger's whole history in its
        (charge_point_id, timestamp) index for the order.
        """
        plans = []

        def explain(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if statement.startswith("SELECT") and "FROM meter_values" in statement:
                plan = cursor.connection.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                plans.append([row[-1] for row in plan.fetchall()])

        sa.event.listen(self.database.engine, "before_cursor_execute", explain)
        self.addCleanup(sa.event.remove, self.database.engine, "before_cursor_execute", explain)
        self.query(transactions.list_meter_values, transaction_id=7)
        self.query(transactions.list_meter_values, transaction_id=7, charge_point_id="CP1")
        session = self.query(transactions.get_transaction, self.allocate().transaction_id)
        self.query(transactions.session_meter_history, session, points=10)
        self.assertEqual(len(plans), 3)
        for plan in plans:
            self.assertIn(
                "SEARCH meter_values USING INDEX sqlite_autoindex_meter_values_1"
                " (charge_point_id=? AND transaction_id=?)",
                plan,
            )

    def test_chart_samples_by_the_chart_index(self) -> None:
        """
        A charger's meter charts read its samples over the period in the
        partial index of chart samples: SQLite uses it only because the
        query carries the index's own condition as constants.
        """
        plans = []

        def explain(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            if "FROM meter_values" in statement:
                plan = cursor.connection.execute("EXPLAIN QUERY PLAN " + statement, parameters)
                plans.append([row[-1] for row in plan.fetchall()])

        sa.event.listen(self.database.engine, "before_cursor_execute", explain)
        self.addCleanup(sa.event.remove, self.database.engine, "before_cursor_execute", explain)
        self.query(meter_history.point_meter_history, "CP1", since=T0, until=minutes(60), points=10)
        (plan,) = plans
        self.assertIn(
            "SEARCH meter_values USING INDEX ix_meter_values_chart"
            " (charge_point_id=? AND timestamp>? AND timestamp<?)",
            plan,
        )

    def test_foreign_keys_enforced(self) -> None:
        """A charger's connector cannot refer to a charger that does not exist."""
        self.assertRaises(
            sa.exc.IntegrityError,
            self.query,
            chargers.set_connector_status,
            "GHOST",
            1,
            status="Available",
            error_code="NoError",
            at=T0,
        )

    def test_two_processes_share_the_file(self) -> None:
        """A second engine on the same file (``ocppctl`` beside the daemon) sees committed data."""
        other = Database.from_url(str(self.database.engine.url))
        self.addCleanup(other.stop)
        other.run_sync(tags.add_id_tag, "FROM-CLI", now=T0)
        self.assertEqual(found(self.query(tags.get_id_tag, "FROM-CLI")).status, "Accepted")

    def test_in_memory_database(self) -> None:
        """``sqlite://`` is one in-memory database shared by the pool and run_sync."""
        database = Database.from_url("sqlite://")
        self.addCleanup(database.stop)
        migrate.upgrade(database.engine)
        database.run_sync(tags.add_id_tag, "MEM", now=T0)
        self.assertEqual(found(database.run_sync(tags.get_id_tag, "MEM")).id_tag, "MEM")

    def test_appends_prepare_few_statement_texts_whatever_the_batch_size(self) -> None:
        """
        The multi-row INSERTs of batches of every size from 1 to 150 rows
        are a handful of texts (a full page, the powers of two below it),
        which the driver's statement cache (128 a connection) keeps
        prepared: one text per row count made 2 to 3 times that many, and
        a batch of a new size prepared its last statement anew.
        """
        sent: list[str] = []
        driver_rowcount = sql.driver_rowcount

        def recording(conn: Connection, statements: Any) -> int:
            sent.extend(text for text, _ in statements)
            return driver_rowcount(conn, statements)

        self.patch(sql, "driver_rowcount", recording)
        first = 0
        for size in range(1, 151):
            rows = [exchange(n) for n in range(first, first + size)]
            self.assertEqual(self.query(messages.append_log_values, rows), size)
            first += size
        stored = self.query(
            lambda conn: conn.execute(
                sa.select(sa.func.count()).select_from(tables.message_log)
            ).scalar()
        )
        self.assertEqual(stored, first)
        # Pages of 64 rows (10 values a row), and 32, 16, 8, 4, 2, 1.
        self.assertEqual(len(set(sent)), 7)


class MeteredRoundsTests(TestCase):
    """``transactions.metered_rounds``: a run's messages in rounds of distinct sessions."""

    def test_rounds(self) -> None:
        """A session's n-th message in the n-th round, in order; no session in none."""
        self.assertEqual(transactions.metered_rounds([]), [])
        self.assertEqual(transactions.metered_rounds([None]), [])
        self.assertEqual(
            transactions.metered_rounds([1, 2, 1, None, 3, 1, 2]),
            [[0, 1, 4], [2, 6], [5]],
        )


class PostgresStoreTests(StoreTestsMixin, TestCase):
    """The store on PostgreSQL, in a schema of its own per test."""

    def make_database(self) -> Database:
        return make_postgres_database(self)

    def empty_database_url(self) -> str:
        return postgres_url(self)

    def test_metered_sessions_are_two_statements_a_round(self) -> None:
        """
        On PostgreSQL a run of MeterValues is two statements per round of
        distinct sessions (``metered_rounds``: the meter's update, then the
        sessions' read), in one pipeline, not one per message.
        """
        first = self.allocate(connector=1, meter=0).transaction_id
        second = self.allocate(connector=2, tag="TAG2", meter=0).transaction_id
        metered = [
            (
                transactions.meter_readings(
                    charge_point_id="CP1",
                    connector_id=1,
                    transaction_id=tx,
                    samples=[MeterSample(timestamp=minutes(place), value=str(place))],
                    now=T0,
                ),
                T0,
            )
            for place, tx in enumerate([first, second, first, second, first])
        ]
        sent: list[int] = []
        driver_rows = transactions.driver_rows

        def counting(conn: Connection, statements: Any) -> Any:
            sent.append(len(statements))
            return driver_rows(conn, statements)

        self.patch(transactions, "driver_rows", counting)
        results = self.query(transactions.metered_sessions, metered)
        self.assertEqual(sent, [6])
        self.assertEqual([r and r.energy_wh for r in results], [0, 1, 2, 3, 4])

    def test_append_refuses_a_value_too_long_for_its_column(self) -> None:
        """
        The arrays are cast to ``VARCHAR[]`` without a length: a value too
        long for its column fails as the INSERT it replaces did, instead of
        being cut to the column's length by the cast.
        """
        row = transactions.meter_readings(
            charge_point_id="CP1",
            connector_id=1,
            transaction_id=None,
            samples=[MeterSample(timestamp=T0, value="1", measurand="M" * 51)],
            now=T0,
        ).rows
        self.assertRaises(sa.exc.DataError, self.query, transactions.append_meter_values, row)
        self.assertRaises(
            sa.exc.DataError,
            self.query,
            lambda conn: conn.execute(
                tables.meter_values.insert(),
                [dict(zip(transactions.SAMPLE_COLUMNS, values, strict=True)) for values in row],
            ),
        )
        self.assertEqual(self.query(transactions.list_meter_values, charge_point_id="CP1"), [])
        # Nor does text PostgreSQL cannot hold (a NUL), in the binary arrays either.
        frame = inbound_frame("m1", T0, unique_id="a\x00b")
        self.assertRaises(sa.exc.DataError, self.query, messages.append_log, [frame])

    def test_pipelined_statements_run_in_order_and_fail_together(self) -> None:
        """
        ``driver_rows`` (one pipeline on PostgreSQL): each statement sees the
        ones before it; a failing one raises as ``conn.execute`` does, and
        the transaction rolls back what the pipeline did before it.
        """

        def pipelined(
            conn: sa.Connection, calls: list[tuple[Prepared, dict[str, Any]]]
        ) -> list[Any]:
            statements = [
                (compiled.sql, compiled.parameters(values))
                for compiled, values in ((p._for(conn.dialect), v) for p, v in calls)
            ]
            return [[tuple(row) for row in rows] for rows in driver_rows(conn, statements)]

        tx = self.allocate(meter=1000).transaction_id
        set_energy = Prepared(
            sa.update(tables.transactions)
            .where(tables.transactions.c.id == sa.bindparam("tx_id"))
            .values(energy_wh=sa.bindparam("energy", type_=sa.Integer()))
            .returning(tables.transactions.c.energy_wh)
        )
        read_energy = Prepared(
            sa.select(tables.transactions.c.energy_wh).where(
                tables.transactions.c.id == sa.bindparam("tx_id")
            )
        )
        divide = Prepared(
            sa.select(
                sa.cast(
                    sa.literal_column("1") / sa.bindparam("zero", type_=sa.Integer()), sa.Integer()
                )
            )
        )
        rows = self.query(
            pipelined,
            [
                (read_energy, {"tx_id": tx}),
                (set_energy, {"tx_id": tx, "energy": 7}),
                (read_energy, {"tx_id": tx}),
                (read_energy, {"tx_id": tx + 1}),
            ],
        )
        self.assertEqual(rows, [[(None,)], [(7,)], [(7,)], []])
        self.assertRaises(
            sa.exc.DataError,
            self.query,
            pipelined,
            [
                (set_energy, {"tx_id": tx, "energy": 8}),
                (divide, {"zero": 0}),
                (set_energy, {"tx_id": tx, "energy": 9}),
            ],
        )
        self.assertEqual(self.transaction(tx).energy_wh, 7)

    def test_isolated_in_its_schema(self) -> None:
        """The tables are in the test's own schema (first in search_path), not in public."""
        with self.database.engine.connect() as conn:
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
            where = conn.execute(
                sa.text(
                    "SELECT table_schema FROM information_schema.tables "
                    "WHERE table_name = 'transactions' AND table_schema = :schema"
                ),
                {"schema": schema},
            ).all()
        self.assertTrue(str(schema).startswith("ocppd_test_"))
        self.assertEqual(len(where), 1)
        self.assertEqual(self.database.engine.url.drivername, "postgresql+psycopg")
        self.assertEqual(self.database.threadpool.max, 4)
