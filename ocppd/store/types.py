"""
Column types shared by the tables.

Every time in ocppd is UTC. The columns store naive UTC (``TIMESTAMP WITHOUT
TIME ZONE`` on PostgreSQL, ISO text on SQLite), so what is stored does not
depend on the session time zone of whoever reads it, and both engines compare
and sort times the same way. Python code only ever sees aware UTC datetimes.
"""

from __future__ import annotations

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
        probes = (datetime(2026, 12, 7, 8, 9, 5, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC))
        if any(_sqlite_text(probe) != general(probe) for probe in probes):
            return general

        def process(value: Any) -> Any:
            if type(value) is datetime and value.tzinfo is UTC:
                return _sqlite_text(value)
            return general(value)

        return process


def _sqlite_text(value: datetime) -> str:
    """``value`` (UTC) as SQLAlchemy's SQLite ``DATETIME`` stores it, microseconds always."""
    # "YYYY-MM-DD HH:MM:SS.ffffff+00:00" without its offset.
    return value.isoformat(" ", "microseconds")[:26]


def big_id() -> sa.types.TypeEngine[int]:
    """
    BIGINT for surrogate keys of large tables, INTEGER on SQLite: only an
    ``INTEGER PRIMARY KEY`` is SQLite's auto-numbered rowid (and it is 64-bit).
    """
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")
