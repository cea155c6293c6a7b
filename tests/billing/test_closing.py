"""Tests for ocppd.billing.closing: who pays a stopped session, and why it stopped."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing import Settlement
from ocppd.billing.closing import debit_of, stop_reason, wallet_pays


class WalletPaysTests(SynchronousTestCase):
    def test_customer_in_wallet_currency(self) -> None:
        """Only a customer's session in the wallets' currency is paid from a wallet."""
        self.assertTrue(wallet_pays(5, "EUR", "EUR"))
        self.assertFalse(wallet_pays(None, "EUR", "EUR"))
        self.assertFalse(wallet_pays(5, "USD", "EUR"))


class DebitTests(SynchronousTestCase):
    def test_billed_customer_is_debited(self) -> None:
        self.assertEqual(debit_of(Settlement("bill", 120, "EUR"), 5, "EUR"), "debit")

    def test_nothing_to_debit(self) -> None:
        """A review, a free session or one without a customer debits nothing."""
        for settlement, user_id in (
            (Settlement("review", 120, "EUR", ("energy_above_limit",)), 5),
            (Settlement("no_charge", 0, "EUR"), 5),
            (Settlement("bill", 0, "EUR"), 5),
            (Settlement("bill", 120, "EUR"), None),
        ):
            self.assertEqual(debit_of(settlement, user_id, "EUR"), "none", settlement)

    def test_other_currency(self) -> None:
        """A bill in another currency than wallets is not debited, and says so."""
        self.assertEqual(debit_of(Settlement("bill", 120, "USD"), 5, "EUR"), "other_currency")


class StopReasonTests(SynchronousTestCase):
    def test_order(self) -> None:
        """Why ocppd asked, else what the charger said, else Local."""
        self.assertEqual(stop_reason("funds", "Remote"), "funds")
        self.assertEqual(stop_reason(None, "EVDisconnected"), "EVDisconnected")
        self.assertEqual(stop_reason(None, None), "Local")
        self.assertEqual(stop_reason("", ""), "Local")
