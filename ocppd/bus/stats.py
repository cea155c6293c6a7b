"""
What a bus counts as it works, for the metrics (``ocppd.metrics``): plain
integers bumped where the bus already decides an outcome, read only when
Prometheus scrapes. Nothing here allocates per message; the per-queue counts
are keyed by the topology's queue names, a fixed set.
"""

from __future__ import annotations

__all__ = ["BusStats"]


class BusStats:
    """The counts of one bus, since the process started."""

    __slots__ = (
        "dead_lettered",
        "dropped",
        "flow_waited",
        "overflowed",
        "publish_confirmed",
        "publish_failed",
        "retried",
    )

    def __init__(self) -> None:
        #: Publishes the bus accepted (RabbitMQ: its publisher confirm; the
        #: embedded bus: the journal commit), retry and dead-letter moves included.
        self.publish_confirmed = 0
        #: Publishes refused or never confirmed (a nack, no connection, a full queue).
        self.publish_failed = 0
        #: Flowed publishes (the embedded bus's) that waited for a queue's
        #: backlog to drain (``MemoryBus`` flow control).
        self.flow_waited = 0
        #: Per queue: deliveries whose handler failed and that were scheduled again.
        self.retried: dict[str, int] = {}
        #: Per queue: messages set aside after their last attempt (or malformed).
        self.dead_lettered: dict[str, int] = {}
        #: Per ephemeral queue: messages dropped because their handler failed.
        self.dropped: dict[str, int] = {}
        #: Per ephemeral queue: the oldest messages dropped for a full queue
        #: (the embedded bus; RabbitMQ drops them itself, uncounted).
        self.overflowed: dict[str, int] = {}

    def count(self, per_queue: dict[str, int], queue: str) -> None:
        """One more in ``per_queue`` (one of the dicts above) for ``queue``."""
        per_queue[queue] = per_queue.get(queue, 0) + 1
