"""
Staging domain events in the database transaction of the change they describe.

A service writes its change and, in the same transaction, ``stage``s the
events announcing it; once the transaction has committed it calls ``flush``,
which wakes this node's ``OutboxRelay`` (``ocppd.bus.relay``) to publish
them. A change is thus never committed without its events, nor announced
without being committed, whatever the bus does meanwhile (docs/bus.md,
"Outbox").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from ocppd.bus.envelope import Envelope, new_id
from ocppd.bus.interface import encode_envelope
from ocppd.store import outbox as store
from ocppd.store.database import Database
from ocppd.timeutil import format_iso, from_timestamp

if TYPE_CHECKING:
    from ocppd.bus.relay import OutboxRelay

#: An event to stage: routing key, payload, charge point id (or None).
Event = tuple[str, dict[str, Any], str | None]

P = ParamSpec("P")
T = TypeVar("T")


class Outbox:
    """Stages events (in a database thread) and wakes the relay (in the reactor thread)."""

    def __init__(self, *, node: str, clock: IReactorTime, relay: OutboxRelay | None = None) -> None:
        self.node = node
        self._clock = clock
        self.relay = relay

    def now(self) -> datetime:
        return from_timestamp(self._clock.seconds())

    def stage(
        self,
        conn: Connection,
        routing_key: str,
        payload: dict[str, Any],
        *,
        charge_point_id: str | None = None,
    ) -> None:
        """Write one event in ``conn``'s transaction."""
        self.stage_many(conn, [(routing_key, payload, charge_point_id)])

    def stage_many(self, conn: Connection, events: Iterable[Event]) -> None:
        """
        Write ``events`` in ``conn``'s transaction, in order, in one statement.
        Each gets its envelope id now, so a row published twice (the relay
        crashed between the bus's confirm and the row's deletion) reaches the
        consumers as one message they deduplicate.
        """
        # Thread-safe: ``IsoNow`` caches per second and is for the reactor thread.
        now = self.now()
        time = format_iso(now)
        rows = [
            {
                "node": self.node,
                "routing_key": routing_key,
                "envelope": encode_envelope(
                    Envelope(
                        id=new_id(),
                        type=routing_key,
                        time=time,
                        node=self.node,
                        charge_point_id=charge_point_id,
                        payload=payload,
                    )
                ).decode(),
                "created_at": now,
            }
            for routing_key, payload, charge_point_id in events
        ]
        store.add_events(conn, rows)

    def flush(self) -> Deferred[None]:
        """
        After the staging transaction committed: have the relay publish. Fires
        once it has tried (never fails; while the bus is down, at once: the
        events wait in the table and the relay's back-off retries them).
        """
        if self.relay is None:
            return succeed(None)
        return self.relay.wake()

    def run(
        self,
        database: Database,
        func: Callable[Concatenate[Any, P], T],
        events: Callable[[T], Iterable[Event]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Deferred[T]:
        """
        ``database.run(func, ...)`` with the events ``events(result)`` staged
        in the same transaction; fires with the result once the relay has
        tried to publish them (see ``flush``).
        """

        def change(conn: Connection) -> T:
            result = func(conn, *args, **kwargs)
            self.stage_many(conn, events(result))
            return result

        def flushed(result: T) -> Deferred[T]:
            return self.flush().addCallback(lambda _: result)

        return database.run(change).addCallback(flushed)
