"""Shared state of one node: the in-process throttles, revocations told at once."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ocppd.api.ratelimit import RateLimiter
from ocppd.logs import Logger
from ocppd.shared.interface import IFailures, ISharedState, IWindow, RevokedCallback
from ocppd.throttle import Throttle, ThrottlePolicy


@implementer(IFailures)
class _MemoryFailures:
    def __init__(self, throttle: Throttle) -> None:
        self.throttle = throttle

    def retry_after(self, key: str) -> Deferred[float | None]:
        return succeed(self.throttle.retry_after(key))

    def begin(self, key: str) -> Deferred[float | None]:
        return succeed(self.throttle.begin(key))

    def succeeded(self, key: str) -> Deferred[None]:
        self.throttle.succeeded(key)
        return succeed(None)


@implementer(IWindow)
class _MemoryWindow:
    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    def retry_after(self, key: str) -> Deferred[float | None]:
        return succeed(self.limiter.retry_after(key))

    def record(self, key: str) -> Deferred[None]:
        self.limiter.record(key)
        return succeed(None)


@implementer(ISharedState)
class MemorySharedState:
    log = Logger()

    def __init__(self, clock: IReactorTime, *, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._revoked: list[RevokedCallback] = []
        # One per scope, as Redis has one key space per scope.
        self._failures: dict[str, _MemoryFailures] = {}
        self._windows: dict[str, _MemoryWindow] = {}

    def start(self) -> None:
        pass

    def stop(self) -> Deferred[None]:
        return succeed(None)

    def failures(self, scope: str, policy: ThrottlePolicy) -> _MemoryFailures:
        if scope not in self._failures:
            throttle = Throttle(self._clock, policy, max_keys=self._max_keys)
            self._failures[scope] = _MemoryFailures(throttle)
        return self._failures[scope]

    def window(self, scope: str, *, limit: int, window: float) -> _MemoryWindow:
        if scope not in self._windows:
            limiter = RateLimiter(self._clock, limit=limit, window=window, max_keys=self._max_keys)
            self._windows[scope] = _MemoryWindow(limiter)
        return self._windows[scope]

    def publish_revoked(self, digest: str) -> Deferred[None]:
        tell_revoked(self._revoked, digest, self.log)
        return succeed(None)

    def on_revoked(self, callback: RevokedCallback) -> None:
        self._revoked.append(callback)


def tell_revoked(callbacks: list[RevokedCallback], digest: str, log: Any) -> None:
    for callback in callbacks:
        try:
            callback(digest)
        except Exception:
            log.failure("A listener of token revocation failed")
