"""``Outcome``: one result handed to one function, with a Deferred's firing side."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import AlreadyCalledError, CancelledError, Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus.outcome import Outcome, deferred_of, outcome_of


class OutcomeTests(SynchronousTestCase):
    def test_result_before_or_after_bind(self) -> None:
        """The bound function gets the result with its arguments, whichever came first."""
        got: list[tuple[Any, ...]] = []
        early = Outcome()
        early.callback("a")
        self.assertTrue(early.called)
        early.bind(lambda result, *args: got.append((result, *args)), 1, 2)
        late = Outcome()
        late.bind(lambda result, *args: got.append((result, *args)), 3)
        self.assertEqual(got, [("a", 1, 2)])
        late.callback("b")
        self.assertEqual(got, [("a", 1, 2), ("b", 3)])

    def test_errback_hands_on_the_failure(self) -> None:
        got: list[object] = []
        outcome = Outcome()
        outcome.bind(got.append)
        fail = Failure(ValueError("no"))
        outcome.errback(fail)
        self.assertEqual(got, [fail])

    def test_given_once_bound_once(self) -> None:
        outcome = Outcome()
        outcome.callback(None)
        self.assertRaises(AlreadyCalledError, outcome.callback, None)
        outcome.bind(lambda _: None)
        self.assertRaises(RuntimeError, outcome.bind, lambda _: None)

    def test_cancel_fails_it_and_drops_the_late_result(self) -> None:
        """As a Deferred without a canceller: CancelledError now, the late result ignored."""
        got: list[object] = []
        outcome = Outcome()
        outcome.bind(got.append)
        outcome.cancel()
        outcome.callback("late")
        outcome.cancel()
        self.assertEqual(len(got), 1)
        self.assertIsInstance(got[0], Failure)
        self.assertTrue(got[0].check(CancelledError))  # type: ignore[union-attr]

    def test_cancel_after_the_result_changes_nothing(self) -> None:
        got: list[object] = []
        outcome = Outcome()
        outcome.callback("done")
        outcome.cancel()
        outcome.bind(got.append)
        self.assertEqual(got, ["done"])

    def test_what_the_function_raises_is_logged_not_raised(self) -> None:
        """Whoever gives the result (a journal write's end) is not interrupted."""

        def broken(result: object) -> None:
            raise RuntimeError("bug")

        outcome = Outcome()
        outcome.bind(broken)
        outcome.callback(None)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_of_a_deferred_cancels_it(self) -> None:
        cancelled: list[object] = []
        d: Deferred[str] = Deferred(cancelled.append)
        outcome = outcome_of(d)
        got: list[object] = []
        outcome.bind(got.append)
        outcome.cancel()
        self.assertEqual(cancelled, [d])
        self.assertTrue(got[0].check(CancelledError))  # type: ignore[attr-defined]

    def test_deferred_of_an_outcome(self) -> None:
        """Its result, its failure; cancelling the Deferred cancels the outcome."""
        done = Outcome()
        d = deferred_of(done)
        self.assertNoResult(d)
        done.callback("x")
        self.assertEqual(self.successResultOf(d), "x")
        failed = Outcome()
        failed.errback(Failure(ValueError("no")))
        self.failureResultOf(deferred_of(failed), ValueError)
        waiting = Outcome()
        waited = deferred_of(waiting)
        waited.cancel()
        self.failureResultOf(waited, CancelledError)
        self.assertTrue(waiting.called)
