"""
The audit log, for operators (admin): ``GET /api/cms/audit``.

Every charger command (``command.*``: requested, then answered or failed),
every CMS change (``cms.*``), and every decision on money (``session.reviewed``,
``session.closed``, ...), newest first, filtered by charger, actor (id or
e-mail), kind (an action or its first words: ``command`` is every command,
``cms.tariff`` every tariff change) and time; keyset pages by entry id.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.api.errors import bad_request
from ocppd.api.http import parse_decimal
from ocppd.api.pagination import decode_cursor, page
from ocppd.bounds import INT32_MAX
from ocppd.store import audit
from ocppd.store.audit import AuditFilters, AuditRecord
from ocppd.store.database import Database
from ocppd.timeutil import format_iso, parse_iso

#: The filters of ``GET /api/cms/audit``, as the query names them.
FILTERS = ("chargePointId", "userId", "email", "kind", "from", "to")
#: An action or its first words: lower-case words joined by dots (``cms.tariff``).
KIND = re.compile(r"[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*")
MAX_KIND = 64
MAX_EMAIL = 254
LIST = "audit"


def audit_filters(args: dict[str, str | None]) -> AuditFilters:
    """The query's filters, bounded; 400 naming a bad one."""
    # Compared for equality only: any text (the request line bounds its length).
    charge_point_id = args.get("chargePointId")
    user_id = None
    if args.get("userId") is not None:
        user_id = parse_decimal(args["userId"] or "", maximum=INT32_MAX)
        if not user_id:
            raise bad_request("a positive integer", field="userId")
    email = args.get("email")
    if email is not None and not 0 < len(email) <= MAX_EMAIL:
        raise bad_request(f"an e-mail address of at most {MAX_EMAIL} characters", field="email")
    kind = args.get("kind")
    if kind is not None and (len(kind) > MAX_KIND or not KIND.fullmatch(kind)):
        raise bad_request(
            "an action or its first words, such as command or cms.tariff", field="kind"
        )
    times: dict[str, datetime | None] = {}
    for name in ("from", "to"):
        text = args.get(name)
        try:
            times[name] = None if text is None else parse_iso(text)
        except ValueError:
            raise bad_request("an ISO-8601 time", field=name) from None
    return AuditFilters(
        charge_point_id=charge_point_id,
        actor_user_id=user_id,
        actor_email=email,
        kind=kind,
        at_from=times["from"],
        at_before=times["to"],
    )


def audit_entry_json(entry: tuple[AuditRecord, str | None]) -> dict[str, Any]:
    record, email = entry
    detail = record.detail if isinstance(record.detail, dict) else {}
    by = detail.get("by")
    recorded = by.get("email") if isinstance(by, dict) else None
    return {
        "id": record.id,
        "at": format_iso(record.at),
        "action": record.action,
        "outcome": record.outcome,
        "chargePointId": record.charge_point_id,
        "commandId": record.command_id,
        # The account's e-mail now, else as the entry recorded it (deleted since).
        "by": None
        if record.actor_user_id is None
        else {"userId": record.actor_user_id, "email": email or recorded},
        "detail": record.detail,
    }


class AuditLog:
    """Pages of the audit log."""

    def __init__(self, database: Database) -> None:
        self._database = database

    @inlineCallbacks
    def entries(
        self, args: dict[str, str | None], limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        filters = audit_filters(args)
        before = decode_cursor(cursor, LIST, int)
        rows = yield self._database.run(
            audit.list_audit_page, filters, before_id=before, limit=limit + 1
        )
        return page(LIST, rows, limit, lambda row: row[0].id, audit_entry_json)
