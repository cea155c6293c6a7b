"""The one message format on the bus."""

from __future__ import annotations

import json
import os
from datetime import datetime
from time import time_ns
from typing import Any

import attrs
import orjson

from ocppd import jsoncodec
from ocppd.jsoncodec import has_long_digit_run
from ocppd.timeutil import format_iso, utcnow


class EnvelopeError(ValueError):
    """Raised when bytes from the bus are not a valid envelope."""


def _fast_loads(data: bytes) -> Any:
    """
    orjson, the fast path, where it decodes exactly as the strict decoder
    would: it refuses NaN and Infinity itself (JSONDecodeError sends those to
    the strict decoder, which rejects them), and text with long digit runs
    is left to the strict decoder so that big integers stay integers.
    """
    if has_long_digit_run(data):
        raise orjson.JSONDecodeError("long digit run", "", 0)
    return orjson.loads(data)


def _reject_constant(name: str) -> Any:
    raise EnvelopeError(f"non-finite number {name} in envelope")


#: Ids' worth of random bytes ``new_id`` reads at once. ``os.urandom`` lets
#: go of the GIL for its system call; on the reactor thread, with the database
#: thread running Python, getting it back took up to the switch interval, for
#: every message published. One read per this many ids instead.
IDS_PER_READ = 256

#: Random bytes in an id (74 of their bits survive the version and variant).
_RANDOM_BYTES = 10

#: The bits of an id's random part (its last 80) that are not its version
#: (bits 76-79: 7) or its variant (bits 62-63: binary 10).
_RANDOM_MASK = ((1 << 80) - 1) & ~((0xF << 76) | (0x3 << 62))
_VERSION_AND_VARIANT = (0x7 << 76) | (0x2 << 62)

#: The random parts of ids not handed out yet, version and variant set, as
#: integers: ``new_id`` takes one. Shared by every thread without a lock:
#: ``list.pop`` and ``list.extend`` each hold the GIL throughout, so no two
#: threads take the same part.
_parts: list[int] = []


def _refill() -> None:
    data = os.urandom(_RANDOM_BYTES * IDS_PER_READ)
    _parts.extend(
        [
            int.from_bytes(data[start : start + _RANDOM_BYTES], "big") & _RANDOM_MASK
            | _VERSION_AND_VARIANT
            for start in range(0, len(data), _RANDOM_BYTES)
        ]
    )


def _fresh_pool() -> None:
    # A forked child must not hand out the ids its parent still holds.
    _parts.clear()


os.register_at_fork(after_in_child=_fresh_pool)


def new_id() -> str:
    """
    A time-ordered UUID (version 7, RFC 9562) as 32 hex digits: the Unix time
    in milliseconds, then 74 random bits.

    Ordered by time because the store indexes them: the message log's unique
    ``message_id`` and the consumers' ``processed_messages`` claims. Random
    (version 4) ids put each new row on a random page of those indexes, so a
    processor batch dirtied (and its commit wrote) a page per row, more as the
    tables grew; ids that increase land together at the end of the index.

    One integer, formatted once: every envelope gets one, on the reactor
    thread (bytes, a bytearray and its bit fixes per id cost half as much again).
    """
    while True:
        try:
            part = _parts.pop()
        except IndexError:
            # (Another thread may take them all before this one: it reads again.)
            _refill()
            continue
        # (printf-style: f"{...:032x}" parses its format spec every call.)
        return "%032x" % (time_ns() // 1_000_000 << 80 | part)


@attrs.frozen
class Envelope:
    """
    A message on the bus.

    ``id`` is unique per published message and is what consumers are
    idempotent on; ``type`` is the routing key it was published with;
    ``time`` is ISO-8601 UTC; ``node`` is the node id that published it;
    ``charge_point_id`` is the charger it concerns, if any; ``payload`` is
    JSON-serialisable data whose shape depends on ``type``.
    """

    id: str
    type: str
    time: str
    node: str
    charge_point_id: str | None
    payload: dict[str, Any]

    @classmethod
    def create(
        cls,
        type: str,
        payload: dict[str, Any],
        *,
        node: str,
        charge_point_id: str | None = None,
        now: datetime | None = None,
    ) -> Envelope:
        """Build a new envelope with a fresh random id."""
        return cls(
            id=new_id(),
            type=type,
            time=format_iso(now or utcnow()),
            node=node,
            charge_point_id=charge_point_id,
            payload=payload,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "time": self.time,
            "node": self.node,
            "chargePointId": self.charge_point_id,
            "payload": self.payload,
        }

    def to_bytes(self) -> bytes:
        """Compact JSON; ``ValueError`` for NaN or infinities, ``TypeError`` for non-JSON."""
        return jsoncodec.dumps_bytes(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        try:
            obj = _fast_loads(data)
        except orjson.JSONDecodeError:
            try:
                obj = json.loads(data, parse_constant=_reject_constant)
            except (ValueError, RecursionError) as e:
                raise EnvelopeError(f"envelope is not valid JSON: {e}") from e
        if not isinstance(obj, dict):
            raise EnvelopeError("envelope is not a JSON object")
        try:
            envelope = cls(
                id=obj["id"],
                type=obj["type"],
                time=obj["time"],
                node=obj["node"],
                charge_point_id=obj.get("chargePointId"),
                payload=obj["payload"],
            )
        except KeyError as e:
            raise EnvelopeError(f"envelope lacks field {e}") from e
        for name in ("id", "type", "time", "node"):
            if not isinstance(getattr(envelope, name), str):
                raise EnvelopeError(f"envelope field {name!r} is not a string")
        if envelope.charge_point_id is not None and not isinstance(envelope.charge_point_id, str):
            raise EnvelopeError("envelope field 'chargePointId' is not a string or null")
        if not isinstance(envelope.payload, dict):
            raise EnvelopeError("envelope payload is not an object")
        return envelope
