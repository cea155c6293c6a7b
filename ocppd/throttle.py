"""
Progressive delay for repeated failures (sign-ins, charger keys), on an
injected clock; no I/O.

Each key (an account and address, a charger id, an address) has a count of
failures. The first ``free`` cost nothing; after that, an attempt must wait
``base * 2 ** (failures - free)`` seconds after the latest failure, at most
``cap``. Nobody is locked out: a legitimate user waits seconds, a guesser's
rate halves with every miss.

An attempt counts as a failure from the moment it *begins* and is forgiven
only when it succeeds (:meth:`Throttle.succeeded`): parallel attempts cannot
all pass the check before the first of them is found wrong.

A key without a failure for ``forget`` seconds is forgotten, and at most
``max_keys`` keys are kept (the oldest go first), so memory follows the
active keys and cannot be inflated by an attacker cycling names.

This is the in-process state of one node; ``ocppd.shared`` offers the same
semantics on Redis for several nodes (callers use ``ocppd.shared``).
"""

from __future__ import annotations

from collections import OrderedDict

import attrs
from twisted.internet.interfaces import IReactorTime


@attrs.frozen
class ThrottlePolicy:
    """How failures of one key are slowed down (see the module docstring)."""

    free: int = 3
    base: float = 1.0
    cap: float = 300.0
    forget: float = 900.0

    def delay(self, failures: int) -> float:
        """Seconds an attempt must wait after the latest of ``failures`` failures."""
        if failures < self.free:
            return 0.0
        # The exponent is bounded: past 2**64 every delay is the cap anyway.
        return min(self.cap, self.base * 2.0 ** min(failures - self.free, 64))


@attrs.define
class _Failures:
    count: int
    latest: float


class Throttle:
    """Failures per key, and whether a new attempt must wait."""

    def __init__(
        self, clock: IReactorTime, policy: ThrottlePolicy, *, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self.policy = policy
        self._max_keys = max_keys
        # Oldest latest-failure first: both forgetting and eviction pop the front.
        self._keys: OrderedDict[str, _Failures] = OrderedDict()

    def _forget_old(self, now: float) -> None:
        keys = self._keys
        while keys:
            oldest = next(iter(keys.values()))
            if now - oldest.latest < self.policy.forget and len(keys) <= self._max_keys:
                break
            keys.popitem(last=False)

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None if it may now (nothing is counted)."""
        now = self._clock.seconds()
        self._forget_old(now)
        failures = self._keys.get(key)
        if failures is None:
            return None
        wait = self.policy.delay(failures.count) - (now - failures.latest)
        return wait if wait > 0 else None

    def begin(self, key: str) -> float | None:
        """
        Start an attempt for ``key``: None if it may go ahead (it now counts as
        a failure until :meth:`succeeded`), else the seconds it must wait
        (nothing is counted then).
        """
        wait = self.retry_after(key)
        if wait is not None:
            return wait
        now = self._clock.seconds()
        failures = self._keys.pop(key, None) or _Failures(0, now)
        failures.count += 1
        failures.latest = now
        self._keys[key] = failures
        self._forget_old(now)
        return None

    def succeeded(self, key: str) -> None:
        """The attempt of ``key`` succeeded: its failures are forgiven."""
        self._keys.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)
