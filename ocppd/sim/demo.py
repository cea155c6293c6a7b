"""
A site that charges by itself, so the CMS and the customer panel have life.

Each connector alternates between idle and charging: after a random pause a
vehicle arrives with one of the given idTags, charges for a random while and
leaves (reason ``EVDisconnected``, as when the driver unplugs). Pure timing
on the injected clock; the chargers do the OCPP.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ocppd.logs import Logger
from ocppd.sim.charger import SimulatedCharger


class DemoDriver:
    """Plays vehicles arriving and leaving at every connector of ``chargers``."""

    log = Logger()

    def __init__(
        self,
        chargers: Sequence[SimulatedCharger],
        id_tags: Sequence[str],
        *,
        clock: IReactorTime,
        rng: random.Random,
        idle: tuple[float, float] = (5.0, 30.0),
        charging: tuple[float, float] = (30.0, 120.0),
    ) -> None:
        if not id_tags:
            raise ValueError("the demo needs at least one idTag")
        self._chargers = list(chargers)
        self._id_tags = list(id_tags)
        self._clock = clock
        self._rng = rng
        self._idle = idle
        self._charging = charging
        self._timers: dict[tuple[str, int], IDelayedCall] = {}

    def start(self) -> None:
        for charger in self._chargers:
            for connector_id in charger.connectors:
                self._later(charger, connector_id, self._rng.uniform(*self._idle), self._arrive)

    def stop(self) -> None:
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()

    def _later(
        self,
        charger: SimulatedCharger,
        connector_id: int,
        delay: float,
        what: Callable[[SimulatedCharger, int], None],
    ) -> None:
        self._timers[(charger.charge_point_id, connector_id)] = self._clock.callLater(
            delay, what, charger, connector_id
        )

    def _arrive(self, charger: SimulatedCharger, connector_id: int) -> None:
        # Only once the charger is online and booted: a demo wants visible sessions.
        if charger.accepted and charger.connectors[connector_id].session is None:
            id_tag = self._rng.choice(self._id_tags)
            if charger.start_session(connector_id, id_tag) is not None:
                self.log.info(
                    "Demo: a vehicle charges at {charge_point_id}/{connector_id} ({id_tag})",
                    charge_point_id=charger.charge_point_id,
                    connector_id=connector_id,
                    id_tag=id_tag,
                )
                self._later(charger, connector_id, self._rng.uniform(*self._charging), self._leave)
                return
        self._later(charger, connector_id, self._rng.uniform(*self._idle), self._arrive)

    def _leave(self, charger: SimulatedCharger, connector_id: int) -> None:
        charger.stop_session(connector_id, "EVDisconnected")
        self._later(charger, connector_id, self._rng.uniform(*self._idle), self._arrive)
