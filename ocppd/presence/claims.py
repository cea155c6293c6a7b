"""
What both presence implementations share: the claims this node holds, their
renewal timer, and telling the node's callbacks about lost claims.

Subclasses provide the store operations (``_claim``, ``_release``,
``_owner``, ``_renew``); this class keeps ``held`` right around them.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable
from typing import Any

from twisted.internet.defer import Deferred, fail, gatherResults, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from ocppd.logs import Logger
from ocppd.ocpp.handshake import CHARGE_POINT_ID
from ocppd.presence.interface import LostCallback, Owner, PresenceUnavailable, check_node_id


class PresenceClaims:
    log = Logger()

    def __init__(self, *, node_id: str, clock: IReactorTime, lease: float) -> None:
        if not lease > 0:
            raise ValueError(f"lease must be positive, got {lease}")
        self.node_id = check_node_id(node_id)
        self.lease = lease
        self._clock = clock
        self._held: dict[str, int] = {}
        self._callbacks: list[LostCallback] = []
        self._renewer: LoopingCall | None = None

    # Store operations, provided by the implementation.

    def _claim(self, charge_point_id: str) -> Deferred[int]:
        raise NotImplementedError

    def _release(self, charge_point_id: str, fence: int) -> Deferred[bool]:
        raise NotImplementedError

    def _owner(self, charge_point_id: str) -> Deferred[Owner | None]:
        raise NotImplementedError

    def _owners(self, charge_point_ids: list[str]) -> Deferred[dict[str, Owner | None]]:
        """The owners of ``charge_point_ids`` (no duplicates, at least one), in one round trip."""
        raise NotImplementedError

    def _renew(self, claims: list[tuple[str, int]]) -> Deferred[list[tuple[str, int]]]:
        """Extend ``claims``; fire with those whose fence is no longer the newest."""
        raise NotImplementedError

    # IPresence

    def start(self) -> None:
        if self._renewer is not None:
            return
        self._renewer = LoopingCall(self._renew_logged)
        self._renewer.clock = self._clock
        self._renewer.start(self.lease / 3, now=False)

    def stop(self) -> Deferred[None]:
        renewer, self._renewer = self._renewer, None
        if renewer is not None and renewer.running:
            renewer.stop()
        held, self._held = self._held, {}
        if not held:
            return succeed(None)
        releases = [self._release_logged(cp, fence) for cp, fence in held.items()]
        return gatherResults(releases).addCallback(lambda _: None)

    def claim(self, charge_point_id: str) -> Deferred[int]:
        if not CHARGE_POINT_ID.fullmatch(charge_point_id):
            # Validated at the edge already; the renewal packs ids with spaces.
            return fail(ValueError(f"{charge_point_id!r} is not a charge point id"))

        def claimed(fence: int) -> int:
            # A newer claim of this node for the charger (a quicker reconnect)
            # may already be recorded: keep the highest.
            if fence > self._held.get(charge_point_id, 0):
                self._held[charge_point_id] = fence
            return fence

        return self._claim(charge_point_id).addCallback(claimed)

    def release(self, charge_point_id: str, fence: int) -> Deferred[bool]:
        # Forgotten first: a renewal after this must not bring the claim back.
        if self._held.get(charge_point_id) == fence:
            del self._held[charge_point_id]
        return self._release(charge_point_id, fence)

    def owner(self, charge_point_id: str) -> Deferred[Owner | None]:
        return self._owner(charge_point_id)

    def owners(self, charge_point_ids: Iterable[str]) -> Deferred[dict[str, Owner | None]]:
        ids = list(dict.fromkeys(charge_point_ids))
        return self._owners(ids) if ids else succeed({})

    def owner_node(self, charge_point_id: str) -> Deferred[str | None]:
        return self._owner(charge_point_id).addCallback(
            lambda owner: None if owner is None else owner.node_id
        )

    def renew(self) -> Deferred[list[tuple[str, int]]]:
        claims = list(self._held.items())
        if not claims:
            return succeed([])
        return self._renew(claims).addCallback(self._forget_lost)

    def on_lost(self, callback: LostCallback) -> None:
        self._callbacks.append(callback)

    def held(self) -> dict[str, int]:
        return dict(self._held)

    # For the implementations

    def _lost(self, charge_point_id: str, fence: int) -> None:
        """The claim ``fence`` of ``charge_point_id`` was taken over: forget it, tell the node."""
        if self._held.get(charge_point_id) != fence:
            # Released already, or told twice (the message and a renewal). A
            # message overtaking the reply to our own claim lands here too: the
            # next renewal finds that claim lost.
            return
        del self._held[charge_point_id]
        self.log.info(
            "Charge point {charge_point_id} connected to another node; its claim {fence} on "
            "{node_id} is lost",
            charge_point_id=charge_point_id,
            fence=fence,
            node_id=self.node_id,
        )
        for callback in list(self._callbacks):
            try:
                callback(charge_point_id, fence)
            except Exception:
                self.log.failure(
                    "Lost-claim callback for {charge_point_id} failed",
                    charge_point_id=charge_point_id,
                )

    def _forget_lost(self, lost: list[tuple[str, int]]) -> list[tuple[str, int]]:
        for charge_point_id, fence in lost:
            self._lost(charge_point_id, fence)
        return lost

    @inlineCallbacks
    def _renew_logged(self) -> Generator[Deferred[Any], Any, None]:
        # LoopingCall waits for this to end: never two timer renewals at once.
        try:
            yield self.renew()
        except PresenceUnavailable as e:
            # Said, not shouted: the connection's own log says Redis is down.
            self.log.warn(
                "Could not renew {count} charger claims of {node_id}: {reason}",
                count=len(self._held),
                node_id=self.node_id,
                reason=str(e),
            )
        except Exception:
            self.log.failure(
                "Renewing the charger claims of {node_id} failed", node_id=self.node_id
            )

    def _release_logged(self, charge_point_id: str, fence: int) -> Deferred[None]:
        def failed(failure: Any) -> None:
            self.log.warn(
                "Could not release {charge_point_id} ({reason}); its claim expires in {lease} s",
                charge_point_id=charge_point_id,
                reason=failure.getErrorMessage(),
                lease=self.lease,
            )

        return self._release(charge_point_id, fence).addCallbacks(lambda _: None, failed)
