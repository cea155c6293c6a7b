"""ocppd.redis.scripts.ScriptRunner: a Redis outage is logged as it starts and as it ends."""

from __future__ import annotations

from typing import Any

import txredisapi
from twisted.internet.defer import fail, succeed
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from ocppd.logs import Logger
from ocppd.presence.interface import PresenceUnavailable
from ocppd.redis.address import parse_redis_url
from ocppd.redis.scripts import ScriptRunner


class _Handler:
    def __init__(self) -> None:
        self.answers: list[Any] = []

    def eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return self.answers.pop(0)


class _Link:
    """A link whose command connection is ``handler``, or down (None)."""

    def __init__(self) -> None:
        self.address = parse_redis_url("redis://127.0.0.1:1/0")
        self.handler: _Handler | None = None

    def commands(self) -> _Handler | None:
        return self.handler


class ScriptRunnerTests(SynchronousTestCase):
    log = Logger()

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.link = _Link()
        self.runner = ScriptRunner(
            self.log,
            self.link,  # type: ignore[arg-type]
            service="Presence",
            while_unreachable="nothing can be read",
            while_refusing="nothing can be changed",
            unavailable=PresenceUnavailable,
        )

    def lines(self) -> list[str]:
        return [e["log_format"] for e in self.events if e.get("service") == "Presence"]

    def test_unreachable_logged_once_then_reachable(self) -> None:
        for _ in range(3):
            self.failureResultOf(self.runner.eval("s", [], []), PresenceUnavailable)
        self.link.handler = _Handler()
        self.link.handler.answers.append(succeed(1))
        self.assertEqual(self.successResultOf(self.runner.eval("s", [], [])), 1)
        self.assertEqual(len(self.lines()), 2)
        self.assertIn("is unreachable", self.lines()[0])
        self.assertIn("is reachable", self.lines()[1])

    def test_refusing_logged_once_then_answers_again(self) -> None:
        handler = self.link.handler = _Handler()
        for _ in range(3):
            handler.answers.append(
                fail(txredisapi.ResponseError("READONLY You can't write against a replica."))
            )
            self.failureResultOf(self.runner.eval("s", [], []), PresenceUnavailable)
        handler.answers.append(succeed(2))
        self.successResultOf(self.runner.eval("s", [], []))
        self.assertEqual(len(self.lines()), 2)
        self.assertIn("refuses", self.lines()[0])
        self.assertIn("answers again", self.lines()[1])

    def test_other_errors_pass_through(self) -> None:
        handler = self.link.handler = _Handler()
        handler.answers.append(fail(txredisapi.ResponseError("ERR wrong number")))
        self.failureResultOf(self.runner.eval("s", [], []), txredisapi.ResponseError)
        self.assertEqual(self.lines(), [])
