"""
PostgreSQL schemas at the head revision for tests, migrated once per test
process and emptied between tests.

Migrating a new schema through every revision takes seconds of PostgreSQL's
time (DDL, catalog churn), most of a PostgreSQL-backed test's time on a
loaded machine. A migrated schema with no rows is what every such test
starts from, so a test process keeps the schemas its tests used: when a test
ends, its schema's tables are truncated and its sequences restarted, and
the next test of the process gets it back, the same as freshly migrated.
A schema whose structure a test changed (a table renamed, a column added:
its catalog differs from the one it had when migrated) is dropped instead.
Schemas still kept when the process exits are dropped then; tests of other
processes never see them (each test has a schema to itself, as before).
"""

from __future__ import annotations

import atexit
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from twisted.trial.unittest import SynchronousTestCase

from ocppd.store import migrate
from ocppd.store.database import create_engine, normalize_url
from tests.services import install_shared_extensions, require_postgres

#: What a schema's catalog says of its structure: tables and their columns,
#: constraints, indexes, sequences, types, functions, triggers, and its
#: alembic revision. Equal before and after a test: nothing but rows changed.
_STRUCTURE = """
WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = CAST(:schema AS text))
SELECT 'rel ' || c.relname || ' ' || c.relkind::text
  FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM ns)
UNION ALL
SELECT 'col ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' ' || a.attnotnull::text || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = (SELECT oid FROM ns) AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = (SELECT oid FROM ns)
UNION ALL
SELECT 'idx ' || indexname || ' ' || indexdef
  FROM pg_indexes WHERE schemaname = (SELECT nspname FROM ns)
UNION ALL
SELECT 'typ ' || typname FROM pg_type WHERE typnamespace = (SELECT oid FROM ns)
UNION ALL
SELECT 'fun ' || p.oid::regprocedure::text
  FROM pg_proc p WHERE p.pronamespace = (SELECT oid FROM ns)
UNION ALL
SELECT 'trg ' || t.tgname || ' ' || pg_get_triggerdef(t.oid)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = (SELECT oid FROM ns) AND NOT t.tgisinternal
"""


class _Pool:
    """This process's emptied schemas, and the structure each had once migrated."""

    def __init__(self) -> None:
        self.free: list[str] = []
        self.structure: dict[str, list[str]] = {}
        self._admin: Engine | None = None

    def admin(self, url: str) -> Engine:
        if self._admin is None:
            self._admin = create_engine(url, max_threads=1)
            atexit.register(self.drop_all)
        return self._admin

    def drop_all(self) -> None:
        if self._admin is None:
            return
        try:
            with self._admin.begin() as conn:
                for schema in self.free:
                    conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        finally:
            self.free.clear()
            self._admin.dispose()


_pool = _Pool()


def _structure(conn: Connection, schema: str) -> list[str]:
    rows = conn.execute(sa.text(_STRUCTURE), {"schema": schema}).scalars().all()
    revision = conn.execute(sa.text(f'SELECT version_num FROM "{schema}".alembic_version'))
    return sorted([*rows, *(f"rev {r}" for r in revision.scalars())])


def _empty(conn: Connection, schema: str) -> None:
    """Every table but ``alembic_version`` emptied, every sequence back at its start."""
    tables = conn.execute(
        sa.text(
            "SELECT tablename FROM pg_tables WHERE schemaname = :schema "
            "AND tablename <> 'alembic_version'"
        ),
        {"schema": schema},
    ).scalars()
    names = ", ".join(f'"{schema}"."{name}"' for name in tables)
    if names:
        conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    sequences = conn.execute(
        sa.text("SELECT sequencename FROM pg_sequences WHERE schemaname = :schema"),
        {"schema": schema},
    ).scalars()
    for name in list(sequences):
        conn.execute(sa.text(f'ALTER SEQUENCE "{schema}"."{name}" RESTART'))


def migrated_postgres_schema(testcase: SynchronousTestCase) -> tuple[str, str]:
    """
    A schema at the head revision with no rows, ``testcase``'s alone until it
    ends (then emptied and kept for the process's next test, or dropped if
    its structure changed); the PostgreSQL URL and the schema's name. Stop
    every connection to it in a cleanup registered after this call.
    """
    url = normalize_url(require_postgres()).render_as_string(hide_password=False)
    admin = _pool.admin(url)
    if _pool.free:
        schema = _pool.free.pop()
    else:
        schema = f"ocppd_test_{secrets.token_hex(6)}"
        with admin.begin() as conn:
            install_shared_extensions(conn)
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        migrated = create_engine(url, max_threads=1, connect_args=_search_path(schema))
        try:
            migrate.upgrade(migrated)
            with admin.connect() as conn:
                _pool.structure[schema] = _structure(conn, schema)
        except BaseException:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            raise
        finally:
            migrated.dispose()

    def give_back() -> None:
        try:
            with admin.begin() as conn:
                # A connection a test left in a transaction must not hang the suite.
                conn.execute(sa.text("SET LOCAL lock_timeout = '30s'"))
                unchanged = _structure(conn, schema) == _pool.structure[schema]
                if unchanged:
                    _empty(conn, schema)
        except Exception:
            unchanged = False
        if unchanged:
            _pool.free.append(schema)
            return
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))

    testcase.addCleanup(give_back)
    return url, schema


def _search_path(schema: str) -> dict[str, Any]:
    return {"options": f"-csearch_path={schema}"}
