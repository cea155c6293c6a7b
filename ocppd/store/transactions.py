"""
Charging sessions (OCPP transactions), their stops and meter values.

Chargers resend queued transaction messages after a reconnect and the bus
delivers at least once, possibly out of order. The rules here make that
harmless (DESIGN.md section 1):

- a start is identified by its fingerprint (charger, connector, idTag,
  meterStart, timestamp): a resend gets the same transaction id;
- a stop applies once, and only to a session of the charger that sent it;
- a sample is stored once;
- the energy of a completed session is final: late meter values are kept but
  never change it;
- a session is *unconfirmed* from the allocation of its id until the bus has
  taken its StartTransaction (``confirm_transaction``, by the handler once
  the publish is confirmed and by the processor when it applies the start):
  a start refused with InternalError leaves nothing anyone sees as a session
  (``visible``), a resend finds the same row, and ``expire_unconfirmed``
  deletes what no charger came back for.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from ocppd import measurands
from ocppd.billing.closing import CLOSE_REASONS, closing_reading
from ocppd.bounds import INT32_MAX
from ocppd.measurands import MeterSample
from ocppd.store import meter_runs
from ocppd.store.pg_arrays import client_utf8
from ocppd.store.prepared import Prepared, driver_rows
from ocppd.store.records import (
    Allocation,
    MeterValueRecord,
    SessionMeter,
    TransactionRecord,
    UnmatchedStopRecord,
    all_records,
    first_record,
    from_mapping,
)
from ocppd.store.sql import (
    append_new_values,
    at_least_zero,
    binary_array,
    bind_array,
    insert_new,
)
from ocppd.store.tables import (
    AUTHORIZATION_STATUSES,
    REVIEW_STATUSES,
    charge_points,
    id_tags,
    meter_values,
    transactions,
    unmatched_stops,
)
from ocppd.store.tags import canonical_id_tag
from ocppd.store.types import UTCDateTime

#: Stored for "no transaction" in ``meter_values.transaction_id`` (never an id we allocate).
NO_TRANSACTION = 0
#: OCPP transactionIds are 32-bit; a larger reported id cannot be one of ours.
MAX_TRANSACTION_ID = INT32_MAX
#: The largest cost a session holds: ``transactions.cost`` is a 32-bit INTEGER.
MAX_COST = INT32_MAX

_tx = transactions.c

StopOutcome = Literal["stopped", "duplicate", "late", "unknown"]

#: The sessions every reader shows: those whose StartTransaction the bus took.
visible = _tx.confirmed.is_(sa.true())


def _fingerprint(
    charge_point_id: str, connector_id: int, id_tag: str, meter_start_wh: int, started_at: datetime
) -> sa.ColumnElement[bool]:
    return sa.and_(
        _tx.charge_point_id == charge_point_id,
        _tx.connector_id == connector_id,
        _tx.id_tag == id_tag,
        _tx.meter_start_wh == meter_start_wh,
        _tx.started_at == started_at,
    )


def allocate_transaction(
    conn: Connection,
    *,
    charge_point_id: str,
    connector_id: int,
    id_tag: str,
    id_tag_status: str,
    meter_start_wh: int,
    started_at: datetime,
    reservation_id: int | None = None,
    user_id: int | None = None,
    now: datetime,
    confirmed: bool = True,
) -> Allocation:
    """
    The transaction id for a StartTransaction, creating its session (status
    ``active``) unless this start was seen before.

    The request path allocates with ``confirmed=False`` and confirms once the
    bus has the start (``confirm_transaction``); until then the session is
    invisible. A resend of an unconfirmed start gets the same id, its
    concurrency decided again (nobody was answered the first time).

    Idempotent on the start's fingerprint, also for concurrent callers (two
    nodes handling a resend and its original): the INSERT skips on the
    fingerprint's unique index, and the loser reads the winner's id.

    ``concurrent`` is True when the tag has another active session that was
    answered ``Accepted`` on another connector; the new session then records
    ``ConcurrentTx`` as its ``id_tag_status`` (the status the charger is
    answered), so a resend of this start is answered the same, and the new
    session does not itself make later starts concurrent.

    ``user_id`` defaults to the tag's owner, ``tariff_id`` is the charger's.
    The idTag is kept in its canonical (upper) case, like the id tags table.
    """
    if id_tag_status not in AUTHORIZATION_STATUSES:
        raise ValueError(f"id tag status {id_tag_status!r} is not one of {AUTHORIZATION_STATUSES}")
    id_tag = canonical_id_tag(id_tag)
    fingerprint = _fingerprint(charge_point_id, connector_id, id_tag, meter_start_wh, started_at)
    existing = conn.execute(
        sa.select(_tx.id, _tx.id_tag_status, _tx.confirmed).where(fingerprint)
    ).first()
    if existing is not None and not existing.confirmed:
        # A resend of a start refused before: nobody was answered, so the
        # answer is decided now, against the sessions active now.
        return _reallocate(
            conn, existing.id, charge_point_id, connector_id, id_tag, id_tag_status, confirmed
        )
    if existing is not None:
        return Allocation(
            existing.id, created=False, concurrent=_was_concurrent(existing.id_tag_status)
        )

    # Lock the tag's row (PostgreSQL; SQLite transactions are serial anyway)
    # so two starts with one tag on two chargers cannot both miss each other.
    owner = conn.execute(
        sa.select(id_tags.c.user_id).where(id_tags.c.id_tag == id_tag).with_for_update()
    ).first()
    if user_id is None and owner is not None:
        user_id = owner.user_id
    concurrent = _tag_active_elsewhere(conn, id_tag, charge_point_id, connector_id)
    tariff_id = conn.execute(
        sa.select(charge_points.c.tariff_id).where(
            charge_points.c.charge_point_id == charge_point_id
        )
    ).scalar()
    transaction_id = insert_new(
        conn,
        transactions,
        {
            "charge_point_id": charge_point_id,
            "connector_id": connector_id,
            "id_tag": id_tag,
            "id_tag_status": (
                "ConcurrentTx" if concurrent and id_tag_status == "Accepted" else id_tag_status
            ),
            "reservation_id": reservation_id,
            "meter_start_wh": meter_start_wh,
            "started_at": started_at,
            "status": "active",
            "confirmed": confirmed,
            "user_id": user_id,
            "tariff_id": tariff_id,
            "created_at": now,
            "updated_at": now,
        },
    )
    if transaction_id is not None:
        return Allocation(int(transaction_id), created=True, concurrent=concurrent)
    # A concurrent caller inserted the same start between our read and our
    # insert; its row is committed now (the insert waited for it).
    winner = conn.execute(sa.select(_tx.id, _tx.id_tag_status).where(fingerprint)).one()
    return Allocation(winner.id, created=False, concurrent=_was_concurrent(winner.id_tag_status))


def _was_concurrent(id_tag_status: str) -> bool:
    return id_tag_status == "ConcurrentTx"


def _tag_active_elsewhere(
    conn: Connection, id_tag: str, charge_point_id: str, connector_id: int
) -> bool:
    """Whether the tag has a visible active session answered Accepted on another connector."""
    return (
        conn.execute(
            sa.select(_tx.id)
            .where(_tx.id_tag == id_tag)
            .where(_tx.status == "active")
            .where(visible)
            .where(_tx.id_tag_status == "Accepted")
            .where(sa.or_(_tx.charge_point_id != charge_point_id, _tx.connector_id != connector_id))
            .limit(1)
        ).first()
        is not None
    )


def _reallocate(
    conn: Connection,
    transaction_id: int,
    charge_point_id: str,
    connector_id: int,
    id_tag: str,
    id_tag_status: str,
    confirmed: bool,
) -> Allocation:
    """The same id for a resent start still unconfirmed, its tag status decided again."""
    conn.execute(
        sa.select(id_tags.c.id_tag).where(id_tags.c.id_tag == id_tag).with_for_update()
    ).first()
    concurrent = _tag_active_elsewhere(conn, id_tag, charge_point_id, connector_id)
    conn.execute(
        transactions.update()
        .where(_tx.id == transaction_id, _tx.confirmed.is_(sa.false()))
        .values(
            id_tag_status=(
                "ConcurrentTx" if concurrent and id_tag_status == "Accepted" else id_tag_status
            ),
            confirmed=confirmed,
        )
    )
    return Allocation(transaction_id, created=False, concurrent=concurrent)


def confirm_transaction(conn: Connection, transaction_id: int) -> bool:
    """
    Make an unconfirmed session visible: the bus has its StartTransaction.
    Idempotent (the handler and the processor both confirm); whether it was
    unconfirmed until now.
    """
    result = conn.execute(
        transactions.update()
        .where(_tx.id == transaction_id, _tx.confirmed.is_(sa.false()))
        .values(confirmed=True)
    )
    return bool(result.rowcount)


def expire_unconfirmed(conn: Connection, *, created_before: datetime, limit: int) -> int:
    """
    Delete up to ``limit`` unconfirmed sessions allocated before
    ``created_before``: starts refused (the bus was down) that no charger
    resent. How many were deleted.
    """
    ids = (
        conn.execute(
            sa.select(_tx.id)
            .where(_tx.confirmed.is_(sa.false()), _tx.created_at < created_before)
            .order_by(_tx.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    if not ids:
        return 0
    conn.execute(transactions.delete().where(_tx.id.in_(ids), _tx.confirmed.is_(sa.false())))
    return len(ids)


def _keep_unmatched(
    conn: Connection,
    charge_point_id: str,
    transaction_id: int,
    meter_stop_wh: int,
    stopped_at: datetime,
    reason: str | None,
    id_tag: str | None,
    now: datetime,
) -> bool:
    """Keep a stop that changed no session for an operator, once; whether it is new."""
    new = insert_new(
        conn,
        unmatched_stops,
        {
            "charge_point_id": charge_point_id,
            "transaction_id": transaction_id,
            "meter_stop_wh": meter_stop_wh,
            "stopped_at": stopped_at,
            "reason": reason,
            "id_tag": id_tag,
            "received_at": now,
        },
    )
    return new is not None


def record_stop(
    conn: Connection,
    *,
    charge_point_id: str,
    transaction_id: int,
    meter_stop_wh: int,
    stopped_at: datetime,
    reason: str | None = None,
    id_tag: str | None = None,
    now: datetime,
) -> StopOutcome:
    """
    Apply a StopTransaction; one of:

    - ``"stopped"``: the charger's active session is now completed, with
      ``energy_wh = max(0, meterStop - meterStart)`` (a meter replaced or
      reset mid-session must not produce negative energy);
    - ``"duplicate"``: it was completed before; nothing changes, so a resent
      stop with other values cannot alter a billed session;
    - ``"late"``: the central system had closed it (``CLOSE_REASONS``: a
      reboot, ``Available``, a newer start, an operator) and no stop of the
      charger's was applied to it yet: nothing changes here, the caller
      bills it again (``apply_late_stop``; a resend is then a ``"duplicate"``);
    - ``"unknown"``: the charger has no session with this id (none at all, or
      another charger's, which is never touched); the stop is kept once in
      ``unmatched_stops`` for an operator.
    """
    if id_tag is not None:
        id_tag = canonical_id_tag(id_tag)
    row = None
    if 0 < transaction_id <= MAX_TRANSACTION_ID:
        row = conn.execute(
            sa.select(_tx.status, _tx.meter_start_wh, _tx.stop_reason, _tx.late_stop_at)
            .where(_tx.id == transaction_id)
            .where(_tx.charge_point_id == charge_point_id)
            .with_for_update()
        ).first()
    if row is None:
        _keep_unmatched(
            conn, charge_point_id, transaction_id, meter_stop_wh, stopped_at, reason, id_tag, now
        )
        return "unknown"
    if row.status != "active":
        if row.stop_reason in CLOSE_REASONS and row.late_stop_at is None:
            # The charger's own stop, after the central system closed the
            # session on its last reading (a reboot's queued stop, say).
            return "late"
        return "duplicate"
    conn.execute(
        transactions.update()
        .where(_tx.id == transaction_id)
        .values(
            # A stop proves the charger was answered its id, so the bus took the start.
            confirmed=True,
            meter_stop_wh=meter_stop_wh,
            stopped_at=stopped_at,
            stop_reason=reason,
            stop_id_tag=id_tag,
            energy_wh=max(0, meter_stop_wh - row.meter_start_wh),
            status="completed",
            updated_at=now,
        )
    )
    return "stopped"


def open_sessions(
    conn: Connection,
    charge_point_id: str,
    *,
    connector_id: int | None = None,
    received_before: datetime | None = None,
    below_id: int | None = None,
) -> list[TransactionRecord]:
    """
    The charger's active sessions (on one connector, if given) whose start
    arrived before ``received_before`` and whose id is below ``below_id``:
    what a reboot, an ``Available`` or a newer start there proves over.
    Bounded by the connectors a charger has: a charger may have one session
    open per connector, so this never reads more than a charger's worth.
    """
    # Mostly there is none (every boot and every Available asks): a prepared
    # look for one first, on the driver's cursor, costs a tenth of the query.
    probe = _open_session_probe(
        connector_id is not None, received_before is not None, below_id is not None
    )
    given = {
        "cp_id": charge_point_id,
        "connector_id": connector_id,
        "received_before": received_before,
        "below_id": below_id,
    }
    found = probe.first(conn, {name: value for name, value in given.items() if value is not None})
    if found is None:
        return []
    query = sa.select(transactions).where(
        _tx.charge_point_id == charge_point_id, _tx.status == "active", visible
    )
    if connector_id is not None:
        query = query.where(_tx.connector_id == connector_id)
    if received_before is not None:
        query = query.where(_tx.created_at < received_before)
    if below_id is not None:
        query = query.where(_tx.id < below_id)
    return all_records(conn, TransactionRecord, query.order_by(_tx.id).limit(MAX_OPEN_CLOSED))


#: Most sessions one message closes (a charger's connectors, with room to spare).
MAX_OPEN_CLOSED = 100


@functools.cache
def _open_session_probe(by_connector: bool, by_arrival: bool, by_id: bool) -> Prepared:
    """Whether ``open_sessions`` with these conditions finds any: an id, or no row."""
    query = sa.select(_tx.id).where(
        _tx.charge_point_id == sa.bindparam("cp_id"), _tx.status == "active", visible
    )
    if by_connector:
        query = query.where(_tx.connector_id == sa.bindparam("connector_id"))
    if by_arrival:
        query = query.where(_tx.created_at < sa.bindparam("received_before", type_=UTCDateTime()))
    if by_id:
        query = query.where(_tx.id < sa.bindparam("below_id"))
    return Prepared(query.limit(1))


def close_session(
    conn: Connection, transaction_id: int, *, reason: str, now: datetime
) -> TransactionRecord | None:
    """
    Close an active session the charger never stopped, on its last reading
    (``ocppd.billing.closing``): ``reason`` is its ``stop_reason``. The
    closed session, or None when it is not (or no longer) active: a replay,
    or its StopTransaction came first, closes nothing.
    """
    session = lock_transaction(conn, transaction_id)
    if session is None or session.status != "active" or not session.confirmed:
        return None
    meter_stop_wh, stopped_at = closing_reading(
        meter_start_wh=session.meter_start_wh,
        started_at=session.started_at,
        last_meter_wh=session.last_meter_wh,
        last_meter_at=session.last_meter_at,
    )
    conn.execute(
        transactions.update()
        .where(_tx.id == transaction_id, _tx.status == "active")
        .values(
            meter_stop_wh=meter_stop_wh,
            stopped_at=stopped_at,
            stop_reason=reason,
            energy_wh=max(0, meter_stop_wh - session.meter_start_wh),
            status="completed",
            updated_at=now,
        )
    )
    return get_transaction(conn, transaction_id)


def set_billed_tariff(conn: Connection, transaction_id: int, snapshot: str) -> None:
    """Keep the tariff a closed session was billed with (``late_stop.tariff_snapshot``)."""
    conn.execute(
        transactions.update().where(_tx.id == transaction_id).values(billed_tariff=snapshot)
    )


def apply_late_stop(
    conn: Connection,
    transaction_id: int,
    *,
    meter_stop_wh: int,
    stopped_at: datetime,
    charger_reason: str,
    stop_id_tag: str | None,
    cost: int | None,
    currency: str | None,
    now: datetime,
) -> bool:
    """
    Record the charger's own stop on a session the central system closed
    (``record_stop`` said ``"late"``): its reading, time and energy replace
    the closing reading's, its reason is kept beside the closing reason, and
    ``cost`` (if not None) is the session's new cost. Once per session:
    whether it was applied now.
    """
    values: dict[str, Any] = {
        "meter_stop_wh": meter_stop_wh,
        "stopped_at": stopped_at,
        "energy_wh": at_least_zero(sa.literal(meter_stop_wh, sa.BigInteger()) - _tx.meter_start_wh),
        "charger_stop_reason": charger_reason,
        "stop_id_tag": None if stop_id_tag is None else canonical_id_tag(stop_id_tag),
        "late_stop_at": now,
        "updated_at": now,
    }
    if cost is not None:
        values.update(cost=cost, currency=currency)
    result = conn.execute(
        transactions.update()
        .where(
            _tx.id == transaction_id,
            _tx.status == "completed",
            _tx.stop_reason.in_(CLOSE_REASONS),
            _tx.late_stop_at.is_(None),
        )
        .values(**values)
    )
    return bool(result.rowcount)


#: ``review_reasons`` holds at most this many characters.
MAX_REVIEW_REASONS = 200


def review_late_stop(
    conn: Connection,
    transaction_id: int,
    *,
    computed_cost: int,
    currency: str,
    reasons: tuple[str, ...],
    now: datetime,
) -> None:
    """
    Hold a session whose late stop is for an operator (``late_stop``): its
    review ``pending`` again with ``computed_cost`` and ``reasons`` (added to
    a pending review's). ``cost`` keeps what was billed at the close, so a
    decision (``decide_review``) moves only the difference; an earlier
    decision is in the audit log.
    """
    current = conn.execute(
        sa.select(_tx.review_status, _tx.review_reasons).where(_tx.id == transaction_id)
    ).one()
    pending = current.review_status == "pending" and current.review_reasons
    kept = current.review_reasons.split(",") if pending else []
    joined = ""
    for reason in dict.fromkeys([*kept, *reasons]):
        if len(joined) + len(reason) + 1 > MAX_REVIEW_REASONS:
            break
        joined = f"{joined},{reason}" if joined else reason
    conn.execute(
        transactions.update()
        .where(_tx.id == transaction_id)
        .values(
            review_status="pending",
            review_cost=computed_cost,
            review_reasons=joined,
            currency=currency,
            reviewed_by=None,
            reviewed_at=None,
            review_note=None,
            updated_at=now,
        )
    )


def add_meter_values(
    conn: Connection,
    *,
    charge_point_id: str,
    connector_id: int,
    transaction_id: int | None,
    samples: list[MeterSample],
    now: datetime,
) -> int:
    """
    Store ``samples`` (from one MeterValues or StopTransaction.transactionData);
    the number of new rows. A sample already stored (same charger, connector,
    transaction, timestamp, measurand, phase, location, context) is skipped.

    The newest ``Energy.Active.Import.Register`` sample without a phase
    updates the running energy of the session, if it is active, belongs to
    this charger and has no newer reading. A completed session never changes.
    """
    readings = meter_readings(
        charge_point_id=charge_point_id,
        connector_id=connector_id,
        transaction_id=transaction_id,
        samples=samples,
        now=now,
    )
    inserted = append_meter_values(conn, readings.rows)
    advance_session_meter(conn, readings, now=now)
    return inserted


#: The columns of a stored sample, in the order of ``MeterReadings.rows``' values.
SAMPLE_COLUMNS = (
    "charge_point_id",
    "connector_id",
    "transaction_id",
    "timestamp",
    "value",
    "value_wh",
    "measurand",
    "phase",
    "unit",
    "context",
    "location",
    "format",
    "received_at",
)


class MeterReadings(NamedTuple):
    """
    One message's samples as rows (values of ``SAMPLE_COLUMNS``, in order: a
    tuple each rather than a dict of 13 keys, four times per MeterValues), and
    its newest readings (``measurands.newest``). A named tuple, as
    ``measurands.Newest``: one per MeterValues.
    """

    charge_point_id: str
    transaction_id: int | None
    rows: list[tuple[Any, ...]]
    newest: measurands.Newest


def meter_readings(
    *,
    charge_point_id: str,
    connector_id: int,
    transaction_id: int | None,
    samples: list[MeterSample],
    now: datetime,
) -> MeterReadings:
    """``add_meter_values`` in two halves: this builds, the others write."""
    return readings_of(
        charge_point_id=charge_point_id,
        connector_id=connector_id,
        transaction_id=transaction_id,
        samples=[measurands.fields_of(sample) for sample in samples],
        now=now,
    )


def readings_of(
    *,
    charge_point_id: str,
    connector_id: int,
    transaction_id: int | None,
    samples: list[measurands.SampleFields],
    now: datetime,
) -> MeterReadings:
    """
    ``meter_readings`` of samples as ``measurands.read_samples`` reads them
    (the processor's MeterValues: no ``MeterSample`` each).
    """
    stored_transaction_id = NO_TRANSACTION if transaction_id is None else transaction_id
    rows = [
        (
            charge_point_id,
            connector_id,
            stored_transaction_id,
            timestamp,
            value,
            value_wh,
            measurand,
            phase or "",
            unit,
            context or "",
            location or "",
            format_,
            now,
        )
        for timestamp, value, measurand, phase, unit, context, location, format_, value_wh, _ in (
            samples
        )
    ]
    return MeterReadings(charge_point_id, transaction_id, rows, measurands.newest_of(samples))


def append_meter_values(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """Store ``MeterReadings.rows`` (of any number of messages), skipping known samples."""
    return append_new_values(conn, meter_values, SAMPLE_COLUMNS, rows)


@functools.cache
def _advance_meter_statement() -> sa.Update:
    reading = sa.bindparam("reading", type_=sa.BigInteger())
    at = sa.bindparam("at", type_=UTCDateTime())
    return (
        transactions.update()
        .where(_tx.id == sa.bindparam("tx_id"))
        .where(_tx.charge_point_id == sa.bindparam("cp_id"))
        .where(_tx.status == "active")
        .where(sa.or_(_tx.last_meter_at.is_(None), _tx.last_meter_at < at))
        .values(
            last_meter_wh=reading,
            last_meter_at=at,
            energy_wh=at_least_zero(reading - _tx.meter_start_wh),
            updated_at=sa.bindparam("now", type_=UTCDateTime()),
        )
    )


def advance_session_meter(conn: Connection, readings: MeterReadings, *, now: datetime) -> None:
    """Move the session's running energy to the readings' newest register, if it is newer."""
    if readings.newest.energy is None or readings.transaction_id is None:
        return
    at, reading = readings.newest.energy
    conn.execute(
        _advance_meter_statement(),
        {
            "reading": reading,
            "at": at,
            "tx_id": readings.transaction_id,
            "cp_id": readings.charge_point_id,
            "now": now,
        },
    )


#: ``_advance_meter_statement`` returning the session's row, and the session by id.
_ADVANCE_METER_RETURNING = Prepared(_advance_meter_statement().returning(*transactions.c))
_SELECT_SESSION = Prepared(sa.select(transactions).where(_tx.id == sa.bindparam("tx_id")))


def metered_session(
    conn: Connection, readings: MeterReadings, *, now: datetime
) -> TransactionRecord | None:
    """
    ``advance_session_meter``, and then the session the readings name (this
    charger's, confirmed; None if none), as ``get_transaction`` reads it:
    in one statement when the meter moved (the update returns the row), the
    usual case of a session's readings arriving in order. Both statements
    run on the driver's cursor (``ocppd.store.prepared``): this is the
    store's work for every MeterValues.
    """
    if readings.transaction_id is None:
        return None
    if readings.newest.energy is not None:
        at, reading = readings.newest.energy
        advanced = _ADVANCE_METER_RETURNING.first_record(
            conn,
            {
                "reading": reading,
                "at": at,
                "tx_id": readings.transaction_id,
                "cp_id": readings.charge_point_id,
                "now": now,
            },
            TransactionRecord,
        )
        if advanced is not None:
            return advanced if advanced.confirmed else None
    session = _SELECT_SESSION.first_record(
        conn, {"tx_id": readings.transaction_id}, TransactionRecord
    )
    if session is None:
        return None
    if not session.confirmed or session.charge_point_id != readings.charge_point_id:
        return None
    return session


def metered_sessions(
    conn: Connection, metered: list[tuple[MeterReadings, datetime]]
) -> list[TransactionRecord | None]:
    """
    ``metered_session`` of each (readings, now), in order, as if called in
    turn. On PostgreSQL a few statements in one pipeline rather than one per
    message (``_metered_runs``): a batch's MeterValues cost one round trip,
    and psycopg's Python per statement a few times rather than once each.
    On SQLite each session read once and written once, its meter advanced
    in Python in between (``ocppd.store.meter_runs``).
    """
    if conn.dialect.name != "postgresql":
        return meter_runs.metered_sessions(conn, metered)
    rows = _metered_rows(conn, metered)
    sessions: list[TransactionRecord | None] = []
    for (readings, _), row in zip(metered, rows, strict=True):
        if row is None or not row.confirmed or row.charge_point_id != readings.charge_point_id:
            sessions.append(None)
        else:
            sessions.append(row)
    return sessions


def session_meters(
    conn: Connection, metered: list[tuple[MeterReadings, datetime]]
) -> list[SessionMeter | None]:
    """
    ``metered_sessions`` as a ``SessionMeter`` each: on SQLite without a
    record made for each message (``meter_runs.session_meters``).
    """
    if conn.dialect.name != "postgresql":
        return meter_runs.session_meters(conn, metered)
    return [
        None if session is None else SessionMeter.of(session)
        for session in metered_sessions(conn, metered)
    ]


def metered_rounds(transaction_ids: list[int | None]) -> list[list[int]]:
    """
    The places of ``transaction_ids`` (a run's messages) in rounds in which
    each session appears at most once: a session's first message in the
    first, its second in the second, and so on; None (no session) in none.
    Rounds run in order, so each message of a session sees the ones before
    it; messages of different sessions touch different rows, so the order
    among them changes nothing.
    """
    rounds: list[list[int]] = []
    seen: dict[int, int] = {}
    for place, transaction_id in enumerate(transaction_ids):
        if transaction_id is None:
            continue
        round_ = seen.get(transaction_id, 0)
        seen[transaction_id] = round_ + 1
        if round_ == len(rounds):
            rounds.append([])
        rounds[round_].append(place)
    return rounds


@attrs.frozen
class _MeteredRun:
    """
    ``metered_session`` of many messages of distinct sessions as two
    PostgreSQL statements: the messages as binary arrays (``sql.binary_array``,
    as the unnest appends send theirs), numbered by ``WITH ORDINALITY``; the
    meter's update of every session whose reading is newer (``sql``), then
    per message (by number) its session's row as it is now (``read``). A
    message without an energy reading (NULL ``at``) only reads. Each session
    at most once per statement: an UPDATE ... FROM changes a row once,
    whatever number of source rows match it.

    The read is a statement of its own, after the update: under READ
    COMMITTED it sees what a concurrent transaction committed while the
    update waited for its row (another node's processor moving the same
    meter: a MeterValues delivered twice, which is not claimed), where the
    update's own snapshot, which one statement would have read, does not.
    """

    sql: str
    read: str
    types: tuple[sa.types.TypeEngine[Any], ...]


_metered_run_sql: weakref.WeakKeyDictionary[Dialect, _MeteredRun] = weakref.WeakKeyDictionary()


def _metered_run(dialect: Dialect) -> _MeteredRun:
    run = _metered_run_sql.get(dialect)
    if run is not None:
        return run
    # The types the single statement binds: tx_id and cp_id as the columns
    # they compare with, the reading and the times as it declares them.
    types: tuple[sa.types.TypeEngine[Any], ...] = (
        _tx.id.type,
        _tx.charge_point_id.type,
        sa.BigInteger(),
        UTCDateTime(),
        UTCDateTime(),
    )
    arrays = ", ".join(binary_array(dialect, type_) for type_ in types)
    quote = dialect.identifier_preparer.quote
    table = dialect.identifier_preparer.format_table(transactions)
    columns = [quote(column.name) for column in transactions.c]

    def of(alias: str) -> str:
        return ", ".join(f"{alias}.{column}" for column in columns)

    sql = (
        f"WITH v AS (SELECT * FROM unnest({arrays}) WITH ORDINALITY"
        " AS v(tx_id, cp_id, reading, at, received, ord))"
        f" UPDATE {table} AS t SET last_meter_wh = v.reading,"
        " last_meter_at = v.at,"
        " energy_wh = CASE WHEN v.reading - t.meter_start_wh > 0"
        " THEN v.reading - t.meter_start_wh ELSE 0 END,"
        " updated_at = v.received"
        " FROM v WHERE t.id = v.tx_id AND t.charge_point_id = v.cp_id"
        " AND t.status = 'active' AND v.at IS NOT NULL"
        " AND (t.last_meter_at IS NULL OR t.last_meter_at < v.at)"
        " RETURNING t.id"
    )
    read = (
        f"WITH v AS (SELECT * FROM unnest({binary_array(dialect, types[0])}) WITH ORDINALITY"
        " AS v(tx_id, ord))"
        f" SELECT v.ord, {of('t')} FROM v JOIN {table} AS t ON t.id = v.tx_id ORDER BY 1"
    )
    run = _metered_run_sql[dialect] = _MeteredRun(sql, read, types)
    return run


def _metered_rows(
    conn: Connection, metered: list[tuple[MeterReadings, datetime]]
) -> list[TransactionRecord | None]:
    """
    Per message, the session's row as ``metered_session`` reads it in turn,
    before its checks (None without a session or row): two statements per
    round of ``metered_rounds`` (``_MeteredRun``), all in one pipeline, their
    rows put back in the messages' order.
    """
    run = _metered_run(conn.dialect)
    rounds = metered_rounds([readings.transaction_id for readings, _ in metered])
    utf8 = client_utf8(conn)
    statements = []
    for places in rounds:
        columns: tuple[list[Any], ...] = ([], [], [], [], [])
        tx_ids, cp_ids, readings_wh, ats, nows = columns
        for place in places:
            readings, now = metered[place]
            energy = readings.newest.energy
            tx_ids.append(readings.transaction_id)
            cp_ids.append(readings.charge_point_id)
            readings_wh.append(None if energy is None else energy[1])
            ats.append(None if energy is None else energy[0])
            nows.append(now)
        arrays = tuple(
            bind_array(conn.dialect, type_, values, utf8)
            for type_, values in zip(run.types, columns, strict=True)
        )
        statements.append((run.sql, arrays))
        statements.append((run.read, arrays[:1]))
    found: list[TransactionRecord | None] = [None] * len(metered)
    # Each round's update, then its read (the rows it answers with).
    for places, rows in zip(rounds, driver_rows(conn, statements)[1::2], strict=True):
        for raw in rows:
            # ``ord`` counts from 1 within its round.
            found[places[raw[0] - 1]] = _SELECT_SESSION.record(conn, raw[1:], TransactionRecord)
    return found


@functools.cache
def _select_transaction() -> sa.Select[Any]:
    return sa.select(transactions).where(_tx.id == sa.bindparam("tx_id"))


def get_transaction(
    conn: Connection, transaction_id: int, *, unconfirmed: bool = False
) -> TransactionRecord | None:
    """The session with this OCPP transactionId, or None (also when unconfirmed, unless asked)."""
    record = first_record(conn, TransactionRecord, _select_transaction(), {"tx_id": transaction_id})
    if record is not None and not record.confirmed and not unconfirmed:
        return None
    return record


def lock_transaction(conn: Connection, transaction_id: int) -> TransactionRecord | None:
    """
    The session, its row locked until the database transaction ends (on
    PostgreSQL; SQLite has one writer anyway): a concurrent writer of the
    row, such as a MeterValues advancing its meter, waits, or is waited for
    and its update is what this returns.
    """
    return first_record(
        conn, TransactionRecord, _select_transaction().with_for_update(), {"tx_id": transaction_id}
    )


def active_transactions(
    conn: Connection, charge_point_id: str | None = None
) -> list[TransactionRecord]:
    """Sessions not yet stopped (of one charger, or all), oldest first."""
    query = sa.select(transactions).where(_tx.status == "active", visible)
    if charge_point_id is not None:
        query = query.where(_tx.charge_point_id == charge_point_id)
    return all_records(conn, TransactionRecord, query.order_by(_tx.id))


def _meter_value(mapping: Mapping[Any, Any]) -> MeterValueRecord:
    values = dict(mapping)
    if values["transaction_id"] == NO_TRANSACTION:
        values["transaction_id"] = None
    for key in ("phase", "context", "location"):
        values[key] = values[key] or None
    return from_mapping(MeterValueRecord, values)


def list_meter_values(
    conn: Connection, *, transaction_id: int | None = None, charge_point_id: str | None = None
) -> list[MeterValueRecord]:
    """
    Samples in time order, of a session or of a charger (or both filters).

    A session's samples are those its own charger sent with its id: another
    charger quoting the id (a bug, or a charger replaced) does not show up
    in, say, the session's energy chart.
    """
    if transaction_id is None and charge_point_id is None:
        raise ValueError("list_meter_values needs a transaction_id or a charge_point_id")
    mv = meter_values.c
    query = sa.select(meter_values)
    if transaction_id is not None:
        owner = sa.select(_tx.charge_point_id).where(_tx.id == transaction_id)
        if charge_point_id is not None:
            owner = owner.where(_tx.charge_point_id == charge_point_id)
        # The session's samples found by the sample key (charger, transaction,
        # time, ...). IN rather than = (one owner at most: the id is the key):
        # with an equality SQLite walked the charger's whole history in its
        # (charge_point_id, timestamp) index instead, for the order.
        query = query.where(mv.transaction_id == transaction_id, mv.charge_point_id.in_(owner))
    else:
        query = query.where(mv.charge_point_id == charge_point_id)
    rows = conn.execute(query.order_by(mv.timestamp, mv.id))
    return [_meter_value(row._mapping) for row in rows]


#: The measurands of a session's history (``session_meter_history``): what its page charts.
HISTORY_MEASURANDS = (measurands.ENERGY_REGISTER, measurands.POWER_IMPORT, measurands.SOC)


def session_meter_history(
    conn: Connection, session: TransactionRecord, *, points: int
) -> list[MeterSample]:
    """
    The session's phase-less :data:`HISTORY_MEASURANDS` samples in time
    order, at most ``points`` of each measurand: evenly thinned by rank in
    the database (the last sample of each of ``points`` equal runs, so the
    newest is always there), so a session of days costs the page no more
    than one of minutes. Only those its own charger sent with its id.
    """
    mv = meter_values.c
    rank = sa.func.row_number().over(partition_by=mv.measurand, order_by=(mv.timestamp, mv.id))
    count = sa.func.count().over(partition_by=mv.measurand)
    ranked = (
        sa.select(
            mv.timestamp,
            mv.measurand,
            mv.value,
            mv.unit,
            mv.id,
            rank.label("rank"),
            count.label("total"),
        )
        .where(
            mv.transaction_id == session.id,
            mv.charge_point_id == session.charge_point_id,
            mv.phase == "",
            mv.measurand.in_(HISTORY_MEASURANDS),
        )
        .subquery()
    )
    r = ranked.c
    # Rank r ends a run when r * points // count steps up (integer division):
    # every rank when there are at most ``points``, else ``points`` of them.
    query = (
        sa.select(r.timestamp, r.measurand, r.value, r.unit)
        .where(((r.rank * points) // r.total) > (((r.rank - 1) * points) // r.total))
        .order_by(r.timestamp, r.id)
    )
    return [
        MeterSample(
            timestamp=row.timestamp, value=row.value, measurand=row.measurand, unit=row.unit
        )
        for row in conn.execute(query)
    ]


def list_unmatched_stops(conn: Connection, charge_point_id: str) -> list[UnmatchedStopRecord]:
    """The charger's stops that matched no session of its own, in arrival order."""
    return all_records(
        conn,
        UnmatchedStopRecord,
        sa.select(unmatched_stops)
        .where(unmatched_stops.c.charge_point_id == charge_point_id)
        .order_by(unmatched_stops.c.id),
    )


def unmatched_stops_page(
    conn: Connection, charge_point_id: str, *, before_id: int | None, limit: int
) -> list[UnmatchedStopRecord]:
    """
    The charger's stops that changed no session (unknown, or after the
    central system closed it), newest first, in keyset pages by id.
    """
    query = sa.select(unmatched_stops).where(unmatched_stops.c.charge_point_id == charge_point_id)
    if before_id is not None:
        query = query.where(unmatched_stops.c.id < before_id)
    return all_records(
        conn, UnmatchedStopRecord, query.order_by(unmatched_stops.c.id.desc()).limit(limit)
    )


def session_started_after(
    conn: Connection,
    *,
    charge_point_id: str,
    id_tag: str,
    since: datetime,
    connector_id: int | None = None,
) -> TransactionRecord | None:
    """
    The first session of this charger and tag (and connector, if given) whose
    StartTransaction arrived at or after ``since``: what a remote start led to.
    Derived rather than stored, so nothing has to link the two at start time.
    """
    query = sa.select(transactions).where(
        _tx.charge_point_id == charge_point_id,
        _tx.id_tag == canonical_id_tag(id_tag),
        _tx.created_at >= since,
        visible,
    )
    if connector_id is not None:
        query = query.where(_tx.connector_id == connector_id)
    return first_record(conn, TransactionRecord, query.order_by(_tx.id).limit(1))


def list_sessions_page(
    conn: Connection,
    *,
    charge_point_id: str | None = None,
    user_id: int | None = None,
    status: str | None = None,
    review_status: str | None = None,
    started_from: datetime | None = None,
    started_before: datetime | None = None,
    before_id: int | None = None,
    limit: int,
) -> list[TransactionRecord]:
    """
    Sessions newest first (by id, which grows with arrival), filtered by
    charger, user, status, review status and ``started_from <= started_at <
    started_before``;
    page with ``before_id`` = the last id of the previous page (keyset
    pagination: stable while new sessions arrive at the top).
    """
    query = sa.select(transactions).where(visible)
    if charge_point_id is not None:
        query = query.where(_tx.charge_point_id == charge_point_id)
    if user_id is not None:
        query = query.where(_tx.user_id == user_id)
    if status is not None:
        query = query.where(_tx.status == status)
    if review_status is not None:
        query = query.where(_tx.review_status == review_status)
    if started_from is not None:
        query = query.where(_tx.started_at >= started_from)
    if started_before is not None:
        query = query.where(_tx.started_at < started_before)
    if before_id is not None:
        query = query.where(_tx.id < before_id)
    return all_records(conn, TransactionRecord, query.order_by(_tx.id.desc()).limit(limit))


def set_cost(conn: Connection, transaction_id: int, *, cost: int, currency: str) -> bool:
    """
    Price a completed session, once: a resent StopTransaction or a redelivered
    message never re-prices (or re-bills) it. Whether it was priced now.
    """
    result = conn.execute(
        transactions.update()
        .where(_tx.id == transaction_id, _tx.status == "completed", _tx.cost.is_(None))
        .values(cost=cost, currency=currency)
    )
    return bool(result.rowcount)


def hold_for_review(
    conn: Connection,
    transaction_id: int,
    *,
    computed_cost: int,
    currency: str,
    reasons: tuple[str, ...],
    now: datetime,
) -> bool:
    """
    Hold a completed, unpriced session for an operator's review, once:
    nothing billed (``cost`` stays NULL), ``computed_cost`` kept for the
    decision. Whether it was held now.
    """
    result = conn.execute(
        transactions.update()
        .where(
            _tx.id == transaction_id,
            _tx.status == "completed",
            _tx.cost.is_(None),
            _tx.review_status.is_(None),
        )
        .values(
            review_status="pending",
            review_cost=computed_cost,
            review_reasons=",".join(reasons),
            currency=currency,
            updated_at=now,
        )
    )
    return bool(result.rowcount)


def decide_review(
    conn: Connection,
    transaction_id: int,
    *,
    decision: str,
    cost: int,
    by: int,
    note: str | None,
    now: datetime,
) -> bool:
    """
    Record an operator's decision on a session held for review and its
    billed ``cost``, once: False when it is not (or no longer) pending, so
    two operators deciding at once cannot both bill it.
    """
    if decision not in REVIEW_STATUSES or decision == "pending":
        raise ValueError(f"review decision {decision!r} is not one of {REVIEW_STATUSES[1:]}")
    result = conn.execute(
        transactions.update()
        .where(_tx.id == transaction_id, _tx.review_status == "pending")
        .values(
            review_status=decision,
            cost=cost,
            reviewed_by=by,
            reviewed_at=now,
            review_note=note,
            updated_at=now,
        )
    )
    return bool(result.rowcount)
