"""
Two whole ocppd nodes in this process on real sockets, sharing PostgreSQL and
presence on the real Redis (each node its own embedded bus): a charger that
reconnects to the other node has its old socket closed at once, and the store
shows it online on the new node.
"""

from __future__ import annotations

import uuid
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd.ocpp.registry import CLOSE_REPLACED
from ocppd.store import chargers
from tests.integration.clients import connect
from tests.integration.daemon import postgres_overrides, start_daemon
from tests.presence.test_redis import delete_prefix, require_redis

KEY = "s3cret-key-000001"
#: What issue 15 asks of a takeover: the old socket closed within seconds.
TAKEOVER_LIMIT = 5.0


class TwoNodeTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def setUp(self) -> Any:
        url = require_redis()
        store = postgres_overrides(self)
        prefix = "t" + uuid.uuid4().hex[:10]
        # Before the nodes: cleanups run last-in first-out, after they stopped.
        self.addCleanup(delete_prefix, prefix)
        shared = [
            *store,
            "presence.backend=redis",
            f"presence.url={url}",
            f"presence.prefix={prefix}",
        ]
        self.a = yield start_daemon(self, *shared, "ocppd.node_id=node-a")
        self.b = yield start_daemon(self, *shared, "ocppd.node_id=node-b")
        self.a.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")

    @inlineCallbacks
    def test_reconnect_to_other_node_closes_old_socket(self) -> Any:
        on_b = yield connect(self.b.port, "CP1", KEY)
        record = yield self.b.wait_for(
            chargers.get_charge_point, "CP1", until=lambda r: r.online and r.node == "node-b"
        )
        self.assertEqual((yield self.a.node.presence.owner_node("CP1")), "node-b")

        on_a = yield connect(self.a.port, "CP1", KEY)
        closed = on_b.closed.addTimeout(TAKEOVER_LIMIT, reactor)
        code, _ = yield closed
        self.assertEqual(code, CLOSE_REPLACED)
        self.assertNotIn("CP1", self.b.node.registry)
        self.assertIn("CP1", self.a.node.registry)
        self.assertEqual((yield self.b.node.presence.owner_node("CP1")), "node-a")
        # b's disconnect of the old socket does not take the charger offline.
        record = yield self.a.wait_for(
            chargers.get_charge_point, "CP1", until=lambda r: r.online and r.node == "node-a"
        )
        self.assertTrue(record.online)

        on_a.close()
        yield on_a.closed
        yield self.a.wait_for(chargers.get_charge_point, "CP1", until=lambda r: not r.online)
        self.assertIsNone((yield self.a.node.presence.owner_node("CP1")))
