"""
What every signed-in user may read: stations with live availability, and one
charger's detail. Operator-only fields (registration, keys, tariffs) stay out.
"""

from __future__ import annotations

from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.api.cms import _iso, connector_json, station_json
from ocppd.api.online import Online
from ocppd.representations import price_json
from ocppd.store import chargers, stations, tariffs
from ocppd.store.records import (
    ChargePointRecord,
    ConnectorRecord,
    StationRecord,
    TariffRecord,
    all_records,
)
from ocppd.store.tables import charge_points


def charger_json(
    record: ChargePointRecord,
    connectors: list[ConnectorRecord],
    online: Online,
    tariff: TariffRecord | None,
) -> dict[str, Any]:
    shown = [c for c in connectors if c.connector_id != 0]  # 0 is the charger itself
    is_online = online(record)
    return {
        "chargePointId": record.charge_point_id,
        "stationId": record.station_id,
        **online.fields(record),
        "lastSeenAt": _iso(record.last_seen_at),
        "vendor": record.vendor,
        "model": record.model,
        "available": is_online and any(c.status == "Available" for c in shown),
        "connectors": [connector_json(c) for c in shown],
        # The plug and the most it delivers, where the operator recorded them.
        "connectorType": record.connector_type,
        "maxPowerW": record.max_power_w,
        # What a session started here costs: shown before the driver starts.
        "tariff": price_json(tariff),
    }


@attrs.frozen
class StationsPage:
    """A page of stations as stored: the online states are asked for afterwards."""

    stations: list[StationRecord]
    points: list[ChargePointRecord]
    connectors: dict[str, list[ConnectorRecord]]
    tariffs: dict[int, TariffRecord]

    def charge_point_ids(self) -> list[str]:
        return [p.charge_point_id for p in self.points]

    def json(self, online: Online) -> list[dict[str, Any]]:
        items = []
        for row in self.stations:
            mine = [
                charger_json(
                    p,
                    self.connectors[p.charge_point_id],
                    online,
                    self.tariffs.get(p.tariff_id) if p.tariff_id is not None else None,
                )
                for p in self.points
                if p.station_id == row.id
            ]
            items.append(
                {
                    **station_json(row),
                    "online": any(c["online"] for c in mine),
                    "available": sum(c["available"] for c in mine),
                    "chargers": mine,
                }
            )
        return items


def stations_page_tx(conn: Connection, after_id: int | None, limit: int) -> StationsPage:
    """A page of stations, each with its chargers, their connectors and tariffs (four queries)."""
    rows = stations.list_stations_page(conn, after_id=after_id, limit=limit)
    points = all_records(
        conn,
        ChargePointRecord,
        sa.select(charge_points)
        .where(charge_points.c.station_id.in_([row.id for row in rows]))
        .order_by(charge_points.c.charge_point_id),
    )
    connectors = chargers.connectors_of(conn, [p.charge_point_id for p in points])
    prices = tariffs.tariffs_by_id(conn, (p.tariff_id for p in points))
    return StationsPage(rows, points, connectors, prices)


def charger_tx(
    conn: Connection, charge_point_id: str
) -> tuple[ChargePointRecord, list[ConnectorRecord], TariffRecord | None] | None:
    """An accepted charger, its connectors and its tariff, or None."""
    record = chargers.get_charge_point(conn, charge_point_id)
    if record is None or record.registration_status != "Accepted":
        return None
    tariff = None if record.tariff_id is None else tariffs.get_tariff(conn, record.tariff_id)
    return record, chargers.list_connectors(conn, charge_point_id), tariff
