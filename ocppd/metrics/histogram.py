"""
A histogram for the hot path: fixed bucket bounds, counts bumped in place
(no lock: one thread observes), turned into Prometheus' cumulative buckets
only when scraped.
"""

from __future__ import annotations

from bisect import bisect_left

__all__ = ["Histogram"]


class Histogram:
    """
    Counts of observations per bucket (``le`` bounds, ascending) and their
    sum: ``observe`` is a bisect and two additions.
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        #: One count per bound, and the last for everything above the last bound.
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as Prometheus wants them, ending with ``+Inf``."""
        pairs = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            pairs.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return pairs

    @property
    def count(self) -> int:
        return sum(self.counts)
