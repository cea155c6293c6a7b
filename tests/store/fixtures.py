"""
Databases for tests, each isolated and cleaned up by the test case.

- ``make_sqlite_database(testcase)``: a new SQLite file in the test's temp dir.
- ``make_postgres_database(testcase)``: a schema of its own in the real
  PostgreSQL (``tests.services.require_postgres``: fails on CI, skips
  elsewhere, when it is unreachable), used through ``search_path`` and
  emptied afterwards for the process's next test (``tests.pgschemas``), so
  tests never see each other's rows and can run in parallel.

Both are at the head revision and started (``Database.run`` works) and stopped on
cleanup. ``*_url`` variants give an empty, unmigrated database's URL instead.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase

from ocppd.store import chargers, messages, migrate, tags, tariffs, users
from ocppd.store.database import Database, create_engine, default_sqlite_url, normalize_url
from ocppd.store.journal import journal_database, prepare_journal_file
from tests.nodecache import seed_migrated_sqlite
from tests.pgschemas import migrated_postgres_schema
from tests.services import install_shared_extensions, require_postgres


def sqlite_url(testcase: SynchronousTestCase) -> str:
    """The URL of a new, empty SQLite file private to ``testcase``."""
    directory = os.path.abspath(testcase.mktemp())
    os.makedirs(directory)
    return f"sqlite:///{directory}/ocppd.sqlite3"


def postgres_schema(testcase: SynchronousTestCase) -> tuple[str, str]:
    """
    Create an empty schema for ``testcase``, dropped (with everything in it)
    on cleanup; the PostgreSQL URL and the schema's name.
    """
    url = normalize_url(require_postgres()).render_as_string(hide_password=False)
    schema = f"ocppd_test_{secrets.token_hex(6)}"
    admin = create_engine(url, max_threads=1)
    with admin.begin() as conn:
        install_shared_extensions(conn)
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

    def drop() -> None:
        try:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        finally:
            admin.dispose()

    testcase.addCleanup(drop)
    return url, schema


def search_path_options(schema: str) -> str:
    """The libpq ``options`` that make ``schema`` the session's default schema."""
    return f"-csearch_path={schema}"


def postgres_url(testcase: SynchronousTestCase) -> str:
    """
    The URL of a new, empty schema private to ``testcase``; the schema is
    chosen in the URL itself (``?options=-csearch_path=...``), as an operator
    would to keep ocppd in a schema of its own.
    """
    url, schema = postgres_schema(testcase)
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(search_path_options(schema))}"


def make_sqlite_database(testcase: SynchronousTestCase) -> Database:
    """
    A started Database on a new SQLite file at the head revision: a copy of
    one this process migrated once (``tests.nodecache``).
    """
    directory = os.path.abspath(testcase.mktemp())
    os.makedirs(directory)
    seed_migrated_sqlite(directory)
    database = Database.from_url(default_sqlite_url(directory), reactor=reactor)
    testcase.addCleanup(database.stop)
    migrate.require_current(database.engine)
    database.start()
    return database


def make_journal_file(testcase: SynchronousTestCase, store: Database) -> Database:
    """
    The started, prepared bus journal file beside the SQLite ``store``, as the
    daemon opens it (``ocppd.store.journal``).
    """
    journal = journal_database(store.engine.url, reactor=reactor)
    assert journal is not None, "the store is not a SQLite file"
    testcase.addCleanup(journal.stop)
    journal.start()
    journal.run_sync(prepare_journal_file)
    return journal


def make_postgres_database(testcase: SynchronousTestCase, *, max_threads: int = 4) -> Database:
    """
    A started Database on a PostgreSQL schema at the head revision with no
    rows, the test's alone (``tests.pgschemas``: migrated once per process).
    """
    url, schema = migrated_postgres_schema(testcase)
    database = Database.from_url(
        url,
        reactor=reactor,
        max_threads=max_threads,
        connect_args={"options": search_path_options(schema)},
    )
    testcase.addCleanup(database.stop)
    migrate.require_current(database.engine)
    database.start()
    return database


def inbound_frame(
    message_id: str,
    at: datetime,
    *,
    action: str = "DataTransfer",
    unique_id: str | None = None,
    payload: Any = None,
    charge_point_id: str = "CP1",
) -> dict[str, Any]:
    """A message-log row (``messages.log_row``) of a CALL from charger ``charge_point_id``."""
    return messages.log_row(
        message_id=message_id,
        charge_point_id=charge_point_id,
        direction="in",
        message_type="CALL",
        action=action,
        unique_id=unique_id,
        payload={} if payload is None else payload,
        at=at,
    )


def add_priced_charger(database: Database, charge_point_id: str, *, now: datetime) -> int:
    """
    A customer owning id tag ``TAG1``, and ``charge_point_id`` priced at
    50 + 30/kWh + 2/minute (EUR minor units); the customer's user id.
    """
    user = database.run_sync(users.add_user, "a@example.com", "x", "customer", now=now)
    tariff = database.run_sync(
        tariffs.add_tariff,
        "T",
        currency="EUR",
        price_per_kwh=30,
        price_per_minute=2,
        session_fee=50,
        now=now,
    )
    database.run_sync(chargers.add_charge_point, charge_point_id, None, tariff_id=tariff, now=now)
    database.run_sync(tags.add_id_tag, "TAG1", user_id=user, now=now)
    return user
