"""
The outbox: domain events written in the transaction of the change they
describe, published by ``ocppd.bus.relay`` once committed (docs/bus.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.tables import outbox

_ob = outbox.c


@attrs.frozen
class OutboxRow:
    """One staged event: the routing key and the envelope's JSON."""

    id: int
    routing_key: str
    envelope: str


def add_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Stage ``rows`` (``node``, ``routing_key``, ``envelope``, ``created_at``) in one statement."""
    if rows:
        conn.execute(outbox.insert(), rows)


def pending_events(
    conn: Connection, *, node: str, adopt_before: datetime, limit: int
) -> list[OutboxRow]:
    """
    Up to ``limit`` staged events in id order: this node's, and those of any
    node staged before ``adopt_before`` (a node gone for good leaves its rows
    to the others; one still alive may publish them too, which consumers,
    deduplicating on the envelope id, absorb).
    """
    rows = conn.execute(
        sa.select(_ob.id, _ob.routing_key, _ob.envelope)
        .where(sa.or_(_ob.node == node, _ob.created_at < adopt_before))
        .order_by(_ob.id)
        .limit(limit)
    )
    return [OutboxRow(row.id, row.routing_key, row.envelope) for row in rows]


def remove_events(conn: Connection, ids: list[int]) -> int:
    """Forget events the bus has taken; how many were still there."""
    if not ids:
        return 0
    return int(conn.execute(outbox.delete().where(_ob.id.in_(ids))).rowcount)


def count_events(conn: Connection) -> int:
    """Events staged and not yet published, of every node."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one())
