"""
Prepaid wallets: balances, their transactions, and the funds app-started
sessions hold.

Every balance change is one ``wallet_transactions`` row written in the same
database transaction as the new balance, under a unique idempotency key, so a
session is debited once however often its StopTransaction (or the bus
message carrying it) arrives, and a retried top-up is credited once.
"""

from __future__ import annotations

from datetime import datetime

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import (
    ChargingRequestRecord,
    WalletRecord,
    WalletTransactionRecord,
    all_records,
    first_record,
    from_mapping,
)
from ocppd.store.sql import insert_new
from ocppd.store.tables import (
    WALLET_TRANSACTION_KINDS,
    charging_requests,
    wallet_transactions,
    wallets,
)

_w = wallets.c
_wt = wallet_transactions.c
_cr = charging_requests.c

#: Requests whose funds are spoken for.
HOLDING = ("requested", "started")


@attrs.frozen
class WalletView:
    """A wallet as its owner sees it: ``available`` is what a new session may use."""

    currency: str
    balance: int
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


def wallet(conn: Connection, user_id: int, *, currency: str, now: datetime) -> WalletRecord:
    """The user's wallet, opened empty in ``currency`` on first use."""
    insert_new(
        conn,
        wallets,
        {
            "user_id": user_id,
            "currency": currency,
            "balance": 0,
            "created_at": now,
            "updated_at": now,
        },
    )
    record = first_record(conn, WalletRecord, sa.select(wallets).where(_w.user_id == user_id))
    assert record is not None
    return record


def locked_wallet(conn: Connection, user_id: int, *, currency: str, now: datetime) -> WalletRecord:
    """
    The user's wallet (opened on first use), its row locked until the
    transaction ends (PostgreSQL; SQLite is serial): a balance read here
    stays true until this transaction's own post.
    """
    wallet(conn, user_id, currency=currency, now=now)
    record = first_record(
        conn,
        WalletRecord,
        sa.select(wallets).where(_w.user_id == user_id).with_for_update(),
    )
    assert record is not None
    return record


def held(conn: Connection, user_id: int) -> int:
    """What the user's app-started sessions hold back."""
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(_cr.hold), 0)).where(
            _cr.user_id == user_id, _cr.status.in_(HOLDING)
        )
    ).scalar()
    return int(total or 0)


def wallet_view(conn: Connection, user_id: int, *, currency: str, now: datetime) -> WalletView:
    record = wallet(conn, user_id, currency=currency, now=now)
    return WalletView(record.currency, record.balance, held(conn, user_id))


def find_transaction(conn: Connection, idempotency_key: str) -> WalletTransactionRecord | None:
    return first_record(
        conn,
        WalletTransactionRecord,
        sa.select(wallet_transactions).where(_wt.idempotency_key == idempotency_key),
    )


def post_transaction(
    conn: Connection,
    user_id: int,
    *,
    kind: str,
    amount: int,
    currency: str,
    idempotency_key: str,
    session_id: int | None = None,
    reference: str | None = None,
    now: datetime,
) -> tuple[WalletTransactionRecord, bool]:
    """
    Change the balance by ``amount`` (signed) once per ``idempotency_key``:
    the transaction, and whether it was posted now (False: posted before,
    nothing changed). ValueError when ``currency`` is not the wallet's.
    """
    if kind not in WALLET_TRANSACTION_KINDS:
        raise ValueError(
            f"wallet transaction kind {kind!r} is not one of {WALLET_TRANSACTION_KINDS}"
        )
    if type(amount) is not int:
        raise TypeError("amount must be an int of minor units")
    # Locked before looking for the key, so two posts of one key cannot both miss it.
    record = locked_wallet(conn, user_id, currency=currency, now=now)
    if record.currency != currency:
        raise ValueError(f"wallet of user {user_id} is in {record.currency}, not {currency}")
    existing = find_transaction(conn, idempotency_key)
    if existing is not None:
        return existing, False
    balance = conn.execute(
        wallets.update()
        .where(_w.user_id == user_id)
        .values(balance=_w.balance + amount, updated_at=now)
        .returning(_w.balance)
    ).scalar_one()
    transaction_id = insert_new(
        conn,
        wallet_transactions,
        {
            "user_id": user_id,
            "kind": kind,
            "amount": amount,
            "balance_after": balance,
            "currency": currency,
            "session_id": session_id,
            "reference": reference,
            "idempotency_key": idempotency_key,
            "created_at": now,
        },
    )
    posted = first_record(
        conn,
        WalletTransactionRecord,
        sa.select(wallet_transactions).where(_wt.id == transaction_id),
    )
    assert posted is not None
    return posted, True


def transactions_page(
    conn: Connection, user_id: int, *, before_id: int | None, limit: int
) -> list[WalletTransactionRecord]:
    """The user's wallet transactions, newest first."""
    query = sa.select(wallet_transactions).where(_wt.user_id == user_id)
    if before_id is not None:
        query = query.where(_wt.id < before_id)
    return all_records(conn, WalletTransactionRecord, query.order_by(_wt.id.desc()).limit(limit))


def debit_key(session_id: int) -> str:
    """The idempotency key of a session's bill: one debit per session, ever."""
    return f"debit:{session_id}"


def debit_session(
    conn: Connection, user_id: int, session_id: int, *, cost: int, currency: str, now: datetime
) -> tuple[WalletTransactionRecord, bool]:
    """
    Debit a session's bill, once per session whoever bills it (the processor
    at the stop, an operator's review decision): ``post_transaction``'s answer.
    """
    return post_transaction(
        conn,
        user_id,
        kind="debit",
        amount=-cost,
        currency=currency,
        idempotency_key=debit_key(session_id),
        session_id=session_id,
        reference=f"session {session_id}",
        now=now,
    )


def correction_key(session_id: int) -> str:
    """
    The idempotency key of a session's one correcting post: the difference
    a late stop of the charger's adds to its bill (``ocppd.billing.late_stop``),
    or an operator's review decision on a session billed before.
    """
    return f"correction:{session_id}"


def correct_session(
    conn: Connection,
    user_id: int,
    session_id: int,
    *,
    amount: int,
    currency: str,
    now: datetime,
) -> tuple[WalletTransactionRecord, bool]:
    """
    Post the correction of a session's bill (``amount`` signed: negative
    takes from the wallet, as a ``debit``; positive gives back, as an
    ``adjustment``, only ever on an operator's decision), once per session.
    """
    return post_transaction(
        conn,
        user_id,
        kind="debit" if amount < 0 else "adjustment",
        amount=amount,
        currency=currency,
        idempotency_key=correction_key(session_id),
        session_id=session_id,
        reference=f"session {session_id} correction",
        now=now,
    )


def session_debited(conn: Connection, session_id: int) -> int | None:
    """
    What a session's bill took from its wallet so far (its debit and its
    correction, minor units, positive), or None when nothing was posted.
    """
    posted = (
        conn.execute(
            sa.select(_wt.amount).where(
                _wt.idempotency_key.in_((debit_key(session_id), correction_key(session_id)))
            )
        )
        .scalars()
        .all()
    )
    return None if not posted else -sum(posted)


# --- app-started charging requests ---------------------------------------------


def create_request(
    conn: Connection,
    *,
    user_id: int,
    charge_point_id: str,
    connector_id: int,
    id_tag: str,
    command_id: str,
    hold: int,
    now: datetime,
) -> int:
    request_id = insert_new(
        conn,
        charging_requests,
        {
            "user_id": user_id,
            "charge_point_id": charge_point_id,
            "connector_id": connector_id,
            "id_tag": id_tag,
            "command_id": command_id,
            "hold": hold,
            "status": "requested",
            "created_at": now,
            "updated_at": now,
        },
    )
    assert request_id is not None
    return int(request_id)


def get_request(conn: Connection, request_id: int) -> ChargingRequestRecord | None:
    return first_record(
        conn, ChargingRequestRecord, sa.select(charging_requests).where(_cr.id == request_id)
    )


def holding_requests(conn: Connection, user_id: int) -> list[ChargingRequestRecord]:
    """The user's requests still holding funds, oldest first."""
    return all_records(
        conn,
        ChargingRequestRecord,
        sa.select(charging_requests)
        .where(_cr.user_id == user_id, _cr.status.in_(HOLDING))
        .order_by(_cr.id),
    )


def request_for_session(conn: Connection, session_id: int) -> ChargingRequestRecord | None:
    return first_record(
        conn,
        ChargingRequestRecord,
        sa.select(charging_requests).where(_cr.session_id == session_id),
    )


def claim_request_for_session(
    conn: Connection,
    *,
    session_id: int,
    user_id: int,
    charge_point_id: str,
    connector_id: int,
    id_tag: str,
    now: datetime,
) -> ChargingRequestRecord | None:
    """
    The pending request a just-started session answers (same user, charger,
    connector and tag), now ``started`` and linked to it; None when the
    session was not started from the app. Idempotent: a session already
    linked returns its request.
    """
    linked = request_for_session(conn, session_id)
    if linked is not None:
        return linked
    pending = first_record(
        conn,
        ChargingRequestRecord,
        sa.select(charging_requests)
        .where(
            _cr.user_id == user_id,
            _cr.charge_point_id == charge_point_id,
            _cr.connector_id == connector_id,
            _cr.id_tag == id_tag,
            _cr.status == "requested",
        )
        .order_by(_cr.id)
        .limit(1),
    )
    if pending is None:
        return None
    claimed = conn.execute(
        charging_requests.update()
        # Still requested: a sweep may have released it since (expire_requests).
        .where(_cr.id == pending.id, _cr.status == "requested")
        .values(status="started", session_id=session_id, updated_at=now)
    )
    if not claimed.rowcount:
        return None
    return get_request(conn, pending.id)


def set_request_status(conn: Connection, request_id: int, status: str, *, now: datetime) -> None:
    conn.execute(
        charging_requests.update().where(_cr.id == request_id).values(status=status, updated_at=now)
    )


def mark_stop_requested(conn: Connection, request_id: int, why: str, *, now: datetime) -> bool:
    """Record why we asked the charger to stop, once: True only the first time."""
    result = conn.execute(
        charging_requests.update()
        .where(_cr.id == request_id, _cr.stop_requested.is_(None))
        .values(stop_requested=why, updated_at=now)
        .returning(_cr.id)
    )
    return result.first() is not None


def expire_requests(
    conn: Connection, *, requested_before: datetime, now: datetime, limit: int
) -> list[ChargingRequestRecord]:
    """
    Release the funds of up to ``limit`` app starts still ``requested`` (the
    charger never sent StartTransaction) since before ``requested_before``:
    they become ``failed``, and are returned. Each such request is returned by
    exactly one call, whichever node makes it, so one event per release: on
    PostgreSQL a sweep skips the rows another node's sweep has locked, and
    the UPDATE matches only rows still ``requested`` (SQLite is serial).
    """
    # Two statements: PostgreSQL may run a LIMIT subquery inside an UPDATE's
    # WHERE more than once, and then release more than ``limit``.
    stale = (
        conn.execute(
            sa.select(_cr.id)
            .where(_cr.status == "requested", _cr.created_at < requested_before)
            .order_by(_cr.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not stale:
        return []
    rows = conn.execute(
        charging_requests.update()
        .where(_cr.id.in_(stale), _cr.status == "requested")
        .values(status="failed", updated_at=now)
        .returning(*charging_requests.c)
    )
    return sorted(
        (from_mapping(ChargingRequestRecord, row._mapping) for row in rows), key=lambda r: r.id
    )


def request_by_command(conn: Connection, command_id: str) -> ChargingRequestRecord | None:
    return first_record(
        conn,
        ChargingRequestRecord,
        sa.select(charging_requests).where(_cr.command_id == command_id),
    )
