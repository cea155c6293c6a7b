"""
The processor's part for a charger's own state: what its BootNotification,
StatusNotification, FirmwareStatusNotification and
DiagnosticsStatusNotification said, and its presence (``charger.connected``
and ``charger.disconnected``, ordered by the presence fence).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection
from twisted.internet.interfaces import IReactorTime

from ocppd.bounds import INT64_MAX
from ocppd.bus.envelope import Envelope
from ocppd.consumers.base import DeferredWrites
from ocppd.consumers.traffic import at, received_at
from ocppd.store import chargers, connections
from ocppd.timeutil import from_timestamp, parse_iso


def fence(envelope: Envelope) -> int | None:
    """
    The presence fence of a connect or disconnect event; None when absent (an
    event from before presence) or not a fence (it then orders by time).
    """
    value = envelope.payload.get("fence")
    if type(value) is not int or not 0 < value <= INT64_MAX:
        return None
    return value


def close_code(envelope: Envelope) -> int | None:
    """The WebSocket close code a disconnect reports; None when absent or not one."""
    value = envelope.payload.get("code")
    return value if type(value) is int and 0 <= value <= 0xFFFF else None


def close_reason(envelope: Envelope) -> str | None:
    """The close reason a disconnect reports (cut to its bound by the store); None if not text."""
    value = envelope.payload.get("reason")
    return value if type(value) is str else None


def boot(
    conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
) -> None:
    request: dict[str, Any] = envelope.payload["request"]
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
        at=received_at(envelope),
    )


def status(
    conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
) -> None:
    request: dict[str, Any] = envelope.payload["request"]
    chargers.set_connector_status(
        conn,
        charge_point_id,
        request["connectorId"],
        status=request["status"],
        error_code=request["errorCode"],
        info=request.get("info"),
        vendor_error_code=request.get("vendorErrorCode"),
        at=parse_iso(request["timestamp"]) if "timestamp" in request else received_at(envelope),
    )


def firmware_status(
    conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
) -> None:
    """A FirmwareStatusNotification: the charger's firmware update, as it goes."""
    chargers.record_file_status(
        conn,
        charge_point_id,
        "firmware",
        status=envelope.payload["request"]["status"],
        at=received_at(envelope),
    )


def diagnostics_status(
    conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
) -> None:
    """A DiagnosticsStatusNotification: the charger's diagnostics upload, as it goes."""
    chargers.record_file_status(
        conn,
        charge_point_id,
        "diagnostics",
        status=envelope.payload["request"]["status"],
        at=received_at(envelope),
    )


class Presence:
    """Connects and disconnects, as the node holding the socket reported them."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock

    def connected(
        self, conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> None:
        # Its presence and its history row (every socket, current or not).
        connections.connected(
            conn,
            charge_point_id,
            connection_id=envelope.payload["connectionId"],
            node=envelope.payload["node"],
            at=at(envelope, "at"),
            fence=fence(envelope),
            # Its liveness counts from now: a connect stored late must not
            # be swept before its node had a chance to renew it.
            alive_at=from_timestamp(self._clock.seconds()),
        )

    def disconnected(
        self, conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> None:
        # Its own socket's row only: a stale disconnect never ends a newer socket's.
        connections.disconnected(
            conn,
            charge_point_id,
            connection_id=envelope.payload["connectionId"],
            at=at(envelope, "at"),
            fence=fence(envelope),
            code=close_code(envelope),
            reason=close_reason(envelope),
        )
