"""Tests of the store's pure parts: URLs and time conversion."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from twisted.trial.unittest import SynchronousTestCase

from ocppd.store.database import (
    Database,
    check_url,
    create_engine,
    default_sqlite_url,
    describe_error,
    location,
    normalize_url,
)
from ocppd.store.types import UTCDateTime


class UrlTests(SynchronousTestCase):
    def test_postgres_urls_use_psycopg3(self) -> None:
        """Plain and legacy PostgreSQL URLs select psycopg 3; others are kept as given."""
        for url in ("postgresql://u:p@db/ocppd", "postgres://u:p@db/ocppd"):
            self.assertEqual(
                normalize_url(url).render_as_string(hide_password=False),
                "postgresql+psycopg://u:p@db/ocppd",
            )
        self.assertEqual(
            normalize_url("postgresql+psycopg://db/x").drivername, "postgresql+psycopg"
        )
        self.assertEqual(normalize_url("sqlite:////tmp/x.sqlite3").drivername, "sqlite")

    def test_default_sqlite_url_creates_nothing(self) -> None:
        """The embedded database is ocppd.sqlite3 in the data dir; the engine makes the dir."""
        data_dir = os.path.join(self.mktemp(), "var")
        url = default_sqlite_url(data_dir)
        path = os.path.join(os.path.abspath(data_dir), "ocppd.sqlite3")
        self.assertEqual(url, "sqlite:///" + path)
        self.assertFalse(os.path.exists(data_dir))
        self.assertEqual(location(url), path)
        create_engine(url).dispose()
        self.assertTrue(os.path.isdir(data_dir))
        self.assertFalse(os.path.exists(path))

    def test_location_hides_the_password(self) -> None:
        """A PostgreSQL database is named by its URL without the password."""
        self.assertEqual(location("postgresql://u:secret@db/x"), "postgresql://u:***@db/x")

    def test_check_url(self) -> None:
        """SQLite and PostgreSQL URLs pass; other databases and non-URLs are ValueErrors."""
        for url in ("sqlite:///x.sqlite3", "postgresql://u@db/x", "postgres://db/x"):
            check_url(url)
        for url, needle in (("mysql://u@db/x", "unsupported database"), ("db", "not a database")):
            with self.assertRaises(ValueError) as caught:
                check_url(url)
            self.assertIn(needle, str(caught.exception))

    def test_describe_error_leaves_out_sql_and_parameters(self) -> None:
        """A statement's error is the driver's first line: no SQL, no parameters."""
        engine = create_engine("sqlite://")
        self.addCleanup(engine.dispose)
        with self.assertRaises(sa.exc.OperationalError) as caught, engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (hash) VALUES (:h)"), {"h": "$argon2id$x"})
        self.assertIn("$argon2id$x", str(caught.exception))  # what must not reach a terminal
        self.assertEqual(describe_error(caught.exception), "OperationalError: no such table: users")
        self.assertEqual(describe_error(ValueError("one\ntwo")), "ValueError: one")

    def test_engine_choices(self) -> None:
        """PostgreSQL gets max_threads threads; SQLite one; other databases are refused."""
        engine = create_engine("postgresql://u@db/x", max_threads=3)
        self.addCleanup(engine.dispose)
        database = Database(engine, max_threads=3)
        self.assertEqual((database.dialect, database.threadpool.max), ("postgresql", 3))
        self.assertEqual(engine.pool.size(), 3)  # type: ignore[attr-defined]
        self.assertRaises(ValueError, create_engine, "mysql://u@db/x")
        self.assertRaises(ValueError, Database, engine, max_threads=0)

    def test_no_global_reactor_fallback(self) -> None:
        """Built without a reactor: run_sync works, start refuses (no global reactor behind it)."""
        database = Database.from_url("sqlite://")
        self.addCleanup(database.stop)
        self.assertEqual(database.run_sync(lambda conn: conn.scalar(sa.text("select 1"))), 1)
        error = self.assertRaises(RuntimeError, database.start)
        self.assertEqual(str(error), "Database built without a reactor: only run_sync() works")
        self.assertFalse(database.running)


class UTCDateTimeTests(SynchronousTestCase):
    type = UTCDateTime()

    def test_bind_converts_to_naive_utc(self) -> None:
        """Aware times are stored as naive UTC on both engines."""
        local = datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2)))
        for dialect in (sqlite.dialect(), postgresql.dialect()):
            self.assertEqual(
                self.type.process_bind_param(local, dialect), datetime(2026, 3, 29, 1, 30)
            )
            self.assertIsNone(self.type.process_bind_param(None, dialect))

    def test_naive_and_non_datetimes_refused(self) -> None:
        """A naive datetime or a string is refused rather than guessed at."""
        dialect = sqlite.dialect()
        self.assertRaises(ValueError, self.type.process_bind_param, datetime(2026, 1, 1), dialect)
        self.assertRaises(TypeError, self.type.process_bind_param, "2026-01-01T00:00Z", dialect)

    def test_sqlite_short_cut_stores_what_the_general_way_stores(self) -> None:
        """
        On SQLite, aware UTC times take a short cut to their text: the same text
        the general way (this type's conversion, then SQLAlchemy's) writes, for
        whole seconds too (microseconds always written), from year 1 to 9999.
        Other values go the general way, refusals included.
        """
        dialect = sqlite.dialect()
        fast = self.type._cached_bind_processor(dialect)
        general = sa.types.TypeDecorator.bind_processor(self.type.dialect_impl(dialect), dialect)
        assert fast is not None and general is not None
        converted: list[object] = []

        class Counted(UTCDateTime):
            def process_bind_param(self, value: object, dialect: sa.Dialect) -> datetime | None:
                converted.append(value)
                return super().process_bind_param(value, dialect)

        short_cut = Counted()._cached_bind_processor(dialect)
        assert short_cut is not None
        converted.clear()  # (its check, once, when made)
        short_cut(datetime(2026, 12, 7, tzinfo=UTC))
        self.assertEqual(converted, [])  # the short cut, not the general way
        start = datetime(1, 1, 1, tzinfo=UTC)
        step = timedelta(days=3652, hours=7, minutes=13, seconds=17, microseconds=123457)
        values = [start + n * step for n in range(1000)]
        values += [value.replace(microsecond=0) for value in values[::10]]
        values += [datetime.max.replace(tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC)]
        local = datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2)))
        for value in [*values, local, None]:
            self.assertEqual(fast(value), general(value), value)
        # Again, from its cache of recent times (equal UTC times, other objects too).
        for value in [*values, local, local.astimezone(UTC), None]:
            self.assertEqual(fast(value), general(value), value)
            if value is not None:
                self.assertEqual(fast(value + timedelta(0)), general(value), value)
        self.assertEqual(
            fast(datetime(2026, 12, 7, 8, 9, tzinfo=UTC)), "2026-12-07 08:09:00.000000"
        )
        self.assertRaises(ValueError, fast, datetime(2026, 1, 1))
        self.assertRaises(TypeError, fast, "2026-01-01T00:00Z")

    def test_sqlite_short_cut_reads_what_the_general_way_reads(self) -> None:
        """
        On SQLite, a time in the stored format (``bind_processor``'s text)
        takes a short cut to aware UTC: the same time, with the same
        ``UTC``, as the general way (SQLAlchemy's parser, then this type's
        conversion), from year 1 to 9999. Other text (a time SQL computed,
        without microseconds) and None go the general way.
        """
        dialect = sqlite.dialect()
        read = self.type._cached_result_processor(dialect, None)
        write = self.type._cached_bind_processor(dialect)
        general = sa.types.TypeDecorator.result_processor(
            self.type.dialect_impl(dialect), dialect, None
        )
        assert read is not None and write is not None and general is not None
        converted: list[object] = []

        class Counted(UTCDateTime):
            def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
                converted.append(value)
                return super().process_result_value(value, dialect)

        short_cut = Counted()._cached_result_processor(dialect, None)
        assert short_cut is not None
        converted.clear()  # (its check, once, when made)
        short_cut("2026-12-07 08:09:00.000000")
        self.assertEqual(converted, [])  # the short cut, not the general way
        start = datetime(1, 1, 1, tzinfo=UTC)
        step = timedelta(days=3652, hours=7, minutes=13, seconds=17, microseconds=123457)
        stored = [write(start + n * step) for n in range(1000)]
        stored += [
            write(datetime.max.replace(tzinfo=UTC)),
            write(datetime(2026, 12, 7, tzinfo=UTC)),
        ]
        for text in [*stored, "2026-12-07 08:09:05", "2026-12-07 08:09:05.5", None]:
            fast, slow = read(text), general(text)
            self.assertEqual(fast, slow, text)
            self.assertIs(getattr(fast, "tzinfo", None), getattr(slow, "tzinfo", None), text)
        self.assertEqual(read(write(start + step)), start + step)

    def test_result_is_aware_utc(self) -> None:
        """What comes back from the database is aware UTC."""
        value = self.type.process_result_value(datetime(2026, 1, 1, 12), sqlite.dialect())
        self.assertEqual(value, datetime(2026, 1, 1, 12, tzinfo=UTC))
        self.assertIs(value and value.tzinfo, UTC)
