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

from ocppd.measurands import MeterSample
from ocppd.store.tables import CHART_MEASURANDS, CHART_SAMPLE, meter_values

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
        CHART_SAMPLE,
    )
    partition = (mv.connector_id, mv.measurand)
    rank = sa.func.row_number().over(partition_by=partition, order_by=(mv.timestamp, mv.id))
    count = sa.func.count().over(partition_by=partition)
    # One pass over the period, by the chart samples' (charge_point_id,
    # timestamp) index (CHART_SAMPLE, the index's own condition): a
    # first query for the connectors, filtering on them after, made both
    # SQLite and PostgreSQL walk the charger's whole history instead (and a
    # dense_rank over the connectors cost PostgreSQL a sort of every row).
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
        .where(*within)
        .subquery()
    )
    r = ranked.c
    # Rank r ends a run when r * points // count steps up (integer division).
    query = (
        sa.select(r.connector_id, r.timestamp, r.measurand, r.value, r.unit)
        .where(((r.rank * points) // r.total) > (((r.rank - 1) * points) // r.total))
        .order_by(r.connector_id, r.timestamp, r.id)
        # Enough for the lowest MAX_CONNECTORS connectors whole, whatever the
        # charger reported: the rows come in connector order.
        .limit(MAX_CONNECTORS * len(CHART_MEASURANDS) * points)
    )
    history: dict[int, list[MeterSample]] = {}
    for row in conn.execute(query):
        if row.connector_id not in history and len(history) == MAX_CONNECTORS:
            break
        history.setdefault(row.connector_id, []).append(
            MeterSample(
                timestamp=row.timestamp, value=row.value, measurand=row.measurand, unit=row.unit
            )
        )
    return history
