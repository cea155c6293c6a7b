"""
A tariff as a value: a currency and three prices in integer minor units.

The store keeps tariffs as rows (``TariffRecord``); billing takes this value
instead, so that a price is validated once, where it enters, and the cost
functions never meet a float, a negative price or a lower-case currency.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

import attrs

_CURRENCY = re.compile(r"[A-Z]{3}")


class TariffLike(Protocol):
    """Anything with a tariff's attributes, e.g. ``ocppd.store.records.TariffRecord``."""

    @property
    def currency(self) -> str: ...
    @property
    def price_per_kwh(self) -> int: ...
    @property
    def price_per_minute(self) -> int: ...
    @property
    def session_fee(self) -> int: ...
    @property
    def session_fee_always(self) -> bool: ...


def _check_currency(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # Only the shape is checked, not membership of ISO 4217's list: the list
    # changes, and an operator billing in a new currency must not need a release.
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value):
        raise ValueError(
            f"{attribute.name} must be an ISO 4217 code of three upper-case letters"
            f" like EUR, got {value!r}"
        )


def _check_minor_units(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # bool is an int, and a float (or Decimal) price would be rounded somewhere
    # silently; a negative price would pay the customer for charging.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(
            f"{attribute.name} must be a non-negative integer of minor units, got {value!r}"
        )


def _check_flag(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    # ValueError like the other checks, so the CMS answers 400 naming the field.
    if not isinstance(value, bool):
        raise ValueError(f"{attribute.name} must be true or false, got {value!r}")


@attrs.frozen
class Tariff:
    """
    What a session costs: ``session_fee`` once, ``price_per_kwh`` for each
    kWh delivered and ``price_per_minute`` for each minute connected, all in
    minor units (cents) of ``currency``.

    The fee is owed only by a session that delivered energy or was charged
    for time (see ``ocppd.billing.cost``), unless ``session_fee_always``: a
    start the car never took costs nothing unless the tariff says so.

    Raises ValueError, naming the attribute, for a malformed currency or a
    price that is not a non-negative int: the CMS can answer 400 from it.
    """

    currency: str = attrs.field(validator=_check_currency)
    price_per_kwh: int = attrs.field(validator=_check_minor_units)
    price_per_minute: int = attrs.field(default=0, validator=_check_minor_units)
    session_fee: int = attrs.field(default=0, validator=_check_minor_units)
    session_fee_always: bool = attrs.field(default=False, validator=_check_flag)

    @classmethod
    def from_record(cls, record: TariffLike) -> Tariff:
        """The tariff of a stored row (or any object with the same attributes)."""
        return cls(
            currency=record.currency,
            price_per_kwh=record.price_per_kwh,
            price_per_minute=record.price_per_minute,
            session_fee=record.session_fee,
            session_fee_always=record.session_fee_always,
        )
