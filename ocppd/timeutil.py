"""UTC time helpers: every time ocppd stores or sends is UTC, ISO-8601."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def from_timestamp(seconds: float) -> datetime:
    """A reactor time (``IReactorTime.seconds()``) as aware UTC."""
    return datetime.fromtimestamp(seconds, UTC)


def parse_iso(text: str) -> datetime:
    """
    Parse an ISO-8601 time as chargers send it into aware UTC.

    A time without an offset is taken as UTC, which is what OCPP 1.6 mandates
    and what chargers that omit the ``Z`` mean.
    """
    value = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_iso(value: datetime) -> str:
    """Format an aware (or naive UTC) time as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    # Neither isoformat (its offset formatted and cut off: PyUnicode_FromFormat,
    # a C sprintf per field) nor strftime: a third less CPU than isoformat,
    # twice per session.updated and on every OCPP message.
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond // 1000,
    )


class _Clock(Protocol):
    def seconds(self) -> float: ...


#: ``f".{ms:03d}Z"`` for each millisecond, made once: ``IsoNow`` ends every stamp with one.
_MILLISECONDS = tuple(f".{ms:03d}Z" for ms in range(1000))


class IsoNow:
    """
    ``format_iso(from_timestamp(clock.seconds()))``, with the part up to the
    second formatted once per second: a busy node stamps every message.
    """

    def __init__(self, clock: _Clock) -> None:
        self._clock = clock
        self._second: int | None = None
        self._prefix = ""

    def __call__(self) -> str:
        seconds = self._clock.seconds()
        whole = int(seconds // 1)
        micro = round((seconds - whole) * 1_000_000)
        if micro >= 1_000_000:
            whole, micro = whole + 1, micro - 1_000_000
        if whole != self._second:
            self._second = whole
            self._prefix = format_iso(from_timestamp(whole))[:-5]
        return self._prefix + _MILLISECONDS[micro // 1000]
