"""Stations: the sites that group charge points."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.errors import AlreadyExists, InUse, NotFound
from ocppd.store.records import StationRecord, all_records, first_record
from ocppd.store.sql import insert_new
from ocppd.store.tables import charge_points, stations


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


def list_stations_page(
    conn: Connection, *, after_id: int | None = None, limit: int
) -> list[StationRecord]:
    """
    Up to ``limit`` stations in id order, after ``after_id``: keyset
    pagination, so a page never repeats or skips a row when others are added
    or removed between requests (an OFFSET would).
    """
    query = sa.select(stations)
    if after_id is not None:
        query = query.where(stations.c.id > after_id)
    return all_records(conn, StationRecord, query.order_by(stations.c.id).limit(limit))


def update_station(
    conn: Connection,
    station_id: int,
    *,
    name: str,
    address: str | None,
    latitude: int | None,
    longitude: int | None,
    now: datetime,
) -> None:
    """
    Replace a station's fields. Raises NotFound, or AlreadyExists when
    another station has ``name`` (checked first, so that the usual case does
    not spoil a PostgreSQL transaction with a failed statement; a concurrent
    rename still ends as AlreadyExists through the unique key).
    """
    clash = conn.execute(
        sa.select(stations.c.id).where(stations.c.name == name, stations.c.id != station_id)
    ).first()
    if clash is not None:
        raise AlreadyExists(f"station {name!r}")
    try:
        result = conn.execute(
            stations.update()
            .where(stations.c.id == station_id)
            .values(
                name=name,
                address=address,
                latitude=latitude,
                longitude=longitude,
                updated_at=now,
            )
        )
    except sa.exc.IntegrityError:
        raise AlreadyExists(f"station {name!r}") from None
    if result.rowcount == 0:
        raise NotFound(f"station {station_id}")


def count_station_charge_points(conn: Connection, station_id: int) -> int:
    """How many charge points belong to the station."""
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(charge_points)
            .where(charge_points.c.station_id == station_id)
        ).scalar_one()
    )


def delete_station(conn: Connection, station_id: int) -> None:
    """
    Delete a station that no charge point belongs to. Raises NotFound, or
    InUse while points still belong to it: silently detaching them (the
    foreign key would SET NULL) would hide chargers from every site listing.
    """
    if get_station(conn, station_id) is None:
        raise NotFound(f"station {station_id}")
    points = count_station_charge_points(conn, station_id)
    if points:
        raise InUse(f"station {station_id} still has {points} charge point(s)")
    conn.execute(stations.delete().where(stations.c.id == station_id))
