"""
A charger's Heartbeats, on the node that holds its socket: its
``last_seen_at`` written here, without the bus.

While the message log does not keep Heartbeats (``[ocpp] log_heartbeats =
false``, the default), a Heartbeat's one stored effect is the charger's
``last_seen_at``, which the processor already coalesced to one write per
charger per ``LAST_SEEN_RESOLUTION`` (30 s). Publishing it cost the request
path an envelope and the processor a delivery, a batch and a database-thread
transaction per Heartbeat, only to be dropped there (bench/RESULTS.md). So
``TrafficPublisher`` hands it to :class:`LastSeenWriter` instead, which notes
the time in a dict, and every ``WRITE_INTERVAL`` seconds writes the chargers
that are due in one transaction (docs/bus.md, "Heartbeats are not published").

Why nothing acknowledged can be lost: a Heartbeat's answer never waited for
its effect; ``last_seen_at`` only moves forward (``touch_last_seen_many``), so
this writer and the processor (every other message, connects and
disconnects) may write it in any order; it lags up to a resolution anyway;
and what a crash loses (the last seconds' Heartbeats) the charger's next
message or its reconnection repairs.

:class:`SeenCoalescer` decides which chargers to write (pure, on reactor
seconds); :class:`LastSeenWriter` is the service that does the writing.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import sqlalchemy as sa
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from ocppd.consumers.traffic import LAST_SEEN_RESOLUTION
from ocppd.logs import Logger
from ocppd.periodic import PeriodicService
from ocppd.ratelog import RepeatLog
from ocppd.store import chargers
from ocppd.store.database import Database, describe_error
from ocppd.timeutil import from_timestamp

#: Seconds between two writes: well under the resolution, so a due charger
#: waits a few seconds at most.
WRITE_INTERVAL = 5.0


class SeenCoalescer:
    """
    Which chargers' ``last_seen_at`` to write, and with which time (reactor
    seconds). A charger is due once the time last written for it is at least
    ``resolution`` old (or none was): it is then written with its newest
    Heartbeat's time, so each charger costs at most one write per
    ``resolution`` and ``last_seen_at`` lags it by at most ``resolution`` plus
    the write interval. A charger that went quiet gets its last time written
    too, once due, and is then forgotten: what is held is bounded by the
    chargers seen within a resolution.
    """

    def __init__(self, resolution: float = LAST_SEEN_RESOLUTION) -> None:
        self.resolution = resolution
        #: The newest Heartbeat time of each charger not written yet.
        self.pending: dict[str, float] = {}
        #: The time last written (or being written) per charger, for a resolution.
        self._written: dict[str, float] = {}

    def seen(self, charge_point_id: str, at: float) -> None:
        """A Heartbeat of ``charge_point_id`` at ``at``: one dict assignment."""
        self.pending[charge_point_id] = at

    def due(self, now: float) -> dict[str, float]:
        """Take the chargers to write at ``now``, with their times, noted as written."""
        resolution = self.resolution
        written = self._written
        for charge_point_id in [c for c, at in written.items() if now - at >= resolution]:
            del written[charge_point_id]
        batch = {c: at for c, at in self.pending.items() if c not in written}
        return self._take(batch)

    def everything(self) -> dict[str, float]:
        """Take every pending charger, due or not (the last write, at stop)."""
        return self._take(dict(self.pending))

    def _take(self, batch: dict[str, float]) -> dict[str, float]:
        pending = self.pending
        for charge_point_id, at in batch.items():
            del pending[charge_point_id]
            self._written[charge_point_id] = at
        return batch

    def failed(self, batch: dict[str, float]) -> None:
        """The write of ``batch`` failed: pending again (unless newer was seen), due at once."""
        pending, written = self.pending, self._written
        for charge_point_id, at in batch.items():
            if written.get(charge_point_id) == at:
                del written[charge_point_id]
            if pending.get(charge_point_id, at) <= at:
                pending[charge_point_id] = at


class LastSeenWriter(PeriodicService):
    """
    Writes the ``last_seen_at`` of the Heartbeats this node answered
    (:class:`SeenCoalescer`), in one transaction every ``interval`` seconds,
    and what is pending when it stops. A part of the node's service tree
    (``ocppd.service``): started after the store, stopped before it. A failed
    write is logged, rate-limited (a database error as a warning, anything
    else with its traceback), and tried again at the next tick.
    """

    log = Logger()
    name = "last_seen"

    def __init__(
        self,
        database: Database,
        clock: IReactorTime,
        *,
        interval: float = WRITE_INTERVAL,
        resolution: float = LAST_SEEN_RESOLUTION,
    ) -> None:
        if not 0 < interval <= resolution:
            raise ValueError("interval must be positive and at most the resolution")
        self._database = database
        self._clock = clock
        self._interval = interval
        self.coalescer = SeenCoalescer(resolution)
        self._failures = RepeatLog(self.log, clock)
        # write_due never fails (it logs); the timer waits for each write. Its
        # run at start writes nothing: no charger is connected before the
        # listeners start, after this service.
        super().__init__(interval, self.write_due, clock)

    def seen(self, charge_point_id: str) -> None:
        """A Heartbeat of ``charge_point_id`` answered now (the request path: a dict assignment)."""
        self.coalescer.pending[charge_point_id] = self._clock.seconds()

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        yield super().stopService()  # once a write in flight has ended
        last = self._write(self.coalescer.everything())
        if last is not None:
            yield last
        self._failures.flush()

    def write_due(self) -> Deferred[None] | None:
        """Write the chargers due now; None if there are none."""
        return self._write(self.coalescer.due(self._clock.seconds()))

    def _write(self, batch: dict[str, float]) -> Deferred[None] | None:
        if not batch:
            return None
        seen = [(charge_point_id, from_timestamp(at)) for charge_point_id, at in batch.items()]

        def failed(failure: Failure) -> None:
            self.coalescer.failed(batch)
            if isinstance(failure.value, sa.exc.SQLAlchemyError):
                # The database away or refusing: expected in an outage, no traceback.
                self._failures.warn(
                    "database",
                    "Writing last_seen_at of {count} chargers' Heartbeats failed ({error});"
                    " tried again in {interval} s",
                    count=len(batch),
                    error=describe_error(failure.value),
                    interval=self._interval,
                )
                return
            self._failures.failure(
                "write",
                "Writing last_seen_at of {count} chargers' Heartbeats failed; tried again"
                " in {interval} s",
                failure,
                count=len(batch),
                interval=self._interval,
            )

        written: Deferred[None] = self._database.run(chargers.touch_last_seen_many, seen)
        return written.addErrback(failed)
