"""
Worked examples for ocppd.billing.funds: when a prepaid session must stop, and
how far a balance goes. Amounts are cents.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing import (
    Tariff,
    affordable_energy_wh,
    affordable_seconds,
    session_cost,
    should_stop,
)

#: 30 ct/kWh and a 1 EUR session fee, no time price.
ENERGY_ONLY = Tariff(currency="EUR", price_per_kwh=30, session_fee=100)
#: 2 ct/min, nothing else.
TIME_ONLY = Tariff(currency="EUR", price_per_kwh=0, price_per_minute=2)
FREE = Tariff(currency="EUR", price_per_kwh=0)


class ShouldStopTests(SynchronousTestCase):
    def test_reaches_balance(self) -> None:
        """
        Balance 1000 on ENERGY_ONLY: 29999 Wh cost 100 + floor(899.97) = 999,
        keep going; 30000 Wh cost 100 + 900 = 1000, the balance reached: stop.
        """
        self.assertFalse(
            should_stop(ENERGY_ONLY, balance=1000, energy_wh=29999, duration_seconds=0)
        )
        self.assertTrue(should_stop(ENERGY_ONLY, balance=1000, energy_wh=30000, duration_seconds=0))

    def test_fee_above_balance(self) -> None:
        """
        Balance 99 cannot pay the fee of 100: stop at the first Wh, which makes
        the fee owed; before any energy nothing is owed, so nothing stops.
        """
        self.assertFalse(should_stop(ENERGY_ONLY, balance=99, energy_wh=0, duration_seconds=60))
        self.assertTrue(should_stop(ENERGY_ONLY, balance=99, energy_wh=1, duration_seconds=0))

    def test_free_session_on_empty_wallet(self) -> None:
        """A session that costs 0 is never stopped for funds, even on a 0 or negative balance."""
        for balance in [0, -100]:
            self.assertFalse(
                should_stop(FREE, balance=balance, energy_wh=50_000, duration_seconds=3600)
            )
            self.assertFalse(
                should_stop(TIME_ONLY, balance=balance, energy_wh=0, duration_seconds=29)
            )

    def test_first_cent_on_empty_wallet(self) -> None:
        """On a balance of 0, TIME_ONLY stops at 30 s, its first cent (2 * 30 / 60 = 1)."""
        self.assertTrue(should_stop(TIME_ONLY, balance=0, energy_wh=0, duration_seconds=30))

    def test_balance_must_be_int(self) -> None:
        """A float balance is refused: money is never a float."""
        with self.assertRaises(TypeError):
            should_stop(ENERGY_ONLY, balance=10.0, energy_wh=0, duration_seconds=0)  # type: ignore[arg-type]


class AffordableTests(SynchronousTestCase):
    def test_energy(self) -> None:
        """
        Balance 1000 on ENERGY_ONLY leaves 900 for energy at 0.03 ct/Wh:
        100 + floor(0.03 * e) <= 1000 while 0.03 * e < 901, i.e. e <= 30033
        (900.99 ct, billed 900); 30034 Wh would be 901.02, billed 1001.
        """
        self.assertEqual(affordable_energy_wh(ENERGY_ONLY, balance=1000, duration_seconds=0), 30033)
        self.assertEqual(session_cost(ENERGY_ONLY, energy_wh=30033, duration_seconds=0), 1000)
        self.assertEqual(session_cost(ENERGY_ONLY, energy_wh=30034, duration_seconds=0), 1001)

    def test_energy_exact_boundary(self) -> None:
        """
        At 60 ct/kWh (0.06 ct/Wh) a balance of 5 pays 99 Wh (5.94 ct, billed 5)
        but not 100 Wh, which cost exactly 6: the boundary is exclusive.
        """
        tariff = Tariff(currency="EUR", price_per_kwh=60)
        self.assertEqual(affordable_energy_wh(tariff, balance=5, duration_seconds=0), 99)

    def test_energy_after_time(self) -> None:
        """
        EXAMPLE-like tariff 35 ct/kWh, 2 ct/min, fee 50 and balance 500 after
        90 min (180 ct): 270 left, 0.035 * e < 271, e <= 7742 (270.97 ct).
        """
        tariff = Tariff(currency="EUR", price_per_kwh=35, price_per_minute=2, session_fee=50)
        self.assertEqual(affordable_energy_wh(tariff, balance=500, duration_seconds=5400), 7742)

    def test_seconds(self) -> None:
        """Balance 10 on TIME_ONLY: floor(s / 30) <= 10 while s < 330, so 329 s."""
        self.assertEqual(affordable_seconds(TIME_ONLY, balance=10, energy_wh=0), 329)

    def test_unlimited(self) -> None:
        """A part that costs nothing has no limit (None) once the rest is paid for."""
        self.assertIsNone(affordable_energy_wh(TIME_ONLY, balance=10, duration_seconds=300))
        self.assertIsNone(affordable_seconds(ENERGY_ONLY, balance=1000, energy_wh=0))
        self.assertIsNone(affordable_energy_wh(FREE, balance=0, duration_seconds=0))

    def test_nothing_affordable(self) -> None:
        """
        When the fee (or the time, or the energy) alone exceeds the balance, no
        energy or time is affordable: 0, even where that part is free. Without
        energy on a tariff with free time no fee is owed, so time is unlimited.
        """
        self.assertEqual(affordable_energy_wh(ENERGY_ONLY, balance=99, duration_seconds=0), 0)
        self.assertEqual(affordable_seconds(ENERGY_ONLY, balance=99, energy_wh=1), 0)
        self.assertIsNone(affordable_seconds(ENERGY_ONLY, balance=99, energy_wh=0))
        self.assertEqual(affordable_energy_wh(TIME_ONLY, balance=10, duration_seconds=330), 0)
