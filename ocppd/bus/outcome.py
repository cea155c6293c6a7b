"""
``Outcome``: one result to come, handed to one function; what the embedded
bus's publish and a charger's waiting answer pass along instead of a
``Deferred``.

Every MeterValues (every transaction message) waits for its journal write
before it is answered: the write's result went through a Deferred with three
callbacks (the bus's bookkeeping, the answer's deadline, the connection's
answer) and two closures: about 8 % of the reactor's instructions per message
(bench/RESULTS.md). An ``Outcome`` is the one
call at the end of that chain, with ``Deferred``'s ``callback``, ``errback``,
``called`` and ``cancel`` for those who fire it (``GroupCommit``'s writer,
``MemoryBus`` flow control, ``Deadlines``), and ``bind`` for the one who waits.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet.defer import AlreadyCalledError, CancelledError, Deferred
from twisted.python.failure import Failure

from ocppd.logs import Logger

#: ``Outcome._result`` before one was given.
_NOTHING = object()


class Sink(Protocol):
    """Where a result goes: a ``Deferred`` or an ``Outcome``."""

    called: bool

    def callback(self, result: Any) -> None: ...

    def errback(self, fail: Failure) -> None: ...


class Outcome:
    """
    A result to come: a value, or a ``Failure``, given once with ``callback``
    (or ``errback``), and handed to the function given once with ``bind``
    (at once, if it came first). As with a ``Deferred``'s callbacks, what
    that function raises does not reach whoever gave the result: it is logged.

    ``cancel`` is ``Deferred.cancel`` without a canceller: the result becomes
    a ``CancelledError`` failure, and the one given later is ignored.
    """

    __slots__ = ("_args", "_cancelled", "_result", "_then", "called")

    log = Logger()

    def __init__(self) -> None:
        #: Whether a result was given (or the outcome cancelled).
        self.called = False
        self._cancelled = False
        self._then: Callable[..., object] | None = None
        self._args: tuple[Any, ...] = ()
        self._result: object = _NOTHING

    def bind(self, then: Callable[..., object], *args: Any) -> None:
        """Call ``then(result, *args)`` once the result is given (now, if it was)."""
        if self._then is not None:
            raise RuntimeError("an Outcome is bound once")
        self._then, self._args = then, args
        if self._result is not _NOTHING:
            result, self._result = self._result, None
            self._hand_on(then, result, args)

    def callback(self, result: Any) -> None:
        """The result (a ``Failure`` is a failure, as ``Deferred.callback`` takes it)."""
        if self.called:
            if self._cancelled:
                return
            raise AlreadyCalledError(self)
        self.called = True
        then = self._then
        if then is None:
            self._result = result
            return
        self._hand_on(then, result, self._args)

    def errback(self, fail: Failure) -> None:
        """The result is ``fail``."""
        self.callback(fail)

    def cancel(self) -> None:
        """No result is waited for any more: ``CancelledError`` now, unless one came."""
        if not self.called:
            self._cancelled = True
            self.callback(Failure(CancelledError()))

    def _hand_on(self, then: Callable[..., object], result: object, args: tuple[Any, ...]) -> None:
        try:
            then(result, *args)
        except Exception:
            self.log.failure("Handing on an outcome failed ({then})", then=then)


def outcome_of(d: Deferred[Any]) -> Outcome:
    """An ``Outcome`` given ``d``'s result (cancelling it cancels ``d``)."""
    outcome = _DeferredOutcome(d)
    d.addBoth(outcome.callback)
    return outcome


def deferred_of(outcome: Outcome) -> Deferred[Any]:
    """A ``Deferred`` fired with ``outcome``'s result (cancelling it cancels ``outcome``)."""
    d: Deferred[Any] = Deferred(lambda _: outcome.cancel())
    outcome.bind(fire_deferred, d)
    return d


def fire_deferred(result: object, d: Deferred[Any]) -> None:
    """Fire ``d`` with ``result``, a ``Failure`` as its failure (a ``then`` of ``bind``)."""
    if isinstance(result, Failure):
        d.errback(result)
    else:
        d.callback(result)


class _DeferredOutcome(Outcome):
    """An ``Outcome`` of a Deferred: its ``cancel`` cancels the Deferred."""

    __slots__ = ("_deferred",)

    def __init__(self, d: Deferred[Any]) -> None:
        super().__init__()
        self._deferred = d

    def cancel(self) -> None:
        if not self.called:
            self._deferred.cancel()
        super().cancel()
