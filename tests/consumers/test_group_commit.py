"""
Tests for how BusConsumer forms batches and acknowledges them, on a Clock, with
a database whose transactions the test completes by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery
from ocppd.consumers.base import BusConsumer, FollowUp, Outcome


class ManualDatabase:
    """``Database.run`` whose transactions wait for ``commit()``."""

    def __init__(self) -> None:
        self.transactions: list[tuple[list[Envelope], Deferred[Any]]] = []

    def run(self, func: Callable[..., Any], envelopes: list[Envelope]) -> Deferred[Any]:
        result: Deferred[Any] = Deferred()
        self.transactions.append((envelopes, result))
        self._func = func
        return result

    def batches(self) -> list[list[str]]:
        return [[e.id for e in envelopes] for envelopes, _ in self.transactions]

    def commit(self, index: int = -1) -> None:
        envelopes, result = self.transactions[index]
        result.callback(self._func(None, envelopes))


class ManualEvents:
    """``EventPublisher.announce`` that waits for ``confirm()``."""

    def __init__(self) -> None:
        self.announced: list[tuple[str, Deferred[None]]] = []

    def announce(self, routing_key: str, payload: Any, **kwargs: Any) -> Deferred[None]:
        confirmed: Deferred[None] = Deferred()
        self.announced.append((routing_key, confirmed))
        return confirmed


class Consumer(BusConsumer):
    name = "test"
    concurrency = 5
    batch_wait = 0.05

    def apply_batch(self, conn: Connection, envelopes: list[Envelope]) -> list[Outcome | Any]:
        return [
            (True, [FollowUp(f"done.{e.id}", {})] if e.id.startswith("f") else [])
            for e in envelopes
        ]


def delivery(envelope_id: str) -> Delivery:
    envelope = Envelope(envelope_id, "ocpp.in.Heartbeat", "2026-11-29T12:00:00.000Z", "n", "CP", {})
    return Delivery(envelope, "ocpp.in.Heartbeat", "q", 1)


class GroupCommitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.database = ManualDatabase()
        self.events = ManualEvents()
        self.consumer = Consumer(
            None,  # type: ignore[arg-type]
            self.database,  # type: ignore[arg-type]
            events=self.events,  # type: ignore[arg-type]
            clock=self.clock,
        )
        self.acked: list[tuple[str, bool]] = []

    def handle(self, *ids: str) -> None:
        for envelope_id in ids:
            done = self.consumer.handle(delivery(envelope_id))
            done.addCallback(lambda applied, i=envelope_id: self.acked.append((i, applied)))

    def test_one_turn_one_batch(self) -> None:
        """What arrives in one reactor turn is applied together, from the next turn on."""
        self.handle("a", "b", "c")
        self.assertEqual(self.database.batches(), [])
        self.clock.advance(0)
        self.assertEqual(self.database.batches(), [["a", "b", "c"]])
        self.database.commit()
        self.assertEqual(self.acked, [("a", True), ("b", True), ("c", True)])

    def test_busy_waits_for_a_fuller_batch(self) -> None:
        """
        After a commit, a partial next batch waits up to ``batch_wait`` for
        more; an idle consumer starts at once.
        """
        self.handle("a")
        self.clock.advance(0)
        self.handle("b", "c")
        self.database.commit()
        self.assertEqual(self.database.batches(), [["a"]])
        self.clock.advance(0.049)
        self.assertEqual(self.database.batches(), [["a"]])
        self.clock.advance(0.001)
        self.assertEqual(self.database.batches(), [["a"], ["b", "c"]])
        self.database.commit()
        self.assertEqual(len(self.acked), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_full_batch_does_not_wait(self) -> None:
        """The wait ends as soon as the bus cannot deliver more (concurrency reached)."""
        self.handle("a")
        self.clock.advance(0)
        self.handle("b", "c")
        self.database.commit()
        self.handle("d", "e")
        self.assertEqual(self.database.batches(), [["a"]])
        self.handle("f1")
        self.assertEqual(self.database.batches(), [["a"], ["b", "c", "d", "e", "f1"]])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_events_published_together_acks_follow_own_events(self) -> None:
        """A batch's events go out at once; each message is acked when its own are confirmed."""
        self.handle("f1", "f2", "x")
        self.clock.advance(0)
        self.database.commit()
        self.assertEqual([key for key, _ in self.events.announced], ["done.f1", "done.f2"])
        self.assertEqual(self.acked, [("x", True)])
        self.events.announced[1][1].callback(None)
        self.assertEqual(self.acked, [("x", True), ("f2", True)])
        self.handle("y")
        self.clock.advance(1)
        self.assertEqual(self.database.batches(), [["f1", "f2", "x"]])
        self.events.announced[0][1].callback(None)
        self.assertEqual(self.acked[-1], ("f1", True))
        self.clock.advance(0.05)
        self.assertEqual(self.database.batches(), [["f1", "f2", "x"], ["y"]])
