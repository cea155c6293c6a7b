"""
A charger's meter history for its page's charts: each connector's total
energy register and active import power over a period, thinned in the
database to a bounded number of points per connector and measurand, so a
month of one-minute samples costs the page no more than an hour of them.
Connectors are never mixed: each has its own series (the charger's meters
are per connector; connector 0 is the charger's own).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd import measurands
from ocppd.measurands import MeterSample
from ocppd.store.tables import meter_values

#: The measurands a point's charts show.
CHART_MEASURANDS = (measurands.ENERGY_REGISTER, measurands.POWER_IMPORT)
#: Connectors charted at most (the lowest ids): a charger may report any id.
MAX_CONNECTORS = 16


def point_meter_history(
    conn: Connection,
    charge_point_id: str,
    *,
    since: datetime,
    until: datetime,
    points: int,
) -> dict[int, list[MeterSample]]:
    """
    The phase-less :data:`CHART_MEASURANDS` samples of each connector of the
    charger timestamped in ``[since, until)``, in time order, at most
    ``points`` of each measurand per connector: evenly thinned by rank (the
    last sample of each of ``points`` equal runs, so the newest is always
    there), as ``transactions.session_meter_history`` thins a session's.
    """
    mv = meter_values.c
    within = (
        mv.charge_point_id == charge_point_id,
        mv.timestamp >= since,
        mv.timestamp < until,
        mv.phase == "",
        mv.measurand.in_(CHART_MEASURANDS),
    )
    connectors = [
        row.connector_id
        for row in conn.execute(
            sa.select(mv.connector_id)
            .where(*within)
            .group_by(mv.connector_id)
            .order_by(mv.connector_id)
            .limit(MAX_CONNECTORS)
        )
    ]
    if not connectors:
        return {}
    partition = (mv.connector_id, mv.measurand)
    rank = sa.func.row_number().over(partition_by=partition, order_by=(mv.timestamp, mv.id))
    count = sa.func.count().over(partition_by=partition)
    ranked = (
        sa.select(
            mv.connector_id,
            mv.timestamp,
            mv.measurand,
            mv.value,
            mv.unit,
            mv.id,
            rank.label("rank"),
            count.label("total"),
        )
        .where(*within, mv.connector_id.in_(connectors))
        .subquery()
    )
    r = ranked.c
    # Rank r ends a run when r * points // count steps up (integer division).
    query = (
        sa.select(r.connector_id, r.timestamp, r.measurand, r.value, r.unit)
        .where(((r.rank * points) // r.total) > (((r.rank - 1) * points) // r.total))
        .order_by(r.connector_id, r.timestamp, r.id)
    )
    history: dict[int, list[MeterSample]] = {connector: [] for connector in connectors}
    for row in conn.execute(query):
        history[row.connector_id].append(
            MeterSample(
                timestamp=row.timestamp, value=row.value, measurand=row.measurand, unit=row.unit
            )
        )
    return history
