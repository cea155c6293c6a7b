"""
``GET /ready`` of a whole node on the real services (PostgreSQL, RabbitMQ,
Redis), the broker and Redis reached through proxies this test controls
(``tests/proxy.py``): ready while all answer, 503 naming the service that is
down, ready again once it is back. (PostgreSQL is not proxied: the store's
start migrates in the reactor thread, which would wait on a proxy in the same
reactor; a stalled database is tested in tests/test_health.py.)
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator
from typing import Any

import treq
from sqlalchemy.engine import make_url
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from tests.integration.daemon import (
    RunningDaemon,
    amqp_overrides,
    poll,
    postgres_overrides,
    start_daemon,
)
from tests.presence.test_redis import delete_prefix, require_redis
from tests.proxy import start_proxy
from tests.services import RABBITMQ_URL


class ReadinessTests(TestCase):
    timeout = 90

    @inlineCallbacks
    def setUp(self) -> Generator[Deferred[Any], Any, None]:
        redis_url = require_redis()
        prefix = "t" + uuid.uuid4().hex[:10]
        self.addCleanup(delete_prefix, prefix)
        store = postgres_overrides(self)[0].partition("=")[2]
        amqp = amqp_overrides(self)
        self.rabbitmq = yield start_proxy(self, "127.0.0.1", make_url(RABBITMQ_URL).port or 5672)
        self.redis = yield start_proxy(self, "127.0.0.1", make_url(redis_url).port or 6379)
        self.daemon: RunningDaemon = yield start_daemon(
            self,
            f"store.url={store}",
            *[o for o in amqp if not o.startswith("bus.url=")],
            f"bus.url=amqp://guest:guest@127.0.0.1:{self.rabbitmq.local_port}/%2F?heartbeat=2",
            "bus.connect_timeout=5",
            "presence.backend=redis",
            f"presence.url=redis://127.0.0.1:{self.redis.local_port}/0",
            f"presence.prefix={prefix}",
        )
        self.http = HTTPConnectionPool(reactor, persistent=False)

    @inlineCallbacks
    def ready(self) -> Generator[Deferred[Any], Any, tuple[int, Any]]:
        response = yield treq.get(f"http://127.0.0.1:{self.daemon.web_port}/ready", pool=self.http)
        text = yield response.text()
        return response.code, json.loads(text)

    def until(self, problems: dict[str, str]) -> Deferred[Any]:
        """Poll /ready until its problems are ``problems`` (ready when empty)."""
        code = 503 if problems else 200
        return poll(
            self.ready,
            until=lambda r: r == (code, r[1]) and r[1]["problems"] == problems,
            timeout=30,
        )

    @inlineCallbacks
    def test_each_service_down_and_back(self) -> Generator[Deferred[Any], Any, None]:
        # Polled, as every state after: a probe that misses its 2 s on the
        # loaded machine makes one answer 503.
        code, body = yield self.until({})
        self.assertEqual((code, body["status"]), (200, "ready"), body)
        self.assertEqual(body["node"], "test-node")

        yield self.rabbitmq.down()
        yield self.until({"bus": "not connected to RabbitMQ"})
        yield self.rabbitmq.up()
        yield self.until({})

        yield self.redis.down()
        yield self.until({"presence": "not connected to Redis"})
        yield self.redis.up()
        yield self.until({})
