"""The audit log: who asked for what (charger commands, CMS changes) and what came of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import all_records
from ocppd.store.tables import AUDIT_OUTCOMES, audit_log


@attrs.frozen
class AuditRecord:
    id: int
    at: datetime
    actor_user_id: int | None
    action: str
    charge_point_id: str | None
    command_id: str | None
    outcome: str
    detail: Any


def add_audit_entry(
    conn: Connection,
    *,
    at: datetime,
    actor_user_id: int | None,
    action: str,
    outcome: str,
    detail: dict[str, Any],
    charge_point_id: str | None = None,
    command_id: str | None = None,
) -> None:
    if outcome not in AUDIT_OUTCOMES:
        raise ValueError(f"audit outcome {outcome!r} is not one of {AUDIT_OUTCOMES}")
    conn.execute(
        audit_log.insert().values(
            at=at,
            actor_user_id=actor_user_id,
            action=action,
            outcome=outcome,
            detail=detail,
            charge_point_id=charge_point_id,
            command_id=command_id,
        )
    )


def list_audit_entries(
    conn: Connection, *, charge_point_id: str | None = None, command_id: str | None = None
) -> list[AuditRecord]:
    """Entries in order of writing, optionally of one charger or one command."""
    query = sa.select(audit_log)
    if charge_point_id is not None:
        query = query.where(audit_log.c.charge_point_id == charge_point_id)
    if command_id is not None:
        query = query.where(audit_log.c.command_id == command_id)
    return all_records(conn, AuditRecord, query.order_by(audit_log.c.id))
