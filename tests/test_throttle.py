"""Tests for ocppd.throttle: progressive delay per key on an injected clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.throttle import Throttle, ThrottlePolicy

POLICY = ThrottlePolicy(free=2, base=1.0, cap=8.0, forget=60.0)


class ThrottlePolicyTests(SynchronousTestCase):
    def test_delay_doubles_to_the_cap(self) -> None:
        """Free failures cost nothing; then the delay doubles and stops at the cap."""
        self.assertEqual([POLICY.delay(n) for n in range(7)], [0, 0, 1, 2, 4, 8, 8])

    def test_huge_counts_stay_finite(self) -> None:
        """A count far beyond any real one still gives the cap, not an overflow."""
        self.assertEqual(POLICY.delay(10**9), 8.0)


class ThrottleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.throttle = Throttle(self.clock, POLICY)

    def test_attempts_count_before_their_outcome(self) -> None:
        """Parallel attempts: after the free ones begin, the next must wait."""
        self.assertIsNone(self.throttle.begin("a"))
        self.assertIsNone(self.throttle.begin("a"))
        self.assertEqual(self.throttle.begin("a"), 1.0)
        self.assertIsNone(self.throttle.begin("b"), "keys are independent")

    def test_progressive_delay(self) -> None:
        """Each failure past the free ones doubles the wait after the latest failure."""
        for _ in range(2):
            self.throttle.begin("a")
        self.clock.advance(1)
        self.assertIsNone(self.throttle.begin("a"))
        self.assertEqual(self.throttle.retry_after("a"), 2.0)
        self.clock.advance(1.5)
        self.assertEqual(self.throttle.begin("a"), 0.5)
        self.clock.advance(0.5)
        self.assertIsNone(self.throttle.begin("a"))
        self.assertEqual(self.throttle.retry_after("a"), 4.0)

    def test_success_forgives(self) -> None:
        """A success forgets the key's failures."""
        self.throttle.begin("a")
        self.throttle.begin("a")
        self.throttle.succeeded("a")
        self.assertIsNone(self.throttle.retry_after("a"))
        self.assertEqual(len(self.throttle), 0)

    def test_forgotten_after_quiet_period(self) -> None:
        """Keys without a failure for ``forget`` seconds are dropped."""
        for _ in range(5):
            self.clock.advance(10)
            self.throttle.begin("a")
        self.assertIsNotNone(self.throttle.retry_after("a"))
        self.clock.advance(60)
        self.assertIsNone(self.throttle.retry_after("a"))
        self.assertEqual(len(self.throttle), 0)

    def test_memory_bounded(self) -> None:
        """At most ``max_keys`` keys are kept; the oldest go first."""
        throttle = Throttle(self.clock, POLICY, max_keys=3)
        for key in "abcde":
            self.clock.advance(1)
            throttle.begin(key)
        self.assertEqual(len(throttle), 3)
        self.assertIsNone(throttle.retry_after("a"))
        throttle.begin("e")
        self.assertEqual(throttle.begin("e"), 1.0, "the newest key kept its failures")
