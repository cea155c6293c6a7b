"""Amounts written for people: major units and the currency's own digits, exactly."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing.money import format_amount, minor_digits


class FormatAmountTests(SynchronousTestCase):
    def test_digits_of_the_currency(self) -> None:
        """EUR has cents, JPY none, KWD thousandths; the sign leads."""
        self.assertEqual([minor_digits(c) for c in ("EUR", "JPY", "KWD", "XYZ")], [2, 0, 3, 2])
        self.assertEqual(format_amount(500, "EUR"), "5.00 EUR")
        self.assertEqual(format_amount(7, "EUR"), "0.07 EUR")
        self.assertEqual(format_amount(-1234, "EUR"), "-12.34 EUR")
        self.assertEqual(format_amount(500, "JPY"), "500 JPY")
        self.assertEqual(format_amount(1005, "KWD"), "1.005 KWD")
        self.assertEqual(format_amount(2**53 + 1, "EUR"), "90071992547409.93 EUR")
