"""
Reports for operators (admin), under ``/api/cms/reports/``:

- ``sessions``: sessions, energy (Wh) and revenue (minor units, per
  currency) per UTC day, week (from Monday) or month, every bucket of the
  span listed, empty ones with zeros;
- ``utilisation``: per station, the share of its connectors' time with a
  session running;
- ``faults``: per charger, the Faulted status notifications and boots
  logged, its offline time and outages within the span (from the connection
  history: see ocppd.store.reports);
  the ``limit`` chargers in most trouble, with how many there are.

And a point's connection history, ``/api/cms/points/{id}/connections``:
its newest connections (node, times, duration, close code and reason).

The span is ``from`` to ``to`` (ISO-8601; ``to`` defaults to now, ``from``
to a default number of buckets before it), widened to whole buckets and
bounded to ``MAX_BUCKETS`` of them (utilisation and faults: ``MAX_DAYS``),
so no request reads more than a bounded stretch of history.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attrs
from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.api.errors import bad_request
from ocppd.api.online import OnlineView
from ocppd.api.pagination import DEFAULT_LIMIT
from ocppd.store import connections, reports
from ocppd.store.database import Database
from ocppd.timeutil import format_iso, parse_iso, utcnow

#: At most this many buckets in one answer (a year of days).
MAX_BUCKETS = 366
#: Buckets shown when ``from`` is not given.
DEFAULT_BUCKETS = {"day": 30, "week": 12, "month": 12}
#: Utilisation and faults: at most this span, 7 days when ``from`` is not given.
MAX_DAYS = 366
DEFAULT_DAYS = 7


def bucket_of(period: str, moment: datetime) -> date:
    """The UTC day on which ``moment``'s bucket starts."""
    day = moment.astimezone(UTC).date()
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def next_bucket(period: str, start: date) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start.replace(day=28) + timedelta(days=4)).replace(day=1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _time_arg(args: dict[str, str | None], name: str) -> datetime | None:
    text = args.get(name)
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise bad_request("an ISO-8601 time", field=name) from None


@attrs.frozen
class Buckets:
    """The buckets of a request: their start days, and the span they cover."""

    period: str
    starts: list[date]

    @property
    def start(self) -> datetime:
        return _midnight(self.starts[0])

    @property
    def end(self) -> datetime:
        return _midnight(next_bucket(self.period, self.starts[-1]))


def parse_buckets(args: dict[str, str | None], now: datetime) -> Buckets:
    """``period``, ``from`` and ``to`` as whole buckets; 400 naming a bad one."""
    period = args.get("period") or "day"
    if period not in reports.PERIODS:
        raise bad_request(f"one of {', '.join(reports.PERIODS)}", field="period")
    end = _time_arg(args, "to") or now
    last = bucket_of(period, end - timedelta(microseconds=1))
    first_arg = _time_arg(args, "from")
    if first_arg is None:
        first = last
        for _ in range(DEFAULT_BUCKETS[period] - 1):
            first = bucket_of(period, _midnight(first) - timedelta(days=1))
    else:
        first = bucket_of(period, first_arg)
    if first > last:
        raise bad_request("before to", field="from")
    starts = [first]
    while starts[-1] < last:
        if len(starts) >= MAX_BUCKETS:
            raise bad_request(f"at most {MAX_BUCKETS} {period}s before to", field="from")
        starts.append(next_bucket(period, starts[-1]))
    return Buckets(period, starts)


def parse_span(args: dict[str, str | None], now: datetime) -> tuple[datetime, datetime]:
    """``from`` and ``to`` of utilisation and faults; ``to`` no later than now."""
    end = min(_time_arg(args, "to") or now, now)
    start = _time_arg(args, "from") or end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise bad_request("before to (and before now)", field="from")
    if end - start > timedelta(days=MAX_DAYS):
        raise bad_request(f"at most {MAX_DAYS} days before to", field="from")
    return start, end


def sessions_json(buckets: Buckets, rows: list[reports.BucketRow]) -> dict[str, Any]:
    by_start: dict[str, dict[str, Any]] = {
        day.isoformat(): {
            "start": format_iso(_midnight(day)),
            "sessions": 0,
            "energyWh": 0,
            "revenue": {},
        }
        for day in buckets.starts
    }
    currencies: set[str] = set()
    for row in rows:
        bucket = by_start[row.start]
        bucket["sessions"] += row.sessions
        bucket["energyWh"] += row.energy_wh
        if row.currency is not None:
            currencies.add(row.currency)
            bucket["revenue"][row.currency] = row.revenue
    return {
        "period": buckets.period,
        "from": format_iso(buckets.start),
        "to": format_iso(buckets.end),
        "currencies": sorted(currencies),
        "buckets": list(by_start.values()),
        "totals": {
            "sessions": sum(b["sessions"] for b in by_start.values()),
            "energyWh": sum(b["energyWh"] for b in by_start.values()),
            "revenue": {
                c: sum(b["revenue"].get(c, 0) for b in by_start.values())
                for c in sorted(currencies)
            },
        },
    }


def utilisation_json(
    start: datetime, end: datetime, found: list[reports.StationUse]
) -> dict[str, Any]:
    span = (end - start).total_seconds()
    items = []
    for use in found:
        capacity = use.connectors * span
        # Sessions overlapping on one connector (a stale one) could pass 1.
        share = None if capacity <= 0 else min(1.0, use.busy_seconds / capacity)
        items.append(
            {
                "stationId": use.station_id,
                "name": use.name,
                "connectors": use.connectors,
                "busySeconds": round(use.busy_seconds),
                "utilisation": None if share is None else round(share, 4),
            }
        )
    return {"from": format_iso(start), "to": format_iso(end), "items": items}


def faults_json(
    start: datetime,
    end: datetime,
    found: list[reports.ChargerHealth],
    online: Callable[[str, bool], bool],
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    items: list[tuple[tuple[int, int, int, str], dict[str, Any]]] = []
    for charger in found:
        is_online = online(charger.charge_point_id, charger.online)
        offline_seconds = round(charger.offline_seconds)
        # The chargers in most trouble first, so a large network's report stays short.
        trouble = (-charger.faults, -charger.faulted_now, -offline_seconds, charger.charge_point_id)
        items.append(
            (
                trouble,
                {
                    "chargePointId": charger.charge_point_id,
                    "stationId": charger.station_id,
                    "faults": charger.faults,
                    "lastFaultAt": None
                    if charger.last_fault_at is None
                    else format_iso(charger.last_fault_at),
                    "boots": charger.boots,
                    "faultedConnectors": charger.faulted_now,
                    "online": is_online,
                    "lastSeenAt": None
                    if charger.last_seen_at is None
                    else format_iso(charger.last_seen_at),
                    "offlineSeconds": offline_seconds,
                    "outages": charger.outages,
                },
            )
        )
    items.sort(key=lambda item: item[0])
    return {
        "from": format_iso(start),
        "to": format_iso(end),
        "chargers": len(items),
        "items": [item for _, item in items[:limit]],
    }


class Reports:
    """The reports' answers; ``now`` is the clock's (a test's fixed time)."""

    def __init__(
        self,
        database: Database,
        online: OnlineView,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._database = database
        self._online = online
        self._now = now

    @inlineCallbacks
    def sessions(
        self, args: dict[str, str | None]
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        buckets = parse_buckets(args, self._now())
        rows = yield self._database.run(
            reports.session_buckets, buckets.period, buckets.start, buckets.end
        )
        return sessions_json(buckets, rows)

    @inlineCallbacks
    def utilisation(
        self, args: dict[str, str | None]
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        start, end = parse_span(args, self._now())
        found = yield self._database.run(reports.station_use, start, end)
        return utilisation_json(start, end, found)

    @inlineCallbacks
    def faults(
        self, args: dict[str, str | None], limit: int = DEFAULT_LIMIT
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        start, end = parse_span(args, self._now())
        found = yield self._database.run(reports.charger_health, start, end)
        online = yield self._online.lookup(c.charge_point_id for c in found)
        return faults_json(start, end, found, online.of, limit)

    @inlineCallbacks
    def connections(self, charge_point_id: str) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """A point's newest connections (``connections.RECENT_CONNECTIONS``)."""
        found = yield self._database.run(connections.recent_connections, charge_point_id)
        return {"items": [connection_json(c) for c in found]}


def connection_json(record: connections.ConnectionRecord) -> dict[str, Any]:
    """One connection of a point's history; its duration once it ended."""
    ended = record.disconnected_at
    return {
        "connectionId": record.connection_id,
        "node": record.node,
        "connectedAt": format_iso(record.connected_at),
        "disconnectedAt": None if ended is None else format_iso(ended),
        "durationSeconds": None
        if ended is None
        else max(0, round((ended - record.connected_at).total_seconds())),
        "closeCode": record.close_code,
        "closeReason": record.close_reason,
    }
