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
"""

from __future__ import annotations

from typing import Literal

from ocppd.billing.settlement import Settlement

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
