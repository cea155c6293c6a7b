"""The operator dashboard's figures, each one aggregate query."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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


def _online_counts(conn: Connection) -> dict[str, dict[str, int]]:
    total, online = conn.execute(
        sa.select(sa.func.count(), sa.func.count().filter(_cp.online.is_(True))).select_from(
            charge_points
        )
    ).one()
    station_total = conn.execute(sa.select(sa.func.count()).select_from(stations)).scalar_one()
    # A station is online while any of its chargers is.
    station_online = conn.execute(
        sa.select(sa.func.count(sa.distinct(_cp.station_id))).where(
            _cp.online.is_(True), _cp.station_id.is_not(None)
        )
    ).scalar_one()
    return {
        "stations": {
            "total": station_total,
            "online": station_online,
            "offline": station_total - station_online,
        },
        "chargers": {"total": total, "online": online, "offline": total - online},
    }


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
    """The figures of ``GET /api/cms/dashboard``, sessions as records (the caller renders them)."""
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
        **_online_counts(conn),
        "activeSessions": active,
        "energyWh": {"today": energy_today, "month": energy_month},
        "revenue": {"today": revenue_today, "month": revenue_month},
        "recentSessions": recent_sessions,
        "since": {"today": day, "month": month},
    }
