"""ocppd.presence.redis.ScriptRunner: a Redis outage is logged as it starts and as it ends."""

from __future__ import annotations

from typing import Any

import txredisapi
from twisted.internet.defer import fail, succeed
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from ocppd.logs import Logger
from ocppd.presence.interface import PresenceUnavailable
from ocppd.presence.redis import ScriptRunner, parse_redis_url


class _Handler:
    def __init__(self) -> None:
        self.answers: list[Any] = []

    def eval(self, script: str, keys: list[str], args: list[Any]) -> Any:
        return self.answers.pop(0)


class _Factory:
    def __init__(self) -> None:
        self.size = 1
        self.handler = _Handler()


class ScriptRunnerTests(SynchronousTestCase):
    log = Logger()

    def setUp(self) -> None:
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.runner = ScriptRunner(
            self.log,
            parse_redis_url("redis://127.0.0.1:1/0"),
            service="Presence",
            while_unreachable="nothing can be read",
            while_refusing="nothing can be changed",
            unavailable=PresenceUnavailable,
        )

    def lines(self) -> list[str]:
        return [e["log_format"] for e in self.events if e.get("service") == "Presence"]

    def test_unreachable_logged_once_then_reachable(self) -> None:
        for _ in range(3):
            self.failureResultOf(self.runner.eval(None, "s", [], []), PresenceUnavailable)
        factory = _Factory()
        factory.handler.answers.append(succeed(1))
        self.assertEqual(self.successResultOf(self.runner.eval(factory, "s", [], [])), 1)
        self.assertEqual(len(self.lines()), 2)
        self.assertIn("is unreachable", self.lines()[0])
        self.assertIn("is reachable", self.lines()[1])

    def test_refusing_logged_once_then_answers_again(self) -> None:
        factory = _Factory()
        for _ in range(3):
            factory.handler.answers.append(
                fail(txredisapi.ResponseError("READONLY You can't write against a replica."))
            )
            self.failureResultOf(self.runner.eval(factory, "s", [], []), PresenceUnavailable)
        factory.handler.answers.append(succeed(2))
        self.successResultOf(self.runner.eval(factory, "s", [], []))
        self.assertEqual(len(self.lines()), 2)
        self.assertIn("refuses", self.lines()[0])
        self.assertIn("answers again", self.lines()[1])

    def test_other_errors_pass_through(self) -> None:
        factory = _Factory()
        factory.handler.answers.append(fail(txredisapi.ResponseError("ERR wrong number")))
        self.failureResultOf(self.runner.eval(factory, "s", [], []), txredisapi.ResponseError)
        self.assertEqual(self.lines(), [])
