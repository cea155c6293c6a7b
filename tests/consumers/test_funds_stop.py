"""
The funds guard's stop consumer (``ocppd/consumers/funds_stop.py``) on a
``Clock``: retries while the charger is unreachable, bounded and backing
off, only while the session is active, once per envelope.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery
from ocppd.consumers.funds_stop import FundsStopConsumer, StopOutcome
from ocppd.store import processed, transactions

FUNDS = {"userId": 7, "sessionId": 42, "chargePointId": "CP1", "reason": "funds"}


@attrs.define
class _Session:
    status: str


class FakeDatabase:
    """The three queries the consumer makes, on dicts."""

    def __init__(self) -> None:
        self.claimed: set[str] = set()
        self.status = "active"

    def run(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        if func is processed.is_processed:
            return succeed(args[1] in self.claimed)
        if func is processed.claim_message:
            self.claimed.add(args[1])
            return succeed(True)
        if func is transactions.get_transaction:
            return succeed(_Session(self.status))
        raise AssertionError(f"unexpected query {func}")


class FundsStopTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.database = FakeDatabase()
        self.outcomes: list[StopOutcome] = []
        self.stops: list[tuple[int, str, int]] = []
        self.consumer = FundsStopConsumer(
            bus=None,  # type: ignore[arg-type]
            database=self.database,  # type: ignore[arg-type]
            stop_session=self.stop,
            clock=self.clock,
            retry_delays=(5, 15),
            max_attempts=4,
        )

    def stop(self, user_id: int, charge_point_id: str, session_id: int) -> Deferred[StopOutcome]:
        self.stops.append((user_id, charge_point_id, session_id))
        return succeed(self.outcomes.pop(0) if self.outcomes else StopOutcome.ANSWERED)

    def deliver(self, payload: dict[str, Any], envelope_id: str = "e1") -> Deferred[None]:
        envelope = Envelope(envelope_id, "charging.stop.requested", "t", "node-a", "CP1", payload)
        return self.consumer.handle(Delivery(envelope, envelope.type, "funds_stop", 1))

    def test_stops_once(self) -> None:
        """A funds stop is sent; the same envelope again does nothing."""
        self.successResultOf(self.deliver(FUNDS))
        self.successResultOf(self.deliver(FUNDS))
        self.assertEqual(self.stops, [(7, "CP1", 42)])

    def test_user_stops_ignored(self) -> None:
        """A customer's own stop (sent by the API) and malformed payloads are not acted on."""
        for payload in (
            {**FUNDS, "reason": "user"},
            {**FUNDS, "sessionId": "42"},
            {**FUNDS, "userId": True},
            {**FUNDS, "chargePointId": "bad id"},
            {**FUNDS, "sessionId": 2**40},
        ):
            self.successResultOf(self.deliver(payload))
        self.assertEqual(self.stops, [])

    def test_retries_while_unreachable(self) -> None:
        """Unreachable: tried again after 5 s, then 15 s, until the charger answers."""
        self.outcomes = [StopOutcome.UNREACHABLE, StopOutcome.UNREACHABLE]
        done = self.deliver(FUNDS)
        self.assertEqual(len(self.stops), 1)
        self.clock.advance(4.9)
        self.assertEqual(len(self.stops), 1)
        self.clock.advance(0.1)
        self.assertEqual(len(self.stops), 2)
        self.clock.advance(14.9)
        self.assertEqual(len(self.stops), 2)
        self.clock.advance(0.1)
        self.assertEqual(len(self.stops), 3)
        self.successResultOf(done)
        self.assertEqual(self.database.claimed, {"e1"})

    def test_bounded(self) -> None:
        """Never reachable: max_attempts sends, then it gives up (logged) and is done."""
        self.outcomes = [StopOutcome.UNREACHABLE] * 10
        done = self.deliver(FUNDS)
        self.clock.pump([15] * 10)
        self.successResultOf(done)
        self.assertEqual(len(self.stops), 4)

    def test_no_retry_once_stopped(self) -> None:
        """The session stopped meanwhile (say the charger stopped it): no more tries."""
        self.outcomes = [StopOutcome.UNREACHABLE]
        done = self.deliver(FUNDS)
        self.database.status = "stopped"
        self.clock.advance(5)
        self.successResultOf(done)
        self.assertEqual(len(self.stops), 1)

    def test_failure_not_retried(self) -> None:
        """What another try cannot change (a CALLERROR, no such customer) is not retried."""
        self.outcomes = [StopOutcome.FAILED]
        self.successResultOf(self.deliver(FUNDS))
        self.assertEqual(len(self.stops), 1)

    def test_stop_cancels_waiting_retries(self) -> None:
        """Stopping the node does not wait out a back-off: the message goes back to the bus."""
        self.outcomes = [StopOutcome.UNREACHABLE]
        done = self.deliver(FUNDS)
        self.consumer.stop()
        self.failureResultOf(done)
        self.assertEqual(self.database.claimed, set())
