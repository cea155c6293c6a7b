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
the same events, the same stored row.

Only on SQLite: its transactions begin ``IMMEDIATE``
(``database._begin_sqlite_transaction``) and hold the database's write lock
until they commit, so nothing else changes a session between this read and
this write. On PostgreSQL the processors of several nodes may meter one
session at once; there the meter moves by an atomic ``UPDATE``
(``transactions._metered_rows``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.prepared import Prepared, driver_rows
from ocppd.store.records import TransactionRecord
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
    ids = list(
        dict.fromkeys(
            readings.transaction_id
            for readings, _ in metered
            if readings.transaction_id is not None
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
    #: Each session's record as its row is now (made when a message needs it).
    records: dict[Any, TransactionRecord] = {}
    moved: dict[Any, list[Any]] = {}
    sessions: list[TransactionRecord | None] = []
    for readings, now in metered:
        transaction_id = readings.transaction_id
        raw = None if transaction_id is None else rows.get(transaction_id)
        if raw is None:
            sessions.append(None)
            continue
        charge_point_id = readings.charge_point_id
        energy = readings.newest.energy
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
                raw[updated_] = bind_time(now)
                moved[transaction_id] = raw
                records.pop(transaction_id, None)
        if raw[cp_] != charge_point_id:
            sessions.append(None)
            continue
        record = records.get(transaction_id)
        if record is None:
            record = records[transaction_id] = _SESSIONS.record(conn, raw, TransactionRecord)
        sessions.append(record if record.confirmed else None)
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
