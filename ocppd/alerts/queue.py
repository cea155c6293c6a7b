"""
The notices waiting for delivery, in the store (``alert_notices``): staged in
the evaluation's transaction, one row per notice and channel, then claimed,
sent and settled by any node's ``ocppd.alerts.delivery.Deliveries``.

A claim is an UPDATE whose WHERE clause says the row is due and unclaimed:
when two nodes claim the same row at once, PostgreSQL re-checks it on the
row the first one wrote, so only one of them gets it back (SQLite serialises
writers). A node that dies while sending lets its claims run out; another
node then sends them (a notice is delivered at least once). The notices of
one alert go out in order on each channel: a resolve waits while its raise
is still being retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.alerts.notices import Alert, Notice
from ocppd.store.tables import alert_notices
from ocppd.timeutil import parse_iso

_n = alert_notices.c


@attrs.frozen
class Pending:
    """A notice claimed for one channel."""

    id: int
    channel: str
    notice: Notice
    #: Tries before this one.
    attempts: int


def stage(
    conn: Connection, notices: Iterable[Notice], channels: Iterable[str], now: datetime
) -> None:
    """One row per notice and channel, due now, in ``conn``'s transaction."""
    rows = [
        {
            "alert_id": notice.alert.id,
            "event": notice.event,
            "channel": channel,
            "alert": notice.alert.to_json(),
            "attempts": 0,
            "next_at": now,
            "claimed_until": None,
            "created_at": now,
        }
        for notice in notices
        for channel in channels
    ]
    if rows:
        conn.execute(sa.insert(alert_notices), rows)


def _alert(data: dict[str, Any]) -> Alert:
    def time(name: str) -> datetime | None:
        value = data.get(name)
        return None if value is None else parse_iso(value)

    raised_at = time("raisedAt")
    assert raised_at is not None
    return Alert(
        id=data["id"],
        key=data["key"],
        kind=data["kind"],
        subject=data["subject"],
        summary=data["summary"],
        data=dict(data.get("data") or {}),
        since=time("since"),
        raised_at=raised_at,
        node=data["node"],
        resolved_at=time("resolvedAt"),
    )


def _free(columns: Any, now: datetime) -> sa.ColumnElement[bool]:
    return sa.or_(columns.claimed_until.is_(None), columns.claimed_until < now)


def claim(conn: Connection, now: datetime, until: datetime, limit: int) -> list[Pending]:
    """Take up to ``limit`` due notices (oldest first) until ``until``."""
    # Aliases: a subquery of the table being updated would correlate to it.
    candidate, earlier = alert_notices.alias("candidate"), alert_notices.alias("earlier")
    c = candidate.c
    waiting_behind = (
        sa.select(earlier.c.id)
        .where(
            earlier.c.alert_id == c.alert_id,
            earlier.c.channel == c.channel,
            earlier.c.id < c.id,
        )
        .exists()
    )
    due = (
        sa.select(c.id)
        .where(c.next_at <= now, _free(c, now), ~waiting_behind)
        .order_by(c.id)
        .limit(limit)
        .scalar_subquery()
    )
    rows = conn.execute(
        sa.update(alert_notices)
        # Again on the row itself: a concurrent claim re-checks it (above).
        .where(_n.id.in_(due), _n.next_at <= now, _free(_n, now))
        .values(claimed_until=until)
        .returning(_n.id, _n.channel, _n.event, _n.alert, _n.attempts)
    ).all()
    return sorted(
        (
            Pending(row.id, row.channel, Notice(row.event, _alert(row.alert)), row.attempts)
            for row in rows
        ),
        key=lambda pending: pending.id,
    )


def delivered(conn: Connection, notice_id: int) -> None:
    """Sent (or given up): the row goes."""
    conn.execute(sa.delete(alert_notices).where(_n.id == notice_id))


def retry_at(conn: Connection, notice_id: int, attempts: int, next_at: datetime) -> None:
    """Failed ``attempts`` times: due again at ``next_at``, for any node."""
    conn.execute(
        sa.update(alert_notices)
        .where(_n.id == notice_id)
        .values(attempts=attempts, next_at=next_at, claimed_until=None)
    )


def release(conn: Connection, notice_ids: list[int]) -> None:
    """Claims given back unsent (the node stops): due at once for whoever comes next."""
    if notice_ids:
        conn.execute(
            sa.update(alert_notices).where(_n.id.in_(notice_ids)).values(claimed_until=None)
        )


def waiting(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(alert_notices)).scalar_one())
