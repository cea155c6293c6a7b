"""
The bound on how long a charger's answer may wait (``[ocpp] answer_timeout``),
kept for every waiting answer with one ``DelayedCall``.

Every transaction message waits for the bus (and a StartTransaction for the
store too), and each one used to get a ``DelayedCall`` of its own, cancelled
when the answer came: a Python object per message, pushed into the reactor's
heap of timed calls, where every other ``callLater`` then paid Python
comparisons against the ~100 waiting timeouts; together a few per cent of the
reactor thread per MeterValues. Every answer gets the same timeout, so the
deadlines come in the order the answers started: a queue, oldest first, with
one timer for the oldest deadline still waiting.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol


class Cancellable(Protocol):
    """What a deadline cuts: a ``Deferred`` or an ``ocppd.bus.outcome.Outcome``."""

    def cancel(self) -> None: ...


class _Call(Protocol):
    def active(self) -> bool: ...
    def cancel(self) -> None: ...


class _Clock(Protocol):
    """The part of ``IReactorTime`` used here."""

    def seconds(self) -> float: ...
    def callLater(self, delay: float, callable: Any, *args: Any) -> _Call: ...


class Deadline:
    """One answer's place in ``Deadlines``: its deadline, and the answer while it waits."""

    __slots__ = ("answer", "at")

    def __init__(self, at: float, answer: Cancellable) -> None:
        self.at = at
        #: None once the answer has come (``Deadlines.settle``) or was cancelled at its deadline.
        self.answer: Cancellable | None = answer


class Deadlines:
    """
    Cancels each watched Deferred (or ``Outcome``) that has not fired ``timeout`` seconds after
    it was watched, exactly then, as ``clock.callLater(timeout, d.cancel)``
    per Deferred would, with at most one ``DelayedCall`` in the reactor.
    """

    def __init__(self, clock: _Clock, timeout: float) -> None:
        self._clock = clock
        self._timeout = timeout
        self._waiting: deque[Deadline] = deque()
        #: Answers watched and neither settled nor cancelled yet.
        self._pending = 0
        self._timer: _Call | None = None

    def __len__(self) -> int:
        """Deadlines kept (answers still waiting, and settled ones not yet dropped)."""
        return len(self._waiting)

    def watch(self, answer: Cancellable) -> Deadline:
        """
        Cancel ``answer`` at ``timeout`` from now unless its ``Deadline`` is
        settled first (the caller settles it when the answer fires).
        """
        self._pending += 1
        waiting = self._waiting
        # Answers mostly come in the order they started: the settled ones at
        # the front go now, so the queue holds about the answers in flight.
        while waiting and waiting[0].answer is None:
            waiting.popleft()
        deadline = Deadline(self._clock.seconds() + self._timeout, answer)
        waiting.append(deadline)
        if self._timer is None:
            self._timer = self._clock.callLater(self._timeout, self._expire)
        return deadline

    def settle(self, deadline: Deadline) -> bool:
        """
        ``deadline``'s answer came: it is no longer cut. False if it was
        cancelled at its deadline already (or settled before).
        """
        if deadline.answer is None:
            return False
        deadline.answer = None
        self._pending -= 1
        if not self._pending:
            # Nothing waits: no timer left in the reactor (an idle node, a stop).
            self._waiting.clear()
            if self._timer is not None and self._timer is not _EXPIRING:
                self._timer.cancel()
                self._timer = None
        return True

    def _expire(self) -> None:
        # While this runs, a cancelled answer's callbacks may watch the next
        # answer: it waits for the timer set below, not one of its own.
        self._timer = _EXPIRING
        timer: _Call | None = None
        try:
            now = self._clock.seconds()
            waiting = self._waiting
            while waiting:
                deadline = waiting[0]
                answer = deadline.answer
                if answer is not None and deadline.at > now:
                    timer = self._clock.callLater(deadline.at - now, self._expire)
                    return
                waiting.popleft()
                if answer is not None:
                    deadline.answer = None
                    self._pending -= 1
                    # May run the answer's callbacks (its CancelledError) at once.
                    answer.cancel()
        finally:
            self._timer = timer


class _Expiring:
    """``Deadlines._timer`` while the timer's own call runs."""

    def active(self) -> bool:
        return True

    def cancel(self) -> None:
        pass


_EXPIRING = _Expiring()
