"""
A charger's connection history: one row per socket, opened by its
``charger.connected`` and closed by its ``charger.disconnected``.

Both events may arrive late, twice, or the disconnect before the connect (a
connect the bus refused waits in the outbox). Each is one upsert keyed by
the socket (``connection_id``), so:

- a redelivered event writes what its first delivery wrote;
- a stale disconnect (a node that lost the charger to a newer socket) closes
  its own socket's row, never the newer one's;
- a disconnect stored first makes the row (zero length, no node), and its
  connect then sets when it opened;
- the liveness sweep's disconnect (at the charger's last sign of life) and
  the socket's real one, in either order, leave the later time.

Connect and disconnect are on the reconnect storm's hot path: ``connected``
and ``disconnected`` write the charger's presence and its history row in one
statement on PostgreSQL (two on SQLite, where a statement is no round trip),
on the driver's cursor (``ocppd.store.prepared``).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store import chargers
from ocppd.store.prepared import Prepared
from ocppd.store.sql import dialect_insert
from ocppd.store.tables import charge_points, charger_connections
from ocppd.store.types import UTCDateTime

_c = charger_connections.c
_cp = charge_points.c

#: A WebSocket close reason is at most 123 bytes; what a node reports is cut to that.
CLOSE_REASON_LENGTH = 123
#: The point page's connection history: this many of the newest connections.
RECENT_CONNECTIONS = 20


def _from_charger(**values: sa.ColumnElement[Any]) -> sa.Select[Any]:
    # INSERT ... SELECT from the charger's row: a connect or disconnect of a
    # charger deleted meanwhile inserts nothing (no foreign-key error to spoil
    # the processor's batch). The WHERE also settles SQLite's parse of
    # INSERT ... SELECT ... ON CONFLICT.
    return sa.select(_cp.charge_point_id, *(v.label(k) for k, v in values.items())).where(
        _cp.charge_point_id == sa.bindparam("cp_id")
    )


def _later(column: sa.ColumnElement[datetime], value: Any) -> sa.ColumnElement[datetime]:
    return sa.case((sa.or_(column.is_(None), column < value), value), else_=column)


@functools.cache
def _connected(dialect: str) -> Prepared:
    return Prepared(_connected_statement(dialect))


def _connected_statement(dialect: str) -> Any:
    at = sa.bindparam("at", type_=UTCDateTime())
    insert = dialect_insert(dialect, charger_connections)
    # Named as ``chargers.connected_statement`` names them: one set of parameters for both.
    values = {
        "connection_id": sa.bindparam("new_connection_id", type_=_c.connection_id.type),
        "node": sa.bindparam("new_node", type_=_c.node.type),
        "connected_at": at,
    }
    statement = insert.from_select(
        ["charge_point_id", *values], _from_charger(**values)
    ).on_conflict_do_update(
        index_elements=[_c.charge_point_id, _c.connection_id],
        # The connect's own time and node: a redelivery writes them again, a
        # row a disconnect made first learns them.
        set_={"connected_at": insert.excluded.connected_at, "node": insert.excluded.node},
    )
    return statement


@functools.cache
def _disconnected(dialect: str) -> Prepared:
    return Prepared(_disconnected_statement(dialect))


def _disconnected_statement(dialect: str) -> Any:
    at = sa.bindparam("at", type_=UTCDateTime())
    insert = dialect_insert(dialect, charger_connections)
    values = {
        "connection_id": sa.bindparam("conn_id", type_=_c.connection_id.type),
        "connected_at": at,
        "disconnected_at": at,
        "close_code": sa.bindparam("code", type_=_c.close_code.type),
        "close_reason": sa.bindparam("reason", type_=_c.close_reason.type),
    }
    later = _later(_c.disconnected_at, insert.excluded.disconnected_at)
    statement = insert.from_select(
        ["charge_point_id", *values], _from_charger(**values)
    ).on_conflict_do_update(
        index_elements=[_c.charge_point_id, _c.connection_id],
        set_={
            "disconnected_at": later,
            # The code and reason of the disconnect that set the time.
            "close_code": sa.case(
                (later == insert.excluded.disconnected_at, insert.excluded.close_code),
                else_=_c.close_code,
            ),
            "close_reason": sa.case(
                (later == insert.excluded.disconnected_at, insert.excluded.close_reason),
                else_=_c.close_reason,
            ),
        },
    )
    return statement


def record_connected(
    conn: Connection, charge_point_id: str, *, connection_id: str, node: str, at: datetime
) -> None:
    """The socket ``connection_id`` of the charger opened on ``node`` at ``at``."""
    _connected(conn.dialect.name).rowcount(
        conn,
        {"cp_id": charge_point_id, "new_connection_id": connection_id, "new_node": node, "at": at},
    )


def record_disconnected(
    conn: Connection,
    charge_point_id: str,
    *,
    connection_id: str,
    at: datetime,
    code: int | None = None,
    reason: str | None = None,
) -> None:
    """
    The socket ``connection_id`` closed at ``at`` (the sweep: the charger's
    last sign of life), with the WebSocket close ``code`` and ``reason``.
    """
    if not connection_id:
        return  # a sweep of a row that recorded no socket: no history to close
    _disconnected(conn.dialect.name).rowcount(
        conn, _disconnected_parameters(charge_point_id, connection_id, at, code, reason)
    )


def _disconnected_parameters(
    charge_point_id: str, connection_id: str, at: datetime, code: int | None, reason: str | None
) -> dict[str, Any]:
    return {
        "cp_id": charge_point_id,
        "conn_id": connection_id,
        "at": at,
        "code": code,
        "reason": None if reason is None else reason[:CLOSE_REASON_LENGTH],
    }


# -- with the charger's presence, in one statement on PostgreSQL ---------------------
#
# On PostgreSQL every statement is a round trip to the server, which made a
# connect or disconnect cost twice as much with its history row; there the
# charger's UPDATE runs as a data-modifying CTE of the history's upsert (it
# runs to completion whether or not the upsert reads it). On SQLite a
# statement is a call into the library: two cost little more than one.


@functools.cache
def _together(kind: str, fenced: bool) -> Prepared:
    if kind == "connected":
        history = _connected_statement("postgresql")
        update = chargers.connected_statement(fenced=fenced)
    else:
        history = _disconnected_statement("postgresql")
        update = chargers.disconnected_statement(fenced=fenced)
    applied = update.returning(_cp.charge_point_id).cte("applied")
    counted = sa.select(sa.func.count()).select_from(applied).scalar_subquery()
    return Prepared(history.add_cte(applied).returning(counted.label("applied")))


def connected(
    conn: Connection,
    charge_point_id: str,
    *,
    connection_id: str,
    node: str,
    at: datetime,
    fence: int | None = None,
    alive_at: datetime | None = None,
) -> bool:
    """
    ``chargers.set_connected`` and ``record_connected`` together: the charger's
    presence (whether it applied is returned) and its history row.
    """
    if conn.dialect.name != "postgresql":
        applied = chargers.set_connected(
            conn,
            charge_point_id,
            connection_id=connection_id,
            node=node,
            at=at,
            fence=fence,
            alive_at=alive_at,
        )
        record_connected(conn, charge_point_id, connection_id=connection_id, node=node, at=at)
        return applied
    parameters = chargers.connected_parameters(
        charge_point_id,
        connection_id=connection_id,
        node=node,
        at=at,
        fence=fence,
        alive_at=alive_at,
    )
    row = _together("connected", fence is not None).first(conn, parameters)
    return bool(row and row["applied"])


def disconnected(
    conn: Connection,
    charge_point_id: str,
    *,
    connection_id: str,
    at: datetime,
    fence: int | None = None,
    code: int | None = None,
    reason: str | None = None,
) -> bool:
    """
    ``chargers.set_disconnected`` and ``record_disconnected`` together: the
    charger's presence (whether it applied is returned) and its socket's row.
    """
    if conn.dialect.name != "postgresql" or not connection_id:
        applied = chargers.set_disconnected(
            conn, charge_point_id, connection_id=connection_id, at=at, fence=fence
        )
        record_disconnected(
            conn, charge_point_id, connection_id=connection_id, at=at, code=code, reason=reason
        )
        return applied
    parameters = {
        **chargers.disconnected_parameters(
            charge_point_id, connection_id=connection_id, at=at, fence=fence
        ),
        **_disconnected_parameters(charge_point_id, connection_id, at, code, reason),
    }
    row = _together("disconnected", fence is not None).first(conn, parameters)
    return bool(row and row["applied"])


@attrs.frozen
class ConnectionRecord:
    """One socket of a charger, as the history has it."""

    connection_id: str
    node: str | None
    connected_at: datetime
    disconnected_at: datetime | None
    close_code: int | None
    close_reason: str | None


def recent_connections(
    conn: Connection, charge_point_id: str, limit: int = RECENT_CONNECTIONS
) -> list[ConnectionRecord]:
    """The charger's ``limit`` newest connections, newest first."""
    rows = conn.execute(
        sa.select(
            _c.connection_id,
            _c.node,
            _c.connected_at,
            _c.disconnected_at,
            _c.close_code,
            _c.close_reason,
        )
        .where(_c.charge_point_id == charge_point_id)
        .order_by(_c.connected_at.desc(), _c.id.desc())
        .limit(limit)
    )
    return [ConnectionRecord(**row._mapping) for row in rows]


def forget_connections(conn: Connection, *, before: datetime, limit: int = 10_000) -> int:
    """
    Delete up to ``limit`` connections that ended before ``before``; how many.
    Call again until it deletes fewer than ``limit`` (short transactions).
    An open connection stays, however old.
    """
    oldest = (
        sa.select(_c.id)
        .where(_c.disconnected_at < sa.bindparam("before", before, type_=UTCDateTime()))
        .order_by(_c.disconnected_at)
        .limit(limit)
        .scalar_subquery()
    )
    result = conn.execute(charger_connections.delete().where(_c.id.in_(oldest)))
    return int(result.rowcount)
