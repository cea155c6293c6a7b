"""The back-off policy both buses apply to a failing consumer."""

from __future__ import annotations

from collections.abc import Sequence

import attrs


@attrs.frozen
class RetryPolicy:
    """
    ``delays[n]`` seconds before attempt ``n + 2``, the last delay repeating;
    after ``max_attempts`` failures a message is dead-lettered.
    """

    delays: tuple[float, ...]
    max_attempts: int

    @classmethod
    def of(cls, delays: Sequence[float], max_attempts: int) -> RetryPolicy:
        if not delays or any(delay < 0 for delay in delays):
            raise ValueError("retry_delays must be a non-empty sequence of delays >= 0")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        return cls(tuple(float(delay) for delay in delays), max_attempts)

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based)."""
        return self.delays[min(attempt - 1, len(self.delays) - 1)]
