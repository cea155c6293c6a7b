"""A charger connection without a socket, for routing tests: commands queue for real."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from ocppd.ocpp.commands import CommandQueue
from ocppd.ocpp.frames import Call, CallError, CallResult
from ocppd.ocpp.schemas import SchemaRegistry


class FakeConnection:
    """What ``ConnectionRegistry`` needs of a ``ChargerConnection``; ``sent`` holds our CALLs."""

    def __init__(
        self, charge_point_id: str, clock: IReactorTime, schemas: SchemaRegistry, timeout: float
    ) -> None:
        self.charge_point_id = charge_point_id
        self.sent: list[Call] = []
        self.commands = CommandQueue(
            charge_point_id, send=self.sent.append, schemas=schemas, clock=clock, timeout=timeout
        )

    def call(
        self, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Deferred[dict[str, Any]]:
        return self.commands.call(action, payload, timeout=timeout)

    def answer(self, payload: dict[str, Any]) -> None:
        self.commands.reply_received(CallResult(self.sent[-1].unique_id, payload))

    def refuse(self, code: str, description: str) -> None:
        self.commands.reply_received(CallError(self.sent[-1].unique_id, code, description, {}))

    def connection_lost(self, reason: str) -> None:
        self.commands.connection_lost(reason)

    def close(self, code: int, reason: str) -> None:
        self.connection_lost(reason)
