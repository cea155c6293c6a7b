"""
The node's metric families, built at each scrape from what the parts count
(``ocppd.metrics``): nothing here runs between scrapes.

Every label value comes from a fixed set (OCPP action names, OCPP-J error
codes, bucketed close codes, the topology's queue names, fixed reasons), so
the number of series is bounded whatever chargers and browsers send. Counts
that are still zero are left out, as ``prometheus_client``'s own labelled
counters do until first used. docs/operations.md "Metrics" lists the families.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from twisted.internet.interfaces import IReactorTime

from ocppd.bus.stats import BusStats
from ocppd.metrics.histogram import Histogram
from ocppd.metrics.ocpp import OcppMetrics
from ocppd.timeutil import parse_iso

__all__ = ["NodeCollector", "NodeParts", "node_registry"]


class NodeParts(Protocol):
    """What the collector reads of a node (``ocppd.service.Ocppd`` has it all)."""

    reactor: Any
    registry: Any
    ocpp_factory: Any
    bus: Any
    database: Any
    push: Any


def _histogram(
    name: str, documentation: str, labels: list[str], series: Mapping[tuple[str, ...], Histogram]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=labels)
    for values, histogram in series.items():
        family.add_metric(list(values), histogram.cumulative(), histogram.total)
    return family


def _per_queue(
    name: str, documentation: str, counts: Mapping[str, int], extra: Mapping[str, str] | None = None
) -> CounterMetricFamily:
    labels = ["queue", *(extra or {})]
    family = CounterMetricFamily(name, documentation, labels=labels)
    for queue, count in sorted(counts.items()):
        family.add_metric([queue, *(extra or {}).values()], count)
    return family


class NodeCollector(Collector):
    """The families of one node; ``ocpp`` is its endpoint's counts."""

    def __init__(self, node: NodeParts, ocpp: OcppMetrics) -> None:
        self._node = node
        self._ocpp = ocpp
        self._clock: IReactorTime = node.reactor

    def collect(self) -> Iterator[Metric]:
        yield from self._chargers()
        yield from self._messages()
        yield from self._bus()
        yield from self._consumers()
        yield from self._push()
        yield from self._database()

    # --- the OCPP endpoint --------------------------------------------------------------

    def _chargers(self) -> Iterator[Metric]:
        ocpp = self._ocpp
        yield GaugeMetricFamily(
            "ocppd_chargers_connected",
            "Chargers with an open OCPP connection to this node.",
            value=len(self._node.registry),
        )
        yield CounterMetricFamily(
            "ocppd_ocpp_connections_opened",
            "OCPP WebSocket connections opened (handshake accepted, subprotocol agreed).",
            value=ocpp.connections_opened,
        )
        closed = CounterMetricFamily(
            "ocppd_ocpp_connections_closed",
            "OCPP WebSocket connections closed, by close code (RFC 6455 codes and 4000 as"
            " themselves, other application codes as 3xxx/4xxx, none without a close frame).",
            labels=["code"],
        )
        for code, count in sorted(ocpp.connections_closed.items()):
            closed.add_metric([code], count)
        yield closed
        gate = self._node.ocpp_factory.gate
        yield GaugeMetricFamily(
            "ocppd_ocpp_handshakes_waiting",
            "OCPP handshakes accepted and not yet answered (the accept gate's count).",
            value=gate.waiting,
        )
        yield CounterMetricFamily(
            "ocppd_ocpp_accept_pauses",
            "Times the OCPP listener stopped accepting because [ocpp] max_handshakes"
            " handshakes waited (a reconnect storm).",
            value=gate.pauses,
        )

    def _messages(self) -> Iterator[Metric]:
        ocpp = self._ocpp
        messages = CounterMetricFamily(
            "ocppd_ocpp_messages",
            "OCPP CALLs by action, direction (in: the charger's, out: our commands) and"
            " outcome (CALLRESULT, the CALLERROR code, or timeout/disconnected/cancelled).",
            labels=["action", "direction", "outcome"],
        )
        for direction, table in (("in", ocpp.inbound), ("out", ocpp.outbound)):
            for action, outcomes in table.items():
                for outcome, count in outcomes.items():
                    if count:
                        messages.add_metric([action, direction, outcome], count)
        yield messages
        yield _histogram(
            "ocppd_ocpp_answer_seconds",
            "Seconds from taking a charger's CALL to sending its answer, by action.",
            ["action"],
            {(action,): h for action, h in sorted(ocpp.answer_seconds.items())},
        )
        yield _histogram(
            "ocppd_ocpp_command_seconds",
            "Seconds from sending a command to a charger to its answer (the round trip), by"
            " action.",
            ["action"],
            {(action,): h for action, h in sorted(ocpp.command_seconds.items()) if h.count},
        )

    # --- the bus ------------------------------------------------------------------------

    def _bus(self) -> Iterator[Metric]:
        stats: BusStats = self._node.bus.stats
        publishes = CounterMetricFamily(
            "ocppd_bus_publishes",
            "Messages published on the bus, by outcome: confirmed (RabbitMQ's publisher"
            " confirm; the embedded bus's journal commit) or failed.",
            labels=["outcome"],
        )
        publishes.add_metric(["confirmed"], stats.publish_confirmed)
        publishes.add_metric(["failed"], stats.publish_failed)
        yield publishes
        yield CounterMetricFamily(
            "ocppd_bus_flow_waits",
            "Charger answers that waited for the processor's backlog to drain (the embedded"
            " bus's flow control, [bus] flow_limit; always 0 on RabbitMQ).",
            value=stats.flow_waited,
        )
        yield _per_queue(
            "ocppd_bus_retries",
            "Deliveries whose handler failed and that are tried again later, by queue.",
            stats.retried,
        )
        yield _per_queue(
            "ocppd_bus_dead_lettered",
            "Messages set aside as dead letters after their last attempt, by queue.",
            stats.dead_lettered,
        )
        counts: Callable[[], dict[str, int]] | None = getattr(
            self._node.bus, "dead_letter_counts", None
        )
        if counts is not None:
            dead = GaugeMetricFamily(
                "ocppd_bus_dead_letters",
                "Dead letters the embedded bus holds now, by queue (RabbitMQ: `ocppctl bus"
                " dead-letters list`).",
                labels=["queue"],
            )
            for queue, count in sorted(counts().items()):
                dead.add_metric([queue], count)
            yield dead

    def _consumers(self) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "ocppd_consumer_lag_seconds",
            "Age of the oldest message a consumer of this node has not finished (0: none"
            " waiting), by queue.",
            labels=["queue"],
        )
        now = self._clock.seconds()
        for queue, published in sorted(self._node.bus.oldest_unprocessed().items()):
            lag.add_metric([queue], message_age(published, now))
        yield lag

    # --- the push channel ---------------------------------------------------------------

    def _push(self) -> Iterator[Metric]:
        push = self._node.push
        factory = push.factory
        yield GaugeMetricFamily(
            "ocppd_push_sessions", "Open push (WAMP) sessions.", value=push.session_count
        )
        yield CounterMetricFamily(
            "ocppd_push_sessions_opened", "Push sessions opened.", value=factory.opened
        )
        yield CounterMetricFamily(
            "ocppd_push_sessions_cut_off",
            "Push sessions cut off because their client stopped reading ([push] max_buffer).",
            value=factory.cut_off,
        )
        stats: BusStats = self._node.bus.stats
        dropped = CounterMetricFamily(
            "ocppd_push_events_dropped",
            "Push events dropped before reaching sessions: failed (the notifier failed on"
            " them) or overflow (the embedded notifier queue was full; the oldest went).",
            labels=["reason"],
        )
        dropped.add_metric(["failed"], sum(stats.dropped.values()))
        dropped.add_metric(["overflow"], sum(stats.overflowed.values()))
        yield dropped

    # --- the store ----------------------------------------------------------------------

    def _database(self) -> Iterator[Metric]:
        database = self._node.database
        yield _histogram(
            "ocppd_db_pool_wait_seconds",
            "Seconds each database transaction waited for a thread of the store's pool.",
            [],
            {(): database.pool_waits},
        )
        if database.running:
            queued, busy = database.pool_state()
        else:
            queued, busy = 0, 0
        yield GaugeMetricFamily(
            "ocppd_db_pool_waiting",
            "Database transactions waiting for a thread now.",
            value=queued,
        )
        yield GaugeMetricFamily(
            "ocppd_db_pool_busy_threads",
            "Threads of the store's pool running a transaction.",
            value=busy,
        )


def message_age(published: str | None, now: float) -> float:
    """Seconds since ``published`` (an envelope's time) at ``now``; 0 for None or unreadable."""
    if published is None:
        return 0.0
    try:
        return max(0.0, now - parse_iso(published).timestamp())
    except ValueError:
        return 0.0


def node_registry(node: NodeParts, ocpp: OcppMetrics) -> CollectorRegistry:
    """
    A registry of the node's families and the process's (CPU, memory, open
    files, Python's garbage collector): a registry of its own, not
    ``prometheus_client``'s global one, so that two nodes in one process
    (the tests) do not mix.
    """
    from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node, ocpp))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry
