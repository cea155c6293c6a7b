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
from ocppd.store.sql import append_new_rows
from ocppd.store.tables import DIRECTIONS, MESSAGE_TYPES, message_log


def log_message(conn: Connection, **frame: Any) -> bool:
    """
    Append one frame to the log (``log_row``'s arguments); whether it was new.
    The processor appends many at once with ``append_log``.
    """
    return bool(append_log(conn, [log_row(**frame)]))


def log_row(
    *,
    message_id: str,
    charge_point_id: str,
    direction: str,
    message_type: str,
    action: str | None,
    unique_id: str | None,
    payload: Any,
    at: datetime,
) -> dict[str, Any]:
    """
    One frame of the log as a row for ``append_log``.

    ``message_id`` is the idempotency key (the bus envelope's id and a
    suffix), so a redelivered envelope logs nothing twice. ``direction`` is
    ``in`` (from the charger) or ``out``; ``payload`` is any JSON value.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction {direction!r} is not one of {DIRECTIONS}")
    if message_type not in MESSAGE_TYPES:
        raise ValueError(f"message type {message_type!r} is not one of {MESSAGE_TYPES}")
    return {
        "message_id": message_id,
        "charge_point_id": charge_point_id,
        "direction": direction,
        "message_type": message_type,
        "action": action,
        "unique_id": unique_id,
        "payload": payload,
        "created_at": at,
    }


def append_log(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Append ``log_row`` rows in order, in as few statements as can be; how many were new."""
    return append_new_rows(conn, message_log, rows)


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
