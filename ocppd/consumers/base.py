"""What every consumer of the bus shares: start/stop, and applying each message once."""

from __future__ import annotations

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery, IBus, IConsumer
from ocppd.store import processed
from ocppd.store.database import Database
from ocppd.timeutil import parse_iso


class BusConsumer:
    """
    Consumes one queue into the store. Each envelope is applied in one
    database transaction that first claims its id (``processed_messages``),
    so at-least-once delivery has its effects exactly once. Subclasses name
    themselves (``name``, the claim's key) and implement ``effects``.
    """

    name = ""
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
        """Apply one envelope inside ``conn``'s transaction; False if seen before."""
        if not processed.claim_message(conn, self.name, envelope.id, now=parse_iso(envelope.time)):
            return False
        self.effects(conn, envelope)
        return True

    def effects(self, conn: Connection, envelope: Envelope) -> None:
        raise NotImplementedError
