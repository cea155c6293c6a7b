"""The audit log: who asked for what (charger commands, CMS changes) and what came of it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import all_records
from ocppd.store.tables import AUDIT_OUTCOMES, audit_log, users
from ocppd.store.users import normalize_email


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


@attrs.frozen
class AuditFilters:
    """
    What the audit log page asks for: one charger's, one actor's (by id or by
    e-mail), one kind's (an action or its prefix: ``command`` is every
    ``command.*``), and ``at_from <= at < at_before``.
    """

    charge_point_id: str | None = None
    actor_user_id: int | None = None
    actor_email: str | None = None
    kind: str | None = None
    at_from: datetime | None = None
    at_before: datetime | None = None


def list_audit_page(
    conn: Connection, filters: AuditFilters, *, before_id: int | None, limit: int
) -> list[tuple[AuditRecord, str | None]]:
    """
    Entries newest first (by id, which grows with writing), each with its
    actor's e-mail (None: nobody, or an account deleted since); page with
    ``before_id`` = the last id of the previous page (keyset pagination:
    stable while new entries arrive at the top).
    """
    log = audit_log.c
    query = sa.select(audit_log, users.c.email).select_from(
        audit_log.outerjoin(users, users.c.id == log.actor_user_id)
    )
    if filters.charge_point_id is not None:
        query = query.where(log.charge_point_id == filters.charge_point_id)
    if filters.actor_user_id is not None:
        query = query.where(log.actor_user_id == filters.actor_user_id)
    if filters.actor_email is not None:
        query = query.where(users.c.email == normalize_email(filters.actor_email))
    if filters.kind is not None:
        query = query.where(
            sa.or_(
                log.action == filters.kind,
                log.action.startswith(filters.kind + ".", autoescape=True),
            )
        )
    if filters.at_from is not None:
        query = query.where(log.at >= filters.at_from)
    if filters.at_before is not None:
        query = query.where(log.at < filters.at_before)
    if before_id is not None:
        query = query.where(log.id < before_id)
    rows = conn.execute(query.order_by(log.id.desc()).limit(limit)).mappings()
    fields = [f.name for f in attrs.fields(AuditRecord)]
    return [(AuditRecord(**{name: row[name] for name in fields}), row["email"]) for row in rows]
