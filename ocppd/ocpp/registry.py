"""The charger connections open on this node."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime

from ocppd.logs import Logger
from ocppd.ocpp.commands import ChargerNotConnected
from ocppd.ocpp.connection import ChargerConnection

#: Close code for a socket replaced by a newer one of the same charger
#: (application range 4000-4999, RFC 6455 7.4.2).
CLOSE_REPLACED = 4000


class ConnectionRegistry:
    log = Logger()

    def __init__(self) -> None:
        self._connections: dict[str, ChargerConnection] = {}
        #: The presence fence of each current connection that has one.
        self._fences: dict[str, int] = {}
        self._emptied: list[Deferred[None]] = []

    def __len__(self) -> int:
        return len(self._connections)

    def __contains__(self, charge_point_id: object) -> bool:
        return charge_point_id in self._connections

    def get(self, charge_point_id: str) -> ChargerConnection | None:
        return self._connections.get(charge_point_id)

    def held(self) -> list[tuple[str, str]]:
        """``(charge_point_id, connection_id)`` of every open connection (for liveness)."""
        return [(cp_id, c.connection_id) for cp_id, c in self._connections.items()]

    def register(self, connection: ChargerConnection, fence: int | None = None) -> bool:
        """
        Make ``connection`` the charger's connection. The newest wins: a charger
        that reconnects before its old socket timed out gets the new one, and the
        old one is closed. With presence fences, newest means the greater fence:
        a connection whose claim is older than the current one's (two handshakes
        racing) is the one closed, and False returned.
        """
        charge_point_id = connection.charge_point_id
        previous = self._connections.get(charge_point_id)
        current_fence = self._fences.get(charge_point_id)
        if (
            previous is not None
            and previous is not connection
            and fence is not None
            and current_fence is not None
            and fence < current_fence
        ):
            self.log.info(
                "Charge point {charge_point_id}: closing a connection older than its current one",
                charge_point_id=charge_point_id,
            )
            connection.connection_lost("replaced by a newer connection")
            connection.close(CLOSE_REPLACED, "replaced by a newer connection")
            return False
        self._connections[charge_point_id] = connection
        if fence is None:
            self._fences.pop(charge_point_id, None)
        else:
            self._fences[charge_point_id] = fence
        if previous is not None and previous is not connection:
            self.log.info(
                "Charge point {charge_point_id} reconnected; closing its previous connection",
                charge_point_id=charge_point_id,
            )
            previous.connection_lost("replaced by a newer connection")
            previous.close(CLOSE_REPLACED, "replaced by a newer connection")
        return True

    def fence(self, connection: ChargerConnection) -> int | None:
        """The presence fence of ``connection`` while it is current; None otherwise."""
        if self._connections.get(connection.charge_point_id) is not connection:
            return None
        return self._fences.get(connection.charge_point_id)

    def evict(self, charge_point_id: str, fence: int) -> bool:
        """
        The charger connected to another node, which took over the claim
        ``fence``: forget and close this node's connection of that claim (not a
        newer one). From now on nothing that socket says is handled. Whether
        there was such a connection.
        """
        connection = self._connections.get(charge_point_id)
        if connection is None or self._fences.get(charge_point_id) != fence:
            return False
        self.log.info(
            "Charge point {charge_point_id} connected to another node; closing its connection here",
            charge_point_id=charge_point_id,
        )
        self._forget(charge_point_id)
        connection.connection_lost("connected to another node")
        connection.close(CLOSE_REPLACED, "connected to another node")
        return True

    def unregister(self, connection: ChargerConnection) -> bool:
        """Forget ``connection`` unless a newer one replaced it; whether it was current."""
        if self._connections.get(connection.charge_point_id) is connection:
            self._forget(connection.charge_point_id)
            return True
        return False

    def _forget(self, charge_point_id: str) -> None:
        del self._connections[charge_point_id]
        self._fences.pop(charge_point_id, None)
        if not self._connections:
            waiters, self._emptied = self._emptied, []
            for waiter in waiters:
                waiter.callback(None)

    def call(
        self,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        *,
        timeout: float | None = None,
    ) -> Deferred[dict[str, Any]]:
        """Send a command to a charger connected to this node."""
        connection = self._connections.get(charge_point_id)
        if connection is None:
            return fail(ChargerNotConnected(f"{charge_point_id} is not connected"))
        try:
            return connection.call(action, payload, timeout=timeout)
        except Exception as e:
            return fail(e)

    def close_all(
        self,
        clock: IReactorTime,
        *,
        timeout: float = 6.0,
        code: int = 1001,
        reason: str = "central system shutting down",
    ) -> Deferred[None]:
        """
        Close every connection; fire when all are gone, or after ``timeout``
        (the close handshake can hang on a dead peer). Waiting lets their
        disconnect events reach the bus before it stops.
        """
        if not self._connections:
            return succeed(None)
        done: Deferred[None] = Deferred()
        self._emptied.append(done)
        expiry = clock.callLater(timeout, self._give_up, done)

        def settled(result: object) -> object:
            if expiry.active():
                expiry.cancel()
            return result

        done.addBoth(settled)
        for connection in list(self._connections.values()):
            connection.close(code, reason)
        return done

    def _give_up(self, done: Deferred[None]) -> None:
        self.log.warn(
            "{count} charger connections did not close in time", count=len(self._connections)
        )
        self._emptied.remove(done)
        done.callback(None)
