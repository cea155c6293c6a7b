"""Tests for ocppd.billing.closing: who pays a stopped session, and why it stopped."""

from __future__ import annotations

from datetime import timedelta

import attrs
from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing import Settlement
from ocppd.billing.closing import (
    closing_reading,
    debit_of,
    settle_closed,
    stop_reason,
    wallet_pays,
)
from tests.billing.test_settlement import LIMITS, PLAIN, T0, TARIFF, outcome


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


class ClosedSessionTests(SynchronousTestCase):
    """Sessions the central system closed: on their last reading, no fee for nothing."""

    def test_closed_on_last_reading(self) -> None:
        """The last reading and its time; without one, the start (nothing delivered)."""
        later = T0 + timedelta(minutes=20)
        self.assertEqual(
            closing_reading(
                meter_start_wh=1000, started_at=T0, last_meter_wh=4000, last_meter_at=later
            ),
            (4000, later),
        )
        self.assertEqual(
            closing_reading(
                meter_start_wh=1000, started_at=T0, last_meter_wh=None, last_meter_at=None
            ),
            (1000, T0),
        )

    def test_nothing_delivered_costs_nothing(self) -> None:
        """
        Metered for an hour without energy: a stop the charger sent would owe
        the fee and the time; a session closed for it owes nothing.
        """
        idle = attrs.evolve(PLAIN, meter_stop_wh=PLAIN.meter_start_wh)
        self.assertEqual(outcome(idle), Settlement("bill", 50 + 120, "EUR"))
        closed = settle_closed(TARIFF, idle, LIMITS, balance=None)
        self.assertEqual(closed, Settlement("no_charge", 0, "EUR"))
        always = attrs.evolve(TARIFF, session_fee_always=True)
        self.assertEqual(settle_closed(always, idle, LIMITS, balance=None).cost, 0)

    def test_delivered_is_settled_as_usual(self) -> None:
        """Energy delivered: the usual price, and the usual review rules."""
        self.assertEqual(settle_closed(TARIFF, PLAIN, LIMITS, balance=None), outcome(PLAIN))
        self.assertEqual(
            settle_closed(TARIFF, PLAIN, LIMITS, balance=100).reasons, ("below_wallet_floor",)
        )
