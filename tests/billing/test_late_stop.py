"""
Worked examples for ocppd.billing.late_stop: a charger's own stop after the
central system closed (and billed) its session. Amounts are cents.
"""

from __future__ import annotations

from datetime import timedelta

import attrs
from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing.late_stop import (
    LATE_STOP_AFTER_REVIEW,
    LATE_STOP_BEFORE_CLOSE,
    LATE_STOP_BELOW_BILLED,
    LATE_STOP_COST_BELOW_BILLED,
    ClosedBill,
    Correction,
    correct_late_stop,
)
from ocppd.billing.settlement import BELOW_WALLET_FLOOR, STOP_IN_FUTURE
from ocppd.billing.tariff import Tariff
from tests.billing.test_settlement import LIMITS, PLAIN, T0, TARIFF

#: Closed on its last reading, 8 kWh after 48 minutes: 50 + 240 + 96 = 386.
CLOSED = ClosedBill(
    meter_stop_wh=9000,
    stopped_at=T0 + timedelta(minutes=48),
    cost=386,
    review_status=None,
    wallet=True,
)
#: The charger's stop: 10 kWh after an hour (``PLAIN``), 470 in all.
STOP = PLAIN


def correct(
    closed: ClosedBill = CLOSED, stop: object = STOP, *, balance: int | None = 10_000
) -> Correction:
    assert isinstance(stop, type(PLAIN))
    return correct_late_stop(TARIFF, closed, stop, LIMITS, balance=balance)


class CorrectionTests(SynchronousTestCase):
    def test_energy_after_the_close_is_debited(self) -> None:
        """The bill becomes 470; the 84 not billed at the close are debited."""
        self.assertEqual(correct(), Correction("debit", 470, 84))

    def test_same_bill_is_recorded(self) -> None:
        """A stop that adds nothing to the bill debits nothing."""
        closed = attrs.evolve(CLOSED, meter_stop_wh=11_000, stopped_at=STOP.stopped_at, cost=470)
        self.assertEqual(correct(closed), Correction("record", 470))

    def test_no_wallet_records_the_new_cost(self) -> None:
        """Without a customer's wallet the session's cost is corrected, nothing debited."""
        self.assertEqual(
            correct(attrs.evolve(CLOSED, wallet=False), balance=None), Correction("record", 470)
        )

    def test_closed_for_nothing_is_billed_whole(self) -> None:
        """A session closed without a reading cost 0; the charger's stop bills it all."""
        closed = attrs.evolve(CLOSED, meter_stop_wh=1000, stopped_at=T0, cost=0)
        self.assertEqual(correct(closed), Correction("debit", 470, 470))

    def test_no_tariff(self) -> None:
        """An unpriced session just records the stop."""
        self.assertEqual(
            correct_late_stop(None, CLOSED, STOP, LIMITS, balance=None), Correction("record", None)
        )

    def test_meter_below_billed_goes_to_review(self) -> None:
        """A lower meterStop than billed is never credited: review, with the reason."""
        stop = attrs.evolve(STOP, meter_stop_wh=8000)
        result = correct(stop=stop)
        self.assertEqual(result.outcome, "review")
        self.assertEqual(result.reasons, (LATE_STOP_BELOW_BILLED,))
        self.assertEqual(result.difference, 0)

    def test_time_before_close_goes_to_review(self) -> None:
        stop = attrs.evolve(STOP, stopped_at=CLOSED.stopped_at - timedelta(seconds=1))
        self.assertEqual(correct(stop=stop).reasons, (LATE_STOP_BEFORE_CLOSE,))

    def test_implausible_stop_goes_to_review(self) -> None:
        """A stop stamped a day ahead of its arrival: settle's own reason."""
        stop = attrs.evolve(STOP, stopped_at=STOP.stop_received_at + timedelta(days=1))
        result = correct(stop=stop)
        self.assertEqual((result.outcome, result.reasons), ("review", (STOP_IN_FUTURE,)))

    def test_floor_judges_the_difference(self) -> None:
        """
        The wallet holds 80 after the first bill: the 84 more would take it
        below the floor of 0, so review; with 84 it is debited.
        """
        self.assertEqual(correct(balance=80).reasons, (BELOW_WALLET_FLOOR,))
        self.assertEqual(correct(balance=84), Correction("debit", 470, 84))

    def test_pending_review_stays_pending(self) -> None:
        """A session held at the close keeps waiting, with the new computed cost."""
        closed = attrs.evolve(CLOSED, cost=None, review_status="pending")
        self.assertEqual(correct(closed), Correction("review", 470))

    def test_decided_review_is_reopened(self) -> None:
        """An operator's decision was on other facts: reviewed again, nothing moves."""
        closed = attrs.evolve(CLOSED, review_status="waived", cost=0)
        self.assertEqual(
            correct(closed), Correction("review", 470, reasons=(LATE_STOP_AFTER_REVIEW,))
        )

    def test_cheaper_recomputation_goes_to_review(self) -> None:
        """
        A bill that would go down (here the close was billed by a dearer
        rule) is never credited automatically.
        """
        closed = attrs.evolve(CLOSED, cost=500)
        self.assertEqual(
            correct(closed), Correction("review", 470, reasons=(LATE_STOP_COST_BELOW_BILLED,))
        )

    def test_rounding_is_the_tariffs(self) -> None:
        """The correction is the difference of two whole bills, each rounded as any bill."""
        tariff = Tariff(currency="EUR", price_per_kwh=33)
        closed = attrs.evolve(CLOSED, meter_stop_wh=1015, cost=0)  # 15 Wh: 0.495 -> 0
        stop = attrs.evolve(STOP, meter_stop_wh=1031)  # 31 Wh: 1.023 -> 1
        result = correct_late_stop(tariff, closed, stop, LIMITS, balance=100)
        self.assertEqual(result, Correction("debit", 1, 1))
