"""Tests for ocppd.logs: log fields from outside cannot forge or flood lines."""

from __future__ import annotations

from typing import Any

from twisted.logger import formatEvent
from twisted.trial.unittest import SynchronousTestCase

from ocppd.logs import MAX_LOGGED_LENGTH, Logger, loggable


class LoggableTests(SynchronousTestCase):
    def test_control_characters_escaped(self) -> None:
        """Newlines, escapes, separators and bidi overrides become visible escapes."""
        self.assertEqual(
            loggable("CP1\r\n2026-12-06 [ocppd] forged\x1b[2J\u2028\u202e\ud800\x85"),
            "CP1\\x0d\\x0a2026-12-06 [ocppd] forged\\x1b[2J\\u2028\\u202e\\ud800\\x85",
        )

    def test_ordinary_text_unchanged(self) -> None:
        """Printable text, including non-ASCII letters, is written as it is."""
        self.assertEqual(loggable("Ladesäule Zürich 東京 ✓"), "Ladesäule Zürich 東京 ✓")

    def test_long_values_cut(self) -> None:
        """A long value is cut and says how long it was."""
        text = loggable("/ocpp/" + "A" * 10_000)
        self.assertEqual(
            text, ("/ocpp/" + "A" * 10_000)[:MAX_LOGGED_LENGTH] + "... (10006 characters)"
        )


class LoggerTests(SynchronousTestCase):
    def test_string_fields_made_safe_for_every_observer(self) -> None:
        """Observers receive the safe values; fields that are not strings keep their type."""
        events: list[dict[str, Any]] = []
        log = Logger(observer=events.append)
        log.info(
            "Refused {path} from {peer} ({count})",
            path="/ocpp/CP1\n[ocppd] fake line",
            peer="127.0.0.1",
            count=3,
        )
        (event,) = events
        self.assertEqual(event["path"], "/ocpp/CP1\\x0a[ocppd] fake line")
        self.assertEqual(event["count"], 3)
        self.assertNotIn("\n", formatEvent(event))

    def test_bound_to_instances_keeps_the_class(self) -> None:
        """As a class attribute it still makes fields safe (Logger.__get__ keeps the subclass)."""
        events: list[dict[str, Any]] = []

        class Thing:
            log = Logger(observer=events.append)

        Thing().log.warn("{topic}", topic="a\rb")
        self.assertEqual(events[0]["topic"], "a\\x0db")

    def test_failure_fields_made_safe(self) -> None:
        """``log.failure`` goes through the same path."""
        events: list[dict[str, Any]] = []
        log = Logger(observer=events.append)
        try:
            raise ValueError("boom")
        except ValueError:
            log.failure("Handling {action} failed", action="Heart\nbeat")
        self.assertEqual(events[0]["action"], "Heart\\x0abeat")
        self.assertIn("log_failure", events[0])


class EveryModuleTests(SynchronousTestCase):
    def test_no_module_logs_through_twisteds_logger_directly(self) -> None:
        """Every ocppd module takes its Logger from ocppd.logs: no log line skips the escaping."""
        import pathlib
        import re

        import ocppd

        root = pathlib.Path(ocppd.__file__).parent
        direct = re.compile(r"^from twisted\.logger import[^\n]*\bLogger\b|^\s+Logger,$", re.M)
        offenders = [
            str(path.relative_to(root))
            for path in root.rglob("*.py")
            if path.name != "logs.py" and direct.search(path.read_text(encoding="utf-8"))
        ]
        self.assertEqual(offenders, [])
