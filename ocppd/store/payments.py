"""
Top-ups paid on a provider's page, and the provider events acted on.

The wallet side of a payment is a ``wallet_transactions`` row under a key
made of the provider's ids (``ocppd.api.payments``); these rows remember
what the customer asked for, so that the webhook credits what was asked and
a retried top-up request finds its payment instead of opening another.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import PaymentRecord, first_record
from ocppd.store.sql import insert_new
from ocppd.store.tables import payment_events, payments

_p = payments.c
_e = payment_events.c


def by_key(conn: Connection, idempotency_key: str) -> PaymentRecord | None:
    return first_record(
        conn, PaymentRecord, sa.select(payments).where(_p.idempotency_key == idempotency_key)
    )


def by_reference(conn: Connection, provider: str, reference: str) -> PaymentRecord | None:
    return first_record(
        conn,
        PaymentRecord,
        sa.select(payments).where(_p.provider == provider, _p.reference == reference),
    )


def by_settlement(conn: Connection, provider: str, settlement: str) -> PaymentRecord | None:
    return first_record(
        conn,
        PaymentRecord,
        sa.select(payments).where(_p.provider == provider, _p.settlement == settlement),
    )


def add_payment(
    conn: Connection,
    *,
    provider: str,
    user_id: int,
    amount: int,
    currency: str,
    idempotency_key: str,
    reference: str,
    redirect_url: str | None,
    now: datetime,
) -> PaymentRecord:
    """The pending payment of ``idempotency_key``: this one, or a concurrent request's."""
    insert_new(
        conn,
        payments,
        {
            "provider": provider,
            "user_id": user_id,
            "amount": amount,
            "currency": currency,
            "idempotency_key": idempotency_key,
            "reference": reference,
            "settlement": None,
            "redirect_url": redirect_url,
            "status": "pending",
            "refunded": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    record = by_key(conn, idempotency_key)
    if record is None:
        # The reference was stored under another key: the provider reused a
        # payment across keys, which only a forged or broken answer does.
        raise ValueError(f"{provider} payment {reference!r} belongs to another top-up")
    return record


def mark_paid(conn: Connection, payment_id: int, settlement: str | None, *, now: datetime) -> None:
    values: dict[str, object] = {"status": "paid", "updated_at": now}
    if settlement is not None:
        values["settlement"] = settlement
    conn.execute(payments.update().where(_p.id == payment_id).values(**values))


def set_refunded(conn: Connection, payment_id: int, refunded: int, *, now: datetime) -> None:
    conn.execute(
        payments.update().where(_p.id == payment_id).values(refunded=refunded, updated_at=now)
    )


def record_event(
    conn: Connection,
    provider: str,
    event_id: str,
    *,
    kind: str,
    payment_id: int | None,
    now: datetime,
) -> bool:
    """Remember a provider event; False if it was acted on before (a replay)."""
    inserted = insert_new(
        conn,
        payment_events,
        {
            "provider": provider,
            "event_id": event_id,
            "kind": kind,
            "payment_id": payment_id,
            "received_at": now,
        },
    )
    return inserted is not None
