"""
Charge points and their connectors.

Everything a charger reports may arrive late, twice or out of order (the bus
redelivers, nodes publish concurrently), so every update here is conditional
on being newer than what is stored, done in one statement so that concurrent
writers cannot interleave between a read and a write.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.errors import AlreadyExists, InUse, NotFound
from ocppd.store.prepared import Prepared
from ocppd.store.records import (
    ChargePointRecord,
    ConnectorRecord,
    all_records,
    first_record,
)
from ocppd.store.sql import dialect_insert, insert_new, utc
from ocppd.store.tables import REGISTRATION_STATUSES, charge_points, connectors, transactions
from ocppd.store.types import UTCDateTime

__all__ = [
    "AlreadyExists",
    "NotFound",
    "add_charge_point",
    "connectors_of",
    "delete_charge_point",
    "drop_pending_key",
    "expire_liveness",
    "get_charge_point",
    "key_confirmed",
    "list_charge_points_page",
    "list_connectors",
    "record_boot",
    "register_pending_charge_point",
    "release_node",
    "renew_liveness",
    "set_charge_point_key",
    "set_connected",
    "set_connector_status",
    "set_disconnected",
    "set_pending_key",
    "set_registration_status",
    "touch_last_seen",
    "touch_last_seen_many",
    "update_charge_point",
    "upgrade_key_hash",
]

_cp = charge_points.c


def _check_registration_status(status: str) -> None:
    if status not in REGISTRATION_STATUSES:
        raise ValueError(f"registration status {status!r} is not one of {REGISTRATION_STATUSES}")


def _new_charge_point(
    charge_point_id: str,
    key_hash: str | None,
    *,
    registration_status: str,
    station_id: int | None = None,
    tariff_id: int | None = None,
    connector_type: str | None = None,
    max_power_w: int | None = None,
    boot_closes_sessions: bool = True,
    now: datetime,
) -> dict[str, object]:
    _check_registration_status(registration_status)
    values: dict[str, object] = {
        "charge_point_id": charge_point_id,
        "key_hash": key_hash,
        "registration_status": registration_status,
        "station_id": station_id,
        "tariff_id": tariff_id,
        "online": False,
        "created_at": now,
    }
    # Only when given: a charger registered by itself or by ocppctl has neither.
    if connector_type is not None:
        values["connector_type"] = connector_type
    if max_power_w is not None:
        values["max_power_w"] = max_power_w
    if not boot_closes_sessions:
        values["boot_closes_sessions"] = False
    return values


def add_charge_point(
    conn: Connection,
    charge_point_id: str,
    key_hash: str | None,
    *,
    station_id: int | None = None,
    tariff_id: int | None = None,
    registration_status: str = "Accepted",
    connector_type: str | None = None,
    max_power_w: int | None = None,
    boot_closes_sessions: bool = True,
    now: datetime,
) -> None:
    """
    Add a charger. ``key_hash`` is the hash of its Basic-auth key (None: no
    authentication, security profile 0). Raises AlreadyExists.
    """
    values = _new_charge_point(
        charge_point_id,
        key_hash,
        registration_status=registration_status,
        station_id=station_id,
        tariff_id=tariff_id,
        connector_type=connector_type,
        max_power_w=max_power_w,
        boot_closes_sessions=boot_closes_sessions,
        now=now,
    )
    if insert_new(conn, charge_points, values) is None:
        raise AlreadyExists(f"charge point {charge_point_id}")


def register_pending_charge_point(
    conn: Connection,
    charge_point_id: str,
    key_hash: str | None,
    *,
    max_pending: int,
    now: datetime,
) -> bool:
    """
    Record an unknown charger that connected under ``unknown_chargers =
    pending``, for an operator to accept; False (nothing written) when
    ``max_pending`` chargers are Pending already. A known charger is left as
    it is (also when two first connections race), so this can never change a
    key. Two transactions racing for the last place may both take it: the
    bound can be passed by the number of simultaneous first connections.
    """
    pending = conn.execute(
        sa.select(sa.func.count()).where(_cp.registration_status == "Pending")
    ).scalar_one()
    if pending >= max_pending:
        return False
    values = _new_charge_point(charge_point_id, key_hash, registration_status="Pending", now=now)
    insert_new(conn, charge_points, values)
    return True


def _update(conn: Connection, charge_point_id: str, **values: object) -> None:
    result = conn.execute(
        charge_points.update().where(_cp.charge_point_id == charge_point_id).values(**values)
    )
    if result.rowcount == 0:
        raise NotFound(f"charge point {charge_point_id}")


def set_charge_point_key(conn: Connection, charge_point_id: str, key_hash: str | None) -> None:
    """
    Replace the charger's key hash (None removes authentication), and forget a
    key being rotated in: the operator's word settles it. Raises NotFound.
    """
    _update(conn, charge_point_id, key_hash=key_hash, pending_key_hash=None)


def upgrade_key_hash(conn: Connection, charge_point_id: str, *, old: str, new: str) -> bool:
    """
    Store ``new`` (a hash of the same key in the current scheme) in place of
    ``old``; False, changing nothing, if the key hash is no longer ``old`` (an
    operator replaced the key meanwhile).
    """
    result = conn.execute(
        charge_points.update()
        .where(_cp.charge_point_id == charge_point_id, _cp.key_hash == old)
        .values(key_hash=new)
    )
    return bool(result.rowcount)


def set_pending_key(conn: Connection, charge_point_id: str, key_hash: str) -> bool:
    """
    A key is being sent to the charger (ChangeConfiguration AuthorizationKey):
    until :func:`key_confirmed` or :func:`drop_pending_key`, the charger may
    log in with it as well as with its current key. False if there is no such
    charger.
    """
    result = conn.execute(
        charge_points.update()
        .where(_cp.charge_point_id == charge_point_id)
        .values(pending_key_hash=key_hash)
    )
    return bool(result.rowcount)


def key_confirmed(conn: Connection, charge_point_id: str, key_hash: str) -> None:
    """
    The charger holds the key of ``key_hash`` (it accepted the change, or
    logged in with it): that is now its key, the only one. A pending key of a
    later change stays pending.
    """
    conn.execute(
        charge_points.update()
        .where(_cp.charge_point_id == charge_point_id)
        .values(
            key_hash=key_hash,
            pending_key_hash=sa.case(
                (_cp.pending_key_hash == key_hash, sa.null()), else_=_cp.pending_key_hash
            ),
        )
    )


def drop_pending_key(conn: Connection, charge_point_id: str, key_hash: str) -> None:
    """The charger refused the key of ``key_hash``: it is not pending any more."""
    conn.execute(
        charge_points.update()
        .where(_cp.charge_point_id == charge_point_id, _cp.pending_key_hash == key_hash)
        .values(pending_key_hash=None)
    )


def set_registration_status(conn: Connection, charge_point_id: str, status: str) -> None:
    """Accept, reject or hold a charger. Raises NotFound, or ValueError for another status."""
    _check_registration_status(status)
    _update(conn, charge_point_id, registration_status=status)


def get_charge_point(conn: Connection, charge_point_id: str) -> ChargePointRecord | None:
    """The charger, or None."""
    return first_record(
        conn,
        ChargePointRecord,
        sa.select(charge_points).where(_cp.charge_point_id == charge_point_id),
    )


def get_charge_points(
    conn: Connection, charge_point_ids: Collection[str]
) -> dict[str, ChargePointRecord]:
    """The chargers of ``charge_point_ids`` that exist, by id (one query)."""
    query = sa.select(charge_points).where(_cp.charge_point_id.in_(charge_point_ids))
    return {
        record.charge_point_id: record for record in all_records(conn, ChargePointRecord, query)
    }


def record_boot(
    conn: Connection,
    charge_point_id: str,
    *,
    vendor: str,
    model: str,
    serial_number: str | None = None,
    charge_box_serial_number: str | None = None,
    firmware_version: str | None = None,
    iccid: str | None = None,
    imsi: str | None = None,
    meter_type: str | None = None,
    meter_serial_number: str | None = None,
    at: datetime,
) -> None:
    """
    Store what a BootNotification said, unless a later boot is already
    stored (an old boot redelivered must not bring back old firmware).
    Raises NotFound for an unknown charger.
    """
    # On the driver's cursor (``ocppd.store.prepared``): one per boot, and a
    # node's restart brings a boot from every charger at once.
    matched = _RECORD_BOOT.rowcount(
        conn,
        {
            "cp_id": charge_point_id,
            "new_vendor": vendor,
            "new_model": model,
            "new_serial_number": serial_number,
            "new_charge_box_serial_number": charge_box_serial_number,
            "new_firmware_version": firmware_version,
            "new_iccid": iccid,
            "new_imsi": imsi,
            "new_meter_type": meter_type,
            "new_meter_serial_number": meter_serial_number,
            "at": at,
        },
    )
    if matched == 0 and get_charge_point(conn, charge_point_id) is None:
        raise NotFound(f"charge point {charge_point_id}")


def _later_of_bound(column: sa.ColumnElement[datetime], name: str) -> sa.ColumnElement[datetime]:
    """``later_of`` with the time a bound parameter ``name`` of a prepared statement."""
    value = sa.bindparam(name, type_=UTCDateTime())
    return sa.case((sa.or_(column.is_(None), column < value), value), else_=column)


_BOOT_FIELDS = (
    "vendor",
    "model",
    "serial_number",
    "charge_box_serial_number",
    "firmware_version",
    "iccid",
    "imsi",
    "meter_type",
    "meter_serial_number",
)


def _record_boot_statement() -> sa.Update:
    at = sa.bindparam("at", type_=UTCDateTime())
    # Bound as "new_..." (a parameter may not take a SET column's own name).
    said = {field: sa.bindparam(f"new_{field}", type_=_cp[field].type) for field in _BOOT_FIELDS}
    return (
        charge_points.update()
        .where(_cp.charge_point_id == sa.bindparam("cp_id"))
        .where(sa.or_(_cp.boot_at.is_(None), _cp.boot_at <= at))
        .values(
            **said,
            boot_at=at,
            last_seen_at=_later_of_bound(_cp.last_seen_at, "at"),
        )
    )


_RECORD_BOOT = Prepared(_record_boot_statement())


def set_connected(
    conn: Connection,
    charge_point_id: str,
    *,
    connection_id: str,
    node: str,
    at: datetime,
    fence: int | None = None,
    alive_at: datetime | None = None,
) -> bool:
    """
    The charger connected to ``node`` as ``connection_id`` at ``at``, with the
    presence ``fence`` of that connection's claim.

    Ignored (returns False) if a newer connection is already recorded: after a
    quick reconnect the two connect events may be processed in either order,
    and the newer socket must stay the current one. Newer is the greater fence
    (given by the shared presence, so right across nodes whatever their
    clocks); without fences on both sides, the later ``at``.

    ``alive_at`` (default ``at``) starts its liveness: the processor passes
    the time it stores the event, so a connect stored late (a backlog on the
    bus) still has a whole ``liveness_timeout`` to be renewed by its node.
    """
    parameters = connected_parameters(
        charge_point_id,
        connection_id=connection_id,
        node=node,
        at=at,
        fence=fence,
        alive_at=alive_at,
    )
    if fence is None:
        return bool(_CONNECTED.rowcount(conn, parameters))
    return bool(_CONNECTED_FENCED.rowcount(conn, parameters))


def connected_parameters(
    charge_point_id: str,
    *,
    connection_id: str,
    node: str,
    at: datetime,
    fence: int | None,
    alive_at: datetime | None,
) -> dict[str, Any]:
    """The parameters of ``connected_statement`` (fenced when ``fence`` is not None)."""
    parameters: dict[str, Any] = {
        "cp_id": charge_point_id,
        "new_connection_id": connection_id,
        "new_node": node,
        "at": at,
        "alive": at if alive_at is None else max(at, alive_at),
    }
    if fence is not None:
        parameters["fence"] = fence
    return parameters


def connected_statement(*, fenced: bool) -> sa.Update:
    """``set_connected``'s UPDATE (for ``ocppd.store.connections`` to run with its own)."""
    return _connected_statement(fenced=fenced)


def _connected_statement(*, fenced: bool) -> sa.Update:
    at = sa.bindparam("at", type_=UTCDateTime())
    fence = sa.bindparam("fence", type_=_cp.connection_fence.type) if fenced else None
    by_time = sa.or_(_cp.connected_at.is_(None), _cp.connected_at <= at)
    if fence is None:
        newer = by_time
    else:
        newer = sa.or_(
            sa.and_(_cp.connection_fence.is_(None), by_time), _cp.connection_fence < fence
        )
    return (
        charge_points.update()
        .where(_cp.charge_point_id == sa.bindparam("cp_id"))
        .where(newer)
        .values(
            online=True,
            connection_id=sa.bindparam("new_connection_id", type_=_cp.connection_id.type),
            node=sa.bindparam("new_node", type_=_cp.node.type),
            connected_at=at,
            connection_fence=fence,
            alive_at=_later_of_bound(_cp.alive_at, "alive"),
            last_seen_at=_later_of_bound(_cp.last_seen_at, "at"),
        )
    )


_CONNECTED = Prepared(_connected_statement(fenced=False))
_CONNECTED_FENCED = Prepared(_connected_statement(fenced=True))


@functools.cache
def _renew_statement() -> sa.Update:
    return (
        charge_points.update()
        .where(_cp.charge_point_id == sa.bindparam("cp_id"))
        .where(_cp.connection_id == sa.bindparam("conn_id"))
        .where(_cp.node == sa.bindparam("node_id"))
        .values(alive_at=sa.bindparam("alive", type_=UTCDateTime()), online=True)
    )


def renew_liveness(
    conn: Connection, held: list[tuple[str, str]], *, node: str, at: datetime
) -> None:
    """
    ``node`` holds the sockets ``held`` (``(charge_point_id, connection_id)``)
    at ``at``: their liveness is renewed, in one batched statement. Only rows
    recording that very socket on that node change, so a charger that moved
    to another node (or whose connect event is not stored yet) is left alone.

    It also sets ``online`` again: a node stalled past the timeout (its chargers
    swept offline meanwhile) puts the chargers it still holds back online.
    """
    if held:
        conn.execute(
            _renew_statement(),
            [
                {"cp_id": cp_id, "conn_id": conn_id, "node_id": node, "alive": at}
                for cp_id, conn_id in sorted(held)
            ],
        )


_RELEASED_COLUMNS = (
    _cp.charge_point_id,
    _cp.connection_id,
    _cp.alive_at,
    _cp.connected_at,
    _cp.created_at,
)
#: A charger marked offline by the liveness sweep: its id, the socket the row
#: recorded, and when a node last vouched for it (its last sign of life).
Released = tuple[str, str | None, datetime]


def _released(result: sa.CursorResult[Any]) -> list[Released]:
    return sorted(
        (row.charge_point_id, row.connection_id, row.alive_at or row.connected_at or row.created_at)
        for row in result
    )


def expire_liveness(conn: Connection, *, before: datetime) -> list[Released]:
    """
    Mark offline every online charger whose liveness is older than ``before``
    (no node renewed it: the node holding it died or lost its database); the
    chargers marked (``Released``). One conditional statement,
    so a renewal or reconnect committed first keeps its charger online.
    Rows never renewed count from their connect (from before liveness existed).
    """
    vouched = sa.func.coalesce(_cp.alive_at, _cp.connected_at, _cp.created_at)
    result = conn.execute(
        charge_points.update()
        .where(_cp.online.is_(True), vouched < utc(before))
        .values(online=False)
        .returning(*_RELEASED_COLUMNS)
    )
    return _released(result)


def release_node(conn: Connection, node: str) -> list[Released]:
    """
    Mark offline every charger recorded as held by ``node``: at its start,
    ``node`` holds none (its previous process ended, maybe by a crash). The
    chargers marked (``Released``). Node ids must be unique among
    the nodes sharing a database (docs/operations.md).
    """
    result = conn.execute(
        charge_points.update()
        .where(_cp.online.is_(True), _cp.node == node)
        .values(online=False)
        .returning(*_RELEASED_COLUMNS)
    )
    return _released(result)


def set_disconnected(
    conn: Connection,
    charge_point_id: str,
    *,
    connection_id: str,
    at: datetime,
    fence: int | None = None,
) -> bool:
    """
    The socket ``connection_id`` (presence ``fence``) closed at ``at``: the
    charger is offline, but only if that socket is still its current one.
    When a charger reconnects, the old socket's disconnect often comes after
    the new socket's connect and must not mark the charger offline; a
    disconnect whose fence is older than the recorded one never applies.

    A disconnect with a fence newer than the recorded one is of a connection
    whose connect is still on its way (events of one charger from two nodes
    arrive in any order): it applies and records that fence, so the late
    connect, no newer, changes nothing and the charger is not shown online
    without a socket. Returns whether it applied.
    """
    parameters = disconnected_parameters(
        charge_point_id, connection_id=connection_id, at=at, fence=fence
    )
    if fence is None:
        return bool(_DISCONNECTED.rowcount(conn, parameters))
    return bool(_DISCONNECTED_FENCED.rowcount(conn, parameters))


def disconnected_parameters(
    charge_point_id: str, *, connection_id: str, at: datetime, fence: int | None
) -> dict[str, Any]:
    """The parameters of ``disconnected_statement`` (fenced when ``fence`` is not None)."""
    parameters: dict[str, Any] = {"cp_id": charge_point_id, "conn_id": connection_id, "at": at}
    if fence is not None:
        parameters["fence"] = fence
    return parameters


def disconnected_statement(*, fenced: bool) -> sa.Update:
    """``set_disconnected``'s UPDATE (for ``ocppd.store.connections`` to run with its own)."""
    return _disconnected_statement(fenced=fenced)


def _disconnected_statement(*, fenced: bool) -> sa.Update:
    connection_id = sa.bindparam("conn_id", type_=_cp.connection_id.type)
    statement = charge_points.update().where(_cp.charge_point_id == sa.bindparam("cp_id"))
    current = _cp.connection_id == connection_id
    values: dict[str, Any] = {
        "online": False,
        "last_seen_at": _later_of_bound(_cp.last_seen_at, "at"),
    }
    if not fenced:
        return statement.where(current).values(**values)
    fence = sa.bindparam("fence", type_=_cp.connection_fence.type)
    statement = statement.where(
        sa.or_(
            sa.and_(current, sa.or_(_cp.connection_fence.is_(None), _cp.connection_fence <= fence)),
            _cp.connection_fence < fence,
        )
    )
    return statement.values(connection_id=connection_id, connection_fence=fence, **values)


_DISCONNECTED = Prepared(_disconnected_statement(fenced=False))
_DISCONNECTED_FENCED = Prepared(_disconnected_statement(fenced=True))


def touch_last_seen(conn: Connection, charge_point_id: str, at: datetime) -> None:
    """Move ``last_seen_at`` forward to ``at``; never back (messages may be late)."""
    touch_last_seen_many(conn, [(charge_point_id, at)])


@functools.cache
def _touch_statement() -> sa.Update:
    seen_at = sa.bindparam("seen_at", type_=UTCDateTime())
    return (
        charge_points.update()
        .where(_cp.charge_point_id == sa.bindparam("cp_id"))
        .where(sa.or_(_cp.last_seen_at.is_(None), _cp.last_seen_at < seen_at))
        .values(last_seen_at=seen_at)
    )


def touch_last_seen_many(conn: Connection, seen: list[tuple[str, datetime]]) -> None:
    """``touch_last_seen`` for many ``(charge_point_id, at)``: one update per charger, at once."""
    latest: dict[str, datetime] = {}
    for charge_point_id, at in seen:
        if charge_point_id not in latest or latest[charge_point_id] < at:
            latest[charge_point_id] = at
    if latest:
        conn.execute(
            _touch_statement(),
            [{"cp_id": cp_id, "seen_at": at} for cp_id, at in sorted(latest.items())],
        )


def set_connector_status(
    conn: Connection,
    charge_point_id: str,
    connector_id: int,
    *,
    status: str,
    error_code: str,
    info: str | None = None,
    vendor_error_code: str | None = None,
    at: datetime,
) -> bool:
    """
    Store a StatusNotification (``at`` is its timestamp) unless a newer one
    is stored already; returns whether it applied.

    One upsert statement, so two notifications processed concurrently for a
    new connector cannot both insert, and the newer always wins.
    """
    values = {
        "charge_point_id": charge_point_id,
        "connector_id": connector_id,
        "status": status,
        "error_code": error_code,
        "info": info,
        "vendor_error_code": vendor_error_code,
        "status_at": at,
    }
    # On the driver's cursor (``ocppd.store.prepared``): one per StatusNotification.
    return _prepared_status_upsert(conn.dialect.name).first(conn, values) is not None


@functools.cache
def _status_upsert(dialect: str) -> sa.Insert:
    insert = dialect_insert(dialect, connectors)
    upsert = insert.on_conflict_do_update(
        index_elements=[connectors.c.charge_point_id, connectors.c.connector_id],
        set_={
            "status": insert.excluded.status,
            "error_code": insert.excluded.error_code,
            "info": insert.excluded.info,
            "vendor_error_code": insert.excluded.vendor_error_code,
            "status_at": insert.excluded.status_at,
        },
        where=connectors.c.status_at <= insert.excluded.status_at,
    )
    # RETURNING, not rowcount: SQLAlchemy reports -1 for this statement on psycopg.
    return upsert.returning(connectors.c.connector_id)


@functools.cache
def _prepared_status_upsert(dialect: str) -> Prepared:
    return Prepared(_status_upsert(dialect))


def list_connectors(conn: Connection, charge_point_id: str) -> list[ConnectorRecord]:
    """The charger's connectors that have reported a status, by connector id."""
    return all_records(
        conn,
        ConnectorRecord,
        sa.select(connectors)
        .where(connectors.c.charge_point_id == charge_point_id)
        .order_by(connectors.c.connector_id),
    )


def list_charge_points_page(
    conn: Connection, *, after_id: str | None = None, limit: int
) -> list[ChargePointRecord]:
    """Up to ``limit`` chargers in id order, after ``after_id`` (keyset pagination)."""
    query = sa.select(charge_points)
    if after_id is not None:
        query = query.where(_cp.charge_point_id > after_id)
    return all_records(conn, ChargePointRecord, query.order_by(_cp.charge_point_id).limit(limit))


def connectors_of(
    conn: Connection, charge_point_ids: list[str]
) -> dict[str, list[ConnectorRecord]]:
    """The connectors of several chargers in one query (a page of a list), by charger."""
    found: dict[str, list[ConnectorRecord]] = {cp: [] for cp in charge_point_ids}
    if not charge_point_ids:
        return found
    rows = all_records(
        conn,
        ConnectorRecord,
        sa.select(connectors)
        .where(connectors.c.charge_point_id.in_(charge_point_ids))
        .order_by(connectors.c.charge_point_id, connectors.c.connector_id),
    )
    for row in rows:
        found[row.charge_point_id].append(row)
    return found


def update_charge_point(
    conn: Connection,
    charge_point_id: str,
    *,
    station_id: int | None,
    tariff_id: int | None,
    registration_status: str,
    connector_type: str | None = None,
    max_power_w: int | None = None,
    boot_closes_sessions: bool = True,
) -> None:
    """
    Set what an operator decides about a charger (its key has
    ``set_charge_point_key``). Raises NotFound, or ValueError for an unknown
    registration status; a missing station or tariff fails the foreign key.
    """
    _check_registration_status(registration_status)
    _update(
        conn,
        charge_point_id,
        station_id=station_id,
        tariff_id=tariff_id,
        registration_status=registration_status,
        connector_type=connector_type,
        max_power_w=max_power_w,
        boot_closes_sessions=boot_closes_sessions,
    )


def boot_closes_sessions(conn: Connection, charge_point_id: str) -> bool:
    """Whether the charger's BootNotification closes its open sessions (unknown: True)."""
    value = conn.execute(
        sa.select(_cp.boot_closes_sessions).where(_cp.charge_point_id == charge_point_id)
    ).scalar()
    return value is not False


def delete_charge_point(conn: Connection, charge_point_id: str) -> None:
    """
    Delete a charger with its connectors, meter values and unmatched stops.
    Raises NotFound, or InUse when sessions refer to it: those are billing
    history, which is never deleted as a side effect.
    """
    if get_charge_point(conn, charge_point_id) is None:
        raise NotFound(f"charge point {charge_point_id}")
    sessions = conn.execute(
        sa.select(sa.func.count())
        .select_from(transactions)
        .where(transactions.c.charge_point_id == charge_point_id)
    ).scalar_one()
    if sessions:
        raise InUse(f"charge point {charge_point_id} has {sessions} session(s)")
    conn.execute(charge_points.delete().where(_cp.charge_point_id == charge_point_id))


#: The state columns of a charger's file transfers, by kind.
FILE_STATUS_COLUMNS = {
    "firmware": ("firmware_status", "firmware_status_at"),
    "diagnostics": ("diagnostics_status", "diagnostics_status_at"),
}


def record_file_status(
    conn: Connection, charge_point_id: str, kind: str, *, status: str, at: datetime
) -> bool:
    """
    Store what a FirmwareStatusNotification (``kind`` ``firmware``) or a
    DiagnosticsStatusNotification (``diagnostics``) said, received ``at``,
    unless a later one is stored already (a late redelivery changes nothing).
    Whether it was stored.
    """
    status_column, at_column = FILE_STATUS_COLUMNS[kind]
    cp = charge_points.c
    result = conn.execute(
        charge_points.update()
        .where(cp.charge_point_id == charge_point_id)
        .where(sa.or_(cp[at_column].is_(None), cp[at_column] <= at))
        .values({status_column: status, at_column: at})
    )
    return bool(result.rowcount)
