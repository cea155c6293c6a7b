"""Publishing a payload as an envelope stamped with this node and the reactor's time."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import IBus
from ocppd.timeutil import from_timestamp


class EventPublisher:
    def __init__(self, bus: IBus, *, node: str, clock: IReactorTime) -> None:
        self._bus = bus
        self._node = node
        self._clock = clock

    def now(self) -> datetime:
        return from_timestamp(self._clock.seconds())

    def publish(
        self, routing_key: str, payload: dict[str, Any], *, charge_point_id: str | None = None
    ) -> Deferred[None]:
        """Fires once the bus has accepted the message (see ``IBus.publish``)."""
        envelope = Envelope.create(
            routing_key, payload, node=self._node, charge_point_id=charge_point_id, now=self.now()
        )
        return self._bus.publish(routing_key, envelope)
