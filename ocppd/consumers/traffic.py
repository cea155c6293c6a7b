"""
The processor's part for OCPP traffic as such: the message log (an
``ocpp.*`` envelope's row, as ``ocppd.store.messages`` keeps it) and a
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

#: An envelope's row of the log: (id suffix, direction, message type, body,
#: time field, answer's type, answer's body); the answer's are None but for
#: an inbound exchange, whose answer has the call's time.
Logged = tuple[str, str, str, Any, str, str | None, Any]


#: ``parse_iso`` of the few times a batch repeats: a MeterValues reads its
#: ``receivedAt`` three times (its log row, last-seen, the session's meter).
_parse_time = functools.lru_cache(maxsize=256)(parse_iso)


def at(envelope: Envelope, field: str) -> datetime:
    """The time in the payload's ``field``, else the envelope's."""
    text = envelope.payload.get(field) or envelope.time
    # Only text is cached (a hostile payload may put anything there).
    return _parse_time(text) if type(text) is str else parse_iso(text)


def received_at(envelope: Envelope) -> datetime:
    """When the node received what ``envelope`` carries."""
    return at(envelope, "receivedAt")


def _answer(payload: dict[str, Any]) -> tuple[str, Any]:
    if "error" in payload:
        return ("CALLERROR", payload["error"])
    return ("CALLRESULT", payload.get("response"))


def logged(direction: str, payload: dict[str, Any]) -> Logged | None:
    """
    The row an envelope of ``direction`` logs; None for a direction this
    does not know. An inbound exchange (``in``, ``rejected``) is one row of
    the charger's CALL and ocppd's answer; a command (``out``) and the
    charger's reply to it, which comes later in another envelope, are a row
    each.
    """
    if direction == "in":
        return ("call", "in", "CALL", payload["request"], "receivedAt", *_answer(payload))
    if direction == "out":
        return ("call", "out", "CALL", payload["request"], "sentAt", None, None)
    if direction == "reply":
        return ("reply", "in", *_answer(payload), "receivedAt", None, None)
    if direction == "rejected":
        raw = {"raw": payload["raw"]}
        return ("call", "in", "CALL", raw, "receivedAt", *_answer(payload))
    return None


def log_row(envelope: Envelope, charge_point_id: str, row: Logged, writes: DeferredWrites) -> None:
    """Defer the message-log row ``row``, keyed by the envelope's id and its suffix."""
    payload = envelope.payload
    suffix, direction, message_type, body, at_field, answer_type, answer_body = row
    writes.defer(
        messages.append_log_values,
        messages.log_values(
            f"{envelope.id}:{suffix}",
            charge_point_id,
            direction,
            message_type,
            payload.get("action"),
            payload.get("uniqueId"),
            body,
            at(envelope, at_field),
            answer_type,
            answer_body,
        ),
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
