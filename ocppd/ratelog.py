"""
Rate-limited logging: one line per kind of repeated event, with a count.

During an outage the same failure repeats for every message (a refused
publish per Heartbeat, a failed handler per delivery): logged each time, a
10-second database restart made tens of thousands of lines. A
:class:`RepeatLog` logs the first event of a kind at once (with its
traceback, if it has one), counts the events of that kind in the next
``interval`` seconds, and at the end of the interval logs one line with how
many it suppressed (``suppressed`` field) and the latest event's fields. A
kind that keeps happening thus costs two lines per interval, whatever the
rate.

Kinds are chosen by the code (a queue and an exception class, say), never
taken whole from outside; at most ``max_kinds`` are tracked, the least
recently logged one reported and forgotten first.

Summaries wait on a timer of the given clock; :meth:`RepeatLog.flush` logs
them at once and cancels the timers (services call it when they stop).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import attrs
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from twisted import logger as twisted_logger

#: Seconds between two lines of the same kind.
DEFAULT_INTERVAL = 60.0
#: Kinds tracked at once.
DEFAULT_MAX_KINDS = 1000

_every: weakref.WeakSet[RepeatLog] = weakref.WeakSet()


@attrs.define
class _Kind:
    #: When a line of this kind was last written.
    logged_at: float
    #: Events since then that were not written.
    suppressed: int = 0
    #: The latest suppressed event: level, format, fields.
    level: LogLevel = LogLevel.warn
    format: str = ""
    fields: dict[str, Any] = attrs.field(factory=dict)
    timer: IDelayedCall | None = None


class RepeatLog:
    """Logs through ``log``, at most one line per kind per ``interval`` seconds (plus a summary)."""

    def __init__(
        self,
        # An ocppd.logs.Logger, which makes fields safe; typed as its base
        # because a class attribute Logger read through an instance is one.
        log: twisted_logger.Logger,
        clock: IReactorTime,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_kinds: int = DEFAULT_MAX_KINDS,
    ) -> None:
        if interval <= 0 or max_kinds < 1:
            raise ValueError("interval must be positive and max_kinds at least 1")
        self._log = log
        self._clock = clock
        self._interval = interval
        self._max_kinds = max_kinds
        self._kinds: OrderedDict[Hashable, _Kind] = OrderedDict()
        _every.add(self)

    def emit(
        self,
        kind: Hashable,
        level: LogLevel,
        format: str,
        *,
        failure: Failure | None = None,
        **fields: Any,
    ) -> bool:
        """
        Log the event now if no line of ``kind`` was written in the last
        ``interval`` seconds (``failure``'s traceback with it); otherwise count
        it for the summary. True if it was written.
        """
        now = self._clock.seconds()
        state = self._kinds.get(kind)
        if state is not None and now - state.logged_at < self._interval:
            state.suppressed += 1
            state.level, state.format, state.fields = level, format, fields
            if state.timer is None:
                delay = max(0.0, state.logged_at + self._interval - now)
                state.timer = self._clock.callLater(delay, self._summarise, kind)
            return False
        if state is not None:
            self._summarise(kind)  # what is left of the previous interval
        else:
            if len(self._kinds) >= self._max_kinds:
                oldest = next(iter(self._kinds))
                self._summarise(oldest)
                del self._kinds[oldest]
            state = self._kinds[kind] = _Kind(logged_at=now)
        state.logged_at = now
        self._kinds.move_to_end(kind)
        if failure is not None:
            self._log.failure(format, failure, level, suppressed=0, **fields)
        else:
            self._log.emit(level, format, suppressed=0, **fields)
        return True

    def warn(self, kind: Hashable, format: str, **fields: Any) -> bool:
        return self.emit(kind, LogLevel.warn, format, **fields)

    def error(self, kind: Hashable, format: str, **fields: Any) -> bool:
        return self.emit(kind, LogLevel.error, format, **fields)

    def failure(self, kind: Hashable, format: str, failure: Failure, **fields: Any) -> bool:
        """A traceback for the first of a kind, counted summaries (at ``error``) for the rest."""
        return self.emit(kind, LogLevel.critical, format, failure=failure, **fields)

    def flush(self) -> None:
        """Log every pending summary now and cancel their timers."""
        for kind in list(self._kinds):
            self._summarise(kind)

    def _summarise(self, kind: Hashable) -> None:
        state = self._kinds.get(kind)
        if state is None:
            return
        if state.timer is not None:
            if state.timer.active():
                state.timer.cancel()
            state.timer = None
        if not state.suppressed:
            return
        count, state.suppressed = state.suppressed, 0
        state.logged_at = self._clock.seconds()
        # A traceback is written once per kind and interval; the summary says
        # how many more there were, at most an error.
        level = LogLevel.error if state.level is LogLevel.critical else state.level
        self._log.emit(
            level,
            state.format + " ({suppressed} more like this in the last {interval:g}s)",
            **{**state.fields, "suppressed": count, "interval": self._interval},
        )


def flush_all() -> None:
    """Flush every :class:`RepeatLog` of the process (at a service's stop)."""
    for repeat_log in list(_every):
        repeat_log.flush()
