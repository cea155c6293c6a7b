"""
The CMS's stations, charge points and sessions lists (admin only), as
``ocppd.api.cms_people`` lists users and id tags:

- ``GET /api/cms/stations``, ``/api/cms/points`` and ``/api/cms/sessions``:
  searched (``q``, any case), filtered, sorted (``sort=name``, ``-name`` ...)
  and paged by keyset cursor (``{"items", "next"}`` as before; without
  ``sort`` each list keeps its old order: stations by id, points by id,
  sessions newest first).
- ``/api/cms/stations.csv``, ``/api/cms/points.csv`` and
  ``/api/cms/sessions.csv`` export the same list, whole, with the same
  filters and order.

A point's ``online`` comes from presence (``ocppd.api.online``), in the
list and in its export; so do a station's chargers' states in its row.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import deferToThread

from ocppd.api.cms import MAX_ID, point_json, station_json
from ocppd.api.cms_people import (
    MAX_EXPORT,
    Listing,
    bounded_export,
    csv_text,
    cursor_after,
    cursor_text,
    parse_sort,
    search_text,
)
from ocppd.api.errors import bad_request
from ocppd.api.http import parse_decimal
from ocppd.api.online import Online, OnlineView
from ocppd.api.pagination import page
from ocppd.representations import session_json
from ocppd.store import chargers
from ocppd.store import cms_lists as lists
from ocppd.store.cms_lists import PointFilters, SessionFilters, SessionRow, StationFilters
from ocppd.store.database import Database
from ocppd.store.people import Order
from ocppd.store.records import ChargePointRecord, StationRecord
from ocppd.store.tables import REGISTRATION_STATUSES, REVIEW_STATUSES, TRANSACTION_STATUSES
from ocppd.timeutil import parse_iso

#: The query parameters of each list (the export takes the same, without paging).
STATION_ARGS = ("q", "sort")
POINT_ARGS = ("q", "stationId", "registrationStatus", "sort")
SESSION_ARGS = ("q", "chargePointId", "userId", "status", "review", "from", "to", "sort")


def _id(args: dict[str, str | None], name: str) -> int | None:
    if args.get(name) is None:
        return None
    value = parse_decimal(args[name] or "", maximum=MAX_ID)
    if not value:
        raise bad_request("a positive integer", field=name)
    return value


def _choice(args: dict[str, str | None], name: str, choices: tuple[str, ...]) -> str | None:
    value = args.get(name)
    if value is not None and value not in choices:
        raise bad_request(f"one of {', '.join(choices)}", field=name)
    return value


def _kind(name: str, sort: str, descending: bool) -> str:
    return f"{name}:{sort}:{'desc' if descending else 'asc'}"


def station_listing(args: dict[str, str | None], cursor: str | None) -> Listing:
    sort, descending = parse_sort(args.get("sort"), lists.STATION_SORTS, "created")
    kind = _kind("stations", sort, descending)
    value_type = str if sort == "name" else int
    after = cursor_after(cursor, kind, value_type, int)
    return Listing(kind, StationFilters(q=search_text(args)), Order(sort, descending, after))


def point_listing(args: dict[str, str | None], cursor: str | None) -> Listing:
    sort, descending = parse_sort(args.get("sort"), lists.POINT_SORTS, "chargePointId")
    filters = PointFilters(
        q=search_text(args),
        station_id=_id(args, "stationId"),
        registration_status=_choice(args, "registrationStatus", REGISTRATION_STATUSES),
    )
    kind = _kind("points", sort, descending)
    value_type = str if sort == "chargePointId" else datetime
    after = cursor_after(cursor, kind, value_type, str)
    return Listing(kind, filters, Order(sort, descending, after))


def session_listing(args: dict[str, str | None], cursor: str | None) -> Listing:
    sort, descending = parse_sort(args.get("sort"), lists.SESSION_SORTS, "-id")
    times = {}
    for name in ("from", "to"):
        text = args.get(name)
        if text is not None:
            try:
                times[name] = parse_iso(text)
            except ValueError:
                raise bad_request("an ISO-8601 time", field=name) from None
    charge_point_id = (args.get("chargePointId") or "").strip() or None
    filters = SessionFilters(
        q=search_text(args),
        charge_point_id=charge_point_id,
        user_id=_id(args, "userId"),
        status=_choice(args, "status", TRANSACTION_STATUSES),
        review_status=_choice(args, "review", REVIEW_STATUSES),
        started_from=times.get("from"),
        started_before=times.get("to"),
    )
    kind = _kind("sessions", sort, descending)
    value_type = int if sort == "id" else datetime
    after = cursor_after(cursor, kind, value_type, int)
    return Listing(kind, filters, Order(sort, descending, after))


# --- JSON and CSV --------------------------------------------------------------------


def station_row_json(
    record: StationRecord, chargers_here: list[tuple[str, bool]], online: Online
) -> dict[str, Any]:
    """A station in the list: with its chargers and whether each is online (presence)."""
    return {
        **station_json(record),
        "chargers": [
            {"chargePointId": cp, "online": online.of(cp, stored)} for cp, stored in chargers_here
        ],
    }


def session_row_json(row: SessionRow) -> dict[str, Any]:
    shown = session_json(row.session)
    shown["customer"] = (
        None
        if row.customer is None
        else {"userId": row.session.user_id, "email": row.customer[0], "name": row.customer[1]}
    )
    return shown


STATION_COLUMNS = ("id", "name", "address", "latitude", "longitude", "createdAt", "updatedAt")
POINT_COLUMNS = (
    "chargePointId",
    "online",
    "stationId",
    "tariffId",
    "registrationStatus",
    "vendor",
    "model",
    "serialNumber",
    "firmwareVersion",
    "connectorType",
    "maxPowerW",
    "bootClosesSessions",
    "lastSeenAt",
    "bootAt",
    "createdAt",
)
SESSION_COLUMNS = (
    "id",
    "chargePointId",
    "connectorId",
    "idTag",
    "userId",
    "status",
    "startedAt",
    "stoppedAt",
    "energyWh",
    "cost",
    "currency",
    "stopReason",
    # The charger's own stop reason when its late stop billed a closed session again.
    "chargerStopReason",
)


def stations_csv(rows: list[dict[str, Any]]) -> bytes:
    header = [*STATION_COLUMNS, "chargers", "chargersOnline"]

    def line(shown: dict[str, Any]) -> list[Any]:
        here = shown["chargers"]
        return [shown[c] for c in STATION_COLUMNS] + [
            len(here),
            sum(1 for c in here if c["online"]),
        ]

    return csv_text(header, (line(row) for row in rows))


def points_csv(rows: list[dict[str, Any]]) -> bytes:
    return csv_text([*POINT_COLUMNS], ([row[c] for c in POINT_COLUMNS] for row in rows))


def sessions_csv(rows: list[SessionRow]) -> bytes:
    header = [*SESSION_COLUMNS, "customerEmail", "customerName"]

    def line(row: SessionRow) -> list[Any]:
        shown = session_row_json(row)
        customer = shown["customer"] or {}
        return [shown[c] for c in SESSION_COLUMNS] + [customer.get("email"), customer.get("name")]

    return csv_text(header, (line(row) for row in rows))


# --- the service ------------------------------------------------------------------------


def _stations_tx(
    conn: Any, listing: Listing, limit: int
) -> tuple[list[StationRecord], dict[int, list[tuple[str, bool]]]]:
    rows = lists.list_stations_page(conn, listing.filters, listing.order, limit=limit)
    return rows, lists.chargers_of_stations(conn, [r.id for r in rows])


def _points_tx(conn: Any, listing: Listing, limit: int) -> tuple[list[ChargePointRecord], Any]:
    rows = lists.list_points_page(conn, listing.filters, listing.order, limit=limit)
    return rows, chargers.connectors_of(conn, [r.charge_point_id for r in rows])


class CmsLists:
    """Stations, points and sessions, searched, sorted, paged and exported."""

    def __init__(self, *, database: Database, online: OnlineView) -> None:
        self._database = database
        self._online = online

    @inlineCallbacks
    def _stations(
        self, listing: Listing, limit: int
    ) -> Generator[Deferred[Any], Any, tuple[list[StationRecord], list[dict[str, Any]]]]:
        rows, here = yield self._database.run(_stations_tx, listing, limit)
        online = yield self._online.lookup(cp for r in rows for cp, _ in here[r.id])
        return rows, [station_row_json(r, here[r.id], online) for r in rows]

    @inlineCallbacks
    def stations(
        self, args: dict[str, str | None], limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        listing = station_listing(args, cursor)
        rows, shown = yield self._stations(listing, limit + 1)
        sort = listing.order.sort
        by_id = {s["id"]: s for s in shown}
        return page(
            listing.kind,
            rows,
            limit,
            lambda r: cursor_text(lists.station_sort_key(r, sort)),
            lambda r: by_id[r.id],
        )

    @inlineCallbacks
    def stations_csv(self, args: dict[str, str | None]) -> Generator[Deferred[Any], Any, bytes]:
        listing = station_listing(args, None)
        rows, shown = yield self._stations(listing, MAX_EXPORT + 1)
        bounded_export(rows)
        # Up to MAX_EXPORT rows: written off the reactor thread.
        text = yield deferToThread(stations_csv, shown)
        return text

    @inlineCallbacks
    def _points(
        self, listing: Listing, limit: int, shown: int
    ) -> Generator[Deferred[Any], Any, tuple[list[ChargePointRecord], Any, Online]]:
        rows, connectors = yield self._database.run(_points_tx, listing, limit)
        # The shown rows' ids only: an extra row tells whether there is a next page.
        online = yield self._online.lookup(r.charge_point_id for r in rows[:shown])
        return rows, connectors, online

    @inlineCallbacks
    def points(
        self, args: dict[str, str | None], limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        listing = point_listing(args, cursor)
        rows, connectors, online = yield self._points(listing, limit + 1, limit)
        sort = listing.order.sort
        return page(
            listing.kind,
            rows,
            limit,
            lambda r: cursor_text(lists.point_sort_key(r, sort)),
            lambda r: point_json(r, connectors[r.charge_point_id], online),
        )

    @inlineCallbacks
    def points_csv(self, args: dict[str, str | None]) -> Generator[Deferred[Any], Any, bytes]:
        listing = point_listing(args, None)
        rows, connectors, online = yield self._points(listing, MAX_EXPORT + 1, MAX_EXPORT)
        bounded_export(rows)

        def write() -> bytes:
            return points_csv([point_json(r, connectors[r.charge_point_id], online) for r in rows])

        # Up to MAX_EXPORT rows: written off the reactor thread.
        text = yield deferToThread(write)
        return text

    @inlineCallbacks
    def sessions(
        self, args: dict[str, str | None], limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        listing = session_listing(args, cursor)
        rows = yield self._database.run(
            lists.list_sessions_page, listing.filters, listing.order, limit=limit + 1
        )
        sort = listing.order.sort
        return page(
            listing.kind,
            rows,
            limit,
            lambda r: cursor_text(lists.session_sort_key(r, sort)),
            session_row_json,
        )

    def sessions_csv(self, args: dict[str, str | None]) -> Deferred[bytes]:
        listing = session_listing(args, None)

        def export(conn: Any) -> bytes:
            rows = lists.list_sessions_page(
                conn, listing.filters, listing.order, limit=MAX_EXPORT + 1
            )
            return sessions_csv(bounded_export(rows))

        return self._database.run(export)
