"""
The OCPP message log: every frame to and from each charger, for operators
(``GET /api/cms/points/{id}/messages``) and for the live log in the CMS.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import MessageRecord, all_records
from ocppd.store.sql import append_new_rows, append_new_values
from ocppd.store.tables import DIRECTIONS, MESSAGE_TYPES, message_log


def log_message(conn: Connection, **frame: Any) -> bool:
    """
    Append one frame to the log (``log_row``'s arguments); whether it was new.
    The processor appends many at once with ``append_log``.
    """
    return bool(append_log(conn, [log_row(**frame)]))


#: The columns of a logged frame, in the order of ``log_values``' values.
LOG_COLUMNS = (
    "message_id",
    "charge_point_id",
    "direction",
    "message_type",
    "action",
    "unique_id",
    "payload",
    "created_at",
)


def log_values(
    message_id: str,
    charge_point_id: str,
    direction: str,
    message_type: str,
    action: str | None,
    unique_id: str | None,
    payload: Any,
    at: datetime,
) -> tuple[Any, ...]:
    """
    One frame of the log as values of ``LOG_COLUMNS``, for
    ``append_log_values`` (the processor's two frames of every message: a
    tuple each, not a dict of eight keys).

    ``message_id`` is the idempotency key (the bus envelope's id and a
    suffix), so a redelivered envelope logs nothing twice. ``direction`` is
    ``in`` (from the charger) or ``out``; ``payload`` is any JSON value.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {DIRECTIONS}")
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"message type {message_type!r} is not one of {MESSAGE_TYPES}")
    return (message_id, charge_point_id, direction, message_type, action, unique_id, payload, at)


def log_row(**frame: Any) -> dict[str, Any]:
    """One frame of the log (``log_values``' arguments, by name) as a row for ``append_log``."""
    return dict(zip(LOG_COLUMNS, log_values(**frame), strict=True))


def append_log(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Append ``log_row`` rows in order, in as few statements as can be; how many were new."""
    return append_new_rows(conn, message_log, rows)


def append_log_values(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """``append_log`` of ``log_values`` rows: the same statements, the same rows stored."""
    return append_new_values(conn, message_log, LOG_COLUMNS, rows)


def _log_cutoff(conn: Connection, before: datetime) -> int | None:
    """
    The id below which the log's rows were stored before ``before``: a
    binary search on the primary key (a few dozen index seeks, never a
    scan), since rows are appended as frames arrive. None when empty.
    """
    ids = message_log.c.id
    first, last = conn.execute(sa.select(sa.func.min(ids), sa.func.max(ids))).one()
    if first is None:
        return None
    low, high = first, last + 1
    while low < high:
        middle = (low + high) // 2
        row = conn.execute(
            sa.select(ids, message_log.c.created_at).where(ids >= middle).order_by(ids).limit(1)
        ).first()
        if row is not None and row.created_at < before:
            low = row.id + 1
        else:
            high = middle
    return int(low)


def forget_messages(conn: Connection, *, before: datetime, limit: int = 10_000) -> int:
    """
    Delete up to ``limit`` of the oldest rows stored before ``before``; how
    many. Call again until it deletes fewer than ``limit``: small
    transactions leave the processor's writes waiting only briefly.

    "Before" is by arrival order: a row written among older ones (a late
    frame) goes with them, one among newer ones stays with them; around a
    cutoff of days, that is seconds.
    """
    cutoff = _log_cutoff(conn, before)
    if cutoff is None:
        return 0
    ids = message_log.c.id
    # The first id past this chunk, found on the primary key: ids have gaps.
    past_chunk = conn.execute(
        sa.select(ids).where(ids < cutoff).order_by(ids).offset(limit).limit(1)
    ).scalar()
    below = cutoff if past_chunk is None else past_chunk
    result = conn.execute(message_log.delete().where(ids < below))
    return int(result.rowcount)


def list_messages(
    conn: Connection, charge_point_id: str, *, limit: int = 100, before_id: int | None = None
) -> list[MessageRecord]:
    """
    The charger's log, newest first (in the order stored). Page backwards
    with ``before_id`` = the ``id`` of the last record of the previous page.
    """
    query = sa.select(message_log).where(message_log.c.charge_point_id == charge_point_id)
    if before_id is not None:
        query = query.where(message_log.c.id < before_id)
    return all_records(conn, MessageRecord, query.order_by(message_log.c.id.desc()).limit(limit))
