"""
Consumer idempotency: which bus messages each consumer has applied.

The bus delivers at least once. A consumer claims the message id in the same
transaction as its effects; a redelivery finds the claim and does nothing, and
if the effects roll back, so does the claim, and the retry applies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from ocppd.store.sql import insert_new_rows
from ocppd.store.tables import processed_messages


def claim_message(conn: Connection, consumer: str, message_id: str, *, now: datetime) -> bool:
    """
    Record that ``consumer`` applies ``message_id`` in this transaction; False
    if it was applied before, and the caller must then do nothing.

    ON CONFLICT DO NOTHING: a concurrent claim of the same message (two
    deliveries on two threads) waits for the first transaction and then
    returns False, without an error that would abort this transaction.
    """
    return message_id in claim_messages(conn, consumer, [(message_id, now)])


def is_processed(conn: Connection, consumer: str, message_id: str) -> bool:
    """Whether ``consumer`` claimed ``message_id`` before (for consumers that claim when done)."""
    row = conn.execute(
        processed_messages.select()
        .where(processed_messages.c.consumer == consumer)
        .where(processed_messages.c.message_id == message_id)
    ).first()
    return row is not None


def claim_messages(
    conn: Connection, consumer: str, messages: Sequence[tuple[str, datetime]]
) -> set[str]:
    """
    ``claim_message`` for many ``(message_id, now)`` at once, in one
    statement: the ids claimed now (those not applied before).
    """
    rows = [
        {"consumer": consumer, "message_id": message_id, "processed_at": now}
        for message_id, now in messages
    ]
    return set(insert_new_rows(conn, processed_messages, rows, key=processed_messages.c.message_id))


def release_claim(conn: Connection, consumer: str, message_id: str) -> None:
    """Undo this transaction's claim of a message whose effects failed, so a retry applies it."""
    conn.execute(
        processed_messages.delete()
        .where(processed_messages.c.consumer == consumer)
        .where(processed_messages.c.message_id == message_id)
    )


def forget_processed(conn: Connection, *, before: datetime) -> int:
    """
    Drop claims older than ``before``; how many. Safe once the bus can no
    longer redeliver messages that old (beyond the retry and dead-letter
    horizon), and keeps the table from growing forever.
    """
    result = conn.execute(
        processed_messages.delete().where(processed_messages.c.processed_at < before)
    )
    return int(result.rowcount)
