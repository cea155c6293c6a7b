"""
The OCPP message log: every frame to and from each charger, for operators
(``GET /api/cms/points/{id}/messages``) and for the live log in the CMS.

A row holds one frame (a command ocppd sent, a charger's reply to one) or,
for an inbound exchange, two: the charger's CALL and ocppd's answer, which
have the same time and the same envelope. One row instead of two costs the
processor's hot path (MeterValues) half the inserts and index entries
(bench/RESULTS.md); readers see frames (``list_messages``, ``row_frames``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import MessageRecord
from ocppd.store.sql import append_new_rows, append_new_values
from ocppd.store.tables import DIRECTIONS, MESSAGE_TYPES, message_log


def log_message(conn: Connection, **frame: Any) -> bool:
    """
    Append one row to the log (``log_row``'s arguments); whether it was new.
    The processor appends many at once with ``append_log_values``.
    """
    return bool(append_log(conn, [log_row(**frame)]))


#: The columns of a logged row, in the order of ``log_values``' values.
LOG_COLUMNS = (
    "message_id",
    "charge_point_id",
    "direction",
    "message_type",
    "action",
    "unique_id",
    "payload",
    "created_at",
    "answer_type",
    "answer_payload",
)

#: The answer's types an inbound exchange's row may hold.
ANSWER_TYPES = ("CALLRESULT", "CALLERROR")


def log_values(
    message_id: str,
    charge_point_id: str,
    direction: str,
    message_type: str,
    action: str | None,
    unique_id: str | None,
    payload: Any,
    at: datetime,
    answer_type: str | None = None,
    answer_payload: Any = None,
) -> tuple[Any, ...]:
    """
    One row of the log as values of ``LOG_COLUMNS``, for
    ``append_log_values`` (the processor's row of every message: a tuple
    each, not a dict of ten keys).

    ``message_id`` is the idempotency key (the bus envelope's id and a
    suffix), so a redelivered envelope logs nothing twice. ``direction`` is
    ``in`` (from the charger) or ``out``; ``payload`` is any JSON value.
    With ``answer_type`` the row is an inbound exchange: the charger's CALL
    and ocppd's answer to it (``answer_payload``), at the same time, which
    ``list_messages`` shows as two frames.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {DIRECTIONS}")
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"message type {message_type!r} is not one of {MESSAGE_TYPES}")
    if answer_type is not None and (
        answer_type not in ANSWER_TYPES or message_type != "CALL" or direction != "in"
    ):
        raise ValueError(f"an answer {answer_type!r} to an {direction} {message_type}")
    return (
        message_id,
        charge_point_id,
        direction,
        message_type,
        action,
        unique_id,
        payload,
        at,
        answer_type,
        answer_payload,
    )


def log_row(**frame: Any) -> dict[str, Any]:
    """One row of the log (``log_values``' arguments, by name) as a row for ``append_log``."""
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


def frame_id(row_id: int, answer: bool) -> int:
    """
    A frame's id in the listing: two per row, its call's then its answer's,
    so that every frame has its own id and frames sort as the rows do (a
    row of one frame, as every row before revision 0023, has the even one).
    """
    return 2 * row_id + answer


def answer_message_id(message_id: str) -> str:
    """
    The id of the answer of the exchange logged as ``message_id``
    (``<envelope>:call``): ``<envelope>:answer``, the id it had as a row of
    its own before revision 0023, and has again after its downgrade.
    """
    return f"{message_id.removesuffix(':call')}:answer"


def row_frames(row: Any) -> list[MessageRecord]:
    """
    The frames of one row of ``message_log`` (all its columns), oldest
    first: the row's own, and the answer of an inbound exchange after it.
    """
    call = MessageRecord(
        id=frame_id(row.id, False),
        message_id=row.message_id,
        charge_point_id=row.charge_point_id,
        direction=row.direction,
        message_type=row.message_type,
        action=row.action,
        unique_id=row.unique_id,
        payload=row.payload,
        created_at=row.created_at,
    )
    if row.answer_type is None:
        return [call]
    answer = MessageRecord(
        id=frame_id(row.id, True),
        message_id=answer_message_id(row.message_id),
        charge_point_id=row.charge_point_id,
        direction="out" if row.direction == "in" else "in",
        message_type=row.answer_type,
        action=row.action,
        unique_id=row.unique_id,
        payload=row.answer_payload,
        created_at=row.created_at,
    )
    return [call, answer]


def list_messages(
    conn: Connection, charge_point_id: str, *, limit: int = 100, before_id: int | None = None
) -> list[MessageRecord]:
    """
    The charger's frames, newest first (in the order stored, an answer after
    its call). Page backwards with ``before_id`` = the ``id`` of the last
    record of the previous page, which may be an answer whose call is the
    next page's first frame.
    """
    log = message_log.c
    query = sa.select(message_log).where(log.charge_point_id == charge_point_id)
    if before_id is not None:
        # The rows of the frames below: up to the row of ``before_id``'s
        # call (``frame_id``), which its answer leaves for this page.
        query = query.where(log.id < (before_id + 1) // 2)
    # Every row has a frame or two: ``limit`` rows have frames enough.
    frames: list[MessageRecord] = []
    for row in conn.execute(query.order_by(log.id.desc()).limit(limit)):
        frames.extend(reversed(row_frames(row)))
    if before_id is not None:
        frames = [frame for frame in frames if frame.id < before_id]
    return frames[:limit]
