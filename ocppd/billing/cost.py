"""
The cost of a charging session, in integer minor units of the tariff's currency.

The formula, exactly as computed::

    energy_wh        = max(0, energy_wh)            # Wh delivered
    duration_seconds = max(0, duration_seconds)     # whole seconds
    exact energy     = price_per_kwh    * energy_wh        / 1000   (a rational)
    exact time       = price_per_minute * duration_seconds / 60     (a rational)
    fee              = session_fee if owed, else 0
    total            = fee + floor(exact energy + exact time)

computed with integers only as ``fee + (price_per_kwh * energy_wh * 60
+ price_per_minute * duration_seconds * 1000) // 60000``, so no float and no
intermediate rounding ever touches money.

The fee is owed by a session that delivered energy (``energy_wh > 0``) or
was charged for time (``price_per_minute > 0`` and ``duration_seconds > 0``),
or by any session when the tariff says so (``session_fee_always``). A start
the charger ended at once (0 Wh, 0 s: refused, or the car never took it)
costs nothing: a fee for nothing delivered is a surprise, not a price.

Rounding: once, at the end, down to the minor unit, in the customer's
favour. The total is the largest whole amount not above the exact cost: never
more, and less than one minor unit below. Rounding each part on its own would
drop up to one more unit per session, and the total would no longer be the
sum that the tariff states.

A negative energy (a meter that went backwards, was replaced or rolled over)
or duration (a charger clock that jumped back) counts as 0: it never earns the
customer money and never costs them any.

The breakdown: ``fee`` is the session fee, ``energy`` is the exact energy
part rounded down, and ``time`` is the rest, ``total - fee - energy``. So the
parts add up to the total exactly, and the single rounding's carry (when the
two fractions together make one more unit) is attributed to the time part,
which is therefore the exact time part rounded either down or up.

Durations are whole seconds; ``elapsed_seconds`` turns two datetimes into one,
rounding down (the customer's favour again). The stop path and the live
estimate both use it, so the last live estimate with the stop's reading and
time is exactly the billed cost.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from ocppd.billing._checks import require_aware, require_int
from ocppd.billing.tariff import Tariff

_SECOND = timedelta(seconds=1)


@attrs.frozen
class CostBreakdown:
    """
    A session's cost and its parts, all in minor units of ``currency``:
    ``fee + energy + time == total`` always (see the module docstring for how
    the one rounding is attributed). ``energy_wh`` and ``duration_seconds``
    are the measures billed, after clamping, so a UI shows what was charged for.
    """

    currency: str
    fee: int
    energy: int
    time: int
    total: int
    energy_wh: int
    duration_seconds: int

    def __attrs_post_init__(self) -> None:
        if self.fee + self.energy + self.time != self.total:
            raise ValueError(f"parts do not add up to the total: {self!r}")


def fee_owed(tariff: Tariff, energy_wh: int, duration_seconds: int) -> bool:
    """
    Whether a session of these (clamped) measures owes the session fee: it
    delivered energy or was charged for time, or the tariff charges it always.
    """
    charged_time = tariff.price_per_minute > 0 and duration_seconds > 0
    return energy_wh > 0 or charged_time or tariff.session_fee_always


def cost_breakdown(tariff: Tariff, *, energy_wh: int, duration_seconds: int) -> CostBreakdown:
    """
    The cost of ``energy_wh`` delivered over ``duration_seconds``, with its
    parts. Negative measures count as 0; non-int measures raise TypeError.
    """
    energy_wh = max(0, require_int("energy_wh", energy_wh))
    duration_seconds = max(0, require_int("duration_seconds", duration_seconds))
    # The exact variable cost is numerator / 60000 minor units (the common
    # denominator of /1000 Wh per kWh and /60 s per minute).
    numerator = (
        tariff.price_per_kwh * energy_wh * 60 + tariff.price_per_minute * duration_seconds * 1000
    )
    variable = numerator // 60000
    energy = tariff.price_per_kwh * energy_wh // 1000
    fee = tariff.session_fee if fee_owed(tariff, energy_wh, duration_seconds) else 0
    return CostBreakdown(
        currency=tariff.currency,
        fee=fee,
        energy=energy,
        time=variable - energy,
        total=fee + variable,
        energy_wh=energy_wh,
        duration_seconds=duration_seconds,
    )


def session_cost(tariff: Tariff, *, energy_wh: int, duration_seconds: int) -> int:
    """
    The cost in minor units: ``fee + floor(price_per_kwh * energy_wh / 1000 +
    price_per_minute * duration_seconds / 60)``, negative measures as 0, the
    fee as ``fee_owed`` says.
    """
    return cost_breakdown(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds).total


def elapsed_seconds(started_at: datetime, until: datetime) -> int:
    """
    Whole seconds from ``started_at`` to ``until`` (aware datetimes), rounded
    down; 0 when ``until`` is before ``started_at`` (clocks disagree, not time
    running backwards for the customer's bill).
    """
    delta = require_aware("until", until) - require_aware("started_at", started_at)
    return max(0, delta // _SECOND)


def live_estimate(
    tariff: Tariff,
    *,
    meter_start_wh: int,
    last_meter_wh: int | None,
    started_at: datetime,
    now: datetime,
) -> CostBreakdown:
    """
    The running cost of an active session: the energy from the start register
    to the latest reading (``None`` before the first MeterValues: no energy
    yet) and the time from the start to ``now``.

    With the stop's register and time this is exactly ``final_cost``, so what
    the customer last saw is what they are billed.
    """
    last = meter_start_wh if last_meter_wh is None else last_meter_wh
    return final_cost(
        tariff,
        meter_start_wh=meter_start_wh,
        meter_stop_wh=last,
        started_at=started_at,
        stopped_at=now,
    )


def final_cost(
    tariff: Tariff,
    *,
    meter_start_wh: int,
    meter_stop_wh: int,
    started_at: datetime,
    stopped_at: datetime,
) -> CostBreakdown:
    """
    The billed cost of a stopped session, from its StartTransaction and
    StopTransaction alone: a MeterValues arriving after the stop cannot change it.
    """
    energy_wh = require_int("meter_stop_wh", meter_stop_wh) - require_int(
        "meter_start_wh", meter_start_wh
    )
    return cost_breakdown(
        tariff,
        energy_wh=energy_wh,
        duration_seconds=elapsed_seconds(started_at, stopped_at),
    )
