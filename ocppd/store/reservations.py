"""Reservations (OCPP 1.6 ReserveNow) that ocppd made and what became of them."""

from __future__ import annotations

from datetime import datetime

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import first_record
from ocppd.store.tables import RESERVATION_STATUSES, reservations
from ocppd.store.tags import canonical_id_tag


@attrs.frozen
class ReservationRecord:
    id: int
    charge_point_id: str
    connector_id: int
    id_tag: str
    expires_at: datetime
    status: str
    command_id: str | None
    created_at: datetime
    updated_at: datetime


def allocate_reservation(
    conn: Connection,
    *,
    charge_point_id: str,
    connector_id: int,
    id_tag: str,
    expires_at: datetime,
    command_id: str | None,
    now: datetime,
) -> int:
    """A new reservationId, unique across nodes (the row's key), status ``requested``."""
    result = conn.execute(
        reservations.insert().values(
            charge_point_id=charge_point_id,
            connector_id=connector_id,
            id_tag=canonical_id_tag(id_tag),
            expires_at=expires_at,
            status="requested",
            command_id=command_id,
            created_at=now,
            updated_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def set_reservation_status(
    conn: Connection, reservation_id: int, status: str, *, now: datetime
) -> bool:
    """Record what the charger answered (or that it could not); whether it is ours."""
    if status not in RESERVATION_STATUSES:
        raise ValueError(f"reservation status {status!r} is not one of {RESERVATION_STATUSES}")
    result = conn.execute(
        reservations.update()
        .where(reservations.c.id == reservation_id)
        .values(status=status, updated_at=now)
    )
    return bool(result.rowcount)


def get_reservation(conn: Connection, reservation_id: int) -> ReservationRecord | None:
    return first_record(
        conn, ReservationRecord, sa.select(reservations).where(reservations.c.id == reservation_id)
    )
