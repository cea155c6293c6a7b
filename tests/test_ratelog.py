"""Tests for ``ocppd.ratelog``: one line per kind of repeated event, with a count."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from ocppd.logs import Logger
from ocppd.ratelog import RepeatLog, flush_all


class Boom(Exception):
    pass


class RepeatLogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.events: list[dict[str, Any]] = []
        self.log = RepeatLog(Logger(observer=self.events.append), self.clock, interval=60)

    def lines(self) -> list[str]:
        return [formatEvent(event) for event in self.events]

    def test_first_logged_then_counted(self) -> None:
        """1,000 events of one kind in a minute: the first line, then one summary with the count."""
        for n in range(1000):
            self.log.warn("refused", "Publishing {key} refused", key=f"k{n}")
            self.clock.advance(0.05)
        self.assertEqual(len(self.events), 1)
        self.clock.advance(11)
        self.assertEqual(len(self.events), 2)
        self.assertEqual(self.events[0]["suppressed"], 0)
        self.assertEqual(self.events[1]["suppressed"], 999)
        self.assertEqual(self.events[1]["key"], "k999")  # the latest one's fields
        self.assertIn("999 more like this in the last 60s", self.lines()[1])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_long_flood_costs_a_line_per_interval(self) -> None:
        """An hour of an event every second: about one line a minute, every event counted."""
        for _ in range(3600):
            self.log.warn("refused", "refused")
            self.clock.advance(1)
        self.clock.advance(60)
        self.assertLessEqual(len(self.events), 62)
        self.assertEqual(sum(e["suppressed"] for e in self.events) + 1, 3600)

    def test_kinds_are_separate(self) -> None:
        self.log.warn("a", "a")
        self.log.warn("b", "b")
        self.log.warn("a", "a")
        self.assertEqual(self.lines(), ["a", "b"])

    def test_after_a_quiet_interval_logged_at_once(self) -> None:
        self.log.warn("a", "a")
        self.clock.advance(61)
        self.log.warn("a", "a again")
        self.assertEqual(self.lines(), ["a", "a again"])

    def test_traceback_once_then_summary_as_error(self) -> None:
        """A failure's traceback is written for the first of its kind only."""
        for _ in range(5):
            try:
                raise Boom("down")
            except Boom:
                self.log.failure("handler", "Handler failed", Failure())
        self.clock.advance(60)
        self.assertIsInstance(self.events[0]["log_failure"].value, Boom)
        self.assertNotIn("log_failure", self.events[1])
        self.assertEqual([e["log_level"] for e in self.events], [LogLevel.critical, LogLevel.error])
        self.assertEqual(self.events[1]["suppressed"], 4)

    def test_flush_logs_pending_counts_and_cancels_timers(self) -> None:
        for _ in range(3):
            self.log.warn("a", "a")
        flush_all()
        self.assertEqual([e["suppressed"] for e in self.events], [0, 2])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_kinds_are_bounded(self) -> None:
        """Beyond ``max_kinds`` the least recently logged kind is reported and forgotten."""
        log = RepeatLog(Logger(observer=self.events.append), self.clock, max_kinds=2)
        log.warn("a", "a")
        log.warn("a", "a")
        log.warn("b", "b")
        log.warn("c", "c")  # evicts "a", whose count is written first
        self.assertEqual(
            [(formatEvent(e).split(" ")[0], e["suppressed"]) for e in self.events],
            [("a", 0), ("b", 0), ("a", 1), ("c", 0)],
        )
        self.assertEqual(len(self.clock.getDelayedCalls()), 0)

    def test_validates(self) -> None:
        with self.assertRaises(ValueError):
            RepeatLog(Logger(), self.clock, interval=0)
