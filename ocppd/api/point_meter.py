"""
``GET /api/cms/points/{chargePointId}/meter?from=&to=``: a charger's energy
register and power per connector over a period, for its page's charts to
start from before the live ``meter.values`` pushes continue them.

The period is bounded (:data:`MAX_PERIOD`; by default the last
:data:`DEFAULT_PERIOD`) and each connector's series thinned in the database
to :data:`CHART_POINTS` points per measurand (``ocppd.store.meter_history``);
readings are read by ``ocppd.measurands`` as everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred

from ocppd import measurands
from ocppd.api.errors import ApiError, bad_request
from ocppd.measurands import MeterSample
from ocppd.ocpp.handshake import CHARGE_POINT_ID
from ocppd.ocpp.schemas import EARLIEST_TIME, LATEST_TIME
from ocppd.store import chargers
from ocppd.store.database import Database
from ocppd.store.meter_history import point_meter_history
from ocppd.timeutil import format_iso, parse_iso

#: Longest period asked for at once.
MAX_PERIOD = timedelta(days=31)
#: The period when none is given: the day up to now.
DEFAULT_PERIOD = timedelta(hours=24)
#: Points of each measurand of each connector: about a chart's width.
CHART_POINTS = 300


def _parse_time(text: str | None, name: str) -> datetime | None:
    if text is None:
        return None
    try:
        at = parse_iso(text)
    except (ValueError, OverflowError):
        raise bad_request("an ISO-8601 time", field=name) from None
    # Far from datetime's limits, so the period's arithmetic cannot overflow.
    if not EARLIEST_TIME <= at < LATEST_TIME:
        raise bad_request("a time from 1900 to 8999", field=name)
    return at


def meter_period(
    from_text: str | None, to_text: str | None, now: datetime
) -> tuple[datetime, datetime]:
    """``[from, to)`` of a request, or a 400: at most :data:`MAX_PERIOD` long."""
    until = _parse_time(to_text, "to") or now
    since = _parse_time(from_text, "from") or until - DEFAULT_PERIOD
    if since >= until:
        raise bad_request("must be before to", field="from")
    if until - since > MAX_PERIOD:
        raise bad_request(f"at most {MAX_PERIOD.days} days before to", field="from")
    return since, until


def series_json(samples: list[MeterSample]) -> list[dict[str, Any]]:
    """One connector's samples as chart points, one per timestamp (null where none)."""
    points: dict[str, dict[str, Any]] = {}
    for sample in samples:
        at = format_iso(sample.timestamp)
        point = points.setdefault(at, {"at": at, "energyWh": None, "powerW": None})
        if sample.measurand == measurands.ENERGY_REGISTER and sample.value_wh is not None:
            point["energyWh"] = sample.value_wh
        elif sample.measurand == measurands.POWER_IMPORT and sample.value_w is not None:
            point["powerW"] = sample.value_w
    return list(points.values())


def point_meter_tx(
    conn: Connection, charge_point_id: str, since: datetime, until: datetime
) -> dict[str, Any]:
    """The body of the route, or a 404 for a charger that does not exist."""
    if (
        not CHARGE_POINT_ID.fullmatch(charge_point_id)
        or chargers.get_charge_point(conn, charge_point_id) is None
    ):
        raise ApiError(404, "not_found", f"no charge point {charge_point_id!r}")
    history = point_meter_history(
        conn, charge_point_id, since=since, until=until, points=CHART_POINTS
    )
    return {
        "chargePointId": charge_point_id,
        "from": format_iso(since),
        "to": format_iso(until),
        "connectors": [
            {"connectorId": connector, "points": series_json(samples)}
            for connector, samples in history.items()
        ],
    }


class PointMeter:
    """The route's work: the period checked on the reactor, the query in a thread."""

    def __init__(
        self, database: Database, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._database = database
        self._now = now

    def history(
        self, charge_point_id: str, from_text: str | None, to_text: str | None
    ) -> Deferred[dict[str, Any]]:
        since, until = meter_period(from_text, to_text, self._now())
        return self._database.run(point_meter_tx, charge_point_id, since, until)
