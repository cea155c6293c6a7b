"""
The node's alert evaluator: every ``[alerts] interval`` seconds one
evaluation (``ocppd.alerts.observe.evaluate``, one database transaction),
which stages the notices it made for delivery in the same transaction; then
the deliveries are woken (``ocppd.alerts.delivery``).

RabbitMQ's dead letters are counted before the transaction, by passive
declarations on a short connection of its own (``ocppd.status``), and the
lag of this node's consumers is read in this process (each node alerts and
resolves its own); the embedded bus's queues are read from its journal in
the store.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall

from ocppd.alerts import observe
from ocppd.alerts.delivery import Deliveries
from ocppd.alerts.notices import Notice
from ocppd.alerts.rules import QueueState, Rules
from ocppd.bus.outbox import Outbox
from ocppd.logs import Logger
from ocppd.store.database import Database
from ocppd.timeutil import from_timestamp, parse_iso

#: Reads RabbitMQ's queues; fails when it cannot.
BrokerQueues = Callable[[], Deferred[list[QueueState]]]
#: What this node's own consumers hold (their lag), read in this process.
LocalQueues = Callable[[], list[QueueState]]


class AlertEvaluator:
    log = Logger()

    def __init__(
        self,
        *,
        database: Database,
        clock: IReactorTime,
        node_id: str,
        rules: Rules,
        interval: float,
        deliveries: Deliveries,
        outbox: Outbox | None = None,
        journal: bool = True,
        journal_database: Database | None = None,
        broker_queues: BrokerQueues | None = None,
        local_queues: LocalQueues | None = None,
    ) -> None:
        self._database = database
        self._clock = clock
        self.node_id = node_id
        self.rules = rules
        self.interval = interval
        self.deliveries = deliveries
        self._outbox = outbox
        self._journal = journal
        #: Where the embedded bus journals, when not in ``database`` (SQLite).
        self._journal_database = journal_database
        self._broker_queues = broker_queues
        self._local_queues = local_queues
        self._loop: LoopingCall | None = None
        self._running: Deferred[Any] | None = None

    def start(self) -> None:
        """Evaluate every ``interval`` seconds, the first time one interval from now."""
        # Not at once: after a restart the chargers get a moment to reconnect.
        self._loop = LoopingCall(self._tick)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=False)
        self.deliveries.start()

    @inlineCallbacks
    def stop(self) -> Generator[Deferred[Any], Any, None]:
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()
        if self._running is not None:
            yield self._running
        yield self.deliveries.stop()

    def _tick(self) -> None:
        # An evaluation still running (a slow database) is not doubled up.
        if self._running is None:
            self._running = self.evaluate()

            def finished(_: object) -> None:
                self._running = None

            self._running.addBoth(finished)

    @inlineCallbacks
    def evaluate(self) -> Generator[Deferred[Any], Any, list[Notice]]:
        """One evaluation, and delivery of what it raised and resolved; never fails."""
        try:
            broker = yield self._read_broker()
            now = from_timestamp(self._clock.seconds())
            journal, journaled = self._journal, []
            if journal and self._journal_database is not None:
                # The journal file (SQLite): read before, in its own transaction.
                journal = False
                if self.rules.needs_queues:
                    journaled = yield self._journal_database.run(observe.journal_states, now)
            notices = yield self._database.run(
                observe.evaluate,
                self.rules,
                now,
                node=self.node_id,
                journal=journal,
                journaled=journaled,
                broker=broker,
                outbox_=self._outbox,
                channels=self.deliveries.channel_names,
                local=self._read_local(),
            )
        except Exception:
            self.log.failure(
                "Alert evaluation failed; tried again in {interval} s", interval=self.interval
            )
            return []
        if notices is None:
            return []  # another node was evaluating
        if notices and self._outbox is not None:
            self._outbox.flush()
        for notice in notices:
            self.log.info(
                "Alert {alert_id} {event}: {summary}",
                alert_id=notice.alert.id,
                event=notice.event,
                summary=notice.alert.summary,
                alert_key=notice.alert.key,
            )
        if notices and self.deliveries.channel_names:
            self.deliveries.wake()
        return list(notices)

    def _read_local(self) -> list[QueueState]:
        if self._local_queues is None or self.rules.lag_after is None:
            return []
        return self._local_queues()

    @inlineCallbacks
    def _read_broker(self) -> Generator[Deferred[Any], Any, list[QueueState] | None]:
        if self._broker_queues is None or not self.rules.needs_queues:
            return []
        try:
            return (yield self._broker_queues())
        except Exception as e:
            # Unknown is not cleared: the open queue alerts stay open.
            self.log.warn("Alerts: cannot read RabbitMQ's queues ({reason})", reason=str(e)[:200])
            return None


def consumer_lags(bus: Any, clock: IReactorTime) -> LocalQueues:
    """
    The lag of this node's consumers on RabbitMQ: the age of the oldest
    message each holds unsettled (``oldest_unprocessed``; RabbitMQ hands a
    backlog's head over first, up to the prefetch).
    """

    def queues() -> list[QueueState]:
        now = clock.seconds()
        found = []
        for queue, published in sorted(bus.oldest_unprocessed().items()):
            lag = 0.0
            if published is not None:
                try:
                    lag = max(0.0, now - parse_iso(published).timestamp())
                except ValueError:
                    continue  # unreadable: unknown, not zero
            found.append(QueueState(queue, None, round(lag, 3)))
        return found

    return queues


def broker_queues(config: Any, reactor: Any) -> BrokerQueues:
    """RabbitMQ's dead letters per durable queue (its lag is not known without taking messages)."""
    from ocppd.status import broker_queues as read

    @inlineCallbacks
    def queues() -> Generator[Deferred[Any], Any, list[QueueState]]:
        found = yield read(config, reactor)
        return [QueueState(name, state["dead"], None) for name, state in found.items()]

    return queues
