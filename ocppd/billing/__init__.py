"""
Billing: tariffs and the cost of charging sessions, as pure functions.

No I/O and no Twisted: the store's consumers and the API call these with
values they have read, so every rule about money is tested here, once.
Money is always an ``int`` of minor units (cents) of the tariff's currency;
``ocppd.billing.cost`` states the formula and the rounding rule,
``ocppd.billing.funds`` the prepaid-wallet policy, and
``ocppd.billing.settlement`` when a stopped session is billed, charged
nothing or held for an operator's review.
"""

from ocppd.billing.cost import (
    CostBreakdown,
    cost_breakdown,
    elapsed_seconds,
    fee_owed,
    final_cost,
    live_estimate,
    session_cost,
)
from ocppd.billing.funds import affordable_energy_wh, affordable_seconds, should_stop
from ocppd.billing.settlement import Limits, Settlement, StoppedSession, settle
from ocppd.billing.tariff import Tariff, TariffLike

__all__ = [
    "CostBreakdown",
    "Limits",
    "Settlement",
    "StoppedSession",
    "Tariff",
    "TariffLike",
    "affordable_energy_wh",
    "affordable_seconds",
    "cost_breakdown",
    "elapsed_seconds",
    "fee_owed",
    "final_cost",
    "live_estimate",
    "session_cost",
    "settle",
    "should_stop",
]
