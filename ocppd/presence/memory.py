"""
The embedded presence: claims in a dict of this process, no service needed.

The embedded run has one node; tests stand several nodes on one
``MemoryPresenceHub`` to see the same behaviour as on Redis (fences,
takeovers, leases that expire when a node stops renewing).
"""

from __future__ import annotations

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ocppd.presence.claims import PresenceClaims
from ocppd.presence.interface import IPresence, Owner


@attrs.define
class _Entry:
    node_id: str
    fence: int
    expires: float


class MemoryPresenceHub:
    """The claims of every node of this process; what Redis is to several processes."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        #: Last fence given per charger; never decreases (Redis: the INCR counter).
        self._fences: dict[str, int] = {}
        self._owners: dict[str, _Entry] = {}
        self._nodes: dict[str, MemoryPresence] = {}

    def join(self, presence: MemoryPresence) -> None:
        self._nodes[presence.node_id] = presence

    def _live(self, charge_point_id: str) -> _Entry | None:
        entry = self._owners.get(charge_point_id)
        if entry is not None and entry.expires <= self._clock.seconds():
            del self._owners[charge_point_id]
            return None
        return entry

    def claim(self, charge_point_id: str, node_id: str, lease: float) -> int:
        # Like Redis: the clock in ms if that is more, so fences keep growing
        # across restarts (the store keeps the last one of each charger).
        now = int(self._clock.seconds() * 1000)
        fence = max(self._fences.get(charge_point_id, 0) + 1, now)
        self._fences[charge_point_id] = fence
        previous = self._live(charge_point_id)
        self._owners[charge_point_id] = _Entry(node_id, fence, self._clock.seconds() + lease)
        if previous is not None and previous.node_id != node_id:
            loser = self._nodes.get(previous.node_id)
            if loser is not None:
                # Later, like a Redis message: never inside the claimer's call.
                self._clock.callLater(0, loser._lost, charge_point_id, previous.fence)
        return fence

    def release(self, charge_point_id: str, node_id: str, fence: int) -> bool:
        entry = self._live(charge_point_id)
        if entry is None or (entry.node_id, entry.fence) != (node_id, fence):
            return False
        del self._owners[charge_point_id]
        return True

    def owner(self, charge_point_id: str) -> Owner | None:
        entry = self._live(charge_point_id)
        return None if entry is None else Owner(entry.node_id, entry.fence)

    def renew(
        self, node_id: str, claims: list[tuple[str, int]], lease: float
    ) -> list[tuple[str, int]]:
        expires = self._clock.seconds() + lease
        lost = []
        for charge_point_id, fence in claims:
            # A counter missing (Redis: lost its data) means nobody claimed since.
            if self._fences.setdefault(charge_point_id, fence) == fence:
                # Also brings back a claim that expired while nobody took it.
                self._owners[charge_point_id] = _Entry(node_id, fence, expires)
            else:
                lost.append((charge_point_id, fence))
        return lost


@implementer(IPresence)
class MemoryPresence(PresenceClaims):
    def __init__(
        self,
        *,
        node_id: str,
        clock: IReactorTime,
        lease: float,
        hub: MemoryPresenceHub | None = None,
    ) -> None:
        super().__init__(node_id=node_id, clock=clock, lease=lease)
        self.hub = MemoryPresenceHub(clock) if hub is None else hub
        self.hub.join(self)

    def _claim(self, charge_point_id: str) -> Deferred[int]:
        return succeed(self.hub.claim(charge_point_id, self.node_id, self.lease))

    def _release(self, charge_point_id: str, fence: int) -> Deferred[bool]:
        return succeed(self.hub.release(charge_point_id, self.node_id, fence))

    def _owner(self, charge_point_id: str) -> Deferred[Owner | None]:
        return succeed(self.hub.owner(charge_point_id))

    def _owners(self, charge_point_ids: list[str]) -> Deferred[dict[str, Owner | None]]:
        return succeed({cp: self.hub.owner(cp) for cp in charge_point_ids})

    def _renew(self, claims: list[tuple[str, int]]) -> Deferred[list[tuple[str, int]]]:
        return succeed(self.hub.renew(self.node_id, claims, self.lease))
