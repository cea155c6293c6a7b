"""
Compact JSON through orjson where it gives the same answer as the strict
standard-library codec, and through the strict codec everywhere else: the hot
paths (every frame and every envelope) get orjson's speed without its
silent differences (NaN written as null, big integers read as floats).
"""

from __future__ import annotations

import json
import re
from math import isfinite
from typing import Any

import orjson

#: Maps every digit to "1" and every other byte to "0".
_DIGITS = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
#: 19 digits in a row may be an integer beyond 64 bits, which orjson reads as a float.
_LONG_RUN = b"1" * 19


def has_long_digit_run(data: bytes) -> bool:
    """Whether ``data`` holds 19 or more digits in a row (one C pass, no regex)."""
    # find, not ``in``: ``bytes.__contains__`` first tries its operand as an
    # integer (a byte value) and formats a TypeError for every bytes operand
    # (~1,000 instructions a call; the same below).
    return data.translate(_DIGITS).find(_LONG_RUN) != -1


def _finite_and_plain(value: Any) -> bool:
    """
    Whether ``value`` is made of dicts, lists, tuples, strings, integers,
    booleans, None and finite floats only (exact types, no subclasses): then
    a ``null`` in orjson's output is a None, not a NaN or an infinity that
    orjson wrote as ``null`` where the strict encoder raises.
    """
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        return _holds_finite_and_plain(value)
    if kind is float:
        return isfinite(value)
    return kind is str or kind is int or kind is bool or value is None


def _holds_finite_and_plain(container: Any) -> bool:
    """``_finite_and_plain`` of a dict, list or tuple."""
    items = container.values() if type(container) is dict else container
    # One Python loop, no C pass first: ``set(map(type, items))`` calls
    # ``type`` through its slow generic path (~350 instructions an item), so
    # it cost as much as the loop and the loop followed it whenever an item
    # was a container or a float (the processor's session.updated, at every
    # MeterValues: 50k -> 27k instructions). None first, then the types by
    # identity, most frequent first: a frozenset lookup of the type cost more
    # (a session.updated's walk: 16.7k -> 13.6k instructions).
    for item in items:
        if item is None:
            continue
        kind = type(item)
        if kind is str or kind is int or kind is bool:
            continue
        if kind is float:
            if not isfinite(item):
                return False
        elif kind is dict or kind is list or kind is tuple:
            # Recursion is bounded: orjson refused nesting deeper than 254 levels.
            if not _holds_finite_and_plain(item):
                return False
        else:
            return False
    return True


def _orjson(value: Any) -> bytes | None:
    """
    orjson's UTF-8 JSON of ``value`` where it means what the strict encoder
    would write; None where it does not (see ``dumps``).
    """
    try:
        data = orjson.dumps(value)
    except TypeError:
        return None
    # A null may be a NaN or an infinity orjson let through. Most payloads
    # with one hold a None (a session's stoppedAt, say: every session.updated
    # the processor publishes): one walk of the value says so, several times
    # cheaper than the strict encoder's pass.
    if data.find(b"null") != -1 and not _finite_and_plain(value):
        return None
    return data


def dumps(value: Any, *, ensure_ascii: bool = True) -> str:
    """
    ``json.dumps(value, separators=(",", ":"), allow_nan=False,
    ensure_ascii=ensure_ascii)``, or text meaning the same JSON: ``ValueError``
    for NaN and infinities, ``TypeError`` for what JSON cannot carry.

    orjson writes non-finite floats as ``null``, so its output is used only
    where it holds no ``null``, or where every ``null`` is a None
    (``_finite_and_plain``); what orjson refuses (non-string keys,
    integers beyond 64 bits, lone surrogates) is left to the strict encoder
    to write or reject. orjson never escapes non-ASCII text, which is valid
    JSON either way.
    """
    data = _orjson(value)
    if data is not None:
        return data.decode("utf-8")
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=ensure_ascii)


def dumps_bytes(value: Any) -> bytes:
    """
    ``dumps(value).encode()`` (ASCII-escaped where the strict encoder
    writes), without decoding orjson's UTF-8 output only to encode it again:
    every envelope a bus carries is encoded so.
    """
    data = _orjson(value)
    if data is not None:
        return data
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()


#: What no text from outside may hold: NUL (PostgreSQL cannot store it in text
#: or JSON) and lone surrogates (not characters: UTF-8 cannot encode them, so
#: neither can a store, a log file or an answer). JSON's ``"\u0000"`` and
#: ``"\ud800"`` escapes are the ways in.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """Whether ``text`` holds NUL or a lone surrogate (see ``_UNSTORABLE``)."""
    return _UNSTORABLE.search(text) is not None


def holds_unstorable(value: Any) -> bool:
    """Whether any string in decoded JSON ``value`` (object keys too) is ``unstorable``."""
    # Iterative: nesting as deep as json.loads allows must not exhaust the stack.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if unstorable(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False
