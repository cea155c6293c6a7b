"""
SQL helpers shared by the query modules, hiding the few differences between
SQLite and PostgreSQL that the queries meet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ocppd.store.types import UTCDateTime


def dialect_insert(conn: Connection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The engine's own INSERT, which has ``on_conflict_do_nothing/do_update``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"ocppd does not support {conn.dialect.name}")


def insert_new(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> Any | None:
    """
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING <key>``: the new row's first
    primary-key column, or None if a unique key already had the row.

    A conflict is not an error here, so it neither spoils the caller's
    transaction (as a failed INSERT does on PostgreSQL) nor races with a
    concurrent writer: whoever inserts second simply learns the row exists.
    Foreign-key and CHECK violations still raise.
    """
    key = next(iter(table.primary_key.columns))
    statement = dialect_insert(conn, table).values(**values).on_conflict_do_nothing()
    return conn.execute(statement.returning(key)).scalar()


def insert_new_rows(
    conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], *, chunk: int = 500
) -> int:
    """
    Insert ``rows`` skipping those whose unique key exists; how many were new.

    One multi-row statement per ``chunk`` rows (well inside both engines'
    bound-parameter limits), counted by RETURNING, which unlike ``rowcount``
    means the same thing on both engines and drivers.
    """
    key = next(iter(table.primary_key.columns))
    inserted = 0
    for start in range(0, len(rows), chunk):
        statement = (
            dialect_insert(conn, table)
            .values(list(rows[start : start + chunk]))
            .on_conflict_do_nothing()
            .returning(key)
        )
        inserted += len(conn.execute(statement).all())
    return inserted


def utc(value: datetime) -> sa.BindParameter[datetime]:
    """
    A time as a bound parameter of type ``UTCDateTime``.

    Needed where the parameter's type is not inferred from a column (CASE
    branches, SET values computed in SQL): a plain datetime parameter would be
    stored with its local wall-clock time instead of being converted to UTC.
    """
    return sa.literal(value, UTCDateTime())


def later_of(column: sa.ColumnElement[datetime], value: datetime) -> sa.ColumnElement[datetime]:
    """``max(column, value)`` with NULL as the earliest time, portable (no GREATEST in SQLite)."""
    return sa.case((sa.or_(column.is_(None), column < utc(value)), utc(value)), else_=column)


def at_least_zero(expression: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    """``max(0, expression)``, portable."""
    return sa.case((expression > 0, expression), else_=sa.literal(0, sa.BigInteger()))
