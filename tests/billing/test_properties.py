"""
Property-based tests (hypothesis) of the billing functions, against an
independent oracle: the exact rational cost computed with ``Fraction``.

Each property runs a modest number of examples so that ``tests.billing``
stays at a few seconds; no example database is written (tests do no I/O).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing import (
    Tariff,
    affordable_energy_wh,
    affordable_seconds,
    cost_breakdown,
    elapsed_seconds,
    final_cost,
    live_estimate,
    session_cost,
    should_stop,
)

EXAMPLES = settings(max_examples=300, deadline=None, database=None)

#: Mostly real prices (up to 1 unit per Wh or per second), and some up to 1000
#: units per kWh or per minute, far above real ones, for large products; the
#: small ones make exact boundaries (a cost landing on a whole unit) common.
prices = st.integers(min_value=0, max_value=100) | st.integers(min_value=0, max_value=100_000)
tariffs = st.builds(
    Tariff,
    currency=st.sampled_from(["EUR", "USD", "SEK", "JPY", "KWD"]),
    price_per_kwh=prices,
    price_per_minute=prices,
    session_fee=st.integers(min_value=0, max_value=10_000),
    session_fee_always=st.booleans(),
)
#: Negative values included: a meter going backwards, a clock jumping back.
energies = st.integers(min_value=-100_000, max_value=10_000_000)
durations = st.integers(min_value=-100_000, max_value=10 * 86400)
steps = st.integers(min_value=0, max_value=1_000_000)
balances = st.integers(min_value=-100, max_value=1000) | st.integers(
    min_value=-10_000_000, max_value=10_000_000
)
offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


def owed_fee(tariff: Tariff, energy_wh: int, duration_seconds: int) -> int:
    """The session fee if energy was delivered or time charged (or always), else 0."""
    delivered = energy_wh > 0 or (tariff.price_per_minute > 0 and duration_seconds > 0)
    return tariff.session_fee if delivered or tariff.session_fee_always else 0


def exact_cost(tariff: Tariff, energy_wh: int, duration_seconds: int) -> Fraction:
    """The cost without rounding, negative measures as 0: the oracle."""
    return (
        owed_fee(tariff, energy_wh, duration_seconds)
        + Fraction(tariff.price_per_kwh * max(0, energy_wh), 1000)
        + Fraction(tariff.price_per_minute * max(0, duration_seconds), 60)
    )


class CostProperties(SynchronousTestCase):
    @EXAMPLES
    @given(tariffs, energies, durations)
    def test_never_negative(self, tariff: Tariff, energy_wh: int, duration_seconds: int) -> None:
        """The cost is never negative, and never below the session fee when it is owed."""
        cost = session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds)
        self.assertGreaterEqual(cost, owed_fee(tariff, energy_wh, duration_seconds))
        self.assertGreaterEqual(cost, 0)

    @EXAMPLES
    @given(tariffs, energies, durations, steps)
    def test_monotonic_in_energy(
        self, tariff: Tariff, energy_wh: int, duration_seconds: int, more: int
    ) -> None:
        """More energy over the same time never costs less."""
        before = session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds)
        after = session_cost(tariff, energy_wh=energy_wh + more, duration_seconds=duration_seconds)
        self.assertLessEqual(before, after)

    @EXAMPLES
    @given(tariffs, energies, durations, steps)
    def test_monotonic_in_time(
        self, tariff: Tariff, energy_wh: int, duration_seconds: int, more: int
    ) -> None:
        """More time with the same energy never costs less."""
        before = session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds)
        after = session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds + more)
        self.assertLessEqual(before, after)

    @EXAMPLES
    @given(tariffs, energies, durations)
    def test_rounded_in_customers_favour(
        self, tariff: Tariff, energy_wh: int, duration_seconds: int
    ) -> None:
        """
        The billed integer is at most the exact rational cost and less than one
        minor unit below it: rounded down, once, to the minor unit.
        """
        cost = session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds)
        exact = exact_cost(tariff, energy_wh, duration_seconds)
        self.assertIsInstance(cost, int)
        self.assertLessEqual(cost, exact)
        self.assertGreater(cost, exact - 1)

    @EXAMPLES
    @given(tariffs, energies, durations)
    def test_breakdown_adds_up(self, tariff: Tariff, energy_wh: int, duration_seconds: int) -> None:
        """
        The parts add up to the total, which is ``session_cost``; the fee is the
        tariff's, the energy part is the exact one rounded down, and the time
        part (which takes the rounding's carry) is the exact one rounded down or up.
        """
        parts = cost_breakdown(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds)
        self.assertEqual(parts.fee + parts.energy + parts.time, parts.total)
        self.assertEqual(
            parts.total,
            session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds),
        )
        self.assertEqual(parts.currency, tariff.currency)
        self.assertEqual(parts.fee, owed_fee(tariff, energy_wh, duration_seconds))
        exact_energy = Fraction(tariff.price_per_kwh * max(0, energy_wh), 1000)
        exact_time = Fraction(tariff.price_per_minute * max(0, duration_seconds), 60)
        self.assertEqual(parts.energy, math.floor(exact_energy))
        self.assertGreaterEqual(parts.time, math.floor(exact_time))
        self.assertLessEqual(parts.time, math.ceil(exact_time))
        self.assertEqual(
            (parts.energy_wh, parts.duration_seconds), (max(0, energy_wh), max(0, duration_seconds))
        )

    @EXAMPLES
    @given(tariffs, energies, durations)
    def test_negative_is_zero(self, tariff: Tariff, energy_wh: int, duration_seconds: int) -> None:
        """A negative measure costs exactly what 0 costs: no refund, no charge."""
        self.assertEqual(
            session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds),
            session_cost(
                tariff, energy_wh=max(0, energy_wh), duration_seconds=max(0, duration_seconds)
            ),
        )


class LiveEstimateProperties(SynchronousTestCase):
    @EXAMPLES
    @given(
        tariffs,
        st.integers(min_value=0, max_value=10**9),
        energies,
        instants,
        st.timedeltas(min_value=timedelta(hours=-1), max_value=timedelta(days=3)),
        offsets,
    )
    def test_at_stop_equals_session_cost(
        self,
        tariff: Tariff,
        meter_start_wh: int,
        energy_wh: int,
        started_at: datetime,
        length: timedelta,
        offset: timezone,
    ) -> None:
        """
        The live estimate with the stop's register and time is the final cost,
        whose total is ``session_cost`` of the register difference and the
        whole seconds elapsed; the stop may be given in any UTC offset.
        """
        meter_stop_wh = meter_start_wh + energy_wh
        stopped_at = (started_at + length).astimezone(offset)
        estimate = live_estimate(
            tariff,
            meter_start_wh=meter_start_wh,
            last_meter_wh=meter_stop_wh,
            started_at=started_at,
            now=stopped_at,
        )
        billed = final_cost(
            tariff,
            meter_start_wh=meter_start_wh,
            meter_stop_wh=meter_stop_wh,
            started_at=started_at,
            stopped_at=stopped_at,
        )
        self.assertEqual(estimate, billed)
        seconds = elapsed_seconds(started_at, stopped_at)
        self.assertEqual(seconds, max(0, math.floor(length.total_seconds())))
        self.assertEqual(
            billed.total, session_cost(tariff, energy_wh=energy_wh, duration_seconds=seconds)
        )

    @EXAMPLES
    @given(
        tariffs,
        st.integers(min_value=0, max_value=10**9),
        st.lists(st.tuples(steps, st.integers(min_value=0, max_value=3600)), max_size=10),
        instants,
    )
    def test_never_decreases_during_a_session(
        self,
        tariff: Tariff,
        meter_start_wh: int,
        readings: list[tuple[int, int]],
        started_at: datetime,
    ) -> None:
        """As the register climbs and time passes, the estimate shown never goes down."""
        register, now, shown = meter_start_wh, started_at, 0
        for more_wh, more_seconds in readings:
            register += more_wh
            now += timedelta(seconds=more_seconds)
            total = live_estimate(
                tariff,
                meter_start_wh=meter_start_wh,
                last_meter_wh=register,
                started_at=started_at,
                now=now,
            ).total
            self.assertGreaterEqual(total, shown)
            shown = total


class FundsProperties(SynchronousTestCase):
    @EXAMPLES
    @given(tariffs, balances, energies, durations)
    def test_should_stop(
        self, tariff: Tariff, balance: int, energy_wh: int, duration_seconds: int
    ) -> None:
        """
        ``should_stop`` is exactly "the cost is positive and reaches the
        balance", and once true it stays true with more energy or time.
        """
        cost = session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds)
        stop = should_stop(
            tariff, balance=balance, energy_wh=energy_wh, duration_seconds=duration_seconds
        )
        self.assertEqual(stop, 0 < cost >= balance)
        if stop:
            self.assertTrue(
                should_stop(
                    tariff,
                    balance=balance,
                    energy_wh=max(0, energy_wh) + 1,
                    duration_seconds=max(0, duration_seconds) + 1,
                )
            )

    @EXAMPLES
    @given(tariffs, balances, durations)
    def test_affordable_energy(self, tariff: Tariff, balance: int, duration_seconds: int) -> None:
        """
        ``affordable_energy_wh`` is the largest energy whose cost is within the
        balance (one Wh more is not), ``None`` only when energy is free and the
        rest affordable, 0 when nothing is.
        """

        def cost(wh: int) -> int:
            return session_cost(tariff, energy_wh=wh, duration_seconds=duration_seconds)

        most = affordable_energy_wh(tariff, balance=balance, duration_seconds=duration_seconds)
        if most is None:
            self.assertEqual(tariff.price_per_kwh, 0)
            self.assertLessEqual(cost(0), balance)
        elif cost(0) > balance:
            self.assertEqual(most, 0)
        else:
            self.assertLessEqual(cost(most), balance)
            self.assertGreater(cost(most + 1), balance)

    @EXAMPLES
    @given(tariffs, balances, energies)
    def test_affordable_seconds(self, tariff: Tariff, balance: int, energy_wh: int) -> None:
        """
        ``affordable_seconds`` is the largest whole-second duration whose cost is
        within the balance (one second more is not), ``None`` only when time is
        free and the rest affordable, 0 when nothing is.
        """

        def cost(seconds: int) -> int:
            return session_cost(tariff, energy_wh=energy_wh, duration_seconds=seconds)

        most = affordable_seconds(tariff, balance=balance, energy_wh=energy_wh)
        if most is None:
            self.assertEqual(tariff.price_per_minute, 0)
            self.assertLessEqual(cost(0), balance)
        elif cost(0) > balance:
            self.assertEqual(most, 0)
        else:
            self.assertLessEqual(cost(most), balance)
            self.assertGreater(cost(most + 1), balance)


def cost_or_infinity(value: int | None) -> float:
    """An affordability answer on one scale: ``None`` (no limit) above every number."""
    return math.inf if value is None else value


#: The attributes of a tariff that are money.
PRICES = ["price_per_kwh", "price_per_minute", "session_fee"]


class TariffProperties(SynchronousTestCase):
    @EXAMPLES
    @given(
        tariffs,
        energies,
        durations,
        st.sampled_from(["price_per_kwh", "price_per_minute", "session_fee"]),
        steps,
    )
    def test_monotonic_in_every_price(
        self, tariff: Tariff, energy_wh: int, duration_seconds: int, price: str, more: int
    ) -> None:
        """Raising any one price of a tariff never makes the same session cheaper."""
        dearer = attrs.evolve(tariff, **{price: getattr(tariff, price) + more})
        self.assertLessEqual(
            session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds),
            session_cost(dearer, energy_wh=energy_wh, duration_seconds=duration_seconds),
        )

    @EXAMPLES
    @given(
        tariffs,
        st.integers(min_value=0, max_value=10_000),
        st.integers(min_value=0, max_value=14 * 24 * 60),
    )
    def test_whole_kwh_and_minutes_are_exact(self, tariff: Tariff, kwh: int, minutes: int) -> None:
        """Whole kWh over whole minutes lose nothing to rounding: exactly the tariff's sums."""
        parts = cost_breakdown(tariff, energy_wh=kwh * 1000, duration_seconds=minutes * 60)
        self.assertEqual(
            (parts.energy, parts.time, parts.total),
            (
                tariff.price_per_kwh * kwh,
                tariff.price_per_minute * minutes,
                owed_fee(tariff, kwh, minutes * 60)
                + tariff.price_per_kwh * kwh
                + tariff.price_per_minute * minutes,
            ),
        )

    @EXAMPLES
    @given(tariffs, energies, durations, st.sampled_from([1.0, True, "5"]))
    def test_only_integer_measures(
        self, tariff: Tariff, energy_wh: int, duration_seconds: int, wrong: object
    ) -> None:
        """A float, bool or string measure is refused, never rounded somewhere silently."""
        with self.assertRaises(TypeError):
            session_cost(tariff, energy_wh=wrong, duration_seconds=duration_seconds)  # type: ignore[arg-type]
        with self.assertRaises(TypeError):
            session_cost(tariff, energy_wh=energy_wh, duration_seconds=wrong)  # type: ignore[arg-type]


class EstimateBoundProperties(SynchronousTestCase):
    @EXAMPLES
    @given(
        tariffs,
        st.integers(min_value=0, max_value=10**9),
        st.lists(st.tuples(steps, st.integers(min_value=0, max_value=3600)), max_size=10),
        steps,
        st.integers(min_value=0, max_value=3600),
        instants,
    )
    def test_never_above_the_bill(
        self,
        tariff: Tariff,
        meter_start_wh: int,
        readings: list[tuple[int, int]],
        last_wh: int,
        last_seconds: int,
        started_at: datetime,
    ) -> None:
        """
        No estimate shown while charging is above what the session is finally
        billed: the stop's register and time are at least every earlier one's.
        """
        register, now, shown = meter_start_wh, started_at, []
        shown.append(
            live_estimate(
                tariff,
                meter_start_wh=meter_start_wh,
                last_meter_wh=None,
                started_at=started_at,
                now=now,
            ).total
        )
        for more_wh, more_seconds in readings:
            register += more_wh
            now += timedelta(seconds=more_seconds)
            shown.append(
                live_estimate(
                    tariff,
                    meter_start_wh=meter_start_wh,
                    last_meter_wh=register,
                    started_at=started_at,
                    now=now,
                ).total
            )
        billed = final_cost(
            tariff,
            meter_start_wh=meter_start_wh,
            meter_stop_wh=register + last_wh,
            started_at=started_at,
            stopped_at=now + timedelta(seconds=last_seconds),
        ).total
        self.assertLessEqual(max(shown), billed)

    @EXAMPLES
    @given(tariffs, st.integers(min_value=0, max_value=10**9), instants, durations)
    def test_no_reading_is_no_energy(
        self, tariff: Tariff, meter_start_wh: int, started_at: datetime, seconds: int
    ) -> None:
        """Before the first MeterValues the estimate is the fee and the time alone."""
        estimate = live_estimate(
            tariff,
            meter_start_wh=meter_start_wh,
            last_meter_wh=None,
            started_at=started_at,
            now=started_at + timedelta(seconds=seconds),
        )
        self.assertEqual(
            (estimate.energy_wh, estimate.energy, estimate.total),
            (0, 0, session_cost(tariff, energy_wh=0, duration_seconds=seconds)),
        )


class StopRuleProperties(SynchronousTestCase):
    @EXAMPLES
    @given(tariffs, balances, durations)
    def test_stop_agrees_with_affordable_energy(
        self, tariff: Tariff, balance: int, duration_seconds: int
    ) -> None:
        """
        Up to the affordable energy a session is stopped only where its cost
        lands exactly on the balance; one Wh past it, it is stopped whenever it
        costs anything at all. The UI's "how far" and the stop rule never disagree.
        """
        most = affordable_energy_wh(tariff, balance=balance, duration_seconds=duration_seconds)
        if most is None:
            return
        for wh in {0, most // 2, most}:
            cost = session_cost(tariff, energy_wh=wh, duration_seconds=duration_seconds)
            stop = should_stop(
                tariff, balance=balance, energy_wh=wh, duration_seconds=duration_seconds
            )
            if cost <= balance:
                self.assertEqual(stop, cost > 0 and cost == balance, (wh, cost))
        past = session_cost(tariff, energy_wh=most + 1, duration_seconds=duration_seconds)
        self.assertEqual(
            should_stop(
                tariff, balance=balance, energy_wh=most + 1, duration_seconds=duration_seconds
            ),
            past > 0,
        )

    @EXAMPLES
    @given(tariffs, balances, energies)
    def test_stop_agrees_with_affordable_seconds(
        self, tariff: Tariff, balance: int, energy_wh: int
    ) -> None:
        """The same agreement for time: one second past what is affordable stops a paid session."""
        most = affordable_seconds(tariff, balance=balance, energy_wh=energy_wh)
        if most is None:
            return
        past = session_cost(tariff, energy_wh=energy_wh, duration_seconds=most + 1)
        self.assertGreater(
            past, min(balance, session_cost(tariff, energy_wh=energy_wh, duration_seconds=0) - 1)
        )
        self.assertEqual(
            should_stop(tariff, balance=balance, energy_wh=energy_wh, duration_seconds=most + 1),
            past > 0,
        )

    @EXAMPLES
    @given(tariffs, balances, steps, durations, energies)
    def test_more_money_goes_further(
        self, tariff: Tariff, balance: int, more: int, duration_seconds: int, energy_wh: int
    ) -> None:
        """A larger balance never affords less energy or less time (no limit above all)."""
        self.assertLessEqual(
            cost_or_infinity(
                affordable_energy_wh(tariff, balance=balance, duration_seconds=duration_seconds)
            ),
            cost_or_infinity(
                affordable_energy_wh(
                    tariff, balance=balance + more, duration_seconds=duration_seconds
                )
            ),
        )
        self.assertLessEqual(
            cost_or_infinity(affordable_seconds(tariff, balance=balance, energy_wh=energy_wh)),
            cost_or_infinity(
                affordable_seconds(tariff, balance=balance + more, energy_wh=energy_wh)
            ),
        )
