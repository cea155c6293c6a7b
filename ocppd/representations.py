"""
The JSON shapes of stored things that more than one edge shows: the REST API,
the bus events (``docs/events.md``) and through them the push channel. One
function per shape, so a session looks the same wherever a client meets it.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any, Protocol

from ocppd.billing import CostBreakdown, Tariff, TariffLike, live_estimate
from ocppd.store.records import (
    PaymentRecord,
    TransactionRecord,
    UnmatchedStopRecord,
    WalletTransactionRecord,
)
from ocppd.store.wallets import WalletView
from ocppd.timeutil import format_iso

#: ``format_iso`` of the start times ``session_json`` shows: a charging
#: session's ``session.updated`` repeats its start on every MeterValues.
_started_iso = functools.lru_cache(maxsize=4096)(format_iso)


def iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else format_iso(value)


def review_json(record: TransactionRecord) -> dict[str, Any] | None:
    """
    A session's billing review (docs/api.md), None if it was never held:
    ``pending`` (nothing billed yet, ``computedCost`` is what the tariff
    computed) or the operator's decision ``billed``, ``adjusted`` or ``waived``.
    """
    if record.review_status is None:
        return None
    return {
        "status": record.review_status,
        "reasons": record.review_reason_list,
        "computedCost": record.review_cost,
        "decidedBy": record.reviewed_by,
        "decidedAt": iso_or_none(record.reviewed_at),
        "note": record.review_note,
    }


def session_json(record: TransactionRecord) -> dict[str, Any]:
    """
    The session object of DESIGN.md section 4; ``id`` is the OCPP
    transactionId. Extended with ``idTagStatus`` (what its start was
    answered: a start not ``Accepted`` is never billed) and ``review``.
    """
    # ``iso_or_none`` and ``review_json`` inlined for what an active
    # session has (no stop, no review): a call each per session.updated.
    stopped_at = record.stopped_at
    return {
        "id": record.id,
        "transactionId": record.id,
        "chargePointId": record.charge_point_id,
        "connectorId": record.connector_id,
        "idTag": record.id_tag,
        "userId": record.user_id,
        "status": record.status,
        "startedAt": _started_iso(record.started_at),
        "stoppedAt": None if stopped_at is None else format_iso(stopped_at),
        "meterStartWh": record.meter_start_wh,
        "meterStopWh": record.meter_stop_wh,
        "energyWh": record.energy_wh,
        "cost": record.cost,
        "currency": record.currency,
        "stopReason": record.stop_reason,
        "chargerStopReason": record.charger_stop_reason,
        "idTagStatus": record.id_tag_status,
        "review": None if record.review_status is None else review_json(record),
    }


def moved_session_json(shown: dict[str, Any], energy_wh: int | None) -> dict[str, Any]:
    """
    ``session_json`` of a session whose meter moved since ``shown`` was made
    of it: of the four values a meter's move sets (``SessionMeter``) a
    session shows its energy alone. A copy, rather than every field read
    again from a record made for each MeterValues.
    """
    return {**shown, "energyWh": energy_wh}


class Metered(Protocol):
    """What ``live_json`` reads of a session: a record, or a ``SessionMeter``."""

    @property
    def meter_start_wh(self) -> int: ...

    @property
    def started_at(self) -> datetime: ...

    @property
    def last_meter_wh(self) -> int | None: ...

    @property
    def energy_wh(self) -> int | None: ...


def price_json(tariff: TariffLike | None) -> dict[str, Any] | None:
    """
    What charging costs, as a driver is shown it before starting and while
    charging (docs/api.md "Prices"): integer minor units of ``currency``;
    None for a charger without a tariff (its sessions are not billed).
    """
    if tariff is None:
        return None
    return {
        "currency": tariff.currency,
        "pricePerKwh": tariff.price_per_kwh,
        "pricePerMinute": tariff.price_per_minute,
        "sessionFee": tariff.session_fee,
        "sessionFeeAlways": tariff.session_fee_always,
    }


def live_json(
    session: Metered,
    tariff: Tariff | None,
    *,
    power_w: int | None,
    soc_percent: int | None,
    at: datetime,
) -> tuple[dict[str, Any], CostBreakdown | None]:
    """
    The running figures of an active session at ``at`` (its newest meter
    reading's time): the ``live`` of ``session.updated`` and of the session
    snapshot (docs/events.md), so a reload shows what the last push showed.
    The estimate too (None without a tariff), for the funds guard.
    """
    estimate = None
    if tariff is not None:
        estimate = live_estimate(
            tariff,
            meter_start_wh=session.meter_start_wh,
            last_meter_wh=session.last_meter_wh,
            started_at=session.started_at,
            now=at,
        )
    live = {
        "energyWh": session.energy_wh or 0,
        "powerW": power_w,
        "socPercent": soc_percent,
        "cost": None if estimate is None else estimate.total,
        "currency": None if tariff is None else tariff.currency,
        "at": format_iso(at),
    }
    return live, estimate


def wallet_json(
    view: WalletView, *, minimum_to_start: int, top_up_available: bool
) -> dict[str, Any]:
    return {
        "balance": view.balance,
        "held": view.held,
        "available": view.available,
        "currency": view.currency,
        "minimumToStart": minimum_to_start,
        # False while no payment provider is configured: the page says so
        # instead of offering a top-up that would be refused.
        "topUpAvailable": top_up_available,
    }


def wallet_transaction_json(record: WalletTransactionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "amount": record.amount,
        "balance": record.balance_after,
        "currency": record.currency,
        "sessionId": record.session_id,
        "reference": record.reference,
        "at": format_iso(record.created_at),
    }


def payment_json(record: PaymentRecord) -> dict[str, Any]:
    """A top-up paid on the provider's page, as its customer sees it."""
    return {
        "id": record.id,
        "provider": record.provider,
        "reference": record.reference,
        "amount": record.amount,
        "currency": record.currency,
        "status": record.status,
        "refunded": record.refunded,
        "at": format_iso(record.created_at),
    }


def wallet_event(user_id: int, record: WalletTransactionRecord) -> dict[str, Any]:
    """The payload of ``wallet.transaction`` (docs/events.md) for a posted transaction."""
    return {
        "userId": user_id,
        "balance": record.balance_after,
        "currency": record.currency,
        "transaction": wallet_transaction_json(record),
    }


def unmatched_stop_json(record: UnmatchedStopRecord) -> dict[str, Any]:
    """A StopTransaction that changed no session, as the charger sent it."""
    return {
        "id": record.id,
        "chargePointId": record.charge_point_id,
        "transactionId": record.transaction_id,
        "meterStopWh": record.meter_stop_wh,
        "stoppedAt": format_iso(record.stopped_at),
        "reason": record.reason,
        "idTag": record.id_tag,
        "receivedAt": format_iso(record.received_at),
    }
