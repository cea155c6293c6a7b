"""
A charger's own StopTransaction arriving after the central system closed its
session (``ocppd.billing.closing``): what to do with the bill.

The usual case: a power cut, the charger queues its StopTransaction over its
reboot, the BootNotification closes the session on its last meter reading
and bills it; then the stop arrives with the energy delivered after that
reading. The session is billed again from its start to the charger's own
stop, through the same pure rules as any stop (``settle``: the tariff it was
billed with, the same rounding, the same plausibility limits), and the
difference is what the customer still owes. Pure: the processor's edge
(``ocppd.consumers.late_stop``) reads the facts and writes the answer.

The rules, in order (``correct_late_stop``):

1. A session without a tariff has no bill: the charger's stop is recorded.
2. A stop whose ``meterStop`` is below the reading the session was billed
   on (``late_stop_below_billed``), or whose time is before that reading's
   (``late_stop_before_close``), would take back energy already billed: it
   goes to review, never to a refund. So does a session an operator already
   decided (``late_stop_after_review``: their decision was on other facts),
   and anything ``settle`` holds (implausible, or a difference that would
   take the wallet below its floor: the balance is the one before the
   bill, so the floor rule applies to the difference alone).
3. A session still waiting for review stays there, its computed cost now
   the new one, its reasons kept.
4. A recomputed cost below the billed one (``late_stop_cost_below_billed``:
   a tariff that made the shorter session dearer) is reviewed too: nothing
   credits money without an operator.
5. Else the session's cost becomes the new one; for a session billed to a
   wallet, the difference (never negative) is debited, once
   (``outcome == "debit"``), and one that costs what was billed is just
   recorded.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Literal

import attrs

from ocppd.billing.settlement import Limits, StoppedSession, settle
from ocppd.billing.tariff import Tariff

#: Review reasons of a late stop (besides ``ocppd.billing.settlement.REASONS``).
LATE_STOP_BELOW_BILLED = "late_stop_below_billed"
LATE_STOP_BEFORE_CLOSE = "late_stop_before_close"
LATE_STOP_AFTER_REVIEW = "late_stop_after_review"
LATE_STOP_COST_BELOW_BILLED = "late_stop_cost_below_billed"
REASONS = (
    LATE_STOP_BELOW_BILLED,
    LATE_STOP_BEFORE_CLOSE,
    LATE_STOP_AFTER_REVIEW,
    LATE_STOP_COST_BELOW_BILLED,
)

Outcome = Literal["record", "debit", "review"]


@attrs.frozen
class ClosedBill:
    """What a closed session was billed on, as it is before the charger's stop."""

    meter_stop_wh: int
    stopped_at: datetime
    #: Its billed cost (minor units); None while held for review, or unpriced.
    cost: int | None
    #: None, or its review's status (``pending``, or an operator's decision).
    review_status: str | None
    #: Whether its bill is debited from a wallet (``closing.wallet_pays``).
    wallet: bool


@attrs.frozen
class Correction:
    """
    What a late stop does to its session's bill: ``record`` the stop (and
    ``cost``, if not None), ``debit`` ``difference`` more as well, or hold
    the session for ``review`` with ``reasons`` (``cost`` is then what the
    tariff computes, for the operator; nothing moves).
    """

    outcome: Outcome
    cost: int | None
    difference: int = 0
    reasons: tuple[str, ...] = ()


def _unique(reasons: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reasons))


def correct_late_stop(
    tariff: Tariff | None,
    closed: ClosedBill,
    stopped: StoppedSession,
    limits: Limits,
    *,
    balance: int | None,
) -> Correction:
    """
    The correction of ``closed`` for the charger's own stop (``stopped``:
    the session from its start to the charger's ``meterStop`` and time).
    ``balance`` is the wallet's now (after the first bill), or None when no
    wallet pays.
    """
    if tariff is None:
        return Correction("record", None)
    reasons = []
    if stopped.meter_stop_wh < closed.meter_stop_wh:
        reasons.append(LATE_STOP_BELOW_BILLED)
    if stopped.stopped_at < closed.stopped_at:
        reasons.append(LATE_STOP_BEFORE_CLOSE)
    if closed.review_status not in (None, "pending"):
        reasons.append(LATE_STOP_AFTER_REVIEW)
    billed = closed.cost or 0
    # The wallet as it was before the first bill: settle's floor rule then
    # judges the whole bill exactly as it judges the difference now.
    before = None if balance is None or not closed.wallet else balance + billed
    settlement = settle(tariff, stopped, limits, balance=before)
    if settlement.outcome == "review":
        reasons.extend(settlement.reasons)
    if reasons or closed.review_status == "pending":
        return Correction("review", settlement.cost, reasons=_unique(reasons))
    if settlement.cost < billed:
        return Correction("review", settlement.cost, reasons=(LATE_STOP_COST_BELOW_BILLED,))
    difference = settlement.cost - billed
    if closed.wallet and difference > 0:
        return Correction("debit", settlement.cost, difference)
    return Correction("record", settlement.cost)


def tariff_snapshot(tariff: Tariff) -> str:
    """
    ``tariff`` as text, stored on a closed session (``billed_tariff``): its
    late stop is billed at these prices, whatever the tariff says by then.
    At most 200 characters (its prices are 32-bit).
    """
    return json.dumps(attrs.asdict(tariff), separators=(",", ":"), sort_keys=True)


def tariff_from_snapshot(text: str) -> Tariff:
    """The tariff ``tariff_snapshot`` stored (validated again, like any tariff)."""
    return Tariff(**json.loads(text))
