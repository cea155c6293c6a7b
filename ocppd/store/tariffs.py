"""Tariffs: prices in integer minor units of their currency (cents), never floats."""

from __future__ import annotations

import re
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.errors import AlreadyExists
from ocppd.store.records import TariffRecord, all_records, first_record
from ocppd.store.sql import insert_new
from ocppd.store.tables import tariffs

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


def get_tariff_by_name(conn: Connection, name: str) -> TariffRecord | None:
    """The tariff called ``name`` (exactly), or None."""
    return first_record(conn, TariffRecord, sa.select(tariffs).where(tariffs.c.name == name))


def list_tariffs(conn: Connection) -> list[TariffRecord]:
    """Every tariff, by name."""
    return all_records(conn, TariffRecord, sa.select(tariffs).order_by(tariffs.c.name))
