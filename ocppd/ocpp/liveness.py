"""
Charger liveness: an ``online`` flag that outlives no node.

A charger's ``online`` is set and cleared by its node's connect and
disconnect events. A node that dies (``kill -9``, power loss, a lost
database) sends no disconnect, and its chargers would stay online forever,
feeding the dashboard, availability and the customer start check. So:

- each node renews, every ``interval`` seconds, the liveness of the sockets
  it holds (``chargers.renew_liveness``: one batched UPDATE on the database
  thread, touching only rows that record that very socket on this node);
- each node sweeps, right after its renewal, the chargers no node renewed
  within ``timeout`` (``chargers.expire_liveness``) and marks them offline;
- at start a node marks offline the chargers recorded as its own
  (``chargers.release_node``): a fresh process holds no socket.

A charger another live node holds is renewed by that node every
``interval``, a third of ``timeout``, so it is never swept. Whatever is
marked offline is announced as ``charger.disconnected`` (reason says why),
so the notifier pushes ``charger.offline`` to the dashboards; the row is
already written, so a bus that refuses the event loses nothing stored.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime

from ocppd.logs import Logger
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.periodic import PeriodicService
from ocppd.store import chargers
from ocppd.store.database import Database
from ocppd.timeutil import format_iso, from_timestamp

#: Renewals per timeout: a node may miss two in a row (a slow database) before
#: another node's sweep takes its chargers for dead.
RENEWALS_PER_TIMEOUT = 3


class ChargerLiveness(PeriodicService):
    """
    One node's liveness renewal and sweep (see the module docstring): started,
    it renews and sweeps at once and every ``interval`` seconds until stopped.
    """

    log = Logger()
    name = "liveness"

    def __init__(
        self,
        database: Database,
        registry: ConnectionRegistry,
        traffic: TrafficPublisher,
        clock: IReactorTime,
        *,
        node: str,
        timeout: float,
    ) -> None:
        self._database = database
        self._registry = registry
        self._traffic = traffic
        self._clock = clock
        self.node = node
        self.timeout = timeout
        super().__init__(self.interval, self._tick, clock)

    @property
    def interval(self) -> float:
        """Seconds between renewals (and sweeps)."""
        return self.timeout / RENEWALS_PER_TIMEOUT

    def _now(self) -> Any:
        return from_timestamp(self._clock.seconds())

    @inlineCallbacks
    def release_held(self) -> Generator[Deferred[Any], Any, int]:
        """At start, before chargers connect: this node's chargers of before are offline."""
        released = yield self._database.run(chargers.release_node, self.node)
        self._announce(released, "node restarted")
        if released:
            self.log.info(
                "{count} chargers recorded as connected to node {node} before its start "
                "marked offline",
                count=len(released),
                node=self.node,
            )
        return len(released)

    @inlineCallbacks
    def _tick(self) -> Generator[Deferred[Any], Any, None]:
        try:
            yield self.renew()
        except Exception:
            # Logged, tried again next interval. No sweep meanwhile: a node
            # that cannot reach the database should not judge the others.
            self.log.failure("Could not renew the liveness of this node's chargers")
            return
        if self.stopping:
            return  # stopped meanwhile: the database may be closing
        try:
            yield self.sweep()
        except Exception:
            self.log.failure("Could not sweep chargers whose node stopped renewing them")

    def renew(self) -> Deferred[None]:
        """Renew the liveness of every socket this node holds now."""
        return self._database.run(
            chargers.renew_liveness, self._registry.held(), node=self.node, at=self._now()
        )

    @inlineCallbacks
    def sweep(self) -> Generator[Deferred[Any], Any, int]:
        """Mark offline the chargers no node renewed within ``timeout``; how many."""
        before = self._now() - timedelta(seconds=self.timeout)
        expired = yield self._database.run(chargers.expire_liveness, before=before)
        self._announce(expired, "liveness expired")
        if expired:
            self.log.warn(
                "{count} chargers marked offline: no node renewed them within {timeout} s "
                "(their node stopped), e.g. {example}",
                count=len(expired),
                timeout=self.timeout,
                example=expired[0][0],
            )
        return len(expired)

    def _announce(self, marked: list[chargers.Released], reason: str) -> None:
        # "at" is the charger's last sign of life, not now: the processor moves
        # last_seen_at to it, and a dead charger was not seen at the sweep.
        for charge_point_id, connection_id, alive_at in marked:
            self._traffic.disconnected(
                charge_point_id,
                connection_id=connection_id or "",
                code=None,
                reason=reason,
                at=format_iso(alive_at),
            )
