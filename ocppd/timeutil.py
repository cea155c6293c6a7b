"""UTC time helpers: every time ocppd stores or sends is UTC, ISO-8601."""

from __future__ import annotations

from datetime import UTC, datetime


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
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
