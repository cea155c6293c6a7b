"""
The OCPP message processor: persists what chargers said, off the bus.

Each envelope is applied in one database transaction that first claims its id
(``processed_messages``), so at-least-once delivery stores everything exactly
once. Content-level rules in the store make a charger's own resends and
out-of-order arrivals harmless (see ``ocppd.store.transactions``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection

from ocppd.billing import Tariff, final_cost
from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.consumers.base import BusConsumer
from ocppd.store import chargers, messages, tariffs, transactions
from ocppd.store.records import MeterSample, TransactionRecord
from ocppd.timeutil import parse_iso

CONSUMER = "processor"

Applier = Callable[[Connection, str, Envelope, dict[str, Any]], None]


def _at(envelope: Envelope, field: str) -> Any:
    return parse_iso(envelope.payload.get(field) or envelope.time)


def samples_from(meter_values: list[dict[str, Any]]) -> list[MeterSample]:
    """OCPP 1.6 MeterValue objects flattened into one sample per sampledValue."""
    samples = []
    for meter_value in meter_values:
        timestamp = parse_iso(meter_value["timestamp"])
        for sampled in meter_value["sampledValue"]:
            samples.append(
                MeterSample(
                    timestamp=timestamp,
                    value=sampled["value"],
                    measurand=sampled.get("measurand", "Energy.Active.Import.Register"),
                    phase=sampled.get("phase"),
                    unit=sampled.get("unit", "Wh"),
                    context=sampled.get("context", "Sample.Periodic"),
                    location=sampled.get("location", "Outlet"),
                    format=sampled.get("format", "Raw"),
                )
            )
    return samples


def _boot(
    conn: Connection, charge_point_id: str, envelope: Envelope, request: dict[str, Any]
) -> None:
    chargers.record_boot(
        conn,
        charge_point_id,
        vendor=request["chargePointVendor"],
        model=request["chargePointModel"],
        serial_number=request.get("chargePointSerialNumber"),
        charge_box_serial_number=request.get("chargeBoxSerialNumber"),
        firmware_version=request.get("firmwareVersion"),
        iccid=request.get("iccid"),
        imsi=request.get("imsi"),
        meter_type=request.get("meterType"),
        meter_serial_number=request.get("meterSerialNumber"),
        at=_at(envelope, "receivedAt"),
    )


def _status(
    conn: Connection, charge_point_id: str, envelope: Envelope, request: dict[str, Any]
) -> None:
    chargers.set_connector_status(
        conn,
        charge_point_id,
        request["connectorId"],
        status=request["status"],
        error_code=request["errorCode"],
        info=request.get("info"),
        vendor_error_code=request.get("vendorErrorCode"),
        at=parse_iso(request["timestamp"])
        if "timestamp" in request
        else _at(envelope, "receivedAt"),
    )


def _meter_values(
    conn: Connection, charge_point_id: str, envelope: Envelope, request: dict[str, Any]
) -> None:
    transactions.add_meter_values(
        conn,
        charge_point_id=charge_point_id,
        connector_id=request["connectorId"],
        transaction_id=request.get("transactionId"),
        samples=samples_from(request["meterValue"]),
        now=_at(envelope, "receivedAt"),
    )


def _stop(
    conn: Connection, charge_point_id: str, envelope: Envelope, request: dict[str, Any]
) -> None:
    outcome = transactions.record_stop(
        conn,
        charge_point_id=charge_point_id,
        transaction_id=request["transactionId"],
        meter_stop_wh=request["meterStop"],
        stopped_at=parse_iso(request["timestamp"]),
        reason=request.get("reason"),
        id_tag=request.get("idTag"),
        now=_at(envelope, "receivedAt"),
    )
    record = transactions.get_transaction(conn, request["transactionId"])
    if outcome != "unknown" and record is not None and request.get("transactionData"):
        transactions.add_meter_values(
            conn,
            charge_point_id=charge_point_id,
            connector_id=record.connector_id,
            transaction_id=request["transactionId"],
            samples=samples_from(request["transactionData"]),
            now=_at(envelope, "receivedAt"),
        )
    if outcome == "stopped" and record is not None:
        _price(conn, record)


def _price(conn: Connection, session: TransactionRecord) -> None:
    """
    Price a session that just stopped with the tariff it started under (a
    tariff changed mid-session does not reprice it), from its start and stop
    readings alone. A session on a charger without a tariff stays unpriced.
    """
    if session.tariff_id is None or session.meter_stop_wh is None or session.stopped_at is None:
        return
    record = tariffs.get_tariff(conn, session.tariff_id)
    if record is None:
        return
    tariff = Tariff.from_record(record)
    cost = final_cost(
        tariff,
        meter_start_wh=session.meter_start_wh,
        meter_stop_wh=session.meter_stop_wh,
        started_at=session.started_at,
        stopped_at=session.stopped_at,
    )
    transactions.set_cost(conn, session.id, cost=cost.total, currency=tariff.currency)


#: Effects of inbound CALLs beyond the message log. StartTransaction has none:
#: its session row is written when its id is allocated, in the request path.
INBOUND_EFFECTS: dict[str, Applier] = {
    "BootNotification": _boot,
    "StatusNotification": _status,
    "MeterValues": _meter_values,
    "StopTransaction": _stop,
}


class OcppProcessor(BusConsumer):
    """Consumes ``topology.PROCESSOR_QUEUE`` and writes to the store."""

    name = CONSUMER

    def effects(self, conn: Connection, envelope: Envelope) -> None:
        charge_point_id = envelope.charge_point_id
        if charge_point_id is None:
            # Every type this queue carries is about a charger; a message
            # without one is a publisher's bug, not worth retrying.
            self.log.error(
                "Processor ignores {type} {id} without a charge point id",
                type=envelope.type,
                id=envelope.id,
            )
            return
        kind = envelope.type.partition(".")[0]
        if kind == "ocpp":
            self._apply_ocpp(conn, charge_point_id, envelope)
        elif envelope.type == topology.CHARGER_CONNECTED:
            chargers.set_connected(
                conn,
                charge_point_id,
                connection_id=envelope.payload["connectionId"],
                node=envelope.payload["node"],
                at=_at(envelope, "at"),
            )
        elif envelope.type == topology.CHARGER_DISCONNECTED:
            chargers.set_disconnected(
                conn,
                charge_point_id,
                connection_id=envelope.payload["connectionId"],
                at=_at(envelope, "at"),
            )

    def _apply_ocpp(self, conn: Connection, charge_point_id: str, envelope: Envelope) -> None:
        payload = envelope.payload
        direction, _, action = envelope.type[len("ocpp.") :].partition(".")

        def log(suffix: str, direction: str, message_type: str, body: Any, at_field: str) -> None:
            messages.log_message(
                conn,
                message_id=f"{envelope.id}:{suffix}",
                charge_point_id=charge_point_id,
                direction=direction,
                message_type=message_type,
                action=payload.get("action"),
                unique_id=payload.get("uniqueId"),
                payload=body,
                at=_at(envelope, at_field),
            )

        def log_answer(suffix: str, direction: str, at_field: str) -> None:
            if "error" in payload:
                log(suffix, direction, "CALLERROR", payload["error"], at_field)
            else:
                log(suffix, direction, "CALLRESULT", payload.get("response"), at_field)

        if direction == "in":
            log("call", "in", "CALL", payload["request"], "receivedAt")
            log_answer("answer", "out", "receivedAt")
            chargers.touch_last_seen(conn, charge_point_id, _at(envelope, "receivedAt"))
            effect = INBOUND_EFFECTS.get(action)
            if effect is not None:
                effect(conn, charge_point_id, envelope, payload["request"])
        elif direction == "out":
            log("call", "out", "CALL", payload["request"], "sentAt")
        elif direction == "reply":
            log_answer("reply", "in", "receivedAt")
        elif direction == "rejected":
            log("call", "in", "CALL", {"raw": payload["raw"]}, "receivedAt")
            log_answer("answer", "out", "receivedAt")
        else:
            self.log.warn("Processor ignores unknown envelope type {type}", type=envelope.type)
