"""
The alert rules, pure: an ``Observation`` (what the store and the bus said at
one moment) and the ``Rules`` make the set of conditions that hold; with the
alerts open now, ``changes`` says what to raise and what to resolve.

A condition is known by its key (``charger_offline:CP-1``), which says what
it is about: the same condition seen again is the same alert, not a new one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from ocppd.timeutil import format_iso

OFFLINE = "charger_offline"
FAULTED = "connector_faulted"
SESSION = "session_long"
DEAD_LETTERS = "dead_letters"
LAG = "lag"
#: Every kind, as the store's CHECK constraint lists them.
KINDS = (OFFLINE, FAULTED, SESSION, DEAD_LETTERS, LAG)


@attrs.frozen
class Rules:
    """Which conditions are alerts, and from when; None (or False): the rule is off."""

    offline_after: timedelta | None = timedelta(minutes=15)
    faulted: bool = True
    session_after: timedelta | None = timedelta(hours=24)
    dead_letters: bool = True
    lag_after: float | None = 300.0

    @classmethod
    def from_config(cls, config: Any) -> Rules:
        """From ``[alerts]`` (``ocppd.config.AlertsConfig``): 0 turns a threshold rule off."""
        return cls(
            offline_after=timedelta(minutes=config.offline_minutes)
            if config.offline_minutes
            else None,
            faulted=config.faulted,
            session_after=timedelta(hours=config.session_hours) if config.session_hours else None,
            dead_letters=config.dead_letters,
            lag_after=float(config.lag_seconds) if config.lag_seconds else None,
        )

    @property
    def needs_queues(self) -> bool:
        """Whether any rule reads the queues (dead letters, lag)."""
        return self.dead_letters or self.lag_after is not None


# --- what the I/O edge observed -----------------------------------------------------


@attrs.frozen
class OfflineCharger:
    charge_point_id: str
    #: When it was last heard from (its disconnect, at the latest).
    last_seen_at: datetime


@attrs.frozen
class FaultedConnector:
    charge_point_id: str
    connector_id: int
    error_code: str
    info: str | None
    status_at: datetime


@attrs.frozen
class OpenSession:
    id: int
    charge_point_id: str
    connector_id: int
    started_at: datetime


@attrs.frozen
class QueueState:
    """A queue of the bus; None: not known (RabbitMQ does not tell a queue's lag)."""

    #: The queue, with its node for a node's own embedded bus (``n1/processor``).
    name: str
    dead: int | None
    lag_seconds: float | None


@attrs.frozen
class Observation:
    """What the store and the bus said at one moment, each list within its bound."""

    offline: tuple[OfflineCharger, ...] = ()
    faulted: tuple[FaultedConnector, ...] = ()
    sessions: tuple[OpenSession, ...] = ()
    queues: tuple[QueueState, ...] = ()
    #: Kinds whose list was cut at its bound or could not be read: what is
    #: missing from it is unknown, not cleared, so their open alerts stay open.
    incomplete: frozenset[str] = frozenset()


# --- conditions -----------------------------------------------------------------------


@attrs.frozen
class Condition:
    """A condition that holds: an alert to have open."""

    key: str
    kind: str
    subject: str
    summary: str
    data: dict[str, Any]
    since: datetime | None


def _minutes(delta: timedelta) -> int:
    return int(delta.total_seconds() // 60)


def _offline(rules: Rules, seen: Iterable[OfflineCharger], now: datetime) -> list[Condition]:
    if rules.offline_after is None:
        return []
    return [
        Condition(
            key=f"{OFFLINE}:{c.charge_point_id}",
            kind=OFFLINE,
            subject=c.charge_point_id,
            summary=f"Charger {c.charge_point_id} offline for {_minutes(now - c.last_seen_at)}"
            f" minutes (since {format_iso(c.last_seen_at)})",
            data={"chargePointId": c.charge_point_id, "lastSeenAt": format_iso(c.last_seen_at)},
            since=c.last_seen_at,
        )
        for c in seen
        if now - c.last_seen_at > rules.offline_after
    ]


def _faulted(rules: Rules, seen: Iterable[FaultedConnector]) -> list[Condition]:
    if not rules.faulted:
        return []
    return [
        Condition(
            key=f"{FAULTED}:{c.charge_point_id}/{c.connector_id}",
            kind=FAULTED,
            subject=c.charge_point_id,
            summary=f"Charger {c.charge_point_id} connector {c.connector_id} Faulted"
            f" ({c.error_code})",
            data={
                "chargePointId": c.charge_point_id,
                "connectorId": c.connector_id,
                "errorCode": c.error_code,
                "info": c.info,
                "statusAt": format_iso(c.status_at),
            },
            since=c.status_at,
        )
        for c in seen
    ]


def _sessions(rules: Rules, seen: Iterable[OpenSession], now: datetime) -> list[Condition]:
    if rules.session_after is None:
        return []
    return [
        Condition(
            key=f"{SESSION}:{s.id}",
            kind=SESSION,
            subject=s.charge_point_id,
            summary=f"Session {s.id} on {s.charge_point_id} connector {s.connector_id} open for"
            f" {int((now - s.started_at).total_seconds() // 3600)} hours",
            data={
                "sessionId": s.id,
                "chargePointId": s.charge_point_id,
                "connectorId": s.connector_id,
                "startedAt": format_iso(s.started_at),
            },
            since=s.started_at,
        )
        for s in seen
        if now - s.started_at > rules.session_after
    ]


def _queues(rules: Rules, seen: Iterable[QueueState]) -> list[Condition]:
    found: list[Condition] = []
    for q in seen:
        if rules.dead_letters and q.dead:
            found.append(
                Condition(
                    key=f"{DEAD_LETTERS}:{q.name}",
                    kind=DEAD_LETTERS,
                    subject=q.name,
                    summary=f"Queue {q.name} has dead letters",
                    data={"queue": q.name, "deadLetters": q.dead},
                    since=None,
                )
            )
        if rules.lag_after is not None and q.lag_seconds is not None:
            if q.lag_seconds > rules.lag_after:
                found.append(
                    Condition(
                        key=f"{LAG}:{q.name}",
                        kind=LAG,
                        subject=q.name,
                        summary=f"Queue {q.name} lags: its oldest message waits for more"
                        f" than {rules.lag_after:g} s",
                        data={"queue": q.name, "lagSeconds": q.lag_seconds},
                        since=None,
                    )
                )
    return found


def conditions(rules: Rules, observation: Observation, now: datetime) -> dict[str, Condition]:
    """The conditions that hold by ``rules``, by key."""
    found = [
        *_offline(rules, observation.offline, now),
        *_faulted(rules, observation.faulted),
        *_sessions(rules, observation.sessions, now),
        *_queues(rules, observation.queues),
    ]
    return {condition.key: condition for condition in found}


# --- what changes -----------------------------------------------------------------------


@attrs.frozen
class Changes:
    #: Conditions that hold and have no open alert.
    raised: tuple[Condition, ...]
    #: Keys of open alerts whose condition no longer holds.
    resolved: tuple[str, ...]


def observed_elsewhere(
    open_alerts: Mapping[str, tuple[str, str]], node: str, local_queues: Iterable[str]
) -> frozenset[str]:
    """
    Keys of the open alerts (key -> (kind, subject)) that only another node
    can clear: the lag of another node's consumers (``node/queue`` for a
    queue in ``local_queues``), which each node reads in its own process.
    """
    local = frozenset(local_queues)
    found = set()
    for key, (kind, subject) in open_alerts.items():
        owner, slash, queue = subject.partition("/")
        if kind == LAG and slash and queue in local and owner != node:
            found.add(key)
    return frozenset(found)


def changes(
    open_kinds: Mapping[str, str],
    holding: Mapping[str, Condition],
    incomplete: frozenset[str],
    elsewhere: frozenset[str] = frozenset(),
) -> Changes:
    """
    What to raise and resolve, given the open alerts (key -> kind) and the
    conditions that hold. An open alert of a kind whose observation was
    incomplete stays open: its condition may hold beyond what was read; so
    does one that only another node observes (``elsewhere``). A condition
    that holds while its alert is open is not raised again.
    """
    raised = tuple(c for key, c in holding.items() if key not in open_kinds)
    resolved = tuple(
        key
        for key, kind in open_kinds.items()
        if key not in holding and kind not in incomplete and key not in elsewhere
    )
    return Changes(raised=raised, resolved=resolved)
