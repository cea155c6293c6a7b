"""
``GET /metrics`` of a whole node (``[metrics] listen``): each family moves
as a charger connects, calls, is commanded and leaves; the listener's
configuration and its place in the start and stop.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import treq
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from ocppd.nodeservices import StartupError
from tests.integration.clients import connect
from tests.integration.daemon import RunningDaemon, held_port, poll, start_daemon, start_service

KEY = "metrics-test-key-0001"
METRICS_ON = "metrics.listen=tcp:0:interface=127.0.0.1"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series is absent (a count still zero)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


class MetricsListenerTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def setUp(self) -> Generator[Deferred[Any], Any, None]:
        self.daemon: RunningDaemon = yield start_daemon(self, METRICS_ON)
        self.daemon.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        port = self.daemon.service.metrics.port
        assert port is not None
        self.base = f"http://127.0.0.1:{port.getHost().port}"

    @inlineCallbacks
    def get(self, path: str, **kwargs: Any) -> Generator[Deferred[Any], Any, tuple[int, Any, str]]:
        response = yield treq.get(self.base + path, pool=self.pool, **kwargs)
        text = yield response.text()
        return response.code, response.headers, text

    @inlineCallbacks
    def scrape(self) -> Generator[Deferred[Any], Any, Samples]:
        code, headers, text = yield self.get("/metrics")
        self.assertEqual(code, 200)
        self.assertIn(b"text/plain", headers.getRawHeaders("content-type")[0].encode())
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    @inlineCallbacks
    def call(self, client: Any, frame: list[Any]) -> Generator[Deferred[Any], Any, Any]:
        client.send(json.dumps(frame))
        answer = yield client.messages.get()
        return json.loads(answer)

    @inlineCallbacks
    def test_families_move_with_traffic(self) -> Generator[Deferred[Any], Any, None]:
        before = yield self.scrape()
        self.assertEqual(sample(before, "ocppd_chargers_connected"), 0)
        self.assertEqual(sample(before, "ocppd_ocpp_connections_opened_total"), 0)
        self.assertGreater(sample(before, "process_cpu_seconds_total"), 0)
        self.assertGreater(sample(before, "process_resident_memory_bytes"), 0)
        self.assertIn(("ocppd_consumer_lag_seconds", frozenset({("queue", "processor")})), before)

        client = yield connect(self.daemon.port, "CP1", KEY)
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        answer = yield self.call(client, [2, "b1", "BootNotification", boot])
        self.assertEqual(answer[0], 3)
        for n in range(3):
            yield self.call(client, [2, f"h{n}", "Heartbeat", {}])
        refused = yield self.call(client, [2, "x1", "FlyToTheMoon", {}])
        self.assertEqual(refused[2], "NotImplemented")
        invalid = yield self.call(client, [2, "a1", "Authorize", {}])
        self.assertEqual(invalid[2], "OccurenceConstraintViolation")

        # A command, answered by the charger: a round trip and an outbound outcome.
        command = self.daemon.node.registry.call("CP1", "ClearCache", {})
        sent = json.loads((yield client.messages.get()))
        client.send(json.dumps([3, sent[1], {"status": "Accepted"}]))
        yield command

        during = yield self.scrape()
        self.assertEqual(sample(during, "ocppd_chargers_connected"), 1)
        self.assertEqual(sample(during, "ocppd_ocpp_connections_opened_total"), 1)
        messages = "ocppd_ocpp_messages_total"
        ok = {"direction": "in", "outcome": "CALLRESULT"}
        self.assertEqual(sample(during, messages, action="Heartbeat", **ok), 3)
        self.assertEqual(sample(during, messages, action="BootNotification", **ok), 1)
        self.assertEqual(
            sample(during, messages, action="other", direction="in", outcome="NotImplemented"), 1
        )
        self.assertEqual(
            sample(
                during,
                messages,
                action="Authorize",
                direction="in",
                outcome="OccurenceConstraintViolation",
            ),
            1,
        )
        self.assertEqual(
            sample(during, messages, action="ClearCache", direction="out", outcome="CALLRESULT"),
            1,
        )
        self.assertEqual(sample(during, "ocppd_ocpp_answer_seconds_count", action="Heartbeat"), 3)
        self.assertEqual(
            sample(during, "ocppd_ocpp_answer_seconds_bucket", action="Heartbeat", le="+Inf"), 3
        )
        self.assertEqual(sample(during, "ocppd_ocpp_command_seconds_count", action="ClearCache"), 1)
        # The boot, the connect event, the frames' message log: all on the bus.
        self.assertGreater(
            sample(during, "ocppd_bus_publishes_total", outcome="confirmed"),
            sample(before, "ocppd_bus_publishes_total", outcome="confirmed"),
        )
        # The boot's store lookups ran on the pool.
        self.assertGreater(
            sample(during, "ocppd_db_pool_wait_seconds_count"),
            sample(before, "ocppd_db_pool_wait_seconds_count"),
        )
        # A name no charger may invent became no series of its own.
        self.assertFalse(any("FlyToTheMoon" in str(labels) for _, labels in during))

        client.close()
        yield client.closed
        after = yield poll(self.scrape, until=lambda s: sample(s, "ocppd_chargers_connected") == 0)
        self.assertEqual(sample(after, "ocppd_ocpp_connections_closed_total", code="1000"), 1)

    @inlineCallbacks
    def test_consumer_lag_while_the_store_waits(self) -> Generator[Deferred[Any], Any, None]:
        """The processor's lag grows while its batches wait on the store, and ends after."""
        processor = self.daemon.node.processor
        store = processor._database
        waiting: list[tuple[Deferred[Any], Any, tuple[Any, ...]]] = []

        class Stalled:
            def run(self, func: Any, *args: Any) -> Deferred[Any]:
                d: Deferred[Any] = Deferred()
                waiting.append((d, func, args))
                return d

        self.patch(processor, "_database", Stalled())
        lag = "ocppd_consumer_lag_seconds"
        client = yield connect(self.daemon.port, "CP1", KEY)
        self.addCleanup(lambda: client.closed)
        self.addCleanup(client.close)
        # The connect event waits in the processor's batch: its age is the lag.
        yield poll(self.scrape, until=lambda s: sample(s, lag, queue="processor") > 0)
        self.patch(processor, "_database", store)
        for d, func, args in waiting:
            store.run(func, *args).chainDeferred(d)
        yield poll(self.scrape, until=lambda s: sample(s, lag, queue="processor") == 0)

    @inlineCallbacks
    def test_health_ready_and_nothing_else(self) -> Generator[Deferred[Any], Any, None]:
        code, _, text = yield self.get("/health")
        self.assertEqual((code, json.loads(text)["status"]), (200, "alive"))
        # Polled: on a loaded machine the database probe may miss its 2 s once.
        code, _, text = yield poll(lambda: self.get("/ready"), until=lambda r: r[0] == 200)
        body = json.loads(text)
        self.assertEqual(body["status"], "ready", body)
        # The operator's listener: the whole body (the node, the counts).
        self.assertEqual(body["node"], "test-node")
        self.assertEqual(body["services"]["metrics"], "running")
        code, _, _ = yield self.get("/api/cms/chargers")
        self.assertEqual(code, 404)
        response = yield treq.post(self.base + "/metrics", data=b"x", pool=self.pool)
        yield response.content()
        self.assertEqual(response.code, 405)

    @inlineCallbacks
    def test_openmetrics_when_asked(self) -> Generator[Deferred[Any], Any, None]:
        code, headers, text = yield self.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        self.assertEqual(code, 200)
        self.assertIn("openmetrics", headers.getRawHeaders("content-type")[0])
        self.assertTrue(text.endswith("# EOF\n"))


class MetricsConfigurationTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def test_off_by_default(self) -> Generator[Deferred[Any], Any, None]:
        daemon = yield start_daemon(self)
        self.assertIsNone(daemon.service.metrics.port)
        self.assertIsNone(daemon.node.ocpp_metrics)
        self.assertIsNone(daemon.node.ocpp_factory.metrics)

    @inlineCallbacks
    def test_busy_port_ends_the_start_in_one_line(self) -> Generator[Deferred[Any], Any, None]:
        port = held_port(self)
        listen = f"tcp:{port}:interface=127.0.0.1"
        service, _ = start_service(self, f"metrics.listen={listen}")
        failure = yield self.assertFailure(service.when_started(), StartupError)
        self.assertEqual(
            str(failure), f"cannot listen on {listen} for metrics: address already in use"
        )
        # Nothing that had started keeps running, and the OCPP and web listeners never opened.
        self.assertFalse(service.bus.running)
        self.assertIsNone(service.listeners.web_port)
        self.assertIsNone(service.listeners.ocpp_port)
