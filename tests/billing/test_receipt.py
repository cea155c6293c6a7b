"""The money on a receipt: its lines add up to what was billed, and the VAT in it."""

from __future__ import annotations

from fractions import Fraction

from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing import Tariff, session_cost
from ocppd.billing.receipt import (
    ADJUSTMENT,
    ENERGY,
    FEE,
    TIME,
    Line,
    receipt_money,
    vat_included,
)

TARIFF = Tariff(currency="EUR", price_per_kwh=39, price_per_minute=2, session_fee=100)


class VatTests(SynchronousTestCase):
    def test_examples(self) -> None:
        """19 % included in 672 is 107.29 -> 107; 119 holds exactly 19; 0 % holds none."""
        self.assertEqual(vat_included(672, 1900), 107)
        self.assertEqual(vat_included(119, 1900), 19)
        self.assertEqual(vat_included(1000, 0), 0)
        self.assertEqual(vat_included(0, 1900), 0)
        self.assertEqual(vat_included(10000, 10000), 5000)

    def test_half_up(self) -> None:
        """Exactly half a minor unit rounds up; just below rounds down."""
        # 21 at 100 % holds exactly 10.5 -> 11; 1 at 100 % holds 0.5 -> 1;
        # 3 at 19 % holds 0.479 -> 0; 105 at 5 % holds exactly 5.
        self.assertEqual(vat_included(21, 10000), 11)
        self.assertEqual(vat_included(1, 10000), 1)
        self.assertEqual(vat_included(3, 1900), 0)
        self.assertEqual(vat_included(105, 500), 5)

    def test_against_exact_arithmetic(self) -> None:
        """Over many totals and rates: the exact value rounded half up, never off by a unit."""
        for rate in (0, 1, 500, 700, 1900, 2000, 2500, 9999, 10000):
            for total in range(0, 5000, 7):
                exact = Fraction(total * rate, 10000 + rate)
                expected = int(exact + Fraction(1, 2))  # floor(x + 1/2), x >= 0
                self.assertEqual(vat_included(total, rate), expected, (total, rate))

    def test_bad_rate(self) -> None:
        self.assertRaises(ValueError, vat_included, 100, -1)
        self.assertRaises(ValueError, vat_included, 100, 10001)
        self.assertRaises(TypeError, vat_included, 100.0, 1900)


class LinesTests(SynchronousTestCase):
    def test_lines_add_up_to_the_bill(self) -> None:
        """Fee, energy and time as the bill computes them; net + VAT = total."""
        billed = session_cost(TARIFF, energy_wh=12345, duration_seconds=2730)
        money = receipt_money(
            TARIFF, energy_wh=12345, duration_seconds=2730, billed=billed, vat_rate_bp=1900
        )
        self.assertEqual(
            money.lines,
            [Line(FEE, 100, 1, 100), Line(ENERGY, 481, 12345, 39), Line(TIME, 91, 2730, 2)],
        )
        self.assertEqual((money.total, money.vat, money.net), (672, 107, 565))
        self.assertEqual(sum(line.amount for line in money.lines), money.total)

    def test_adjustment_when_the_bill_differs(self) -> None:
        """A waived or adjusted bill (or a tariff edited since) shows the difference as a line."""
        waived = receipt_money(
            TARIFF, energy_wh=12345, duration_seconds=2730, billed=0, vat_rate_bp=1900
        )
        self.assertEqual(waived.lines[-1], Line(ADJUSTMENT, -672, None, None))
        self.assertEqual(sum(line.amount for line in waived.lines), 0)
        self.assertEqual((waived.vat, waived.net), (0, 0))

    def test_no_tariff_no_parts(self) -> None:
        """A free session (no tariff) has no lines and a zero total."""
        money = receipt_money(None, energy_wh=5000, duration_seconds=60, billed=0, vat_rate_bp=0)
        self.assertEqual((money.lines, money.total), ([], 0))

    def test_unused_parts_left_out(self) -> None:
        """An energy-only tariff has no time line; a fee not owed has no fee line."""
        energy_only = Tariff(currency="EUR", price_per_kwh=30, price_per_minute=0, session_fee=50)
        money = receipt_money(
            energy_only, energy_wh=0, duration_seconds=600, billed=0, vat_rate_bp=0
        )
        self.assertEqual(money.lines, [Line(ENERGY, 0, 0, 30)])
