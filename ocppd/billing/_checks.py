"""Argument checks shared by the billing modules."""

from __future__ import annotations

from datetime import datetime


def require_int(name: str, value: object) -> int:
    # A float Wh or second would make the result depend on binary rounding;
    # the store and OCPP's registers give integers, so anything else is a bug.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return value


def require_aware(name: str, value: datetime) -> datetime:
    # A naive time could be local time; ocppd stores aware UTC everywhere.
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got {value!r}")
    return value
