"""
Reports over time for operators: sessions, energy and revenue per UTC day,
week or month; utilisation per station; faults and offline time per charger.

Aggregated in SQL on both engines; the few expressions that differ (a time's
bucket, seconds between two times, the larger or smaller of two times) are
built per dialect here. Times are stored as naive UTC (``types.py``), so
every bucket is a UTC one: a day from 00:00 UTC, a week from Monday 00:00
UTC (ISO weeks), a month from the 1st at 00:00 UTC.

What is approximated (docs/api.md, "Reports"):

- A session counts in the bucket of its start, with all its energy and cost.
- Revenue is what sessions were billed (``cost``), per currency; a session
  held for review counts once decided.
- Faults are the StatusNotification frames saying Faulted in the message log,
  which keeps ``[store] keep_message_log_days``.
- Offline time: the span (from the charger's creation, if later) less the
  union of its connections in the history (``charger_connections``), so
  overlapping sockets of a quick reconnect count once. A connection with no
  disconnect stored counts to the span's end while it is the charger's
  current one, else to its next connection's start (its node died and the
  sweep's disconnect never came) or the charger's last sign of life. Time
  before the history began (the upgrade to it) counts as offline.
- Outages: the stretches of offline time within the span (one before the
  first connection, between two, after the last), a whole span offline one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from ocppd.store.messages import _log_cutoff
from ocppd.store.tables import (
    charge_points,
    charger_connections,
    connectors,
    message_log,
    stations,
    transactions,
)
from ocppd.store.types import UTCDateTime

PERIODS = ("day", "week", "month")


def bucket_start(dialect: str, period: str, column: Any) -> ColumnElement[str]:
    """The UTC start of ``column``'s bucket as ``YYYY-MM-DD`` text, on either engine."""
    if period not in PERIODS:
        raise ValueError(f"period {period!r} is not one of {PERIODS}")
    if dialect == "postgresql":
        return sa.func.to_char(sa.func.date_trunc(period, column), "YYYY-MM-DD")
    if period == "day":
        return sa.func.strftime("%Y-%m-%d", column)
    if period == "month":
        return sa.func.strftime("%Y-%m-01", column)
    # Back six days, then forward to the next Monday (or stay on one): the Monday on or before.
    return sa.func.date(column, "-6 days", "weekday 1")


def _seconds_between(dialect: str, start: Any, end: Any) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return sa.func.extract("epoch", end - start)
    return (sa.func.julianday(end) - sa.func.julianday(start)) * 86400.0


def _later(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    # SQLite's many-argument max() is its GREATEST (on ISO text, which sorts as time).
    return sa.func.greatest(a, b) if dialect == "postgresql" else sa.func.max(a, b)


def _earlier(dialect: str, a: Any, b: Any) -> ColumnElement[Any]:
    return sa.func.least(a, b) if dialect == "postgresql" else sa.func.min(a, b)


def _time(value: datetime, name: str) -> Any:
    return sa.bindparam(name, value, type_=UTCDateTime())


@attrs.frozen
class BucketRow:
    """One bucket's sessions of one currency (None: not billed)."""

    start: str
    currency: str | None
    sessions: int
    energy_wh: int
    revenue: int


def session_buckets(
    conn: Connection, period: str, start: datetime, end: datetime
) -> list[BucketRow]:
    """
    Sessions started in ``[start, end)`` per bucket and currency: how many,
    their energy (a running session's so far) and what they were billed.
    """
    t = transactions.c
    bucket = bucket_start(conn.dialect.name, period, t.started_at).label("bucket")
    energy = sa.func.coalesce(t.energy_wh, t.last_meter_wh - t.meter_start_wh)
    query = (
        sa.select(
            bucket,
            t.currency,
            sa.func.count().label("sessions"),
            sa.func.coalesce(sa.func.sum(energy), 0).label("energy"),
            sa.func.coalesce(sa.func.sum(t.cost), 0).label("revenue"),
        )
        .where(
            t.confirmed,
            t.started_at >= _time(start, "start"),
            t.started_at < _time(end, "end"),
        )
        .group_by(bucket, t.currency)
        .order_by(bucket, t.currency)
    )
    return [
        BucketRow(
            start=row.bucket,
            currency=row.currency,
            sessions=int(row.sessions),
            energy_wh=int(row.energy),
            revenue=int(row.revenue),
        )
        for row in conn.execute(query)
    ]


@attrs.frozen
class StationUse:
    """A station's connectors and the seconds its sessions ran within a span."""

    station_id: int | None
    name: str | None
    connectors: int
    busy_seconds: float


def station_use(conn: Connection, start: datetime, end: datetime) -> list[StationUse]:
    """
    Per station (None: chargers in none), its connectors (connector 0, the
    charger itself, excluded) and the seconds of sessions within
    ``[start, end)``, a running one counted up to ``end``.
    """
    dialect = conn.dialect.name
    t, cp = transactions.c, charge_points.c
    lower, upper = _time(start, "start"), _time(end, "end")
    session_from = _later(dialect, t.started_at, lower)
    session_to = _earlier(dialect, sa.func.coalesce(t.stopped_at, upper), upper)
    busy = (
        sa.select(
            cp.station_id,
            sa.func.sum(_seconds_between(dialect, session_from, session_to)).label("seconds"),
        )
        .select_from(transactions.join(charge_points, cp.charge_point_id == t.charge_point_id))
        .where(
            t.confirmed,
            t.started_at < upper,
            sa.or_(t.stopped_at.is_(None), t.stopped_at > lower),
        )
        .group_by(cp.station_id)
    )
    seconds = {row.station_id: float(row.seconds or 0) for row in conn.execute(busy)}
    counted = (
        sa.select(cp.station_id, sa.func.count().label("connectors"))
        .select_from(
            connectors.join(charge_points, cp.charge_point_id == connectors.c.charge_point_id)
        )
        .where(connectors.c.connector_id > 0)
        .group_by(cp.station_id)
    )
    counts = {row.station_id: int(row.connectors) for row in conn.execute(counted)}
    names = {
        row.id: row.name
        for row in conn.execute(sa.select(stations.c.id, stations.c.name).order_by(stations.c.id))
    }
    found = [
        StationUse(key, name, counts.get(key, 0), max(0.0, seconds.get(key, 0.0)))
        for key, name in names.items()
    ]
    if None in seconds or None in counts:
        found.append(StationUse(None, None, counts.get(None, 0), max(0.0, seconds.get(None, 0.0))))
    return found


@attrs.frozen
class ChargerHealth:
    """A charger's faults reported within a span, and what the store says of it now."""

    charge_point_id: str
    station_id: int | None
    faults: int
    last_fault_at: datetime | None
    boots: int
    online: bool
    last_seen_at: datetime | None
    faulted_now: int
    #: Seconds within the span (since its creation, if later) with no connection.
    offline_seconds: float = 0.0
    #: Stretches of offline time within the span.
    outages: int = 0


def charger_health(conn: Connection, start: datetime, end: datetime) -> list[ChargerHealth]:
    """
    Every charger: its StatusNotification frames saying Faulted and its
    BootNotification frames logged in ``[start, end)``, whether the store
    has it online, when it was last seen, and how many connectors are
    Faulted now.
    """
    log = message_log.c
    query = sa.select(
        log.charge_point_id,
        log.action,
        sa.func.count().label("frames"),
        sa.func.max(log.created_at).label("last"),
    ).where(
        log.direction == "in",
        log.message_type == "CALL",
        sa.or_(
            sa.and_(
                log.action == "StatusNotification",
                log.payload["status"].as_string() == "Faulted",
            ),
            log.action == "BootNotification",
        ),
        log.created_at >= _time(start, "start"),
        log.created_at < _time(end, "end"),
    )
    # The log has no index on its time: bound the scan to the ids of the span
    # (found on the primary key, as the pruning does).
    first = _log_cutoff(conn, start)
    if first is not None:
        query = query.where(log.id >= first)
    counts: dict[str, dict[str, tuple[int, datetime | None]]] = {}
    for row in conn.execute(query.group_by(log.charge_point_id, log.action)):
        counts.setdefault(row.charge_point_id, {})[row.action] = (int(row.frames), row.last)
    faulted = {
        row.charge_point_id: int(row.n)
        for row in conn.execute(
            sa.select(connectors.c.charge_point_id, sa.func.count().label("n"))
            .where(connectors.c.status == "Faulted", connectors.c.connector_id > 0)
            .group_by(connectors.c.charge_point_id)
        )
    }
    connected = charger_connected(conn, start, end)
    cp = charge_points.c
    chargers = conn.execute(
        sa.select(
            cp.charge_point_id, cp.station_id, cp.online, cp.last_seen_at, cp.created_at
        ).order_by(cp.charge_point_id)
    )
    found = []
    for row in chargers:
        span = max(0.0, (end - max(start, row.created_at)).total_seconds())
        covered = connected.get(row.charge_point_id)
        if covered is None:
            offline, outages = span, int(span > 0)
        else:
            # To the millisecond: SQLite's julianday arithmetic is off by microseconds.
            offline = round(max(0.0, span - covered.seconds), 3)
            outages = covered.islands + 1 - covered.from_start - covered.to_end
        frames = counts.get(row.charge_point_id, {})
        faults, last_fault = frames.get("StatusNotification", (0, None))
        found.append(
            ChargerHealth(
                charge_point_id=row.charge_point_id,
                station_id=row.station_id,
                faults=faults,
                last_fault_at=last_fault,
                boots=frames.get("BootNotification", (0, None))[0],
                online=bool(row.online),
                last_seen_at=row.last_seen_at,
                faulted_now=faulted.get(row.charge_point_id, 0),
                offline_seconds=offline,
                outages=outages,
            )
        )
    return found


@attrs.frozen
class Connected:
    """A charger's connected time within a span: the union of its connections."""

    seconds: float
    #: Separate stretches of connected time (overlapping connections are one).
    islands: int
    #: Whether the first stretch starts where the span does (no outage before it).
    from_start: bool
    #: Whether the last stretch reaches the span's end (no outage after it).
    to_end: bool


def charger_connected(conn: Connection, start: datetime, end: datetime) -> dict[str, Connected]:
    """
    Per charger with a connection in ``[start, end)``, the union of its
    connections clipped to the span (and to its creation), in one statement:
    ordered by start, each connection adds what passes the latest end of
    those before it (a window's running maximum), so overlaps count once.
    """
    dialect = conn.dialect.name
    c, cp = charger_connections.c, charge_points.c
    lower, upper = _time(start, "start"), _time(end, "end")
    later_one = charger_connections.alias("later_one")
    next_start = (
        sa.select(sa.func.min(later_one.c.connected_at))
        .where(
            later_one.c.charge_point_id == c.charge_point_id,
            later_one.c.connected_at > c.connected_at,
        )
        .scalar_subquery()
    )
    # A connection with no disconnect stored: open to the span's end while the
    # charger's current one, else until the next one began or it was last seen.
    open_until = sa.case(
        (sa.and_(cp.online.is_(True), cp.connection_id == c.connection_id), upper),
        else_=sa.func.coalesce(
            next_start,
            _later(dialect, sa.func.coalesce(cp.last_seen_at, c.connected_at), c.connected_at),
        ),
    )
    # Connections that ended after the span began, or did not end. SQLite
    # scans every row for the OR: there they are found on the index of their
    # end, one search each (a week of a year's history: 366 -> 72 ms,
    # bench/connection_report.py); PostgreSQL's plan for the OR was faster.
    overlaps: sa.ColumnElement[bool]
    if dialect == "sqlite":
        ended = charger_connections.alias("ended")
        overlaps = c.id.in_(
            sa.union_all(
                sa.select(ended.c.id).where(ended.c.disconnected_at > lower),
                sa.select(ended.c.id).where(ended.c.disconnected_at.is_(None)),
            )
        )
    else:
        overlaps = sa.or_(c.disconnected_at.is_(None), c.disconnected_at > lower)
    floor = _later(dialect, lower, cp.created_at)
    clipped = (
        sa.select(
            c.charge_point_id.label("cp"),
            c.id.label("id"),
            floor.label("floor"),
            _later(dialect, c.connected_at, floor).label("s"),
            _earlier(dialect, sa.func.coalesce(c.disconnected_at, open_until), upper).label("e"),
        )
        .select_from(
            charger_connections.join(charge_points, cp.charge_point_id == c.charge_point_id)
        )
        .where(overlaps, c.connected_at < upper)
        .subquery("clipped")
    )
    k = clipped.c
    ranked = (
        sa.select(
            k.cp,
            k.floor,
            k.s,
            k.e,
            sa.func.max(k.e)
            .over(partition_by=k.cp, order_by=(k.s, k.id), rows=(None, -1))
            .label("before"),
        )
        .where(k.e > k.s)
        .subquery("ranked")
    )
    r = ranked.c
    starts_stretch = sa.or_(r.before.is_(None), r.before < r.s)
    query = sa.select(
        r.cp,
        sa.func.sum(
            sa.case(
                (starts_stretch, _seconds_between(dialect, r.s, r.e)),
                (r.before < r.e, _seconds_between(dialect, r.before, r.e)),
                else_=0,
            )
        ).label("seconds"),
        sa.func.sum(sa.case((starts_stretch, 1), else_=0)).label("islands"),
        sa.func.max(sa.case((r.s <= r.floor, 1), else_=0)).label("from_start"),
        sa.func.max(sa.case((r.e >= upper, 1), else_=0)).label("to_end"),
    ).group_by(r.cp)
    return {
        row.cp: Connected(
            seconds=max(0.0, float(row.seconds or 0)),
            islands=int(row.islands),
            from_start=bool(row.from_start),
            to_end=bool(row.to_end),
        )
        for row in conn.execute(query)
    }
