"""
A node's periodic jobs (liveness, diagnostics pruning, the Heartbeats'
``last_seen_at``) as one kind of service: Twisted's ``TimerService``.

``TimerService`` runs its callable at start and every ``step`` seconds, waits
for a run's Deferred before the next, and its ``stopService`` fires once a run
under way has ended. It keeps ``running`` true until then, though, so a run
cannot tell that a stop began; and it cannot stop when it never started.
:class:`PeriodicService` adds those two and nothing else.

A job logs its own failures: a run that fails ends the timer (``LoopingCall``
stops on an error).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime


class PeriodicService(TimerService):
    """``run`` at start and every ``step`` seconds on ``clock`` until stopped."""

    def __init__(self, step: float, run: Callable[[], Any], clock: IReactorTime) -> None:
        super().__init__(step, run)
        self.clock = clock
        #: Set once a stop begins: a run under way ends early (the database closes next).
        self.stopping = False

    def startService(self) -> None:
        self.stopping = False
        super().startService()

    def stopService(self) -> Deferred[None]:
        """Stop the timer; fires once a run under way has ended."""
        self.stopping = True
        if not self.running:
            return succeed(None)  # never started (or stopped already): no timer to stop
        stopped: Deferred[None] = super().stopService()
        return stopped
