"""
Consumer idempotency: which bus messages each consumer has applied.

The bus delivers at least once. A consumer claims the message id in the same
transaction as its effects; a redelivery finds the claim and does nothing, and
if the effects roll back, so does the claim, and the retry applies them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from ocppd.store.sql import insert_new
from ocppd.store.tables import processed_messages


def claim_message(conn: Connection, consumer: str, message_id: str, *, now: datetime) -> bool:
    """
    Record that ``consumer`` applies ``message_id`` in this transaction; False
    if it was applied before, and the caller must then do nothing.

    ON CONFLICT DO NOTHING: a concurrent claim of the same message (two
    deliveries on two threads) waits for the first transaction and then
    returns False, without an error that would abort this transaction.
    """
    values = {"consumer": consumer, "message_id": message_id, "processed_at": now}
    return insert_new(conn, processed_messages, values) is not None


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
