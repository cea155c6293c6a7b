"""Tests for ocppd.billing.tariff: a tariff is validated where it enters."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import attrs
from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing import Tariff
from ocppd.store.records import TariffRecord

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


class TariffTests(SynchronousTestCase):
    def test_fields(self) -> None:
        """A tariff keeps its currency and prices as given; time price and fee default to 0."""
        tariff = Tariff(currency="EUR", price_per_kwh=35)
        self.assertEqual(
            (tariff.currency, tariff.price_per_kwh, tariff.price_per_minute, tariff.session_fee),
            ("EUR", 35, 0, 0),
        )

    def test_frozen(self) -> None:
        """A tariff is a value: it cannot be changed after validation."""
        tariff = Tariff(currency="EUR", price_per_kwh=35)
        with self.assertRaises(attrs.exceptions.FrozenInstanceError):
            tariff.price_per_kwh = 0  # type: ignore[misc]

    def test_bad_currency(self) -> None:
        """
        A currency that is not three upper-case letters is refused, naming the
        field: lower case, a digit, the wrong length, or no string at all.
        """
        for currency in ["eur", "Eur", "EURO", "EU", "E1R", "", " EUR", "EUR\n", None, 978]:
            with self.assertRaises(ValueError) as raised:
                Tariff(currency=currency, price_per_kwh=1)  # type: ignore[arg-type]
            self.assertIn("currency", str(raised.exception))

    def test_bad_prices(self) -> None:
        """
        Every price must be a non-negative int of minor units: negative values,
        floats, Decimals, bools and strings are refused with the field named.
        """
        for field in ["price_per_kwh", "price_per_minute", "session_fee"]:
            for value in [-1, 0.5, 35.0, Decimal("35"), True, "35", None]:
                prices = {"price_per_kwh": 0, "price_per_minute": 0, "session_fee": 0}
                prices[field] = value  # type: ignore[assignment]
                with self.assertRaises(ValueError) as raised:
                    Tariff(currency="EUR", **prices)
                self.assertIn(field, str(raised.exception))

    def test_zero_prices(self) -> None:
        """A free tariff (every price 0) is valid."""
        Tariff(currency="EUR", price_per_kwh=0, price_per_minute=0, session_fee=0)

    def test_from_record(self) -> None:
        """A stored TariffRecord becomes a Tariff with the same currency and prices."""
        record = TariffRecord(
            id=7,
            name="AC standard",
            currency="SEK",
            price_per_kwh=450,
            price_per_minute=10,
            session_fee=500,
            session_fee_always=False,
            created_at=T0,
            updated_at=T0,
        )
        self.assertEqual(
            Tariff.from_record(record),
            Tariff(currency="SEK", price_per_kwh=450, price_per_minute=10, session_fee=500),
        )

    def test_from_record_validates(self) -> None:
        """A record with a malformed price (e.g. a corrupt row) is refused, not billed."""

        @attrs.frozen
        class Row:
            currency: str = "EUR"
            price_per_kwh: int = -35
            price_per_minute: int = 0
            session_fee: int = 0
            session_fee_always: bool = False

        with self.assertRaises(ValueError):
            Tariff.from_record(Row())
