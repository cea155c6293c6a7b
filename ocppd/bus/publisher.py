"""Publishing a payload as an envelope stamped with this node and the reactor's time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from ocppd.bus.envelope import Envelope, new_id
from ocppd.bus.interface import BusError, IBus
from ocppd.bus.memory import MemoryBus
from ocppd.bus.outcome import Outcome, outcome_of
from ocppd.logs import Logger
from ocppd.ratelog import RepeatLog
from ocppd.timeutil import IsoNow, from_timestamp


class EventPublisher:
    log = Logger()

    def __init__(self, bus: IBus, *, node: str, clock: IReactorTime) -> None:
        self._bus = bus
        #: The embedded bus, which has flow control and settles an announcement
        #: that no queue takes now without its envelope (``MemoryBus.pass_by``).
        self._memory_bus = bus if isinstance(bus, MemoryBus) else None
        self._node = node
        self._clock = clock
        #: ``format_iso(self.now())``, cheaply (a busy node asks for every message).
        self.now_iso = IsoNow(clock)
        self._failures = RepeatLog(self.log, clock)

    def now(self) -> datetime:
        return from_timestamp(self._clock.seconds())

    def publish(
        self,
        routing_key: str,
        payload: dict[str, Any],
        *,
        charge_point_id: str | None = None,
        flow: bool = False,
        time: str | None = None,
    ) -> Deferred[None]:
        """
        Fires once the bus has accepted the message (see ``IBus.publish``);
        with ``flow``, on the embedded bus, once its queues' backlog allows
        too (``MemoryBus`` flow control: for a charger's answer, never for a
        consumer's publish). RabbitMQ has flow control of its own.

        ``time`` is the envelope's, ``now_iso()`` unless the caller stamped
        the payload with it in the same reactor turn already.
        """
        envelope = self._envelope(routing_key, payload, charge_point_id, time)
        if flow and self._memory_bus is not None:
            return self._memory_bus.publish(routing_key, envelope, flow=True)
        return self._bus.publish(routing_key, envelope)

    def publish_flowed(
        self,
        routing_key: str,
        payload: dict[str, Any],
        *,
        charge_point_id: str | None = None,
        time: str | None = None,
    ) -> Outcome:
        """
        ``publish(flow=True)`` as an ``Outcome`` (a charger's answer waits for
        it): on the embedded bus without a Deferred per message; cancelling
        it cancels the bus's Deferred elsewhere.
        """
        envelope = self._envelope(routing_key, payload, charge_point_id, time)
        if self._memory_bus is None:
            return outcome_of(self._bus.publish(routing_key, envelope))
        published = Outcome()
        self._memory_bus.publish_to(published, routing_key, envelope, flow=True)
        return published

    def _envelope(
        self,
        routing_key: str,
        payload: dict[str, Any],
        charge_point_id: str | None,
        time: str | None,
    ) -> Envelope:
        """A new envelope of this node, stamped ``time`` or now."""
        # (id, type, time, node, charge_point_id, payload) by position: keywords
        # to a class cost a dict per call.
        return Envelope(
            new_id(),
            routing_key,
            self.now_iso() if time is None else time,
            self._node,
            charge_point_id,
            payload,
        )

    def announce(
        self, routing_key: str, payload: dict[str, Any], *, charge_point_id: str | None = None
    ) -> Deferred[None]:
        """
        Publish news of a change already made; never fails. The change stands
        either way, so a refused publish is logged, not raised (an error would
        have the caller redo the change): as a warning for a ``BusError``,
        expected while the broker is away or the node stops, with its
        traceback for anything else.

        Callbacks, not a generator: the processor announces a session.updated
        per MeterValues, and the embedded bus accepts it at once, so the
        returned Deferred has usually fired already (``BusConsumer`` then
        acknowledges without waiting on it). While no queue would take it
        (no browser on the node subscribes), the embedded bus settles it
        without its envelope (``MemoryBus.pass_by``).
        """
        try:
            published = None
            if self._memory_bus is not None:
                published = self._memory_bus.pass_by(
                    routing_key, payload, node=self._node, charge_point_id=charge_point_id
                )
            if published is None:
                published = self.publish(routing_key, payload, charge_point_id=charge_point_id)
        except Exception:
            published = fail()
        if published.called and not published.paused and published.result is None:
            # Accepted at once (the embedded bus): nothing to catch, and an
            # errback added now would only run the Deferred's callback loop.
            return published
        return published.addErrback(self._not_announced, routing_key)

    def _not_announced(self, failure: Failure, routing_key: str) -> None:
        if failure.check(BusError):
            self._failures.warn(
                "refused",
                "Could not publish {routing_key}: {error}",
                routing_key=routing_key,
                error=failure.getErrorMessage(),
            )
            return
        self._failures.failure(
            ("failed", failure.type),
            "Could not publish {routing_key}",
            failure,
            routing_key=routing_key,
        )
