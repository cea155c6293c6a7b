"""
Receipts of finished sessions, for the customer whose sessions they are.

``GET /api/user/sessions/{id}/receipt`` is the receipt as JSON (the panel's
printable page renders it), ``.../receipt.pdf`` the same as a PDF
(``ocppd.api.receipt_pdf``, rendered off the reactor thread) in the
reader's language (``lang``, else Accept-Language: ``ocppd.api.receipt_words``). Another
customer's session, or none, is 404 alike, so ids cannot be probed; a
session still running, or held for an operator's review, has no receipt yet
(409). The money on it is ``ocppd.billing.receipt``'s.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import deferToThread

from ocppd.api.errors import ApiError
from ocppd.api.receipt_words import ENGLISH, ReceiptWords
from ocppd.billing import Tariff, elapsed_seconds
from ocppd.billing.receipt import ReceiptMoney, receipt_money
from ocppd.config import BillingConfig
from ocppd.representations import iso_or_none
from ocppd.store import chargers, stations, tariffs, transactions, users
from ocppd.store.database import Database
from ocppd.store.records import (
    ChargePointRecord,
    StationRecord,
    TariffRecord,
    TransactionRecord,
    UserRecord,
)
from ocppd.timeutil import format_iso


@attrs.frozen
class Receipt:
    """Everything a receipt shows, read in one database transaction."""

    session: TransactionRecord
    stopped_at: datetime
    charger: ChargePointRecord | None
    station: StationRecord | None
    tariff: TariffRecord | None
    customer: str
    currency: str
    duration_seconds: int
    energy_wh: int
    money: ReceiptMoney
    issuer: str

    @property
    def number(self) -> str:
        return f"S-{self.session.id:08d}"


def _not_found(session_id: int) -> ApiError:
    return ApiError(404, "not_found", f"you have no session {session_id}")


def receipt_tx(
    conn: Connection, user: UserRecord, session_id: int, billing: BillingConfig
) -> Receipt:
    session = transactions.get_transaction(conn, session_id)
    if session is None or session.user_id != user.id:
        raise _not_found(session_id)
    if session.status != "completed" or session.stopped_at is None:
        raise ApiError(409, "session_active", "this session is still charging: no receipt yet")
    if session.review_status == "pending":
        raise ApiError(409, "receipt_pending", "this session is being checked: its receipt follows")
    charger = chargers.get_charge_point(conn, session.charge_point_id)
    station = None
    if charger is not None and charger.station_id is not None:
        station = stations.get_station(conn, charger.station_id)
    tariff = None if session.tariff_id is None else tariffs.get_tariff(conn, session.tariff_id)
    owner = users.get_user(conn, user.id)
    energy_wh = max(0, session.energy_wh or 0)
    duration = elapsed_seconds(session.started_at, session.stopped_at)
    money = receipt_money(
        None if tariff is None else Tariff.from_record(tariff),
        energy_wh=energy_wh,
        duration_seconds=duration,
        billed=session.cost or 0,
        vat_rate_bp=billing.vat_rate,
    )
    return Receipt(
        session=session,
        stopped_at=session.stopped_at,
        charger=charger,
        station=station,
        tariff=tariff,
        customer=owner.email if owner is not None else user.email,
        currency=session.currency or (tariff.currency if tariff else billing.currency),
        duration_seconds=duration,
        energy_wh=energy_wh,
        money=money,
        issuer=billing.receipt_issuer,
    )


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    session, money = receipt.session, receipt.money
    charger, station, tariff = receipt.charger, receipt.station, receipt.tariff
    return {
        "number": receipt.number,
        "issuer": receipt.issuer or None,
        "customer": receipt.customer,
        "session": {
            "id": session.id,
            "chargePointId": session.charge_point_id,
            "connectorId": session.connector_id,
            "startedAt": format_iso(session.started_at),
            "stoppedAt": iso_or_none(session.stopped_at),
            "durationSeconds": receipt.duration_seconds,
            "energyWh": receipt.energy_wh,
            "meterStartWh": session.meter_start_wh,
            "meterStopWh": session.meter_stop_wh,
            "stopReason": session.stop_reason,
        },
        "station": None
        if station is None
        else {"id": station.id, "name": station.name, "address": station.address},
        "charger": {
            "id": session.charge_point_id,
            "vendor": charger.vendor if charger else None,
            "model": charger.model if charger else None,
        },
        "tariff": None
        if tariff is None
        else {
            "name": tariff.name,
            "currency": tariff.currency,
            "pricePerKwh": tariff.price_per_kwh,
            "pricePerMinute": tariff.price_per_minute,
            "sessionFee": tariff.session_fee,
        },
        "lines": [
            {
                "kind": line.kind,
                "quantity": line.quantity,
                "unitPrice": line.unit_price,
                "amount": line.amount,
            }
            for line in money.lines
        ],
        "currency": receipt.currency,
        "total": money.total,
        "vat": {"rateBasisPoints": money.vat_rate_bp, "amount": money.vat, "net": money.net},
    }


class Receipts:
    def __init__(self, *, database: Database, billing: BillingConfig, words: ReceiptWords) -> None:
        self._database = database
        self._billing = billing
        self._words = words

    def receipt(self, user: UserRecord, session_id: int) -> Deferred[Receipt]:
        return self._database.run(receipt_tx, user, session_id, self._billing)

    @inlineCallbacks
    def json(
        self, user: UserRecord, session_id: int
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        receipt = yield self.receipt(user, session_id)
        return receipt_json(receipt)

    @inlineCallbacks
    def pdf(
        self, user: UserRecord, session_id: int, language: str = ENGLISH
    ) -> Generator[Deferred[Any], Any, bytes]:
        """The PDF in ``language`` (one of ``receipt_words.LANGUAGES``)."""
        from ocppd.api.receipt_pdf import render

        receipt = yield self.receipt(user, session_id)
        # fpdf2 is pure Python: a few milliseconds of CPU, off the reactor thread.
        return (yield deferToThread(render, receipt, self._words, language))
