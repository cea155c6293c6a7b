"""``ocppd.ocpp.deadlines``: one timer for every waiting answer, each cut at its own deadline."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp.deadlines import Deadline, Deadlines

TIMEOUT = 10.0


class DeadlinesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.deadlines = Deadlines(self.clock, TIMEOUT)

    def watched(self) -> tuple[Deferred[Any], Deadline]:
        answer: Deferred[Any] = Deferred()
        deadline = self.deadlines.watch(answer)
        answer.addBoth(lambda result: (self.deadlines.settle(deadline), result)[1])
        return answer, deadline

    def test_each_cancelled_at_its_own_deadline(self) -> None:
        """Answers watched at 0, 3 and 3.5 s are cancelled at 10, 13 and 13.5 s, not before."""
        first, _ = self.watched()
        self.clock.advance(3)
        second, _ = self.watched()
        self.clock.advance(0.5)
        third, _ = self.watched()
        for answer, at in ((first, 10.0), (second, 13.0), (third, 13.5)):
            self.clock.advance(at - 0.01 - self.clock.seconds())
            self.assertFalse(answer.called)
            self.clock.advance(0.01)
            self.failureResultOf(answer, CancelledError)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_one_timer_for_all_waiting(self) -> None:
        """A hundred waiting answers: one DelayedCall in the reactor, not a hundred."""
        answers = []
        for _ in range(100):
            answers.append(self.watched()[0])
            self.clock.advance(0.01)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(TIMEOUT)
        for answer in answers:
            self.failureResultOf(answer, CancelledError)

    def test_settled_answer_not_cancelled_and_dropped(self) -> None:
        """An answer that came in time is never cancelled; the queue keeps about those in flight."""
        early, deadline = self.watched()
        late, _ = self.watched()
        early.callback("answer")
        self.assertFalse(self.deadlines.settle(deadline))  # settled once already
        self.clock.advance(TIMEOUT)
        self.assertEqual(self.successResultOf(early), "answer")
        self.failureResultOf(late, CancelledError)
        for _ in range(1000):
            self.watched()[0].callback(None)
        self.assertEqual(len(self.deadlines), 0)
        # Nothing waits: no timer is left in the reactor.
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_front_settled_answers_dropped_while_others_wait(self) -> None:
        """Answers settled in the order they came leave the queue while later ones still wait."""
        waiting = [self.watched() for _ in range(3)]
        for _ in range(1000):
            waiting.append(self.watched())
            answer, _ = waiting.pop(0)
            answer.callback(None)
        self.assertLessEqual(len(self.deadlines), 4)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)

    def test_cancelled_answer_callbacks_may_watch_the_next(self) -> None:
        """
        A cancelled answer's callbacks may start the next answer (the
        connection's next CALL): its deadline is kept, by the one timer.
        """
        following: list[Deferred[Any]] = []
        first, _ = self.watched()
        first.addErrback(lambda _: following.append(self.watched()[0]))
        self.clock.advance(TIMEOUT)
        self.assertEqual(len(following), 1)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(TIMEOUT - 0.01)
        self.assertFalse(following[0].called)
        self.clock.advance(0.01)
        self.failureResultOf(following[0], CancelledError)
