"""
Closing a stopped session's account: the decisions between pricing it
(``ocppd.billing.settlement``) and the store's writes.

Pure, like the rest of ``ocppd.billing``: the processor's edge reads the
facts (the session, its app request, the wallet's balance), asks these, and
writes what they say. The rules:

- A bill comes out of a wallet only for a customer's session (it has a user)
  priced in the wallets' currency: only then is the balance read (locked) for
  the wallet-floor rule, and only then is the cost debited.
- A session priced in another currency keeps its cost, and nobody's wallet
  is debited (an operator settles it; the processor logs it).
- A session held for review, or that costs nothing, debits nothing.
- The reason a customer is told a session stopped: why ocppd asked for the
  stop (``funds``, ``user``), else what the charger reported, else ``Local``.

Sessions that cannot end: a charger that rebooted, a connector that reports
``Available``, or a new start on the same connector proves that a session
still open there is over, though its StopTransaction never came (lost in a
power cut, a firmware's bug). The central system closes it (``CLOSE_REASONS``
say why) on what it knows: its last meter reading and when it was taken
(``closing_reading``). Such a session is billed like any other, through the
same rules, except that one that never delivered energy costs nothing, not
even a fee (``settle_closed``): nobody may be charged for a session the
charger itself never ended.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ocppd.billing.settlement import Limits, Settlement, StoppedSession, settle
from ocppd.billing.tariff import Tariff

#: What a stopped session's settlement does to its user's wallet.
Debit = Literal["debit", "none", "other_currency"]

#: The reason of a stop nobody explained (OCPP 1.6's default for StopTransaction.reason).
DEFAULT_STOP_REASON = "Local"


def wallet_pays(user_id: int | None, currency: str, wallet_currency: str) -> bool:
    """Whether a session of ``user_id`` priced in ``currency`` is paid from a wallet."""
    return user_id is not None and currency == wallet_currency


def debit_of(settlement: Settlement, user_id: int | None, wallet_currency: str) -> Debit:
    """
    What ``settlement`` (once its cost is set on the session) takes from the
    wallet of ``user_id``: its cost (``debit``), nothing (``none``), or
    nothing because it is in another currency than wallets (``other_currency``).
    """
    if settlement.outcome == "review" or user_id is None or settlement.cost <= 0:
        return "none"
    if settlement.currency != wallet_currency:
        return "other_currency"
    return "debit"


def stop_reason(stop_requested: str | None, reported: str | None) -> str:
    """Why a session stopped, as its customer is told (``charging.stopped``)."""
    return stop_requested or reported or DEFAULT_STOP_REASON


#: Why the central system closed a session, as stored in ``stop_reason`` (at
#: most 20 characters) and told to its customer.
CHARGER_REBOOTED = "charger rebooted"
CONNECTOR_AVAILABLE = "connector available"
SUPERSEDED = "superseded"
CLOSED_BY_OPERATOR = "closed by operator"
CLOSE_REASONS = (CHARGER_REBOOTED, CONNECTOR_AVAILABLE, SUPERSEDED, CLOSED_BY_OPERATOR)


def closing_reading(
    *,
    meter_start_wh: int,
    started_at: datetime,
    last_meter_wh: int | None,
    last_meter_at: datetime | None,
) -> tuple[int, datetime]:
    """
    The (meter stop, stop time) a session is closed on: its last reading,
    or, without one, its start (no energy, no time: nothing delivered).
    """
    if last_meter_wh is None or last_meter_at is None:
        return meter_start_wh, started_at
    return last_meter_wh, last_meter_at


def settle_closed(
    tariff: Tariff, session: StoppedSession, limits: Limits, *, balance: int | None
) -> Settlement:
    """
    ``settle`` for a session the central system closed: one that delivered
    no energy is charged nothing (no fee, no time), else the usual rules.
    """
    if session.meter_stop_wh <= session.meter_start_wh:
        return Settlement("no_charge", 0, tariff.currency)
    return settle(tariff, session, limits, balance=balance)
