"""
A run of MeterValues' session meters on SQLite: each session read once,
its meter advanced in Python, written once.

``transactions.metered_session`` costs SQLite two statements per MeterValues
through the driver (the meter's ``UPDATE ... RETURNING``, and when the
reading moved nothing, the session's ``SELECT`` of 32 columns): about a
quarter of the processor's database thread per message (bench/RESULTS.md).
Here a run of consecutive MeterValues (``Sessions.metered``) reads each
session it names once, in one ``SELECT ... WHERE id IN``; applies each
message's meter update, in order, to the driver's raw rows exactly as that
``UPDATE`` does in SQL (its WHERE on the stored values, its SET of the values
it binds, through the same bind processors); and writes each session it
moved once, with its last values. Every message gets the row it would have
read, made into a record by the same result processors: the same records,
the same events, the same stored row. A session's record is read from its
row once a run; a move then sets the four values it changes in the
message's ``SessionMeter`` (its times as ``_reader`` reads them back),
rather than reading all 32 columns and making a record of them again
(``session_meters``, which the processor takes).

Only on SQLite: its transactions begin ``IMMEDIATE``
(``database._begin_sqlite_transaction``) and hold the database's write lock
until they commit, so nothing else changes a session between this read and
this write. On PostgreSQL the processors of several nodes may meter one
session at once; there the meter moves by an atomic ``UPDATE``
(``transactions._metered_rows``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.prepared import Prepared, driver_rows
from ocppd.store.records import SessionMeter, TransactionRecord
from ocppd.store.tables import transactions
from ocppd.store.types import UTCDateTime

if TYPE_CHECKING:
    from ocppd.store.transactions import MeterReadings

_tx = transactions.c

#: Every column of the sessions, in the table's order: the rows read here.
_SESSIONS = Prepared(sa.select(transactions))
#: A session's meter as the run left it (values already as the driver stores them).
_MOVE_METER = Prepared(
    transactions.update()
    .where(_tx.id == sa.bindparam("tx_id"))
    .values(
        last_meter_wh=sa.bindparam("reading", type_=sa.BigInteger()),
        last_meter_at=sa.bindparam("at", type_=UTCDateTime()),
        energy_wh=sa.bindparam("energy", type_=sa.BigInteger()),
        updated_at=sa.bindparam("now", type_=UTCDateTime()),
    )
)
#: Most ids in one ``IN`` list: well inside SQLite's oldest bound-parameter limit (999).
IDS_PER_SELECT = 500
_TIME = UTCDateTime()


#: A record's time from the time a meter's move bound and the text stored for it.
ReadBack = Callable[[datetime, Any], datetime]


def _moves(conn: Connection) -> tuple[ReadBack, ReadBack] | None:
    """
    How a meter's move sets a record's two times (``last_meter_at``,
    ``updated_at``); None if the driver's meter readings are not read as
    they are (then every record is read from its row).
    """
    processors = _SESSIONS.result_processors(conn)
    if processors["last_meter_wh"] is not None or processors["energy_wh"] is not None:
        return None
    at = _reader(conn, processors["last_meter_at"])
    updated = _reader(conn, processors["updated_at"])
    return None if at is None or updated is None else (at, updated)


def _reader(conn: Connection, read: Callable[[Any], Any] | None) -> ReadBack | None:
    """
    ``read_back(value, stored)``: what ``read`` (a column's result
    processor) makes of ``stored``, the text ``UTCDateTime`` stored for
    ``value``. An exact UTC time is that time itself (the stored text keeps
    every field, to the microsecond, and reads back as that UTC time:
    checked once here, else never assumed); any other is read from the
    text as a row's is.
    """
    bind = _TIME._cached_bind_processor(conn.dialect)
    if read is None or bind is None:
        return None
    probes = (datetime(2026, 12, 7, 8, 9, 5, 123456, tzinfo=UTC), datetime(1, 1, 1, tzinfo=UTC))
    if not all(read(bind(probe)) == probe and read(bind(probe)).tzinfo is UTC for probe in probes):
        return lambda value, stored: read(stored)

    def read_back(value: datetime, stored: Any) -> datetime:
        if type(value) is datetime and value.tzinfo is UTC and not value.fold:
            return value
        return read(stored)

    return read_back


def _places(keys: Sequence[str]) -> tuple[int, ...]:
    where = {key: index for index, key in enumerate(keys)}
    names = (
        "id",
        "charge_point_id",
        "status",
        "meter_start_wh",
        "last_meter_wh",
        "last_meter_at",
        "energy_wh",
        "updated_at",
    )
    return tuple(where[name] for name in names)


def metered_sessions(
    conn: Connection, metered: list[tuple[MeterReadings, datetime]]
) -> list[TransactionRecord | None]:
    """
    ``transactions.metered_session`` of each (readings, now) in turn, on
    SQLite: per message the session as that would return it (this charger's,
    confirmed; else None), and the moved sessions' rows as it leaves them.
    """
    return [None if meter is None else meter.record() for meter in session_meters(conn, metered)]


def session_meters(
    conn: Connection, metered: list[tuple[MeterReadings, datetime]]
) -> list[SessionMeter | None]:
    """
    ``metered_sessions``, each session's record made once a run rather than
    once a message: per message its ``SessionMeter``.
    """
    ids = list(
        dict.fromkeys(
            transaction_id for (_, transaction_id, _, _), _ in metered if transaction_id is not None
        )
    )
    if not ids:
        return [None] * len(metered)
    dialect = conn.dialect
    select = _SESSIONS.sql(conn)
    id_, cp_, status_, start_, wh_, at_, energy_, updated_ = _places(_SESSIONS.keys(conn))
    column = f"{dialect.identifier_preparer.format_table(transactions)}.id"
    statements = []
    for first in range(0, len(ids), IDS_PER_SELECT):
        chunk = ids[first : first + IDS_PER_SELECT]
        statements.append((f"{select} WHERE {column} IN ({', '.join('?' * len(chunk))})", chunk))
    rows: dict[Any, list[Any]] = {}
    for found in driver_rows(conn, statements):
        for raw in found:
            rows[raw[id_]] = list(raw)
    bind_time = _TIME._cached_bind_processor(dialect)
    assert bind_time is not None  # UTCDateTime converts on every dialect
    moves = _moves(conn)
    #: Each session's meter as its row is now, with its record as read from
    #: the row when a message first needed it (again after each move, where
    #: ``moves`` is None).
    meters: dict[Any, SessionMeter] = {}
    moved: dict[Any, list[Any]] = {}
    sessions: list[SessionMeter | None] = []
    # A batch's messages share a few receipt times (``traffic.received_at``
    # parses each text once), so the text of the last one bound is kept.
    bound_now: tuple[datetime | None, Any] = (None, None)
    # Unpacked: a named tuple's fields are slower to read by name than an
    # attrs class's (a descriptor call each on Python 3.11).
    for (charge_point_id, transaction_id, _, (energy, _, _)), now in metered:
        raw = None if transaction_id is None else rows.get(transaction_id)
        if raw is None:
            sessions.append(None)
            continue
        # The UPDATE's WHERE: this charger's, active, and the reading newer
        # than the stored one (SQLite compares the stored text with the
        # bound text, whose fixed-width format sorts as the times do).
        if energy is not None and raw[cp_] == charge_point_id and raw[status_] == "active":
            at = bind_time(energy[0])
            last = raw[at_]
            if last is None or last < at:
                reading = energy[1]
                above_start = reading - raw[start_]
                raw[wh_] = reading
                raw[at_] = at
                raw[energy_] = above_start if above_start > 0 else 0
                if bound_now[0] is not now:
                    bound_now = (now, bind_time(now))
                raw[updated_] = updated = bound_now[1]
                moved[transaction_id] = raw
                meter = meters.get(transaction_id)
                if meter is not None and moves is not None:
                    read_at, read_updated = moves
                    meters[transaction_id] = SessionMeter(
                        meter.session,
                        reading,
                        read_at(energy[0], at),
                        raw[energy_],
                        read_updated(now, updated),
                    )
                else:
                    meters.pop(transaction_id, None)
        if raw[cp_] != charge_point_id:
            sessions.append(None)
            continue
        meter = meters.get(transaction_id)
        if meter is None:
            record = _SESSIONS.record(conn, raw, TransactionRecord)
            meter = meters[transaction_id] = SessionMeter.of(record)
        sessions.append(meter if meter.session.confirmed else None)
    if moved:
        names = _MOVE_METER.names(conn)
        _MOVE_METER.many_values(
            conn,
            [
                _in_order(
                    names,
                    {
                        "tx_id": raw[id_],
                        "reading": raw[wh_],
                        "at": raw[at_],
                        "energy": raw[energy_],
                        "now": raw[updated_],
                    },
                )
                for raw in moved.values()
            ],
        )
    return sessions


def _in_order(names: Sequence[str], values: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(values[name] for name in names)
