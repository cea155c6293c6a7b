"""
The audit consumer: keeps ``command.*`` and ``audit.*`` events in the audit
log, once each (claimed by envelope id in the same transaction).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from ocppd.bus.envelope import Envelope
from ocppd.consumers.base import BusConsumer, DeferredWrites
from ocppd.store import audit
from ocppd.timeutil import parse_iso

CONSUMER = "audit"


def audit_action(routing_key: str) -> tuple[str, str]:
    """
    (action, outcome) of an audited event. ``command.reset.requested`` is the
    action ``command.reset`` at its ``requested`` stage; ``audit.cms.station.created``
    is ``cms.station.created``, a change already carried out: ``answered``.
    """
    kind, _, rest = routing_key.partition(".")
    if kind == "audit":
        return rest, "answered"
    name, _, stage = rest.rpartition(".")
    if stage in ("requested", "answered", "failed") and name:
        return f"{kind}.{name}", stage
    return routing_key, "answered"


class AuditConsumer(BusConsumer):
    """Consumes ``topology.AUDIT_QUEUE`` into the audit log."""

    name = CONSUMER

    def effects(self, conn: Connection, envelope: Envelope, writes: DeferredWrites) -> None:
        at = parse_iso(envelope.time)
        action, outcome = audit_action(envelope.type)
        payload = envelope.payload
        by = payload.get("by") or {}
        audit.add_audit_entry(
            conn,
            at=at,
            actor_user_id=by.get("userId"),
            action=action,
            outcome=outcome,
            detail=payload,
            charge_point_id=envelope.charge_point_id,
            command_id=payload.get("commandId"),
        )
