"""
The audit consumer: keeps ``command.*`` and ``audit.*`` events in the audit
log, once each (claimed by envelope id in the same transaction).
"""

from __future__ import annotations

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery, IBus, IConsumer
from ocppd.store import audit, processed
from ocppd.store.database import Database
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


class AuditConsumer:
    log = Logger()

    def __init__(self, bus: IBus, database: Database) -> None:
        self._bus = bus
        self._database = database
        self._consumer: IConsumer | None = None

    def start(self, queue: str) -> Deferred[IConsumer]:
        def started(consumer: IConsumer) -> IConsumer:
            self._consumer = consumer
            return consumer

        return self._bus.consume(queue, self.handle).addCallback(started)

    def stop(self) -> Deferred[None] | None:
        consumer, self._consumer = self._consumer, None
        return consumer.stop() if consumer is not None else None

    def handle(self, delivery: Delivery) -> Deferred[bool]:
        return self._database.run(self.apply, delivery.envelope)

    def apply(self, conn: Connection, envelope: Envelope) -> bool:
        """Record one event; False if it was recorded before."""
        at = parse_iso(envelope.time)
        if not processed.claim_message(conn, CONSUMER, envelope.id, now=at):
            return False
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
        return True
