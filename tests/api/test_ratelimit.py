"""Tests for ocppd.api.ratelimit: a sliding window on an injected clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.api.ratelimit import RateLimiter


class RateLimiterTests(SynchronousTestCase):
    def test_window_slides(self) -> None:
        """The limit holds within the window and frees up as old events leave it."""
        clock = Clock()
        limiter = RateLimiter(clock, limit=2, window=10)
        self.assertIsNone(limiter.retry_after("a"))
        limiter.record("a")
        clock.advance(4)
        limiter.record("a")
        self.assertEqual(limiter.retry_after("a"), 6)
        self.assertIsNone(limiter.retry_after("b"))
        clock.advance(6)
        self.assertIsNone(limiter.retry_after("a"))

    def test_reset_and_memory(self) -> None:
        """reset forgets a key; keys without recent events are dropped."""
        clock = Clock()
        limiter = RateLimiter(clock, limit=1, window=5)
        limiter.record("a")
        limiter.reset("a")
        self.assertIsNone(limiter.retry_after("a"))
        limiter.record("b")
        clock.advance(5)
        self.assertIsNone(limiter.retry_after("b"))
        self.assertEqual(limiter._events, {})

    def test_memory_bounded(self) -> None:
        """At most ``max_keys`` keys are kept; the least recently active go first."""
        clock = Clock()
        limiter = RateLimiter(clock, limit=1, window=60, max_keys=2)
        for key in ("a", "b", "a", "c"):
            clock.advance(1)
            limiter.record(key)
        self.assertIsNone(limiter.retry_after("b"), "b was the least recently active")
        self.assertIsNotNone(limiter.retry_after("a"))
        self.assertIsNotNone(limiter.retry_after("c"))
