"""
Stations, charge points and sessions as operators list them: search, sort
and keyset pages, as ``ocppd.store.people`` does for users and id tags.

Search is case-insensitive substring matching (``LIKE`` on lower-cased
text, its wildcards escaped); id tags are stored upper-cased
(``tags.canonical_id_tag``) and matched so. Pages are keyset pages on (sort
value, unique key).

No sort here needs an index of its own: stations and chargers are a
network's size (thousands, not millions; a top-N sort over them is cheap),
and sessions, the list that grows without bound, sort only by id (the
primary key) or start time (``transactions.started_at`` is indexed).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.people import Order, ordered
from ocppd.store.people_search import contains
from ocppd.store.records import ChargePointRecord, StationRecord, TransactionRecord, from_mapping
from ocppd.store.tables import charge_points, stations, transactions, users
from ocppd.store.tags import canonical_id_tag
from ocppd.store.transactions import visible

_s = stations.c
_cp = charge_points.c
_tx = transactions.c
_u = users.c

#: Where a charger never seen sorts by last seen: before every one that was.
NEVER_SEEN = datetime(1970, 1, 1, tzinfo=UTC)

STATION_SORTS: dict[str, sa.ColumnElement[Any]] = {
    "name": sa.func.lower(_s.name),
    "created": _s.id,
}
POINT_SORTS: dict[str, sa.ColumnElement[Any]] = {
    "chargePointId": _cp.charge_point_id,
    "created": _cp.created_at,
    "lastSeen": sa.func.coalesce(_cp.last_seen_at, sa.literal(NEVER_SEEN, _cp.last_seen_at.type)),
}
SESSION_SORTS: dict[str, sa.ColumnElement[Any]] = {
    "id": _tx.id,
    "started": _tx.started_at,
}


def _lower_contains(column: sa.ColumnElement[Any], text: str) -> sa.ColumnElement[bool]:
    return contains(sa.func.lower(column), text.lower())


# --- stations --------------------------------------------------------------------


@attrs.frozen
class StationFilters:
    #: Matched in the name and the address, in any case.
    q: str | None = None


def list_stations_page(
    conn: Connection, filters: StationFilters, order: Order, *, limit: int
) -> list[StationRecord]:
    query = sa.select(stations)
    if filters.q:
        query = query.where(
            sa.or_(_lower_contains(_s.name, filters.q), _lower_contains(_s.address, filters.q))
        )
    query = ordered(query, STATION_SORTS[order.sort], _s.id, order)
    return [from_mapping(StationRecord, row._mapping) for row in conn.execute(query.limit(limit))]


def station_sort_key(record: StationRecord, sort: str) -> tuple[Any, Any]:
    value = {"name": record.name.lower(), "created": record.id}[sort]
    return value, record.id


def chargers_of_stations(
    conn: Connection, station_ids: Sequence[int]
) -> dict[int, list[tuple[str, bool]]]:
    """Each station's chargers (id, the store's online flag), in id order: one query for a page."""
    found: dict[int, list[tuple[str, bool]]] = {s: [] for s in station_ids}
    if not station_ids:
        return found
    rows = conn.execute(
        sa.select(_cp.station_id, _cp.charge_point_id, _cp.online)
        .where(_cp.station_id.in_(list(station_ids)))
        .order_by(_cp.charge_point_id)
    )
    for row in rows:
        found[row.station_id].append((row.charge_point_id, bool(row.online)))
    return found


# --- charge points ----------------------------------------------------------------


@attrs.frozen
class PointFilters:
    #: Matched in the id, vendor, model, serial number and firmware, in any case.
    q: str | None = None
    station_id: int | None = None
    registration_status: str | None = None


def list_points_page(
    conn: Connection, filters: PointFilters, order: Order, *, limit: int
) -> list[ChargePointRecord]:
    query = sa.select(charge_points)
    if filters.q:
        query = query.where(
            sa.or_(
                *(
                    _lower_contains(column, filters.q)
                    for column in (
                        _cp.charge_point_id,
                        _cp.vendor,
                        _cp.model,
                        _cp.serial_number,
                        _cp.firmware_version,
                    )
                )
            )
        )
    if filters.station_id is not None:
        query = query.where(_cp.station_id == filters.station_id)
    if filters.registration_status is not None:
        query = query.where(_cp.registration_status == filters.registration_status)
    query = ordered(query, POINT_SORTS[order.sort], _cp.charge_point_id, order)
    return [
        from_mapping(ChargePointRecord, row._mapping) for row in conn.execute(query.limit(limit))
    ]


def point_sort_key(record: ChargePointRecord, sort: str) -> tuple[Any, Any]:
    value = {
        "chargePointId": record.charge_point_id,
        "created": record.created_at,
        "lastSeen": record.last_seen_at or NEVER_SEEN,
    }[sort]
    return value, record.charge_point_id


# --- sessions ----------------------------------------------------------------------


@attrs.frozen
class SessionFilters:
    #: Matched in the charger's id, the id tag and the customer's e-mail and name, in any case.
    q: str | None = None
    #: One charger, its id in any case.
    charge_point_id: str | None = None
    user_id: int | None = None
    status: str | None = None
    review_status: str | None = None
    started_from: datetime | None = None
    started_before: datetime | None = None


@attrs.frozen
class SessionRow:
    session: TransactionRecord
    #: The customer's (e-mail, name), None for a session of no account.
    customer: tuple[str, str | None] | None


def _same_charger(charge_point_id: str) -> sa.ColumnElement[bool]:
    """
    The sessions of a charger named in any case. Its stored spellings are
    looked up first (chargers and their sessions keep the id as the charger
    sent it), so the sessions are still found through their index; the
    exact id also matches sessions of a charger since deleted.
    """
    spellings = sa.select(_cp.charge_point_id).where(
        sa.func.lower(_cp.charge_point_id) == charge_point_id.lower()
    )
    return sa.or_(_tx.charge_point_id == charge_point_id, _tx.charge_point_id.in_(spellings))


def list_sessions_page(
    conn: Connection, filters: SessionFilters, order: Order, *, limit: int
) -> list[SessionRow]:
    query = sa.select(
        transactions, _u.email.label("customer_email"), _u.name.label("customer_name")
    ).select_from(transactions.outerjoin(users, _u.id == _tx.user_id))
    query = query.where(visible)
    if filters.q:
        query = query.where(
            sa.or_(
                _lower_contains(_tx.charge_point_id, filters.q),
                contains(_tx.id_tag, canonical_id_tag(filters.q)),
                contains(_u.email, filters.q.lower()),
                _lower_contains(_u.name, filters.q),
            )
        )
    if filters.charge_point_id is not None:
        query = query.where(_same_charger(filters.charge_point_id))
    if filters.user_id is not None:
        query = query.where(_tx.user_id == filters.user_id)
    if filters.status is not None:
        query = query.where(_tx.status == filters.status)
    if filters.review_status is not None:
        query = query.where(_tx.review_status == filters.review_status)
    if filters.started_from is not None:
        query = query.where(_tx.started_at >= filters.started_from)
    if filters.started_before is not None:
        query = query.where(_tx.started_at < filters.started_before)
    query = ordered(query, SESSION_SORTS[order.sort], _tx.id, order)
    rows = []
    for row in conn.execute(query.limit(limit)):
        mapping = row._mapping
        email = mapping["customer_email"]
        customer = None if email is None else (email, mapping["customer_name"])
        rows.append(SessionRow(from_mapping(TransactionRecord, mapping), customer))
    return rows


def session_sort_key(row: SessionRow, sort: str) -> tuple[Any, Any]:
    value = {"id": row.session.id, "started": row.session.started_at}[sort]
    return value, row.session.id
