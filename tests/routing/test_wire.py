"""The wire format of routed commands: what another node sends is hostile."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp.commands import (
    CallErrorReceived,
    ChargerDisconnected,
    ChargerNotConnected,
    CommandTimeout,
    InvalidCommand,
    InvalidReply,
)
from ocppd.ocpp.errors import OcppError
from ocppd.routing.errors import BadRoutedReply
from ocppd.routing.executor import CommandExecutor
from ocppd.routing.wire import (
    CommandRequest,
    WireError,
    decode_reply,
    decode_request,
    encode_answer,
    encode_failure,
    encode_request,
)


def body(**fields: Any) -> bytes:
    return json.dumps({"v": 1, **fields}).encode()


class WireTests(SynchronousTestCase):
    def test_request_round_trip(self) -> None:
        """A request decodes as encoded, its timeout capped at the owner's."""
        request = CommandRequest("CP-1", "Reset", {"type": "Soft"}, 60.0)
        self.assertEqual(
            decode_request(encode_request(request), max_timeout=30),
            CommandRequest("CP-1", "Reset", {"type": "Soft"}, 30.0),
        )

    def test_hostile_requests(self) -> None:
        """Anything but a request of ours is a WireError."""
        good = {"chargePointId": "CP-1", "action": "Reset", "payload": {}, "timeout": 5}
        for raw in [
            b"",
            b"[]",
            b"{" * 100_000,
            b'{"v": 1, "timeout": NaN}',
            json.dumps({**good, "v": 2}).encode(),
            body(**{**good, "chargePointId": "bad id"}),
            body(**{**good, "chargePointId": 5}),
            body(**{**good, "action": "Re.set"}),
            body(**{**good, "action": "A" * 65}),
            body(**{**good, "payload": []}),
            body(**{**good, "timeout": 0}),
            body(**{**good, "timeout": True}),
            body(**{**good, "timeout": 1e400}),
            body(**{**good, "payload": {"x": "\u0000"}}),
            body(**{**good, "payload": {"x": "y" * 2_000_000}}),
        ]:
            with self.assertRaises(WireError, msg=raw[:80]):
                decode_request(raw, max_timeout=30)

    def test_outcomes_round_trip(self) -> None:
        """Each failure on the owner arrives as the same error on the caller."""
        self.assertEqual(
            decode_reply(encode_answer({"status": "Accepted"})), {"status": "Accepted"}
        )
        for error in [
            ChargerNotConnected("CP-1 is not connected"),
            ChargerDisconnected("closed"),
            CommandTimeout("Reset timed out"),
            CallErrorReceived("NotSupported", "no", {"a": 1}),
            InvalidReply(OcppError("FormationViolation", "status"), {"status": "Maybe"}),
            InvalidCommand(OcppError("TypeConstraintViolation", "type")),
        ]:
            with self.assertRaises(type(error)) as caught:
                decode_reply(encode_failure(error))
            self.assertEqual(str(caught.exception), str(error))

    def test_hostile_replies(self) -> None:
        """A reply that is not one of ours: BadRoutedReply (502), never a crash."""
        for raw in [
            b"nonsense",
            body(outcome="answer", payload=[1]),
            body(outcome="answer"),
            body(outcome="launch"),
            body(outcome="call_error", code=1, description="", details={}),
            body(outcome="timeout"),
            body(outcome="answer", payload={"status": "\ud800"}),
            body(outcome="failed", reason="boom"),
            b"x" * (2 << 20),
        ]:
            with self.assertRaises(BadRoutedReply, msg=raw[:80]):
                decode_reply(raw)

    def test_long_texts_cut(self) -> None:
        """Reasons and descriptions from another node are cut to 1,000 characters."""
        with self.assertRaises(CommandTimeout) as caught:
            decode_reply(body(outcome="timeout", reason="x" * 5000))
        self.assertEqual(len(str(caught.exception)), 1000)


class ExecutorTests(SynchronousTestCase):
    def test_malformed_request_answered(self) -> None:
        """A malformed request is answered 'failed' (logged), nothing sent."""

        class Registry:
            def call(self, *args: Any, **kwargs: Any) -> Any:
                raise AssertionError("sent")

        executor = CommandExecutor(Registry(), max_timeout=30)  # type: ignore[arg-type]
        reply = self.successResultOf(executor.handle(b"{]"))
        with self.assertRaises(BadRoutedReply):
            decode_reply(reply)

    def test_timeout_capped(self) -> None:
        """The owner gives the charger at most its own call_timeout."""
        seen: list[float] = []

        class Registry:
            def call(self, cp: str, action: str, payload: Any, *, timeout: float) -> Any:
                seen.append(timeout)
                return succeed({"status": "Accepted"})

        executor = CommandExecutor(Registry(), max_timeout=30)  # type: ignore[arg-type]
        request = encode_request(CommandRequest("CP-1", "Reset", {"type": "Soft"}, 3600))
        reply = self.successResultOf(executor.handle(request))
        self.assertEqual((decode_reply(reply), seen), ({"status": "Accepted"}, [30.0]))
