"""
Releasing the funds of app starts that never started.

A customer's start holds their available funds (``ocppd.api.customer``)
until the session it asked for stops. When the charger accepts the
RemoteStartTransaction but never sends StartTransaction (the driver never
plugged in, the charger rebooted), there is no session to stop, and the hold
would stay forever. OCPP's answer on the charger's side is ConnectionTimeOut:
a start not taken within it is abandoned. This is ours: a request still
``requested`` after ``[billing] start_timeout`` seconds is released
(``failed``) and ``charging.start.expired`` is published for the panel.

The sweep runs in the database, every ``timeout / SWEEPS_PER_TIMEOUT``
seconds on every node: it survives restarts (the requests are rows, not
timers) and several nodes release each request once
(``wallets.expire_requests``), so each release is announced once.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from ocppd.bus.outbox import Event, Outbox
from ocppd.logs import Logger
from ocppd.representations import iso_or_none
from ocppd.store import wallets
from ocppd.store.database import Database
from ocppd.store.records import ChargingRequestRecord

#: A hold outlives its timeout by at most a sixth of it.
SWEEPS_PER_TIMEOUT = 6
#: Requests released per database transaction; a sweep repeats until done.
BATCH = 200


class HoldReleaser:
    """Every node's periodic sweep of app starts past ``[billing] start_timeout``."""

    log = Logger()

    def __init__(
        self, database: Database, outbox: Outbox, clock: IReactorTime, *, timeout: int
    ) -> None:
        self._database = database
        self._outbox = outbox
        self._clock = clock
        self.timeout = timeout
        self._loop: LoopingCall | None = None

    @property
    def interval(self) -> float:
        """Seconds between sweeps."""
        return self.timeout / SWEEPS_PER_TIMEOUT

    def start(self) -> None:
        """Sweep now and every ``interval`` seconds until ``stop``."""
        self._loop = LoopingCall(self._sweep_logged)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()

    @inlineCallbacks
    def _sweep_logged(self) -> Generator[Deferred[Any], Any, None]:
        try:
            yield self.sweep()
        except Exception:
            # Logged, and tried again next time: a busy database is no reason to stop.
            self.log.failure("Could not release the funds of expired app starts")

    @inlineCallbacks
    def sweep(self) -> Generator[Deferred[Any], Any, int]:
        """Release every request past the timeout now; how many this node released."""
        total = 0
        while True:
            now = self._outbox.now()
            # Each release is staged with its news: none is lost to a bus away.
            released = yield self._outbox.run(
                self._database,
                wallets.expire_requests,
                _expired_events,
                requested_before=now - timedelta(seconds=self.timeout),
                now=now,
                limit=BATCH,
            )
            for request in released:
                self.log.info(
                    "Released {hold} held for {user_id}'s start at {charge_point_id} "
                    "connector {connector_id}: no StartTransaction within {timeout} s",
                    hold=request.hold,
                    user_id=request.user_id,
                    charge_point_id=request.charge_point_id,
                    connector_id=request.connector_id,
                    timeout=self.timeout,
                )
            total += len(released)
            if len(released) < BATCH:
                return total


def _expired_events(released: list[ChargingRequestRecord]) -> list[Event]:
    return [
        (
            "charging.start.expired",
            {
                "userId": request.user_id,
                "chargePointId": request.charge_point_id,
                "connectorId": request.connector_id,
                "commandId": request.command_id,
                "hold": request.hold,
                "requestedAt": iso_or_none(request.created_at),
            },
            request.charge_point_id,
        )
        for request in released
    ]
