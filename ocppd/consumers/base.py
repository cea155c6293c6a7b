"""What every consumer of the bus shares: start/stop, and applying each message once."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import attrs
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.logger import Logger

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError, Delivery, IBus, IConsumer
from ocppd.bus.publisher import EventPublisher
from ocppd.store import processed
from ocppd.store.database import Database
from ocppd.timeutil import parse_iso


@attrs.frozen
class FollowUp:
    """A domain event that applying a message made true (``docs/events.md``)."""

    routing_key: str
    payload: dict[str, Any]
    charge_point_id: str | None = None


#: Called with each follow-up once it is committed (and published, if it could be).
FollowUpHook = Callable[[FollowUp], Any]


class BusConsumer:
    """
    Consumes one queue into the store. Each envelope is applied in one
    database transaction that first claims its id (``processed_messages``),
    so at-least-once delivery has its effects exactly once. Subclasses name
    themselves (``name``, the claim's key) and implement ``effects``, which
    may return the domain events the change made true.

    Those follow-ups are published after the transaction commits, never
    before (no event announces a change that was rolled back). A failed
    publish is logged and the message is still acknowledged: re-applying a
    stored message for the sake of a notification would be the worse trade
    (see docs/events.md).
    """

    name = ""
    log = Logger()

    def __init__(
        self,
        bus: IBus,
        database: Database,
        *,
        events: EventPublisher | None = None,
        on_follow_up: FollowUpHook | None = None,
    ) -> None:
        self._bus = bus
        self._database = database
        self._events = events
        self._on_follow_up = on_follow_up
        self._consumer: IConsumer | None = None

    def start(self, queue: str) -> Deferred[IConsumer]:
        def started(consumer: IConsumer) -> IConsumer:
            self._consumer = consumer
            return consumer

        return self._bus.consume(queue, self.handle).addCallback(started)

    def stop(self) -> Deferred[None] | None:
        consumer, self._consumer = self._consumer, None
        return consumer.stop() if consumer is not None else None

    @inlineCallbacks
    def handle(self, delivery: Delivery) -> Generator[Deferred[Any], Any, bool]:
        applied, follow_ups = yield self._database.run(self.apply_collecting, delivery.envelope)
        for follow_up in follow_ups:
            yield self._announce(follow_up)
        return bool(applied)

    @inlineCallbacks
    def _announce(self, follow_up: FollowUp) -> Generator[Deferred[Any], Any, None]:
        if self._events is not None:
            try:
                yield self._events.publish(
                    follow_up.routing_key,
                    follow_up.payload,
                    charge_point_id=follow_up.charge_point_id,
                )
            except BusError as e:
                # Expected while the broker is away or the node stops (the bus
                # drains into consumers after it stops taking publishes).
                self.log.warn(
                    "{consumer} could not publish {routing_key}: {error}",
                    consumer=self.name,
                    routing_key=follow_up.routing_key,
                    error=str(e),
                )
            except Exception:
                self.log.failure(
                    "{consumer} could not publish {routing_key}",
                    consumer=self.name,
                    routing_key=follow_up.routing_key,
                )
        if self._on_follow_up is not None:
            # Not awaited: acting on an event (say, a remote stop that waits
            # for the charger) must not hold up the next message.
            maybeDeferred(self._on_follow_up, follow_up).addErrback(
                lambda failure: self.log.failure(
                    "{consumer} failed to act on {routing_key}",
                    failure,
                    consumer=self.name,
                    routing_key=follow_up.routing_key,
                )
            )

    def apply(self, conn: Connection, envelope: Envelope) -> bool:
        """Apply one envelope inside ``conn``'s transaction; False if seen before."""
        return self.apply_collecting(conn, envelope)[0]

    def apply_collecting(self, conn: Connection, envelope: Envelope) -> tuple[bool, list[FollowUp]]:
        """``apply``, and the follow-ups to announce once ``conn`` commits."""
        if not processed.claim_message(conn, self.name, envelope.id, now=parse_iso(envelope.time)):
            return False, []
        return True, list(self.effects(conn, envelope) or ())

    def effects(self, conn: Connection, envelope: Envelope) -> list[FollowUp] | None:
        raise NotImplementedError
