"""
The alerts' I/O edge in the database: what the store says (an
``Observation``), the open alerts, and one evaluation's transaction, which
reads, decides (``rules``, pure) and writes the changes together.

Every list is bounded (``BOUND`` rows, oldest first): an installation with
thousands of chargers offline is told of the first ones, and the alerts of
a list that was cut stay open rather than being resolved for not being read.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.alerts import queue, rules
from ocppd.alerts.notices import RAISED, RESOLVED, Alert, Notice
from ocppd.alerts.rules import (
    Condition,
    FaultedConnector,
    Observation,
    OfflineCharger,
    OpenSession,
    QueueState,
    Rules,
)
from ocppd.bus.outbox import Outbox
from ocppd.status import journal_queues
from ocppd.store.sql import insert_new
from ocppd.store.tables import alerts, bus_journal, charge_points, connectors, outbox, transactions

#: Most rows each rule reads per evaluation.
BOUND = 500
#: Most open alerts the CMS lists.
LIST_BOUND = 500
#: The PostgreSQL advisory lock of an evaluation ("ocppalrt"): one at a time.
ADVISORY_LOCK = 0x6F637070616C7274

_cp = charge_points.c
_al = alerts.c


def _bounded(rows: Sequence[Any], kind: str, incomplete: set[str]) -> Sequence[Any]:
    if len(rows) > BOUND:
        incomplete.add(kind)
        return rows[:BOUND]
    return rows


def _offline(conn: Connection, before: datetime, incomplete: set[str]) -> list[OfflineCharger]:
    rows = conn.execute(
        sa.select(_cp.charge_point_id, _cp.last_seen_at)
        .where(
            _cp.online.is_(False),
            _cp.registration_status == "Accepted",
            _cp.last_seen_at.is_not(None),
            _cp.last_seen_at < before,
        )
        .order_by(_cp.last_seen_at)
        .limit(BOUND + 1)
    ).all()
    return [OfflineCharger(r[0], r[1]) for r in _bounded(rows, rules.OFFLINE, incomplete)]


def _faulted(conn: Connection, incomplete: set[str]) -> list[FaultedConnector]:
    c = connectors.c
    rows = conn.execute(
        sa.select(c.charge_point_id, c.connector_id, c.error_code, c.info, c.status_at)
        .where(c.status == "Faulted")
        .order_by(c.status_at)
        .limit(BOUND + 1)
    ).all()
    return [FaultedConnector(*r) for r in _bounded(rows, rules.FAULTED, incomplete)]


def _sessions(conn: Connection, before: datetime, incomplete: set[str]) -> list[OpenSession]:
    t = transactions.c
    rows = conn.execute(
        sa.select(t.id, t.charge_point_id, t.connector_id, t.started_at)
        .where(t.status == "active", t.confirmed.is_(sa.true()), t.started_at < before)
        .order_by(t.started_at)
        .limit(BOUND + 1)
    ).all()
    return [OpenSession(*r) for r in _bounded(rows, rules.SESSION, incomplete)]


def journal_states(conn: Connection, now: datetime) -> list[QueueState]:
    """Each node's embedded bus queues, as their journal holds them (``ocppd.status``)."""
    nodes = conn.scalars(sa.select(bus_journal.c.node).distinct().limit(BOUND)).all()
    return [
        QueueState(f"{node}/{queue}", state["dead"], state["lagSeconds"])
        for node in nodes
        for queue, state in journal_queues(conn, node, now).items()
    ]


def outbox_states(conn: Connection, now: datetime) -> list[QueueState]:
    """Each node's outbox: events committed and not yet published by its relay."""
    o = outbox.c
    rows = conn.execute(
        sa.select(o.node, sa.func.min(o.created_at)).group_by(o.node).limit(BOUND)
    ).all()
    return [
        QueueState(f"{node}/outbox", None, round(max(0.0, (now - oldest).total_seconds()), 3))
        for node, oldest in rows
    ]


def observe(
    conn: Connection,
    rule_set: Rules,
    now: datetime,
    *,
    journal: bool,
    journaled: Iterable[QueueState] = (),
    broker: Iterable[QueueState] | None = (),
    local: Iterable[QueueState] = (),
) -> Observation:
    """
    What the store says by ``rule_set`` (a rule that is off reads nothing).
    ``journal``: read the embedded bus's queues from the store; ``journaled``:
    those queues as read by the caller from the journal file (on SQLite,
    ``ocppd.store.journal``); ``broker``:
    RabbitMQ's queues as read by the caller (None: it could not be read);
    ``local``: queues as this process sees them.
    """
    incomplete: set[str] = set()
    offline = (
        _offline(conn, now - rule_set.offline_after, incomplete)
        if rule_set.offline_after is not None
        else []
    )
    faulted = _faulted(conn, incomplete) if rule_set.faulted else []
    sessions = (
        _sessions(conn, now - rule_set.session_after, incomplete)
        if rule_set.session_after is not None
        else []
    )
    queues: list[QueueState] = []
    if rule_set.needs_queues:
        if journal:
            queues += journal_states(conn, now)
        queues += journaled
        queues += outbox_states(conn, now)
        queues += local
        if broker is None:
            incomplete |= {rules.DEAD_LETTERS, rules.LAG}
        else:
            queues += broker
    return Observation(
        offline=tuple(offline),
        faulted=tuple(faulted),
        sessions=tuple(sessions),
        queues=tuple(queues),
        incomplete=frozenset(incomplete),
    )


# --- the open alerts ---------------------------------------------------------------------


def _alert(row: Any, resolved_at: datetime | None = None) -> Alert:
    return Alert(
        id=row.id,
        key=row.key,
        kind=row.kind,
        subject=row.subject,
        summary=row.summary,
        data=dict(row.data or {}),
        since=row.since,
        raised_at=row.raised_at,
        node=row.node,
        resolved_at=resolved_at,
    )


def open_alerts(conn: Connection, limit: int = LIST_BOUND) -> list[Alert]:
    """The open alerts, newest first."""
    rows = conn.execute(
        sa.select(alerts).order_by(_al.raised_at.desc(), _al.key).limit(limit)
    ).all()
    return [_alert(row) for row in rows]


def _open(conn: Connection) -> dict[str, tuple[str, str]]:
    """The open alerts: key -> (kind, subject)."""
    rows = conn.execute(sa.select(_al.key, _al.kind, _al.subject))
    return {key: (kind, subject) for key, kind, subject in rows}


def raise_alert(conn: Connection, condition: Condition, now: datetime, node: str) -> Alert | None:
    """Open ``condition``'s alert; None if it is open already (another node raised it)."""
    alert = Alert(
        id=secrets.token_hex(16),
        key=condition.key,
        kind=condition.kind,
        subject=condition.subject[:200],
        summary=condition.summary[:500],
        data=condition.data,
        since=condition.since,
        raised_at=now,
        node=node[:64],
    )
    values = attrs.asdict(alert)
    del values["resolved_at"]
    return alert if insert_new(conn, alerts, values) is not None else None


def resolve_alert(conn: Connection, key: str, now: datetime) -> Alert | None:
    """Close the alert of ``key``; None if no longer open (another node resolved it)."""
    row = conn.execute(sa.delete(alerts).where(_al.key == key).returning(*alerts.c)).first()
    return None if row is None else _alert(row, resolved_at=now)


# --- one evaluation -----------------------------------------------------------------------


def _take_turn(conn: Connection) -> bool:
    """On PostgreSQL, whether this evaluation is the only one running (else it skips)."""
    if conn.dialect.name != "postgresql":
        return True  # SQLite: one node, and its writers are serialised anyway
    return bool(conn.execute(sa.select(sa.func.pg_try_advisory_xact_lock(ADVISORY_LOCK))).scalar())


def evaluate(
    conn: Connection,
    rule_set: Rules,
    now: datetime,
    *,
    node: str,
    journal: bool,
    broker: Iterable[QueueState] | None,
    journaled: Sequence[QueueState] = (),
    outbox_: Outbox | None = None,
    channels: tuple[str, ...] = (),
    local: Sequence[QueueState] = (),
) -> list[Notice] | None:
    """
    One evaluation, in ``conn``'s transaction: observe, decide, raise and
    resolve; the notices this transaction made (None: another node's
    evaluation was running, this one skipped). ``local``: what this node's
    own consumers hold (RabbitMQ's lag), alerted as ``node/queue``; another
    node's alerts of that kind are left to it. Each notice is staged for
    delivery on each of ``channels`` (``ocppd.alerts.queue``), and as a
    ``cms.alert.raised|resolved`` event for the CMS's live view.
    """
    if not _take_turn(conn):
        return None
    local_states = [attrs.evolve(q, name=f"{node}/{q.name}") for q in local]
    observation = observe(
        conn,
        rule_set,
        now,
        journal=journal,
        journaled=journaled,
        broker=broker,
        local=local_states,
    )
    holding = rules.conditions(rule_set, observation, now)
    open_now = _open(conn)
    elsewhere = rules.observed_elsewhere(open_now, node, (q.name for q in local))
    open_kinds = {key: kind for key, (kind, _) in open_now.items()}
    decided = rules.changes(open_kinds, holding, observation.incomplete, elsewhere)
    notices: list[Notice] = []
    for condition in decided.raised:
        raised = raise_alert(conn, condition, now, node)
        if raised is not None:
            notices.append(Notice(RAISED, raised))
    for key in decided.resolved:
        resolved = resolve_alert(conn, key, now)
        if resolved is not None:
            notices.append(Notice(RESOLVED, resolved))
    queue.stage(conn, notices, channels, now)
    if outbox_ is not None and notices:
        outbox_.stage_many(
            conn,
            [
                (
                    f"cms.alert.{n.event}",
                    {"kind": "alert", "verb": n.event, "id": n.alert.id, "data": n.alert.to_json()},
                    None,
                )
                for n in notices
            ],
        )
    return notices
