"""
Worked examples for ocppd.billing.cost, each computed by hand in its docstring.

Prices are in cents (minor units); the exact cost is
``fee + price_per_kwh * Wh / 1000 + price_per_minute * s / 60``, rounded down once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import attrs
from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing import (
    CostBreakdown,
    Tariff,
    cost_breakdown,
    elapsed_seconds,
    final_cost,
    live_estimate,
    session_cost,
)

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)

#: 0.35 EUR/kWh, 0.02 EUR/min, 0.50 EUR per session.
EXAMPLE = Tariff(currency="EUR", price_per_kwh=35, price_per_minute=2, session_fee=50)


class SessionCostTests(SynchronousTestCase):
    def test_worked_example(self) -> None:
        """
        7.5 kWh and 90 min on 35 ct/kWh, 2 ct/min, fee 50:
        energy 35 * 7500 / 1000 = 262.5, time 2 * 5400 / 60 = 180,
        exact 50 + 262.5 + 180 = 492.5, billed 492 (rounded down).
        """
        self.assertEqual(session_cost(EXAMPLE, energy_wh=7500, duration_seconds=5400), 492)

    def test_worked_breakdown(self) -> None:
        """
        The same session's parts: fee 50, energy floor(262.5) = 262, and time
        the rest, 492 - 50 - 262 = 180.
        """
        self.assertEqual(
            cost_breakdown(EXAMPLE, energy_wh=7500, duration_seconds=5400),
            CostBreakdown(
                currency="EUR",
                fee=50,
                energy=262,
                time=180,
                total=492,
                energy_wh=7500,
                duration_seconds=5400,
            ),
        )

    def test_rounds_once(self) -> None:
        """
        Two half cents make a cent: 7.5 kWh at 35 ct is 262.5 and 10830 s at
        1 ct/min is 180.5, so the exact cost is 50 + 443 = 493, billed in full.
        Rounding each part down would have billed 492. The carry goes to the
        time part: energy 262, time 493 - 50 - 262 = 181.
        """
        tariff = Tariff(currency="EUR", price_per_kwh=35, price_per_minute=1, session_fee=50)
        breakdown = cost_breakdown(tariff, energy_wh=7500, duration_seconds=10830)
        self.assertEqual(
            (breakdown.fee, breakdown.energy, breakdown.time, breakdown.total), (50, 262, 181, 493)
        )

    def test_rounds_down_to_the_cent(self) -> None:
        """
        At 29 ct/kWh, 34 Wh is 0.986 ct: billed 0; 35 Wh is 1.015 ct: billed 1;
        1 Wh (0.029 ct) is free. Never rounded up, never to nearest.
        """
        tariff = Tariff(currency="EUR", price_per_kwh=29)
        self.assertEqual(
            [session_cost(tariff, energy_wh=wh, duration_seconds=0) for wh in [1, 34, 35]],
            [0, 0, 1],
        )

    def test_time_part(self) -> None:
        """At 1 ct/min, 59 s is 0.983 ct: billed 0; 60 s: 1; 119 s: 1; 120 s: 2."""
        tariff = Tariff(currency="EUR", price_per_kwh=0, price_per_minute=1)
        self.assertEqual(
            [session_cost(tariff, energy_wh=0, duration_seconds=s) for s in [59, 60, 119, 120]],
            [0, 1, 1, 2],
        )

    def test_large_session(self) -> None:
        """
        A 24 h, 1 MWh session at 59 ct/kWh, 3 ct/min and fee 99:
        59 * 1000 + 3 * 1440 + 99 = 59000 + 4320 + 99 = 63419, exactly.
        """
        tariff = Tariff(currency="EUR", price_per_kwh=59, price_per_minute=3, session_fee=99)
        self.assertEqual(session_cost(tariff, energy_wh=1_000_000, duration_seconds=86400), 63419)

    def test_zero_decimal_currency(self) -> None:
        """
        Minor units are the currency's own: in JPY (no decimals) 45 yen/kWh for
        12.345 kWh is 555.525 yen, billed 555.
        """
        tariff = Tariff(currency="JPY", price_per_kwh=45)
        breakdown = cost_breakdown(tariff, energy_wh=12345, duration_seconds=0)
        self.assertEqual((breakdown.total, breakdown.currency), (555, "JPY"))

    def test_nothing_delivered(self) -> None:
        """
        A session of no energy and no time owes no fee: 0 (ten refused starts
        of 0 Wh and 0 s must not cost ten fees). Unless the tariff charges the
        fee always: then 50.
        """
        self.assertEqual(session_cost(EXAMPLE, energy_wh=0, duration_seconds=0), 0)
        always = attrs.evolve(EXAMPLE, session_fee_always=True)
        self.assertEqual(session_cost(always, energy_wh=0, duration_seconds=0), 50)

    def test_fee_owed_for_energy_or_charged_time(self) -> None:
        """
        1 Wh owes the fee (50 + 0.035 = 50); 30 s at 2 ct/min does too (50 + 1);
        an hour without energy on a tariff without a time price does not (0).
        """
        self.assertEqual(session_cost(EXAMPLE, energy_wh=1, duration_seconds=0), 50)
        self.assertEqual(session_cost(EXAMPLE, energy_wh=0, duration_seconds=30), 51)
        energy_only = attrs.evolve(EXAMPLE, price_per_minute=0)
        breakdown = cost_breakdown(energy_only, energy_wh=0, duration_seconds=3600)
        self.assertEqual((breakdown.fee, breakdown.total), (0, 0))

    def test_negative_energy(self) -> None:
        """
        A meter that went backwards (-500 Wh) counts as 0 Wh: 90 min still cost
        50 + 180 = 230, neither less (a refund) nor more.
        """
        breakdown = cost_breakdown(EXAMPLE, energy_wh=-500, duration_seconds=5400)
        self.assertEqual((breakdown.energy, breakdown.energy_wh, breakdown.total), (0, 0, 230))

    def test_negative_duration(self) -> None:
        """A negative duration counts as 0 s: 7.5 kWh cost 50 + 262 = 312."""
        breakdown = cost_breakdown(EXAMPLE, energy_wh=7500, duration_seconds=-60)
        self.assertEqual((breakdown.time, breakdown.duration_seconds, breakdown.total), (0, 0, 312))

    def test_non_int_measures(self) -> None:
        """Floats, bools and strings for energy or duration are a caller's bug: TypeError."""
        for bad in [7500.0, True, "7500", None]:
            with self.assertRaises(TypeError):
                session_cost(EXAMPLE, energy_wh=bad, duration_seconds=0)  # type: ignore[arg-type]
            with self.assertRaises(TypeError):
                session_cost(EXAMPLE, energy_wh=0, duration_seconds=bad)  # type: ignore[arg-type]

    def test_breakdown_must_add_up(self) -> None:
        """A CostBreakdown whose parts do not add up to its total cannot exist."""
        with self.assertRaises(ValueError):
            CostBreakdown(
                currency="EUR",
                fee=50,
                energy=262,
                time=180,
                total=493,
                energy_wh=7500,
                duration_seconds=5400,
            )


class ElapsedSecondsTests(SynchronousTestCase):
    def test_whole_seconds_down(self) -> None:
        """45 min 30.999 s is 2730 whole seconds: the fraction is not billed."""
        self.assertEqual(
            elapsed_seconds(T0, T0 + timedelta(minutes=45, seconds=30, milliseconds=999)), 2730
        )

    def test_backwards(self) -> None:
        """A time before the start (clocks disagree) is 0 s, not negative."""
        self.assertEqual(elapsed_seconds(T0, T0 - timedelta(hours=1)), 0)
        self.assertEqual(elapsed_seconds(T0, T0 - timedelta(microseconds=1)), 0)

    def test_offsets(self) -> None:
        """Aware times in other offsets are the same instants: 10:00Z to 12:30+02:00 is 30 min."""
        later = datetime(2026, 11, 29, 12, 30, tzinfo=timezone(timedelta(hours=2)))
        self.assertEqual(elapsed_seconds(T0, later), 1800)

    def test_naive(self) -> None:
        """A naive time (local? UTC?) is refused rather than guessed."""
        naive = datetime(2026, 11, 29, 11, 0)
        with self.assertRaises(ValueError):
            elapsed_seconds(T0, naive)
        with self.assertRaises(ValueError):
            elapsed_seconds(naive, T0)


class LiveEstimateTests(SynchronousTestCase):
    def test_running_cost(self) -> None:
        """
        Register 1000 Wh at start, 8500 Wh now, 90 min 59.9 s later: 7500 Wh
        and 5459 s, so 50 + 262.5 + 2 * 5459 / 60 (181.97) = 494.47, shown 494.
        """
        estimate = live_estimate(
            EXAMPLE,
            meter_start_wh=1000,
            last_meter_wh=8500,
            started_at=T0,
            now=T0 + timedelta(minutes=90, seconds=59, milliseconds=900),
        )
        self.assertEqual(
            (estimate.energy_wh, estimate.duration_seconds, estimate.total), (7500, 5459, 494)
        )

    def test_no_reading_yet(self) -> None:
        """Before the first MeterValues (``None``), 10 min cost 50 + 20 = 70, no energy."""
        estimate = live_estimate(
            EXAMPLE,
            meter_start_wh=1000,
            last_meter_wh=None,
            started_at=T0,
            now=T0 + timedelta(minutes=10),
        )
        self.assertEqual((estimate.energy, estimate.time, estimate.total), (0, 20, 70))

    def test_now_before_start(self) -> None:
        """A ``now`` before the start counts as 0 s: only the fee and the energy, 50 + 35 = 85."""
        estimate = live_estimate(
            EXAMPLE,
            meter_start_wh=0,
            last_meter_wh=1000,
            started_at=T0,
            now=T0 - timedelta(seconds=30),
        )
        self.assertEqual((estimate.duration_seconds, estimate.total), (0, 85))

    def test_at_stop_is_the_bill(self) -> None:
        """
        With the stop's register and time the estimate is the final cost:
        7500 Wh over 90 min bill 492, the worked example.
        """
        stop = T0 + timedelta(minutes=90)
        estimate = live_estimate(
            EXAMPLE, meter_start_wh=20_000, last_meter_wh=27_500, started_at=T0, now=stop
        )
        billed = final_cost(
            EXAMPLE, meter_start_wh=20_000, meter_stop_wh=27_500, started_at=T0, stopped_at=stop
        )
        self.assertEqual(estimate, billed)
        self.assertEqual(billed.total, 492)

    def test_meter_replaced(self) -> None:
        """A stop register below the start register (meter swapped) bills no energy: 50 + 180."""
        billed = final_cost(
            EXAMPLE,
            meter_start_wh=99_000,
            meter_stop_wh=500,
            started_at=T0,
            stopped_at=T0 + timedelta(minutes=90),
        )
        self.assertEqual((billed.energy_wh, billed.total), (0, 230))
