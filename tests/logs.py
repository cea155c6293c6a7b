"""What tests see of the log."""

from __future__ import annotations

from typing import Any

from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase


def logged_errors(testcase: SynchronousTestCase) -> list[dict[str, Any]]:
    """
    A list that collects every event logged at error or critical level (a
    ``log.failure``, a legacy ``log.err``) until ``testcase`` ends.
    """
    errors: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level") in (LogLevel.error, LogLevel.critical) or event.get("isError"):
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    testcase.addCleanup(globalLogPublisher.removeObserver, observe)
    return errors
