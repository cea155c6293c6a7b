"""A fake socket and a scripted central system for driving SimulatedCharger."""

from __future__ import annotations

import json
import random
from typing import Any

from twisted.internet.task import Clock

from ocppd.ocpp.frames import Call, CallResult, parse_frame
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.sim.charger import ChargerSettings, SimulatedCharger

#: Immutable once loaded; shared by the tests like tests/ocpp does.
SCHEMAS = SchemaRegistry.load()

#: A plausible "now" so timestamps are this century.
START = 1_750_000_000.0


class FakeTransport:
    """Records what the charger writes and whether it closed the socket."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: list[tuple[int, str]] = []

    def send_text(self, text: str) -> None:
        self.sent.append(text)

    def close(self, code: int, reason: str) -> None:
        self.closed.append((code, reason))


class Site:
    """
    One charger on a Clock, and the central system's side of its socket:
    calls it made, answers to give, commands to send.
    """

    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.clock.advance(START)
        self.charger = SimulatedCharger(
            ChargerSettings("CP-1", **settings),
            schemas=SCHEMAS,
            clock=self.clock,
            rng=random.Random(7),
        )
        self.transport = FakeTransport()
        self.calls: list[Call] = []
        self._answered: set[str] = set()
        self._next_transaction = 100
        self.boot_answer: dict[str, Any] = {"status": "Accepted", "interval": 300}

    def connect(self) -> FakeTransport:
        self.transport = FakeTransport()
        self.charger.connection_made(self.transport)
        return self.transport

    def frames(self) -> list[Any]:
        return [parse_frame(text) for text in self.transport.sent]

    def pending(self) -> Call | None:
        """The charger's CALL in flight, if unanswered (only the last can be)."""
        calls = [f for f in self.frames() if isinstance(f, Call)]
        if calls and calls[-1].unique_id not in self._answered:
            return calls[-1]
        return None

    def answer(self, payload: dict[str, Any] | None = None) -> Call:
        """Answer the call in flight, with ``payload`` or the default answer."""
        call = self.pending()
        assert call is not None, "no call in flight"
        self._answered.add(call.unique_id)
        self.calls.append(call)
        if payload is None:
            payload = self.default_answer(call)
        self.charger.text_received(CallResult(call.unique_id, payload).marshal())
        return call

    def answer_all(self) -> list[Call]:
        """Answer every call the charger makes until it has nothing more to say."""
        answered = []
        while self.pending() is not None:
            answered.append(self.answer())
        return answered

    def boot(self) -> None:
        self.connect()
        self.answer_all()

    def default_answer(self, call: Call) -> dict[str, Any]:
        now = "2026-01-01T00:00:00Z"
        if call.action == "BootNotification":
            return {**self.boot_answer, "currentTime": now}
        if call.action == "Heartbeat":
            return {"currentTime": now}
        if call.action == "StartTransaction":
            self._next_transaction += 1
            return {"transactionId": self._next_transaction, "idTagInfo": {"status": "Accepted"}}
        return {}

    def command(self, action: str, payload: dict[str, Any]) -> Any:
        """Send a CALL to the charger; return its answer frame (a list)."""
        unique_id = f"cs-{len(self.transport.sent)}-{action}"
        self.charger.text_received(Call(unique_id, action, payload).marshal())
        for text in self.transport.sent:
            frame = json.loads(text)
            if frame[1] == unique_id:
                return frame
        raise AssertionError(f"no answer to {action}")

    def actions(self, calls: list[Call]) -> list[str]:
        return [call.action for call in calls]
