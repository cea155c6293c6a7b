"""
Billing: tariffs and the cost of charging sessions, as pure functions.

No I/O and no Twisted: the store's consumers and the API call these with
values they have read, so every rule about money is tested here, once.
Money is always an ``int`` of minor units (cents) of the tariff's currency;
``ocppd.billing.cost`` states the formula and the rounding rule, and
``ocppd.billing.funds`` the prepaid-wallet policy.
"""

from ocppd.billing.cost import (
    CostBreakdown,
    cost_breakdown,
    elapsed_seconds,
    final_cost,
    live_estimate,
    session_cost,
)
from ocppd.billing.funds import affordable_energy_wh, affordable_seconds, should_stop
from ocppd.billing.tariff import Tariff, TariffLike

__all__ = [
    "CostBreakdown",
    "Tariff",
    "TariffLike",
    "affordable_energy_wh",
    "affordable_seconds",
    "cost_breakdown",
    "elapsed_seconds",
    "final_cost",
    "live_estimate",
    "session_cost",
    "should_stop",
]
