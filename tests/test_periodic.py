"""
``ocppd.periodic``: what the node's periodic jobs add to ``TimerService``,
on a ``Clock``: a stop a run under way can see, and a stop before any start.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.periodic import PeriodicService


class PeriodicServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.runs: list[float] = []
        #: What the next run returns (a run under way until it fires).
        self.next: Deferred[None] = succeed(None)
        self.timer = PeriodicService(5, self.job, self.clock)

    def job(self) -> Deferred[None]:
        self.runs.append(self.clock.seconds())
        return self.next

    def test_runs_at_start_and_every_step_until_stopped(self) -> None:
        self.timer.startService()
        self.clock.pump([5, 5])
        self.successResultOf(self.timer.stopService())
        self.clock.advance(10)
        self.assertEqual(self.runs, [0, 5, 10])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stopping_seen_by_a_run_under_way(self) -> None:
        """``running`` stays true until the run ends (TimerService); ``stopping`` is set at once."""
        self.next = Deferred()
        self.timer.startService()
        self.assertFalse(self.timer.stopping)
        stopped = self.timer.stopService()
        self.assertNoResult(stopped)
        self.assertEqual((self.timer.stopping, self.timer.running), (True, True))
        self.next.callback(None)
        self.successResultOf(stopped)
        self.assertFalse(self.timer.running)

    def test_started_again_after_a_stop(self) -> None:
        self.timer.startService()
        self.successResultOf(self.timer.stopService())
        self.clock.advance(7)
        self.timer.startService()
        self.assertFalse(self.timer.stopping)
        self.clock.advance(5)
        self.assertEqual(self.runs, [0, 7, 12])
        self.successResultOf(self.timer.stopService())

    def test_stop_without_start(self) -> None:
        """Nothing to stop: fires at once (TimerService's own would raise)."""
        self.successResultOf(self.timer.stopService())
        self.assertEqual(self.runs, [])
