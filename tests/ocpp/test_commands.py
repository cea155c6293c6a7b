"""Tests for ocppd.ocpp.commands: CSMS-to-charger calls over one connection."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp.commands import (
    CallErrorReceived,
    ChargerDisconnected,
    CommandQueue,
    CommandTimeout,
    InvalidCommand,
    InvalidReply,
)
from ocppd.ocpp.frames import Call, CallError, CallResult
from ocppd.ocpp.schemas import SchemaRegistry

SCHEMAS = SchemaRegistry.load()


class CommandQueueTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.sent: list[Call] = []
        self.replies: list[tuple[str, str]] = []
        self.queue = CommandQueue(
            "CP1",
            send=self.sent.append,
            schemas=SCHEMAS,
            clock=self.clock,
            timeout=30,
            on_reply=lambda call, reply: self.replies.append((call.action, type(reply).__name__)),
        )

    def results(self, d: Any) -> list[Any]:
        out: list[Any] = []
        d.addBoth(out.append)
        return out

    def test_result_correlated_by_unique_id(self) -> None:
        """The CALLRESULT with the call's unique id fires the Deferred with its payload."""
        out = self.results(self.queue.call("Reset", {"type": "Soft"}))
        [call] = self.sent
        self.assertEqual((call.action, call.payload), ("Reset", {"type": "Soft"}))
        self.queue.reply_received(CallResult("not-this-one", {"status": "Accepted"}))
        self.assertEqual(out, [])
        self.queue.reply_received(CallResult(call.unique_id, {"status": "Accepted"}))
        self.assertEqual(out, [{"status": "Accepted"}])
        self.assertEqual(self.replies, [("Reset", "CallResult")])

    def test_one_outstanding_call(self) -> None:
        """A second command waits until the first is answered, then goes out."""
        first = self.results(self.queue.call("ClearCache", {}))
        second = self.results(self.queue.call("Reset", {"type": "Hard"}))
        self.assertEqual([c.action for c in self.sent], ["ClearCache"])
        self.assertEqual(self.queue.pending, 2)
        self.queue.reply_received(CallResult(self.sent[0].unique_id, {"status": "Accepted"}))
        self.assertEqual([c.action for c in self.sent], ["ClearCache", "Reset"])
        self.queue.reply_received(CallResult(self.sent[1].unique_id, {"status": "Rejected"}))
        self.assertEqual((first, second), ([{"status": "Accepted"}], [{"status": "Rejected"}]))

    def test_invalid_payload_never_sent(self) -> None:
        """A payload that fails the request schema raises InvalidCommand and sends nothing."""
        with self.assertRaises(InvalidCommand) as caught:
            self.queue.call("Reset", {"type": "Sideways"})
        self.assertEqual(caught.exception.error.code, "PropertyConstraintViolation")
        self.assertEqual(self.sent, [])

    def test_timeout_then_next(self) -> None:
        """No answer within the timeout fails with CommandTimeout; the queue moves on."""
        first = self.results(self.queue.call("ClearCache", {}, timeout=5))
        second = self.results(self.queue.call("Reset", {"type": "Soft"}))
        self.clock.advance(5)
        first[0].trap(CommandTimeout)
        self.assertEqual([c.action for c in self.sent], ["ClearCache", "Reset"])
        # The late answer to the first call is dropped, not taken for the second.
        self.queue.reply_received(CallResult(self.sent[0].unique_id, {"status": "Accepted"}))
        self.assertEqual(second, [])
        self.queue.reply_received(CallResult(self.sent[1].unique_id, {"status": "Accepted"}))
        self.assertEqual(second, [{"status": "Accepted"}])

    def test_timeout_counts_while_queued(self) -> None:
        """A queued command times out from when it was asked for, and is never sent."""
        self.queue.call("ClearCache", {})
        queued = self.results(self.queue.call("Reset", {"type": "Soft"}, timeout=3))
        self.clock.advance(3)
        queued[0].trap(CommandTimeout)
        self.queue.reply_received(CallResult(self.sent[0].unique_id, {"status": "Accepted"}))
        self.assertEqual([c.action for c in self.sent], ["ClearCache"])

    def test_call_error(self) -> None:
        """A CALLERROR fails the command with its code, description and details."""
        out = self.results(self.queue.call("ClearCache", {}))
        self.queue.reply_received(
            CallError(self.sent[0].unique_id, "NotSupported", "nope", {"a": 1})
        )
        error = out[0].trap(CallErrorReceived) and out[0].value
        self.assertEqual(
            (error.code, error.description, error.details), ("NotSupported", "nope", {"a": 1})
        )

    def test_invalid_reply(self) -> None:
        """A CALLRESULT that fails the response schema fails the command with InvalidReply."""
        out = self.results(self.queue.call("ClearCache", {}))
        self.queue.reply_received(CallResult(self.sent[0].unique_id, {"status": "Maybe"}))
        out[0].trap(InvalidReply)
        self.assertEqual(out[0].value.payload, {"status": "Maybe"})

    def test_disconnect_fails_everything(self) -> None:
        """Losing the connection fails the call in flight and every queued one; new calls raise."""
        first = self.results(self.queue.call("ClearCache", {}))
        second = self.results(self.queue.call("Reset", {"type": "Soft"}))
        self.queue.connection_lost("gone")
        first[0].trap(ChargerDisconnected)
        second[0].trap(ChargerDisconnected)
        self.assertRaises(ChargerDisconnected, self.queue.call, "ClearCache", {})
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_cancel_sends_next(self) -> None:
        """Cancelling the call in flight frees the slot for the next one."""
        first = self.queue.call("ClearCache", {})
        self.queue.call("Reset", {"type": "Soft"})
        first.addErrback(lambda f: None)
        first.cancel()
        self.assertEqual([c.action for c in self.sent], ["ClearCache", "Reset"])
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
