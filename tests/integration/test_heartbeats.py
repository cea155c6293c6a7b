"""
A whole node answering a charger's Heartbeats: with the default ``[ocpp]
log_heartbeats = false`` they are not published, and the node writes
``last_seen_at`` itself (``ocppd.ocpp.last_seen``); with ``true`` they are
published, logged and applied by the processor as they always were.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from ocppd.bus.envelope import Envelope
from ocppd.store import chargers, messages
from tests.integration.clients import connect
from tests.integration.daemon import (
    RunningDaemon,
    amqp_overrides,
    postgres_overrides,
    start_daemon,
)

KEY = "s3cret-key-000001"


class HeartbeatTests(TestCase):
    timeout = 30

    def daemon_overrides(self) -> list[str]:
        return []

    @inlineCallbacks
    def connected(self, *overrides: str) -> Any:
        """A node, the keys it publishes, CP1 connected (its connect stored), CP1's last_seen_at."""
        daemon: RunningDaemon = yield start_daemon(self, *self.daemon_overrides(), *overrides)
        daemon.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")
        published: list[str] = []
        bus = daemon.node.bus
        publish = bus.publish

        def recorded(routing_key: str, envelope: Envelope) -> Any:
            published.append(routing_key)
            return publish(routing_key, envelope)

        self.patch(bus, "publish", recorded)
        client = yield connect(daemon.port, "CP1", KEY)
        self.addCleanup(lambda: (client.close(), client.closed)[1])
        record = yield daemon.wait_for(
            chargers.get_charge_point, "CP1", until=lambda r: r.last_seen_at is not None
        )
        # Heartbeats a few ms after the connect: a later time than it stored.
        yield deferLater(reactor, 0.01, lambda: None)
        for n in range(3):
            client.send(f'[2,"h{n}","Heartbeat",{{}}]')
            answer = json.loads((yield client.messages.get()))
            self.assertEqual(answer[:2], [3, f"h{n}"])
        return daemon, published, record.last_seen_at

    @inlineCallbacks
    def test_not_published_last_seen_written_by_the_node(self) -> Any:
        daemon, published, connected_at = yield self.connected()
        later: datetime = connected_at
        record = yield daemon.wait_for(
            chargers.get_charge_point, "CP1", until=lambda r: r.last_seen_at > later
        )
        self.assertGreater(record.last_seen_at, connected_at)
        self.assertNotIn("ocpp.in.Heartbeat", published)
        self.assertIn("charger.connected", published)
        rows = yield daemon.query(messages.list_messages, "CP1")
        self.assertEqual(rows, [])

    @inlineCallbacks
    def test_logged_heartbeats_published_as_before(self) -> Any:
        daemon, published, connected_at = yield self.connected("ocpp.log_heartbeats=true")
        rows = yield daemon.wait_for(messages.list_messages, "CP1", until=lambda r: len(r) >= 6)
        self.assertEqual({r.action for r in rows}, {"Heartbeat"})
        self.assertEqual(published.count("ocpp.in.Heartbeat"), 3)
        record = yield daemon.wait_for(
            chargers.get_charge_point, "CP1", until=lambda r: r.last_seen_at > connected_at
        )
        self.assertEqual(daemon.node.last_seen.coalescer.pending, {})
        self.assertGreater(record.last_seen_at, connected_at)


class RabbitMQPostgresHeartbeatTests(HeartbeatTests):
    """The same on the production bus and store: RabbitMQ and PostgreSQL on 127.0.0.1."""

    def daemon_overrides(self) -> list[str]:
        return [*amqp_overrides(self), *postgres_overrides(self)]
