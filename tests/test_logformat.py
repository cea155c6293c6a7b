"""
Tests for ocppd.logformat: text and JSON lines from events of any logger,
hostile values escaped and cut in both, tracebacks kept apart from events.
"""

from __future__ import annotations

import io
import json
import re
import sys
from typing import Any

from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.logfile import LogFile
from twisted.trial.unittest import SynchronousTestCase

from ocppd.logformat import (
    MAX_MESSAGE_LENGTH,
    json_line,
    observer,
    text_line,
    twistd_log_file,
)

FORGED = "CP1\n2026-12-07T00:00:00+0000 [ocppd.service#critical] forged\x1b[2J"
#: A line of text as twistd writes it.
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000 \[[^\]]+#\w+\] ")


def events_of(emit: Any) -> list[dict[str, Any]]:
    """The events ``emit(logger)`` logs through a plain Twisted logger (no escaping of its own)."""
    events: list[dict[str, Any]] = []
    emit(Logger(namespace="foreign", observer=events.append))
    return events


class TextTests(SynchronousTestCase):
    def test_classic_layout(self) -> None:
        [event] = events_of(lambda log: log.info("hello {who}", who="you"))
        event["log_time"] = 1_800_000_000.5
        self.assertEqual(text_line(event), "2027-01-15T08:00:00+0000 [foreign#info] hello you\n")

    def test_forged_line_escaped(self) -> None:
        [event] = events_of(
            lambda log: log.warn("Refused {charge_point_id}", charge_point_id=FORGED)
        )
        lines = text_line(event).splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("CP1\\x0a2026-12-07T00:00:00+0000", lines[0])
        self.assertIn("forged\\x1b[2J", lines[0])

    def test_long_value_cut(self) -> None:
        [event] = events_of(lambda log: log.info("{path}", path="a" * 100_000))
        line = text_line(event)
        self.assertLess(len(line), MAX_MESSAGE_LENGTH + 200)
        self.assertIn("(100000 characters)", line)

    def test_traceback_lines_indented_and_escaped(self) -> None:
        try:
            raise ValueError(FORGED)
        except ValueError:
            failure = Failure()
        [event] = events_of(
            lambda log: log.failure("Handling {action} failed", failure, action="X")
        )
        first, *rest = text_line(event).rstrip("\n").split("\n")
        self.assertRegex(first, TEXT_LINE)
        self.assertTrue(rest)
        for line in rest:
            self.assertTrue(line.startswith("\t"), line)
            self.assertNotIn("\x1b", line)
        # The message's newline starts a traceback line: indented, never an event's.
        self.assertIn("ValueError: CP1", rest[-2])
        self.assertEqual(
            rest[-1], "\t2026-12-07T00:00:00+0000 [ocppd.service#critical] forged\\x1b[2J"
        )


class JsonTests(SynchronousTestCase):
    def line(self, emit: Any) -> dict[str, Any]:
        [event] = events_of(emit)
        text = json_line(event, "node-1")
        self.assertEqual(text.count("\n"), 1)
        self.assertTrue(text.endswith("\n"))
        record: dict[str, Any] = json.loads(text)
        return record

    def test_fields(self) -> None:
        record = self.line(
            lambda log: log.info(
                "Answered {action} {unique_id} of {charge_point_id} in {ms} ms",
                action="Heartbeat",
                unique_id="42",
                charge_point_id="CP1",
                ms=1.5,
                ok=True,
            )
        )
        self.assertRegex(record.pop("time"), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(
            record,
            {
                "level": "info",
                "namespace": "foreign",
                "node_id": "node-1",
                "message": "Answered Heartbeat 42 of CP1 in 1.5 ms",
                "action": "Heartbeat",
                "unique_id": "42",
                "charge_point_id": "CP1",
                "ms": 1.5,
                "ok": True,
            },
        )

    def test_hostile_values_escaped_and_cut(self) -> None:
        record = self.line(
            lambda log: log.warn(
                "Refused {charge_point_id} {path}", charge_point_id=FORGED, path="p" * 5000
            )
        )
        self.assertEqual(record["level"], "warn")
        self.assertIn("CP1\\x0a2026", record["charge_point_id"])
        self.assertNotIn("\n", record["message"])
        self.assertNotIn("\x1b", record["message"])
        self.assertIn("(5000 characters)", record["path"])
        self.assertLess(len(record["path"]), 1100)

    def test_reserved_names_and_odd_values(self) -> None:
        record = self.line(
            lambda log: log.info(
                "{message} {time} {nan}", message="m", time="t", nan=float("nan"), obj=object
            )
        )
        self.assertEqual((record["field_message"], record["field_time"]), ("m", "t"))
        self.assertEqual(record["nan"], "nan")
        self.assertEqual(record["obj"], "<class 'object'>")
        self.assertEqual(record["message"], "m t nan")

    def test_failure(self) -> None:
        try:
            raise KeyError("k")
        except KeyError:
            failure = Failure()
        record = self.line(lambda log: log.failure("Handling {action} failed", failure, action="X"))
        self.assertEqual(record["level"], "critical")
        self.assertEqual(record["error"], "KeyError: 'k'")
        self.assertIn("Traceback", record["traceback"])
        self.assertNotIn("log_failure", record)

    def test_legacy_event(self) -> None:
        """twisted.python.log.msg events (pika's, Twisted's own) carry their text in message."""
        from twisted.python import log

        events: list[dict[str, Any]] = []
        log.addObserver(events.append)
        self.addCleanup(log.removeObserver, events.append)
        log.msg("legacy\nline")
        [event] = [e for e in events if e.get("message") == ("legacy\nline",)]
        record = json.loads(json_line(event, "n"))
        self.assertEqual(record["message"], "legacy\\x0aline")
        self.assertNotIn("isError", record)


class ObserverTests(SynchronousTestCase):
    def test_observer_writes_lines(self) -> None:
        out = io.StringIO()
        for fmt in ("json", "text"):
            observe = observer(fmt, out, "n")
            for event in events_of(lambda log: log.info("one {x}", x=FORGED)):
                observe(event)
        json_text, text = out.getvalue().splitlines()
        self.assertEqual(json.loads(json_text)["node_id"], "n")
        self.assertRegex(text, TEXT_LINE)

    def test_where_twistd_would_log(self) -> None:
        self.assertIs(twistd_log_file({"nodaemon": True}), sys.stdout)
        self.assertIs(twistd_log_file({"logfile": "-", "nodaemon": True}), sys.stdout)
        self.assertIsNone(twistd_log_file({"syslog": True}))
        self.assertIsNone(twistd_log_file({"logger": "my.observer"}))
        path = self.mktemp()
        log_file = twistd_log_file({"logfile": path})
        self.addCleanup(log_file.close)  # type: ignore[union-attr]
        self.assertIsInstance(log_file, LogFile)
