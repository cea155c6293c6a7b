"""A sliding-window counter per key, on an injected clock (no I/O)."""

from __future__ import annotations

from collections import deque

from twisted.internet.interfaces import IReactorTime


class RateLimiter:
    """
    At most ``limit`` events per key within ``window`` seconds. Keys with no
    recent event are forgotten, and at most ``max_keys`` are kept (the least
    recently active go first), so memory follows the active keys only and
    cannot be inflated by a client cycling addresses.
    """

    def __init__(
        self, clock: IReactorTime, *, limit: int, window: float, max_keys: int = 100_000
    ) -> None:
        self._clock = clock
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock.seconds()
        events = self._events.get(key)
        if events is None:
            return deque()
        while events and events[0] <= now - self._window:
            events.popleft()
        if not events:
            del self._events[key]
        return events

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may act again, or None if it may now."""
        events = self._recent(key)
        if len(events) < self._limit:
            return None
        return max(0.0, events[0] + self._window - self._clock.seconds())

    def record(self, key: str) -> None:
        # Re-inserted, so the dict's order is the keys' latest activity.
        events = self._events.pop(key, None) or deque()
        events.append(self._clock.seconds())
        self._events[key] = events
        self._recent(key)
        while len(self._events) > self._max_keys:
            del self._events[next(iter(self._events))]

    def reset(self, key: str) -> None:
        self._events.pop(key, None)
