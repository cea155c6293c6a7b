"""The operator dashboard's figures, each one aggregate query."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import TransactionRecord, all_records
from ocppd.store.tables import charge_points, stations, transactions

_tx = transactions.c
_cp = charge_points.c


def day_and_month_start(now: datetime) -> tuple[datetime, datetime]:
    """Midnight today and the first of this month, UTC (operators' reports are UTC)."""
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day, day.replace(day=1)


@attrs.frozen
class Fleet:
    """Every charger (id, station, the store's online flag) and the number of stations."""

    chargers: list[tuple[str, int | None, bool]]
    station_total: int

    @property
    def charge_point_ids(self) -> list[str]:
        return [charge_point_id for charge_point_id, _, _ in self.chargers]

    def counts(self, online: Callable[[str, bool], bool]) -> dict[str, dict[str, int]]:
        """
        ``stations`` and ``chargers`` as ``{"total", "online", "offline"}``;
        ``online(charge_point_id, stored_flag)`` says whether one is online
        (presence: ``ocppd.api.online.Online.of``). A station is online
        while any of its chargers is.
        """
        total = len(self.chargers)
        up = [(cp, station) for cp, station, stored in self.chargers if online(cp, stored)]
        stations_up = len({station for _, station in up if station is not None})
        return {
            "stations": {
                "total": self.station_total,
                "online": stations_up,
                "offline": self.station_total - stations_up,
            },
            "chargers": {"total": total, "online": len(up), "offline": total - len(up)},
        }


def fleet(conn: Connection) -> Fleet:
    """
    The chargers whose online states the dashboard counts. Read rather than
    counted here: the counts come from presence (``docs/presence.md``), so
    they are right as soon as a charger connects or disconnects, not once
    the processor has caught up with ``charge_points.online``.
    """
    chargers = [
        (row.charge_point_id, row.station_id, bool(row.online))
        for row in conn.execute(
            sa.select(_cp.charge_point_id, _cp.station_id, _cp.online).order_by(_cp.charge_point_id)
        )
    ]
    station_total = conn.execute(sa.select(sa.func.count()).select_from(stations)).scalar_one()
    return Fleet(chargers, station_total)


def _energy_and_revenue(conn: Connection, since: datetime) -> tuple[int, dict[str, int]]:
    """Energy and revenue of the sessions that stopped since ``since`` (what was billed)."""
    stopped = _tx.stopped_at >= since
    energy = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(_tx.energy_wh), 0)).where(stopped)
    ).scalar_one()
    revenue = {
        row.currency: int(row.total)
        for row in conn.execute(
            sa.select(_tx.currency, sa.func.sum(_tx.cost).label("total"))
            .where(stopped, _tx.cost.is_not(None), _tx.currency.is_not(None))
            .group_by(_tx.currency)
        )
    }
    return int(energy), revenue


def dashboard(conn: Connection, *, now: datetime, recent: int = 10) -> dict[str, Any]:
    """
    The figures of ``GET /api/cms/dashboard``, sessions as records and the
    chargers as a ``Fleet`` (the caller renders them, online as presence says).
    """
    day, month = day_and_month_start(now)
    energy_today, revenue_today = _energy_and_revenue(conn, day)
    energy_month, revenue_month = _energy_and_revenue(conn, month)
    active = conn.execute(
        sa.select(sa.func.count())
        .select_from(transactions)
        .where(_tx.status == "active", _tx.confirmed.is_(sa.true()))
    ).scalar_one()
    recent_sessions = all_records(
        conn,
        TransactionRecord,
        sa.select(transactions)
        .where(_tx.confirmed.is_(sa.true()))
        .order_by(_tx.id.desc())
        .limit(recent),
    )
    return {
        "fleet": fleet(conn),
        "activeSessions": active,
        "energyWh": {"today": energy_today, "month": energy_month},
        "revenue": {"today": revenue_today, "month": revenue_month},
        "recentSessions": recent_sessions,
        "since": {"today": day, "month": month},
    }
