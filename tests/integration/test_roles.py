"""
An ``edge`` node and a ``processor`` node (``[ocppd] role``, ``ocppd.roles``)
on the real RabbitMQ and PostgreSQL, in this test's reactor: a charger talks to
the edge only; what it sends is stored by the processor only, even what the
edge answered before the processor was up (the edge declared the durable queues),
and the session update the processor publishes reaches a browser on the edge.
"""

from __future__ import annotations

import json
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, succeed
from twisted.trial.unittest import TestCase

from ocppd.bus import topology
from ocppd.push.topics import ADMIN_SESSIONS
from ocppd.status import fetch_ready
from ocppd.store import transactions
from tests.integration.clients import TestClient, connect
from tests.integration.daemon import (
    amqp_overrides,
    poll,
    postgres_overrides,
    start_daemon,
    start_service,
)
from tests.push.client import join

KEY = "edge-and-processor-key"
PASSWORD = "operator-password"


def meter_values(tx: int, wh: int, minute: int) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [
            {
                "timestamp": f"2027-01-01T10:{minute:02d}:00Z",
                "sampledValue": [
                    {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }
        ],
    }


@inlineCallbacks
def call(client: TestClient, unique_id: str, action: str, payload: dict[str, Any]) -> Any:
    """One CALL, and the payload of its CALLRESULT (a CALLERROR fails the test)."""
    client.send(json.dumps([2, unique_id, action, payload]))
    answer = json.loads((yield client.messages.get()))
    assert answer[:2] == [3, unique_id], answer
    return answer[2]


class EdgeAndProcessorTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def test_meter_values_sent_to_the_edge_are_stored_by_the_processor(self) -> Any:
        shared = [*amqp_overrides(self), *postgres_overrides(self)]
        edge = yield start_daemon(self, *shared, "ocppd.node_id=edge-1", "ocppd.role=edge")
        # The edge publishes; its own consumer is the funds stops' (and its
        # notifier's, while a browser on it subscribes: none yet).
        self.assertEqual(set(edge.node.bus.oldest_unprocessed()), {topology.FUNDS_STOP_QUEUE})
        edge.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")
        edge.ocppctl("tag", "add", "TAG1")
        edge.ocppctl("user", "add", "ops@example.com", "--role", "admin", stdin=PASSWORD + "\n")
        # An operator's browser on the edge, watching sessions live.
        response = yield treq.post(
            f"http://127.0.0.1:{edge.web_port}/api/auth/login",
            json={"email": "ops@example.com", "password": PASSWORD},
            persistent=False,
        )
        token = (yield response.json())["token"]
        browser = yield join(edge.web_port, token)
        sessions = yield browser.listen(ADMIN_SESSIONS)
        yield edge.node.notifier.settled()
        self.assertEqual(
            set(edge.node.bus.oldest_unprocessed()),
            {topology.FUNDS_STOP_QUEUE, topology.notifier_queue("edge-1")},
        )
        client = yield connect(edge.port, "CP1", KEY)

        @inlineCallbacks
        def hang_up() -> Any:
            # Before the nodes stop: the edge's side of the sockets closed too.
            client.close()
            yield client.closed
            yield poll(lambda: succeed(len(edge.node.registry)), until=lambda n: n == 0)
            if browser.is_attached():
                yield browser.leave()
            yield edge.node.push.close_all()

        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        booted = yield call(client, "1", "BootNotification", boot)
        self.assertEqual(booted["status"], "Accepted")
        start = {
            "connectorId": 1,
            "idTag": "TAG1",
            "meterStart": 1000,
            "timestamp": "2027-01-01T10:00:00Z",
        }
        started = yield call(client, "2", "StartTransaction", start)
        tx = started["transactionId"]
        # Answered by the edge with no processor anywhere: it waits on the broker.
        yield call(client, "3", "MeterValues", meter_values(tx, 1100, 1))

        processor, _ = start_service(
            self, *shared, "ocppd.node_id=processor-1", "ocppd.role=processor"
        )
        yield processor.when_started()
        # After the processor's cleanups (they end with Autobahn's spent timers).
        self.addCleanup(hang_up)
        self.assertIsNone(processor.ocpp_port)
        self.assertEqual(
            set(processor.ocppd.bus.oldest_unprocessed()),
            {topology.PROCESSOR_QUEUE, topology.AUDIT_QUEUE},
        )
        yield call(client, "4", "MeterValues", meter_values(tx, 1250, 2))

        def energy(conn: Any) -> list[float]:
            samples = transactions.list_meter_values(conn, transaction_id=tx)
            return [s.value for s in samples if s.measurand == "Energy.Active.Import.Register"]

        stored = yield edge.wait_for(energy, until=lambda values: len(values) == 2)
        self.assertEqual([float(value) for value in stored], [1100.0, 1250.0])
        # The processor's session.updated, pushed by the edge's notifier to its browser.
        while True:
            event = yield sessions.get()
            if event["type"] == "session.updated":
                break
        self.assertEqual((event["data"]["id"], "live" in event["data"]), (tx, True), event)

        # What ocppctl status reads: each node says its role; the processor on its probes port.
        port = processor.web_port
        assert port is not None
        ready = yield fetch_ready(f"http://127.0.0.1:{port.getHost().port}/ready", reactor)
        self.assertEqual((ready["status"], ready["role"]), ("ready", "processor"), ready)
        self.assertNotIn("presence", ready["checks"])
        ready = yield fetch_ready(f"http://127.0.0.1:{edge.web_port}/ready", reactor)
        self.assertEqual((ready["status"], ready["role"]), ("ready", "edge"), ready)
