"""Stations: the sites that group charge points."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.errors import AlreadyExists
from ocppd.store.records import StationRecord, all_records, first_record
from ocppd.store.sql import insert_new
from ocppd.store.tables import stations


def add_station(
    conn: Connection,
    name: str,
    *,
    address: str | None = None,
    latitude: int | None = None,
    longitude: int | None = None,
    now: datetime,
) -> int:
    """
    Add a station; its id. ``latitude``/``longitude`` are integer
    microdegrees (degrees * 10**6), exact where floats are not.
    Raises AlreadyExists for a name in use.
    """
    station_id = insert_new(
        conn,
        stations,
        {
            "name": name,
            "address": address,
            "latitude": latitude,
            "longitude": longitude,
            "created_at": now,
            "updated_at": now,
        },
    )
    if station_id is None:
        raise AlreadyExists(f"station {name!r}")
    return int(station_id)


def get_station(conn: Connection, station_id: int) -> StationRecord | None:
    """The station, or None."""
    return first_record(conn, StationRecord, sa.select(stations).where(stations.c.id == station_id))


def get_station_by_name(conn: Connection, name: str) -> StationRecord | None:
    """The station called ``name`` (exactly), or None."""
    return first_record(conn, StationRecord, sa.select(stations).where(stations.c.name == name))


def list_stations(conn: Connection) -> list[StationRecord]:
    """Every station, by name."""
    return all_records(conn, StationRecord, sa.select(stations).order_by(stations.c.name))
