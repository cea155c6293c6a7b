"""
The processor's part for OCPP traffic as such: the message log (each frame
of an ``ocpp.*`` envelope, as ``ocppd.store.messages`` keeps it) and a
charger's ``last_seen_at``. Both are appends deferred to the batch's end.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ocppd.bus.envelope import Envelope
from ocppd.consumers.base import DeferredWrites
from ocppd.store import chargers, messages
from ocppd.timeutil import parse_iso

#: Seconds ``last_seen_at`` may lag: a charger's every message need not rewrite its row.
LAST_SEEN_RESOLUTION = 30.0

#: An envelope's frames: (id suffix, direction, message type, body, time field).
Frame = tuple[str, str, str, Any, str]


#: ``parse_iso`` of the few times a batch repeats: a MeterValues reads its
#: ``receivedAt`` four times (two log rows, last-seen, the session's meter).
_parse_time = functools.lru_cache(maxsize=256)(parse_iso)


def at(envelope: Envelope, field: str) -> datetime:
    """The time in the payload's ``field``, else the envelope's."""
    text = envelope.payload.get(field) or envelope.time
    # Only text is cached (a hostile payload may put anything there).
    return _parse_time(text) if type(text) is str else parse_iso(text)


def received_at(envelope: Envelope) -> datetime:
    """When the node received what ``envelope`` carries."""
    return at(envelope, "receivedAt")


def _answer(payload: dict[str, Any], suffix: str, direction: str, at_field: str) -> Frame:
    if "error" in payload:
        return (suffix, direction, "CALLERROR", payload["error"], at_field)
    return (suffix, direction, "CALLRESULT", payload.get("response"), at_field)


def frames(direction: str, payload: dict[str, Any]) -> list[Frame] | None:
    """The frames an envelope of ``direction`` logs; None for a direction this does not know."""
    if direction == "in":
        return [
            ("call", "in", "CALL", payload["request"], "receivedAt"),
            _answer(payload, "answer", "out", "receivedAt"),
        ]
    if direction == "out":
        return [("call", "out", "CALL", payload["request"], "sentAt")]
    if direction == "reply":
        return [_answer(payload, "reply", "in", "receivedAt")]
    if direction == "rejected":
        return [
            ("call", "in", "CALL", {"raw": payload["raw"]}, "receivedAt"),
            _answer(payload, "answer", "out", "receivedAt"),
        ]
    return None


def log_frames(
    envelope: Envelope, charge_point_id: str, logged: list[Frame], writes: DeferredWrites
) -> None:
    """Defer the message-log rows of ``logged``, each keyed by the envelope's id and its suffix."""
    payload = envelope.payload
    action = payload.get("action")
    unique_id = payload.get("uniqueId")
    writes.defer_all(
        messages.append_log_values,
        [
            messages.log_values(
                f"{envelope.id}:{suffix}",
                charge_point_id,
                direction,
                message_type,
                action,
                unique_id,
                body,
                at(envelope, at_field),
            )
            for suffix, direction, message_type, body, at_field in logged
        ],
    )


class LastSeen:
    """
    Writes a charger's ``last_seen_at`` when it moved by ``LAST_SEEN_RESOLUTION``
    since this processor last wrote it.
    """

    def __init__(self) -> None:
        # Written from database threads; single dict operations are atomic.
        self._written: dict[str, datetime] = {}

    def seen(self, charge_point_id: str, when: datetime, writes: DeferredWrites) -> None:
        written = self._written.get(charge_point_id)
        if written is None or (when - written).total_seconds() >= LAST_SEEN_RESOLUTION:
            writes.defer(self._touch, (charge_point_id, when))

    def _touch(self, conn: Connection, seen: list[tuple[str, datetime]]) -> None:
        chargers.touch_last_seen_many(conn, seen)
        # Noted before the commit: a rollback leaves last_seen_at up to one
        # more resolution behind, never ahead.
        for charge_point_id, when in seen:
            written = self._written.get(charge_point_id)
            if written is None or written < when:
                self._written[charge_point_id] = when
