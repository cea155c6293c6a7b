"""
Settling a stopped session: bill it, charge nothing, or hold it for an
operator's review. Pure, like the rest of ``ocppd.billing``: the processor
reads the facts, asks ``settle``, and applies the answer.

What a charger reports is billed only when it is plausible. A charger with a
clock in 1970 or a meter register of 10^15 must not take a customer's money:
such a session is held for review (nothing debited) and an operator decides,
through ``POST /api/cms/sessions/{id}/review``, to bill it as computed, bill
another amount, or waive it.

The rules, in order:

1. A start the central system did not answer ``Accepted`` (``Invalid``,
   ``Blocked``, ``Expired``, ``ConcurrentTx``) is never billed. If it
   delivered no energy (the charger ended it at once, as it should), it
   costs nothing; if the charger delivered energy anyway, it is held for
   review (``start_not_accepted``): an operator, not a rule, decides that.
2. Implausible facts hold the session for review, every reason listed:
   a start before the charger was registered (``start_before_registration``:
   a 1970 clock) or after we received it (``start_in_future``), a stop after
   we received it (``stop_in_future``) or before its start
   (``stop_before_start``), each beyond ``clock_tolerance_seconds``; and a
   duration, energy or cost above its limit (``duration_above_limit``,
   ``energy_above_limit``, ``cost_above_limit``).
3. A debit that would take the wallet below ``wallet_floor`` is held for
   review too (``below_wallet_floor``): no wallet goes below the floor
   without an operator's decision.
4. Anything else is billed what the tariff computes (``ocppd.billing.cost``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import attrs

from ocppd.billing._checks import require_aware, require_int
from ocppd.billing.cost import final_cost
from ocppd.billing.tariff import Tariff
from ocppd.bounds import INT64_MAX

Outcome = Literal["bill", "no_charge", "review"]

#: The review reasons, as stored and shown (``review.reasons`` of a session).
START_NOT_ACCEPTED = "start_not_accepted"
START_BEFORE_REGISTRATION = "start_before_registration"
START_IN_FUTURE = "start_in_future"
STOP_IN_FUTURE = "stop_in_future"
STOP_BEFORE_START = "stop_before_start"
DURATION_ABOVE_LIMIT = "duration_above_limit"
ENERGY_ABOVE_LIMIT = "energy_above_limit"
COST_ABOVE_LIMIT = "cost_above_limit"
BELOW_WALLET_FLOOR = "below_wallet_floor"
REASONS = (
    START_NOT_ACCEPTED,
    START_BEFORE_REGISTRATION,
    START_IN_FUTURE,
    STOP_IN_FUTURE,
    STOP_BEFORE_START,
    DURATION_ABOVE_LIMIT,
    ENERGY_ABOVE_LIMIT,
    COST_ABOVE_LIMIT,
    BELOW_WALLET_FLOOR,
)

#: A computed cost is kept up to this (the store's BIGINT); beyond, it says
#: no more than "absurd", which this already says.
MAX_COMPUTED_COST = INT64_MAX


@attrs.frozen
class Limits:
    """What is plausible (``[billing]`` options); beyond, a session goes to review."""

    max_duration_seconds: int
    max_energy_wh: int
    max_cost: int
    clock_tolerance_seconds: int
    wallet_floor: int

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(Limits):
            require_int(field.name, getattr(self, field.name))


@attrs.frozen
class StoppedSession:
    """
    The facts of a session that stopped: what the charger reported (readings
    and its clock's times) and when we received its start and its stop.
    """

    id_tag_status: str
    meter_start_wh: int
    meter_stop_wh: int
    started_at: datetime
    stopped_at: datetime
    start_received_at: datetime
    stop_received_at: datetime
    charger_registered_at: datetime


@attrs.frozen
class Settlement:
    """
    What to do with a stopped session: ``bill`` it ``cost``, charge it
    nothing (``no_charge``, cost 0), or hold it for ``review`` with its
    ``reasons`` (cost is then what the tariff computed, not billed).
    """

    outcome: Outcome
    cost: int
    currency: str
    reasons: tuple[str, ...] = ()


def _clock_reasons(session: StoppedSession, tolerance: timedelta) -> list[str]:
    for name in ("started_at", "stopped_at", "start_received_at", "stop_received_at"):
        require_aware(name, getattr(session, name))
    require_aware("charger_registered_at", session.charger_registered_at)
    reasons = []
    if session.started_at < session.charger_registered_at - tolerance:
        reasons.append(START_BEFORE_REGISTRATION)
    if session.started_at > session.start_received_at + tolerance:
        reasons.append(START_IN_FUTURE)
    if session.stopped_at > session.stop_received_at + tolerance:
        reasons.append(STOP_IN_FUTURE)
    if session.stopped_at < session.started_at:
        reasons.append(STOP_BEFORE_START)
    return reasons


def settle(
    tariff: Tariff, session: StoppedSession, limits: Limits, *, balance: int | None
) -> Settlement:
    """
    Bill, charge nothing, or review (the module docstring's rules).
    ``balance`` is the wallet's before this debit, or None when no wallet is
    debited (no customer, or a tariff in another currency than wallets).
    """
    computed = final_cost(
        tariff,
        meter_start_wh=session.meter_start_wh,
        meter_stop_wh=session.meter_stop_wh,
        started_at=session.started_at,
        stopped_at=session.stopped_at,
    )
    cost = min(computed.total, MAX_COMPUTED_COST)
    if session.id_tag_status != "Accepted":
        if computed.energy_wh == 0:
            return Settlement("no_charge", 0, tariff.currency)
        return Settlement("review", cost, tariff.currency, (START_NOT_ACCEPTED,))
    reasons = _clock_reasons(session, timedelta(seconds=limits.clock_tolerance_seconds))
    if computed.duration_seconds > limits.max_duration_seconds:
        reasons.append(DURATION_ABOVE_LIMIT)
    if computed.energy_wh > limits.max_energy_wh:
        reasons.append(ENERGY_ABOVE_LIMIT)
    if cost > limits.max_cost:
        reasons.append(COST_ABOVE_LIMIT)
    if (
        balance is not None
        and cost > 0
        and require_int("balance", balance) - cost < limits.wallet_floor
    ):
        reasons.append(BELOW_WALLET_FLOOR)
    if reasons:
        return Settlement("review", cost, tariff.currency, tuple(reasons))
    return Settlement("bill", cost, tariff.currency)
