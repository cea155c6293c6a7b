"""Test doubles for the OCPP connection layer."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred

from ocppd.bus.outcome import Outcome
from ocppd.ocpp.frames import Call, CallError, CallResult


class FakeTransport:
    """Collects what a ChargerConnection writes to its socket."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: tuple[int, str] | None = None

    def send_text(self, text: str) -> None:
        self.sent.append(text)

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def frames(self) -> list[list[Any]]:
        return [json.loads(text) for text in self.sent]

    def last(self) -> list[Any]:
        return json.loads(self.sent[-1])


class RecordingTraffic:
    """Stands in for TrafficPublisher; records every call."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        #: (event, charge point id, presence fence) of connects and disconnects.
        self.fences: list[tuple[str, str, int | None]] = []

    def inbound(
        self, charge_point_id: str, call: Call, response: dict[str, Any], *, wait: bool
    ) -> Outcome | None:
        self.events.append(("inbound", (call.action, response, wait)))
        if not wait:
            return None
        published = Outcome()
        published.callback(None)
        return published

    def rejected(
        self, charge_point_id: str, raw: str, answer: CallError, action: str | None = None
    ) -> None:
        self.events.append(("rejected", (answer.code, action)))

    def command_sent(self, charge_point_id: str, call: Call) -> None:
        self.events.append(("sent", call.action))

    def command_reply(
        self, charge_point_id: str, call: Call, reply: CallResult | CallError
    ) -> None:
        self.events.append(("reply", (call.action, type(reply).__name__)))

    def connected(
        self, charge_point_id: str, *, connection_id: str, remote: str, fence: int | None = None
    ) -> None:
        self.events.append(("connected", charge_point_id))
        self.fences.append(("connected", charge_point_id, fence))

    def disconnected(
        self,
        charge_point_id: str,
        *,
        connection_id: str,
        code: int | None,
        reason: str | None,
        fence: int | None = None,
        at: str | None = None,
    ) -> None:
        self.events.append(("disconnected", charge_point_id))
        self.fences.append(("disconnected", charge_point_id, fence))


class ScriptedHandler:
    """
    A CallHandler whose answers are Deferreds the test fires, or, for the
    actions in ``ready``, the answer (or exception) there, given at once.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.pending: list[Deferred[dict[str, Any]]] = []
        self.ready: dict[str, dict[str, Any] | Exception] = {}

    def handle(self, connection: Any, call: Call) -> dict[str, Any] | Deferred[dict[str, Any]]:
        self.calls.append(call)
        if call.action in self.ready:
            answer = self.ready[call.action]
            if isinstance(answer, Exception):
                raise answer
            return answer
        d: Deferred[dict[str, Any]] = Deferred()
        self.pending.append(d)
        return d
