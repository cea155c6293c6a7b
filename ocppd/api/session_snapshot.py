"""
A customer's session as its page shows it after a load or a reload: the
session, the tariff it runs under, its running figures (``live``, exactly as
the last ``session.updated`` push carried them) and its meter history,
thinned in the database to a bounded number of points. So a reload shows the
same numbers and the same chart as before it, and a session that has sent no
meter value yet shows 0 Wh and its tariff instead of nothing.

The running figures are derived once, by ``ocppd.representations.live_json``
(the processor's push uses it too); the readings by ``ocppd.measurands``.
"""

from __future__ import annotations

from typing import Any

import attrs
from sqlalchemy.engine import Connection

from ocppd import measurands
from ocppd.billing import Tariff
from ocppd.measurands import MeterSample
from ocppd.representations import live_json, price_json, session_json
from ocppd.store import tariffs, transactions
from ocppd.store.records import TariffRecord, TransactionRecord
from ocppd.timeutil import format_iso

#: Points of each measurand in a session's history: a chart's width of them.
HISTORY_POINTS = 300
#: A driver's running sessions the dashboard asks for at most (one per car, in practice).
MAX_RUNNING = 20


@attrs.frozen
class Snapshot:
    """A session as read in one database transaction."""

    session: TransactionRecord
    tariff: TariffRecord | None
    samples: list[MeterSample]

    def json(self, *, history: bool) -> dict[str, Any]:
        newest = measurands.newest(self.samples)
        live = None
        if self.session.status == "active":
            tariff = None if self.tariff is None else Tariff.from_record(self.tariff)
            at = self.session.last_meter_at or self.session.started_at
            live, _ = live_json(
                self.session,
                tariff,
                power_w=newest.power_w,
                soc_percent=newest.soc_percent,
                at=at,
            )
        body: dict[str, Any] = {
            "session": session_json(self.session),
            "tariff": price_json(self.tariff),
            "live": live,
        }
        if history:
            body["history"] = history_json(self.samples, self.session.meter_start_wh)
        return body


def history_json(samples: list[MeterSample], meter_start_wh: int) -> list[dict[str, Any]]:
    """
    The samples as chart points, one per timestamp: energy delivered since
    the start (Wh), power (W) and state of charge (%), each null when that
    timestamp has none (or not a number).
    """
    points: dict[str, dict[str, Any]] = {}
    for sample in samples:
        at = format_iso(sample.timestamp)
        point = points.setdefault(
            at, {"at": at, "energyWh": None, "powerW": None, "socPercent": None}
        )
        if sample.measurand == measurands.ENERGY_REGISTER and sample.value_wh is not None:
            point["energyWh"] = max(0, sample.value_wh - meter_start_wh)
        elif sample.measurand == measurands.POWER_IMPORT and sample.value_w is not None:
            point["powerW"] = sample.value_w
        elif sample.measurand == measurands.SOC:
            percent = measurands.soc_percent(sample.measurand, sample.unit, sample.value)
            if percent is not None:
                point["socPercent"] = percent
    return list(points.values())


def _snapshot(conn: Connection, session: TransactionRecord, *, history: bool) -> Snapshot:
    tariff = None if session.tariff_id is None else tariffs.get_tariff(conn, session.tariff_id)
    # The running figures need the newest power and SoC, which the thinned
    # history always holds (each measurand's newest sample ends its last run).
    points = HISTORY_POINTS if history else 1
    samples = (
        transactions.session_meter_history(conn, session, points=points)
        if history or session.status == "active"
        else []
    )
    return Snapshot(session, tariff, samples)


def session_snapshot_tx(conn: Connection, user_id: int, session_id: int) -> Snapshot | None:
    """The user's session ``session_id`` with its history, or None (not theirs, or none)."""
    session = transactions.get_transaction(conn, session_id)
    if session is None or session.user_id != user_id:
        return None
    return _snapshot(conn, session, history=True)


def running_sessions_tx(conn: Connection, user_id: int) -> list[Snapshot]:
    """The user's active sessions, newest first, without history."""
    found = transactions.list_sessions_page(
        conn, user_id=user_id, status="active", limit=MAX_RUNNING
    )
    return [_snapshot(conn, session, history=False) for session in found]
