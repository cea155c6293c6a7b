"""
Worked examples for ocppd.billing.settlement: which stopped sessions are
billed, which cost nothing, and which wait for an operator. Amounts are cents.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ocppd.billing import Limits, Settlement, StoppedSession, Tariff, settle
from ocppd.billing import settlement as s

REGISTERED = datetime(2026, 1, 1, tzinfo=UTC)
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
#: 30 ct/kWh, 2 ct/min, 50 per session.
TARIFF = Tariff(currency="EUR", price_per_kwh=30, price_per_minute=2, session_fee=50)
LIMITS = Limits(
    max_duration_seconds=48 * 3600,
    max_energy_wh=300_000,
    max_cost=30_000,
    clock_tolerance_seconds=900,
    wallet_floor=0,
)
#: 10 kWh in one hour, received as it happened: 50 + 300 + 120 = 470.
PLAIN = StoppedSession(
    id_tag_status="Accepted",
    meter_start_wh=1000,
    meter_stop_wh=11_000,
    started_at=T0,
    stopped_at=T0 + timedelta(hours=1),
    start_received_at=T0,
    stop_received_at=T0 + timedelta(hours=1, seconds=2),
    charger_registered_at=REGISTERED,
)


def outcome(session: StoppedSession, *, balance: int | None = None, **limits: int) -> Settlement:
    return settle(TARIFF, session, attrs.evolve(LIMITS, **limits), balance=balance)


class SettleTests(SynchronousTestCase):
    def test_plausible_session_billed(self) -> None:
        """10 kWh in an hour is billed what the tariff computes, 470."""
        self.assertEqual(outcome(PLAIN), Settlement("bill", 470, "EUR"))

    def test_start_in_1970(self) -> None:
        """
        A StartTransaction stamped 1970 (a charger that lost its clock) would
        bill 56 years of minutes, over EUR 590,000: held for review with that
        computed cost, nothing billed.
        """
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        result = outcome(attrs.evolve(PLAIN, started_at=epoch, start_received_at=T0))
        self.assertEqual(result.outcome, "review")
        self.assertEqual(
            result.reasons,
            (s.START_BEFORE_REGISTRATION, s.DURATION_ABOVE_LIMIT, s.COST_ABOVE_LIMIT),
        )
        self.assertGreater(result.cost, 59_000_000)

    def test_absurd_meter_stop(self) -> None:
        """meterStop 10^15 computes 3 * 10^13: held for review, never debited."""
        result = outcome(attrs.evolve(PLAIN, meter_stop_wh=10**15))
        self.assertEqual(
            (result.outcome, result.reasons), ("review", (s.ENERGY_ABOVE_LIMIT, s.COST_ABOVE_LIMIT))
        )
        self.assertEqual(result.cost, 50 + 30 * (10**15 - 1000) // 1000 + 120)

    def test_computed_cost_kept_within_bigint(self) -> None:
        """A cost beyond any column (price 10^6 per kWh, 2^62 Wh) is kept as 2^63 - 1."""
        dear = attrs.evolve(TARIFF, price_per_kwh=10**6)
        result = settle(dear, attrs.evolve(PLAIN, meter_stop_wh=2**62), LIMITS, balance=None)
        self.assertEqual((result.outcome, result.cost), ("review", 2**63 - 1))

    def test_clock_ahead_of_ours(self) -> None:
        """A start or stop stamped more than the tolerance after we received it: review."""
        later = timedelta(seconds=901)
        start = attrs.evolve(PLAIN, start_received_at=T0 - later)
        self.assertEqual(outcome(start).reasons, (s.START_IN_FUTURE,))
        stop = attrs.evolve(PLAIN, stop_received_at=PLAIN.stopped_at - later)
        self.assertEqual(outcome(stop).reasons, (s.STOP_IN_FUTURE,))
        within = attrs.evolve(PLAIN, stop_received_at=PLAIN.stopped_at - timedelta(seconds=900))
        self.assertEqual(outcome(within).outcome, "bill")

    def test_stop_before_start(self) -> None:
        """A stop stamped before its start is a clock that jumped: review."""
        result = outcome(attrs.evolve(PLAIN, stopped_at=T0 - timedelta(seconds=1)))
        self.assertEqual((result.outcome, result.reasons), ("review", (s.STOP_BEFORE_START,)))

    def test_limits(self) -> None:
        """Each of duration, energy and cost beyond its limit is its own reason."""
        self.assertEqual(
            outcome(PLAIN, max_duration_seconds=3599).reasons, (s.DURATION_ABOVE_LIMIT,)
        )
        self.assertEqual(outcome(PLAIN, max_energy_wh=9999).reasons, (s.ENERGY_ABOVE_LIMIT,))
        self.assertEqual(outcome(PLAIN, max_cost=469).reasons, (s.COST_ABOVE_LIMIT,))
        self.assertEqual(outcome(PLAIN, max_cost=470).outcome, "bill")

    def test_wallet_floor(self) -> None:
        """
        Balance 500 pays 470 down to 30; balance 400 would end at -70, below the
        floor 0: review. A floor of -100 (credit) lets it through.
        """
        self.assertEqual(outcome(PLAIN, balance=500).outcome, "bill")
        result = outcome(PLAIN, balance=400)
        self.assertEqual((result.outcome, result.reasons), ("review", (s.BELOW_WALLET_FLOOR,)))
        self.assertEqual(outcome(PLAIN, balance=400, wallet_floor=-100).outcome, "bill")
        # A session that costs nothing never crosses a floor, whatever the balance.
        free = attrs.evolve(PLAIN, meter_stop_wh=1000, stopped_at=T0)
        self.assertEqual(outcome(free, balance=-5), Settlement("bill", 0, "EUR"))

    def test_start_not_accepted_costs_nothing(self) -> None:
        """
        A start answered Invalid, Blocked, Expired or ConcurrentTx that the
        charger stopped (DeAuthorized, 0 s, 0 Wh) costs nothing, not the fee,
        even on a tariff that charges the fee always, and even after time passed.
        """
        always = attrs.evolve(TARIFF, session_fee_always=True)
        for status in ("Invalid", "Blocked", "Expired", "ConcurrentTx"):
            for seconds in (0, 600):
                session = attrs.evolve(
                    PLAIN,
                    id_tag_status=status,
                    meter_stop_wh=PLAIN.meter_start_wh,
                    stopped_at=T0 + timedelta(seconds=seconds),
                )
                self.assertEqual(
                    settle(always, session, LIMITS, balance=0), Settlement("no_charge", 0, "EUR")
                )

    def test_start_not_accepted_with_energy_goes_to_review(self) -> None:
        """A charger that charged on a refused start: an operator decides, no rule bills."""
        result = outcome(attrs.evolve(PLAIN, id_tag_status="Blocked"), balance=10_000)
        self.assertEqual(
            (result.outcome, result.cost, result.reasons), ("review", 470, (s.START_NOT_ACCEPTED,))
        )

    def test_limits_must_be_integers(self) -> None:
        """A limit that is not an int is a bug in the caller, refused at once."""
        with self.assertRaises(TypeError):
            attrs.evolve(LIMITS, max_cost=1.5)


instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
registers = st.integers(min_value=0, max_value=2**63 - 1)


class SettleProperties(SynchronousTestCase):
    @settings(max_examples=300, deadline=None, database=None)
    @given(
        st.sampled_from(["Accepted", "Invalid", "Blocked", "Expired", "ConcurrentTx"]),
        registers,
        registers,
        instants,
        instants,
        instants,
        st.integers(min_value=-10_000, max_value=10**9) | st.none(),
    )
    def test_never_bills_the_implausible(
        self,
        status: str,
        meter_start: int,
        meter_stop: int,
        started: datetime,
        stopped: datetime,
        received: datetime,
        balance: int | None,
    ) -> None:
        """
        Whatever a charger reports, a bill is within every limit, of an
        Accepted start, and a debit leaves the wallet at or above the floor; every
        cost fits the store's BIGINT.
        """
        session = StoppedSession(
            id_tag_status=status,
            meter_start_wh=meter_start,
            meter_stop_wh=meter_stop,
            started_at=started,
            stopped_at=stopped,
            start_received_at=received,
            stop_received_at=received,
            charger_registered_at=REGISTERED,
        )
        result = settle(TARIFF, session, LIMITS, balance=balance)
        self.assertLessEqual(result.cost, 2**63 - 1)
        if result.outcome == "bill":
            self.assertEqual(status, "Accepted")
            self.assertLessEqual(result.cost, LIMITS.max_cost)
            self.assertLessEqual(meter_stop - meter_start, LIMITS.max_energy_wh)
            self.assertLessEqual(stopped - started, timedelta(hours=48))
            self.assertGreaterEqual(stopped, started)
            if balance is not None and result.cost > 0:
                # A debit never takes a wallet below the floor; a session that
                # costs nothing debits nothing, whatever the wallet holds.
                self.assertGreaterEqual(balance - result.cost, LIMITS.wallet_floor)
        elif result.outcome == "no_charge":
            self.assertNotEqual(status, "Accepted")
            self.assertEqual(result.cost, 0)
        else:
            self.assertTrue(result.reasons)
            self.assertTrue(set(result.reasons) <= set(s.REASONS))
