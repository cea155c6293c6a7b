"""The ``[billing]`` settings the processor's parts share (mutable: tests and tools adjust them)."""

from __future__ import annotations

import attrs

from ocppd.billing import Limits
from ocppd.config import BillingConfig


def billing_limits(billing: BillingConfig) -> Limits:
    """The plausibility limits of ``[billing]`` (beyond them, a session waits for review)."""
    return Limits(
        max_duration_seconds=billing.max_session_seconds,
        max_energy_wh=billing.max_session_wh,
        max_cost=billing.max_session_cost,
        clock_tolerance_seconds=billing.clock_tolerance,
        wallet_floor=billing.wallet_floor,
    )


DEFAULT_LIMITS = billing_limits(BillingConfig())


@attrs.define
class BillingPolicy:
    """
    ``wallet_currency``: every wallet's (a tariff in another is not debited);
    ``stop_margin``: how far below the funds held the funds guard asks for a
    stop; ``limits``: what a stopped session must stay within to be billed
    without review.
    """

    wallet_currency: str = "EUR"
    stop_margin: int = 0
    limits: Limits = DEFAULT_LIMITS
