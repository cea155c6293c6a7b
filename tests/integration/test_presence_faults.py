"""
Presence faults on a whole node in this process (``OcppdService`` on real
sockets, the real Redis): Redis down when the node starts, and a claim left in
Redis by a node that no longer exists. Redis goes down through a proxy this
test controls (``tests/proxy.py``); the shared Redis stays up for other tests.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator
from datetime import timedelta
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from ocppd.presence.redis import RedisPresence
from ocppd.redis.address import parse_redis_url
from ocppd.routing.amqp import AmqpCommandTransport
from ocppd.store import tokens, users
from ocppd.timeutil import from_timestamp
from tests.integration.clients import TestClient, connect
from tests.integration.daemon import RunningDaemon, amqp_overrides, start_daemon
from tests.passwords import password_hash
from tests.presence.contract import eventually
from tests.presence.test_redis import delete_prefix, require_redis
from tests.proxy import start_proxy
from tests.redis.links import started_link
from tests.services import RABBITMQ_URL

KEY = "s3cret-key-000001"
CP = "CP1"
#: Seconds the ghost's claim lives: it never renews it.
GHOST_LEASE = 2.0


class PresenceFaultTestCase(TestCase):
    timeout = 60

    def setUp(self) -> None:
        self.redis_url = require_redis()
        self.prefix = "t" + uuid.uuid4().hex[:10]
        # Before the node: cleanups run last-in first-out, after it stopped.
        self.addCleanup(delete_prefix, self.prefix)
        self.http = HTTPConnectionPool(reactor, persistent=False)

    def presence_overrides(self, url: str) -> list[str]:
        return ["presence.backend=redis", f"presence.url={url}", f"presence.prefix={self.prefix}"]

    @inlineCallbacks
    def token(self, node: RunningDaemon) -> Generator[Deferred[Any], Any, str]:
        """An operator's bearer token, written to the store (signing in needs Redis too)."""
        now = from_timestamp(reactor.seconds())
        user_id = yield node.query(
            users.add_user, "ops@example.com", password_hash("pw"), "admin", now=now
        )
        token = "t-" + uuid.uuid4().hex
        yield node.query(
            tokens.add_token, token, user_id, now=now, expires_at=now + timedelta(days=1)
        )
        return token

    @inlineCallbacks
    def command(
        self, node: RunningDaemon, token: str
    ) -> Generator[Deferred[Any], Any, tuple[int, Any]]:
        """POST /api/charger/clear-cache for CP1 on ``node``: (status, JSON body)."""
        response = yield treq.post(
            f"http://127.0.0.1:{node.web_port}/api/charger/clear-cache",
            json={"chargePointId": CP},
            headers={"Authorization": f"Bearer {token}"},
            pool=self.http,
        )
        text = yield response.text()
        return response.code, json.loads(text)

    @inlineCallbacks
    def commanded(
        self, node: RunningDaemon, token: str, charger: TestClient
    ) -> Generator[Deferred[Any], Any, tuple[int, Any]]:
        """A command that reaches ``charger``, which answers Accepted."""
        asked = self.command(node, token)
        frame = json.loads((yield charger.messages.get()))
        self.assertEqual(frame[2], "ClearCache")
        charger.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
        result = yield asked
        return result


def watch_log(testcase: TestCase, text: str) -> list[str]:
    """The formats of the events logged until ``testcase`` ends that contain ``text``."""
    seen: list[str] = []

    def observe(event: dict[str, Any]) -> None:
        log_format = event.get("log_format") or ""
        if text in log_format:
            seen.append(log_format)

    globalLogPublisher.addObserver(observe)
    testcase.addCleanup(globalLogPublisher.removeObserver, observe)
    return seen


class RedisDownAtStartTests(PresenceFaultTestCase):
    @inlineCallbacks
    def test_starts_refuses_then_recovers(self) -> Generator[Deferred[Any], Any, None]:
        """
        A node whose Redis is unreachable at start says so in one line and
        starts; meanwhile chargers are refused with 503 and commands answer 503
        with a JSON body; once Redis is reachable it works, by itself.
        """
        address = parse_redis_url(self.redis_url)
        proxy = yield start_proxy(self, address.host, address.port)
        yield proxy.down()
        said = watch_log(self, "not reachable after")
        through_proxy = f"redis://127.0.0.1:{proxy.local_port}/{address.db}"
        node = yield start_daemon(
            self, *self.presence_overrides(through_proxy), "bus.connect_timeout=0.5"
        )
        self.assertEqual(len(said), 1, said)
        node.ocppctl("charger", "add", CP, stdin=KEY + "\n")
        token = yield self.token(node)

        refused = yield self.assertFailure(connect(node.port, CP, KEY), ConnectionError)
        self.assertIn("503", str(refused))
        status, body = yield self.command(node, token)
        self.assertEqual((status, body["error"]["code"]), (503, "unavailable"), body)

        yield proxy.up()

        @inlineCallbacks
        def admitted() -> Generator[Deferred[Any], Any, TestClient | None]:
            try:
                charger = yield connect(node.port, CP, KEY)
            except ConnectionError:
                return None
            return charger

        charger = yield eventually(admitted, 30)
        self.addCleanup(charger.close)
        status, body = yield self.commanded(node, token, charger)
        self.assertEqual((status, body["status"]), (200, "Accepted"), body)


class GhostOwnerTests(PresenceFaultTestCase):
    @inlineCallbacks
    def ghost_claims(self, charge_point_id: str) -> Generator[Deferred[Any], Any, None]:
        """Presence names node "ghost" as the charger's owner, for ``GHOST_LEASE`` seconds."""
        link = started_link(self, self.redis_url)
        ghost = RedisPresence(
            node_id="ghost", clock=reactor, lease=GHOST_LEASE, link=link, prefix=self.prefix
        )
        # Not start(): the ghost never renews.
        self.addCleanup(ghost.stop)
        self.assertTrue((yield ghost.when_connected(10.0)))
        yield ghost.claim(charge_point_id)

    @inlineCallbacks
    def test_claim_of_a_node_that_is_gone(self) -> Generator[Deferred[Any], Any, None]:
        """
        Presence says a node "ghost" holds CP1, a node that no longer exists
        (it never renews): a command answers 409 at once, never hangs; once
        the ghost's lease ran out, CP1 connects to a live node and is
        commandable there.
        """
        store = amqp_overrides(self)
        node = yield start_daemon(
            self, *store, *self.presence_overrides(self.redis_url), "ocppd.node_id=node-a"
        )
        node.ocppctl("charger", "add", CP, stdin=KEY + "\n")
        token = yield self.token(node)

        yield self.ghost_claims(CP)
        self.assertEqual((yield node.node.presence.owner_node(CP)), "ghost")

        status, body = yield self.command(node, token)
        self.assertEqual((status, body["error"]["code"]), (409, "not_connected"), body)

        @inlineCallbacks
        def expired() -> Generator[Deferred[Any], Any, bool]:
            owner = yield node.node.presence.owner_node(CP)
            return owner is None

        yield eventually(expired, GHOST_LEASE * 5)
        charger = yield connect(node.port, CP, KEY)
        self.addCleanup(charger.close)
        self.assertEqual((yield node.node.presence.owner_node(CP)), "node-a")
        status, body = yield self.commanded(node, token, charger)
        self.assertEqual((status, body["status"]), (200, "Accepted"), body)

    @inlineCallbacks
    def test_claim_of_a_node_gone_with_its_queue_left(self) -> Generator[Deferred[Any], Any, None]:
        """
        The ghost died a moment ago: its command queue is still on the broker
        (it expires after ``queue_expiry``), nobody consumes it. A command
        answers 504 once its timeout passed, never hangs.
        """
        store = amqp_overrides(self)
        prefix = next(o for o in store if o.startswith("bus.prefix=")).partition("=")[2]
        node = yield start_daemon(
            self,
            *store,
            *self.presence_overrides(self.redis_url),
            "ocppd.node_id=node-a",
            "ocpp.call_timeout=1",
        )
        node.ocppctl("charger", "add", CP, stdin=KEY + "\n")
        token = yield self.token(node)
        ghost = AmqpCommandTransport(url=RABBITMQ_URL, reactor=reactor, prefix=prefix)
        ghost.startService()
        self.addCleanup(ghost.stopService)
        serving = yield ghost.serve("ghost", lambda body: Deferred())
        yield ghost.when_connected()
        yield serving.stop()  # the queue stays, with no consumer
        yield self.ghost_claims(CP)

        status, body = yield self.command(node, token)
        self.assertEqual((status, body["error"]["code"]), (504, "timeout"), body)

    @inlineCallbacks
    def test_charger_taken_from_a_ghost_at_once(self) -> Generator[Deferred[Any], Any, None]:
        """A charger need not wait for the ghost's lease: connecting claims it over the ghost."""
        node = yield start_daemon(
            self, *self.presence_overrides(self.redis_url), "ocppd.node_id=node-a"
        )
        node.ocppctl("charger", "add", CP, stdin=KEY + "\n")
        token = yield self.token(node)
        yield self.ghost_claims(CP)
        charger = yield connect(node.port, CP, KEY)
        self.addCleanup(charger.close)
        self.assertEqual((yield node.node.presence.owner_node(CP)), "node-a")
        status, body = yield self.commanded(node, token, charger)
        self.assertEqual((status, body["status"]), (200, "Accepted"), body)


class RedisDownThroughoutTests(PresenceFaultTestCase):
    @inlineCallbacks
    def test_stops_while_redis_down(self) -> Generator[Deferred[Any], Any, None]:
        """A node that never reached Redis stops cleanly, without waiting for it."""
        address = parse_redis_url(self.redis_url)
        proxy = yield start_proxy(self, address.host, address.port)
        yield proxy.down()
        through_proxy = f"redis://127.0.0.1:{proxy.local_port}/{address.db}"
        node = yield start_daemon(
            self, *self.presence_overrides(through_proxy), "bus.connect_timeout=0.5"
        )
        node.ocppctl("charger", "add", CP, stdin=KEY + "\n")
        refused = yield self.assertFailure(connect(node.port, CP, KEY), ConnectionError)
        self.assertIn("503", str(refused))
        yield node.service.stopService()
        self.assertFalse(node.service.running)
