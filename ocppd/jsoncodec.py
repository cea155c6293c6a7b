"""
Compact JSON through orjson where it gives the same answer as the strict
standard-library codec, and through the strict codec everywhere else: the hot
paths (every frame and every envelope) get orjson's speed without its
silent differences (NaN written as null, big integers read as floats).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

#: Maps every digit to "1" and every other byte to "0".
_DIGITS = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
#: 19 digits in a row may be an integer beyond 64 bits, which orjson reads as a float.
_LONG_RUN = b"1" * 19


def has_long_digit_run(data: bytes) -> bool:
    """Whether ``data`` holds 19 or more digits in a row (one C pass, no regex)."""
    return _LONG_RUN in data.translate(_DIGITS)


def dumps(value: Any, *, ensure_ascii: bool = True) -> str:
    """
    ``json.dumps(value, separators=(",", ":"), allow_nan=False,
    ensure_ascii=ensure_ascii)``, or text meaning the same JSON: ``ValueError``
    for NaN and infinities, ``TypeError`` for what JSON cannot carry.

    orjson writes non-finite floats as ``null``, so its output is used only
    where it holds no ``null``; what orjson refuses (non-string keys,
    integers beyond 64 bits, lone surrogates) is left to the strict encoder
    to write or reject. orjson never escapes non-ASCII text, which is valid
    JSON either way.
    """
    try:
        data = orjson.dumps(value)
    except TypeError:
        pass
    else:
        if b"null" not in data:
            return data.decode("utf-8")
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=ensure_ascii)
