"""
Column types shared by the tables.

Every time in ocppd is UTC. The columns store naive UTC (``TIMESTAMP WITHOUT
TIME ZONE`` on PostgreSQL, ISO text on SQLite), so what is stored does not
depend on the session time zone of whoever reads it, and both engines compare
and sort times the same way. Python code only ever sees aware UTC datetimes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """
    An aware datetime, stored as naive UTC and read back as aware UTC.

    A naive datetime is refused rather than guessed at: a local time taken for
    UTC would be silently wrong by hours, and ``ocppd.timeutil`` only ever
    produces aware times.
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"UTCDateTime needs a datetime, got {type(value).__name__}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"UTCDateTime refuses a naive datetime ({value.isoformat()})")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is not None:
            return value.astimezone(UTC)
        return value.replace(tzinfo=UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """
        On SQLite, an aware UTC datetime (all that ocppd makes) formatted in
        one step, as SQLAlchemy's ``DATETIME`` stores it: through this type's
        and the dialect's processors it took ~4 us, several times per stored
        MeterValues. Anything else goes the general way (which also refuses
        what it must). The short cut is only taken if it writes exactly what
        the general way writes (checked once, here).
        """
        general = super().bind_processor(dialect)
        if dialect.name != "sqlite" or general is None:
            return general
        probes = (
            datetime(2026, 12, 7, 8, 9, 5, tzinfo=UTC),
            datetime(2026, 12, 7, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(1, 1, 1, tzinfo=UTC),
        )
        if any(_sqlite_text(probe) != general(probe) for probe in probes):
            return general

        def process(value: Any) -> Any:
            if type(value) is datetime and value.tzinfo is UTC:
                return _recent_sqlite_text(value)
            return general(value)

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        """
        On SQLite, a time as ``bind_processor`` stores it (26 characters,
        microseconds always) read in one step as aware UTC: through the
        dialect's parser and ``process_result_value`` it took several times
        as long, for each of a session's times (four set while it charges)
        on every MeterValues. Anything else (a time SQL computed, say) goes the general way; the
        short cut is only taken if it reads exactly what the general way
        reads (checked once, here).
        """
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite" or general is None:
            return general
        probes = ("2026-12-07 08:09:05.123456", "0001-01-01 00:00:00.000000")
        if any(
            _sqlite_time(probe) != general(probe)
            or _sqlite_time(probe).tzinfo is not getattr(general(probe), "tzinfo", None)
            for probe in probes
        ):
            return general

        def process(value: Any) -> Any:
            if type(value) is str and len(value) == _SQLITE_TEXT_LENGTH:
                try:
                    return _sqlite_time(value)
                except ValueError:
                    pass
            return general(value)

        return process


#: The length of ``_sqlite_text``'s times: "YYYY-MM-DD HH:MM:SS.ffffff".
_SQLITE_TEXT_LENGTH = 26


def _sqlite_time(text: str) -> datetime:
    """``_sqlite_text``'s inverse: the stored text as an aware UTC time (``UTC`` itself)."""
    return datetime.fromisoformat(text + "+00:00")


def _sqlite_text(value: datetime) -> str:
    """``value`` (UTC) as SQLAlchemy's SQLite ``DATETIME`` stores it, microseconds always."""
    # isoformat(" ", "microseconds") without its "+00:00", in a third less
    # CPU: isoformat formats through a C sprintf per field (each of a
    # MeterValues' new times, about 6,000 instructions, twice a message).
    return "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond,
    )


#: ``_sqlite_text`` of the times a batch repeats: a MeterValues binds its
#: samples' time and its arrival twice each (the session's meter, then the
#: samples and the message log). Only UTC times reach it, and equal UTC
#: times are one text.
_recent_sqlite_text = functools.lru_cache(maxsize=1024)(_sqlite_text)


def big_id() -> sa.types.TypeEngine[int]:
    """
    BIGINT for surrogate keys of large tables, INTEGER on SQLite: only an
    ``INTEGER PRIMARY KEY`` is SQLite's auto-numbered rowid (and it is 64-bit).
    """
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
