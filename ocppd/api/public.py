"""
What every signed-in user may read: stations with live availability, and one
charger's detail. Operator-only fields (registration, keys, tariffs) stay out.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.api.cms import _iso, connector_json, station_json
from ocppd.store import chargers, stations
from ocppd.store.records import ChargePointRecord, ConnectorRecord, all_records
from ocppd.store.tables import charge_points


def charger_json(record: ChargePointRecord, connectors: list[ConnectorRecord]) -> dict[str, Any]:
    shown = [c for c in connectors if c.connector_id != 0]  # 0 is the charger itself
    return {
        "chargePointId": record.charge_point_id,
        "stationId": record.station_id,
        "online": record.online,
        "lastSeenAt": _iso(record.last_seen_at),
        "vendor": record.vendor,
        "model": record.model,
        "available": record.online and any(c.status == "Available" for c in shown),
        "connectors": [connector_json(c) for c in shown],
    }


def stations_page_tx(conn: Connection, after_id: int | None, limit: int) -> list[dict[str, Any]]:
    """A page of stations, each with its chargers and their connectors (three queries)."""
    rows = stations.list_stations_page(conn, after_id=after_id, limit=limit)
    points = all_records(
        conn,
        ChargePointRecord,
        sa.select(charge_points)
        .where(charge_points.c.station_id.in_([row.id for row in rows]))
        .order_by(charge_points.c.charge_point_id),
    )
    connectors = chargers.connectors_of(conn, [p.charge_point_id for p in points])
    items = []
    for row in rows:
        mine = [
            charger_json(p, connectors[p.charge_point_id]) for p in points if p.station_id == row.id
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


def charger_tx(conn: Connection, charge_point_id: str) -> dict[str, Any] | None:
    record = chargers.get_charge_point(conn, charge_point_id)
    if record is None or record.registration_status != "Accepted":
        return None
    return charger_json(record, chargers.list_connectors(conn, charge_point_id))
