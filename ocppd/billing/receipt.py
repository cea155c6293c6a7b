"""
What a session's receipt says about money: its lines and the VAT they include.

Pure: the API reads the session, its tariff and its charger, and renders
what this computes (``ocppd.api.receipts``: JSON, HTML in the panel, PDF).

Lines. The tariff's parts of the bill, by the same formula as the bill
(``ocppd.billing.cost``): the session fee, the energy and the time. The
lines always add up to what was billed: when the bill is not what the
tariff computes today (an operator's review decided another amount or waived
it, or the tariff was edited after the session), an ``adjustment`` line says
by how much.

VAT. Prices are consumer prices and include VAT at ``[billing] vat_rate``
basis points (1900 = 19 %). The VAT in a total is

    vat = total * rate / (10000 + rate)

rounded **half up** to the minor unit (the rule of most EU tax offices for a
receipt's total: 0.5 cent and above rounds up), computed with integers only;
``net = total - vat``, so net and VAT add up to the total exactly. VAT is
computed once on the total, not per line (no sum of roundings).
"""

from __future__ import annotations

import attrs

from ocppd.billing._checks import require_int
from ocppd.billing.cost import cost_breakdown
from ocppd.billing.tariff import Tariff

#: One basis point is 1/10000: 1900 is 19 %.
BASIS = 10_000

FEE = "fee"
ENERGY = "energy"
TIME = "time"
ADJUSTMENT = "adjustment"


def vat_included(total: int, rate_bp: int) -> int:
    """The VAT included in ``total`` at ``rate_bp`` basis points, rounded half up."""
    require_int("total", total)
    require_int("rate_bp", rate_bp)
    if not 0 <= rate_bp <= BASIS:
        raise ValueError(f"a VAT rate of {rate_bp} basis points is not between 0 and {BASIS}")
    if total < 0:
        return -vat_included(-total, rate_bp)
    denominator = BASIS + rate_bp
    # floor(x + 1/2) with x = total * rate / denominator, in integers.
    return (2 * total * rate_bp + denominator) // (2 * denominator)


@attrs.frozen
class Line:
    """A line of the receipt: what (``kind``), how much of it, and its amount (minor units)."""

    kind: str
    amount: int
    #: Wh for energy, whole seconds for time, 1 for the fee, None for an adjustment.
    quantity: int | None
    #: The tariff's price per kWh, per minute or per session (None for an adjustment).
    unit_price: int | None


@attrs.frozen
class ReceiptMoney:
    lines: list[Line]
    total: int
    vat: int
    net: int
    vat_rate_bp: int


def receipt_money(
    tariff: Tariff | None,
    *,
    energy_wh: int,
    duration_seconds: int,
    billed: int,
    vat_rate_bp: int,
) -> ReceiptMoney:
    """The lines of a session billed ``billed`` minor units, and the VAT in it."""
    require_int("billed", billed)
    lines: list[Line] = []
    computed = 0
    if tariff is not None:
        parts = cost_breakdown(tariff, energy_wh=energy_wh, duration_seconds=duration_seconds)
        if parts.fee:
            lines.append(Line(FEE, parts.fee, 1, tariff.session_fee))
        if tariff.price_per_kwh:
            lines.append(Line(ENERGY, parts.energy, parts.energy_wh, tariff.price_per_kwh))
        if tariff.price_per_minute:
            lines.append(Line(TIME, parts.time, parts.duration_seconds, tariff.price_per_minute))
        computed = parts.total
    if billed != computed:
        lines.append(Line(ADJUSTMENT, billed - computed, None, None))
    vat = vat_included(billed, vat_rate_bp)
    return ReceiptMoney(lines, billed, vat, billed - vat, vat_rate_bp)
