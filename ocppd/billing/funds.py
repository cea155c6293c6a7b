"""
Funds checks for prepaid wallets: a wallet must not go negative by surprise.

``balance`` below is what the session may spend, in minor units of the
tariff's currency: the wallet's balance before this session is debited, or
the amount held for it. The caller converts nothing; a wallet in another
currency than the tariff is the caller's error to refuse.

The policy, in one place:

- A session is to be stopped as soon as its running cost is positive and
  reaches the balance (``cost >= balance``). At equality it stops too: the
  next minor unit would take the wallet below zero, and a remote stop takes
  a round trip to the charger, during which the session keeps accruing. A
  caller that wants a safety margin for that round trip passes ``balance``
  minus the margin.
- A session that costs nothing so far is never stopped for funds: it cannot
  take the wallet any lower. This keeps free tariffs (and the free first
  seconds of a tariff with no session fee) running on an empty wallet; whether
  an empty wallet may *start* a session is the start check's minimum balance.

The affordability helpers answer "how far does this balance go", for the UI
and the start check: the most energy (or time) whose cost stays within the
balance, by the same formula and rounding as the bill, so that they agree
exactly with ``session_cost`` and ``should_stop``.
"""

from __future__ import annotations

from ocppd.billing._checks import require_int
from ocppd.billing.cost import session_cost
from ocppd.billing.tariff import Tariff


def should_stop(tariff: Tariff, *, balance: int, energy_wh: int, duration_seconds: int) -> bool:
    """
    True when a session with this energy and duration must be stopped for
    lack of funds: its cost is positive and has reached ``balance``.
    """
    require_int("balance", balance)
    cost = session_cost(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds)
    return cost > 0 and cost >= balance


def _headroom(tariff: Tariff, balance: int) -> int:
    # cost <= balance  <=>  fee + floor(n / 60000) <= balance
    #                  <=>  n < (balance - fee + 1) * 60000,
    # with n = price_per_kwh * Wh * 60 + price_per_minute * s * 1000.
    return (require_int("balance", balance) - tariff.session_fee + 1) * 60000


def affordable_energy_wh(tariff: Tariff, *, balance: int, duration_seconds: int) -> int | None:
    """
    The most Wh whose cost, over ``duration_seconds``, is within ``balance``;
    ``None`` when energy is free and the rest is affordable (no energy limit);
    0 when no energy is affordable (or the fee and time alone exceed the balance).
    """
    duration_seconds = max(0, require_int("duration_seconds", duration_seconds))
    room = _headroom(tariff, balance) - tariff.price_per_minute * duration_seconds * 1000
    if room <= 0:
        return 0
    if tariff.price_per_kwh == 0:
        return None
    return (room - 1) // (tariff.price_per_kwh * 60)


def affordable_seconds(tariff: Tariff, *, balance: int, energy_wh: int) -> int | None:
    """
    The most whole seconds whose cost, with ``energy_wh`` delivered, is within
    ``balance``; ``None`` when time is free and the rest is affordable (no time
    limit); 0 when no time is affordable.
    """
    energy_wh = max(0, require_int("energy_wh", energy_wh))
    if tariff.price_per_minute == 0:
        # Free time changes nothing, not even whether the fee is owed.
        affordable = session_cost(tariff, energy_wh=energy_wh, duration_seconds=0) <= balance
        return None if affordable else 0
    # Any second is charged time, so from the first one the fee is owed.
    room = _headroom(tariff, balance) - tariff.price_per_kwh * energy_wh * 60
    if room <= 0:
        return 0
    return (room - 1) // (tariff.price_per_minute * 1000)
