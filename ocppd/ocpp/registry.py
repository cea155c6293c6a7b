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
        self._emptied: list[Deferred[None]] = []

    def __len__(self) -> int:
        return len(self._connections)

    def __contains__(self, charge_point_id: object) -> bool:
        return charge_point_id in self._connections

    def get(self, charge_point_id: str) -> ChargerConnection | None:
        return self._connections.get(charge_point_id)

    def register(self, connection: ChargerConnection) -> None:
        """
        Make ``connection`` the charger's connection. The newest wins: a charger
        that reconnects before its old socket timed out gets the new one, and the
        old one is closed.
        """
        previous = self._connections.get(connection.charge_point_id)
        self._connections[connection.charge_point_id] = connection
        if previous is not None and previous is not connection:
            self.log.info(
                "Charge point {charge_point_id} reconnected; closing its previous connection",
                charge_point_id=connection.charge_point_id,
            )
            previous.connection_lost("replaced by a newer connection")
            previous.close(CLOSE_REPLACED, "replaced by a newer connection")

    def unregister(self, connection: ChargerConnection) -> bool:
        """Forget ``connection`` unless a newer one replaced it; whether it was current."""
        if self._connections.get(connection.charge_point_id) is connection:
            del self._connections[connection.charge_point_id]
            if not self._connections:
                waiters, self._emptied = self._emptied, []
                for waiter in waiters:
                    waiter.callback(None)
            return True
        return False

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
