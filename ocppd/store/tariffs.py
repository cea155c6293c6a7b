"""Tariffs: prices in integer minor units of their currency (cents), never floats."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.errors import AlreadyExists, InUse, NotFound
from ocppd.store.records import TariffRecord, all_records, first_record
from ocppd.store.sql import insert_new
from ocppd.store.tables import charge_points, tariffs, transactions

_CURRENCY = re.compile(r"[A-Z]{3}")


def _check_price(name: str, value: int) -> None:
    # bool is an int; a float price would be rounded somewhere silently.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer of minor units, got {value!r}")


def add_tariff(
    conn: Connection,
    name: str,
    *,
    currency: str,
    price_per_kwh: int,
    price_per_minute: int = 0,
    session_fee: int = 0,
    session_fee_always: bool = False,
    now: datetime,
) -> int:
    """
    Add a tariff; its id. ``currency`` is an ISO 4217 code (``EUR``); prices
    are integer minor units. Raises AlreadyExists for a name in use,
    ValueError for a malformed currency or price.
    """
    if not _CURRENCY.fullmatch(currency):
        raise ValueError(f"currency must be an ISO 4217 code like EUR, got {currency!r}")
    _check_price("price_per_kwh", price_per_kwh)
    _check_price("price_per_minute", price_per_minute)
    _check_price("session_fee", session_fee)
    tariff_id = insert_new(
        conn,
        tariffs,
        {
            "name": name,
            "currency": currency,
            "price_per_kwh": price_per_kwh,
            "price_per_minute": price_per_minute,
            "session_fee": session_fee,
            "session_fee_always": session_fee_always,
            "created_at": now,
            "updated_at": now,
        },
    )
    if tariff_id is None:
        raise AlreadyExists(f"tariff {name!r}")
    return int(tariff_id)


def get_tariff(conn: Connection, tariff_id: int) -> TariffRecord | None:
    """The tariff, or None."""
    return first_record(conn, TariffRecord, sa.select(tariffs).where(tariffs.c.id == tariff_id))


def tariffs_by_id(conn: Connection, tariff_ids: Iterable[int | None]) -> dict[int, TariffRecord]:
    """The tariffs of these ids (None and unknown ones left out), in one query."""
    wanted = sorted({i for i in tariff_ids if i is not None})
    if not wanted:
        return {}
    rows = all_records(conn, TariffRecord, sa.select(tariffs).where(tariffs.c.id.in_(wanted)))
    return {row.id: row for row in rows}


def get_tariff_by_name(conn: Connection, name: str) -> TariffRecord | None:
    """The tariff called ``name`` (exactly), or None."""
    return first_record(conn, TariffRecord, sa.select(tariffs).where(tariffs.c.name == name))


def list_tariffs(conn: Connection) -> list[TariffRecord]:
    """Every tariff, by name."""
    return all_records(conn, TariffRecord, sa.select(tariffs).order_by(tariffs.c.name))


def list_tariffs_page(
    conn: Connection, *, after_id: int | None = None, limit: int
) -> list[TariffRecord]:
    """Up to ``limit`` tariffs in id order, after ``after_id`` (keyset pagination)."""
    query = sa.select(tariffs)
    if after_id is not None:
        query = query.where(tariffs.c.id > after_id)
    return all_records(conn, TariffRecord, query.order_by(tariffs.c.id).limit(limit))


def update_tariff(
    conn: Connection,
    tariff_id: int,
    *,
    name: str,
    currency: str,
    price_per_kwh: int,
    price_per_minute: int,
    session_fee: int,
    session_fee_always: bool = False,
    now: datetime,
) -> None:
    """
    Replace a tariff's fields. Raises NotFound, AlreadyExists for a name
    another tariff has, ValueError for a malformed currency or price.

    Sessions keep their own ``cost``/``currency`` once billed, so a new price
    applies to sessions that stop after the change.
    """
    if not _CURRENCY.fullmatch(currency):
        raise ValueError(f"currency must be an ISO 4217 code like EUR, got {currency!r}")
    _check_price("price_per_kwh", price_per_kwh)
    _check_price("price_per_minute", price_per_minute)
    _check_price("session_fee", session_fee)
    clash = conn.execute(
        sa.select(tariffs.c.id).where(tariffs.c.name == name, tariffs.c.id != tariff_id)
    ).first()
    if clash is not None:
        raise AlreadyExists(f"tariff {name!r}")
    try:
        result = conn.execute(
            tariffs.update()
            .where(tariffs.c.id == tariff_id)
            .values(
                name=name,
                currency=currency,
                price_per_kwh=price_per_kwh,
                price_per_minute=price_per_minute,
                session_fee=session_fee,
                session_fee_always=session_fee_always,
                updated_at=now,
            )
        )
    except sa.exc.IntegrityError:
        raise AlreadyExists(f"tariff {name!r}") from None
    if result.rowcount == 0:
        raise NotFound(f"tariff {tariff_id}")


def tariff_users(conn: Connection, tariff_id: int) -> tuple[int, int]:
    """(charge points with this tariff, active sessions billed with it)."""
    points = conn.execute(
        sa.select(sa.func.count())
        .select_from(charge_points)
        .where(charge_points.c.tariff_id == tariff_id)
    ).scalar_one()
    active = conn.execute(
        sa.select(sa.func.count())
        .select_from(transactions)
        .where(
            transactions.c.tariff_id == tariff_id,
            transactions.c.status == "active",
            transactions.c.confirmed.is_(sa.true()),
        )
    ).scalar_one()
    return int(points), int(active)


def delete_tariff(conn: Connection, tariff_id: int) -> None:
    """
    Delete a tariff that no charge point and no active session uses. Raises
    NotFound, or InUse: a point whose tariff vanished would charge for free,
    and an active session would stop unbilled. Completed sessions keep
    their cost and currency, so their reference is simply nulled (SET NULL).
    """
    if get_tariff(conn, tariff_id) is None:
        raise NotFound(f"tariff {tariff_id}")
    points, active = tariff_users(conn, tariff_id)
    if points or active:
        raise InUse(
            f"tariff {tariff_id} is used by {points} charge point(s) and {active} active session(s)"
        )
    conn.execute(tariffs.delete().where(tariffs.c.id == tariff_id))
