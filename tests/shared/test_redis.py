"""
The Redis shared state, ``ocppd.shared.redis``, against the contract and the
real Redis at ``tests.services.REDIS_URL`` (skipped without it, failing on CI).
Each test uses its own key prefix and deletes its keys when it ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd.api.accounts import Accounts
from ocppd.api.errors import ApiError
from ocppd.ocpp.admission import ChargerAdmission
from ocppd.ocpp.handshake import HandshakeError
from ocppd.redis.link import RedisLink
from ocppd.shared.interface import ISharedState, SharedStateUnavailable
from ocppd.shared.redis import RedisSharedState
from ocppd.throttle import ThrottlePolicy
from tests.presence.contract import eventually
from tests.presence.test_redis import delete_prefix, private_replica, require_redis
from tests.redis.links import started_link
from tests.shared.contract import SharedStateContractTests


class RedisSharedStateContractTests(SharedStateContractTests, TestCase):
    def setUp(self) -> None:
        self.url = require_redis()
        self.clock = Clock()
        self.clock.advance(1_000_000)
        self.prefix = "t" + uuid.uuid4().hex[:10]
        self.addCleanup(delete_prefix, self.prefix)

    @inlineCallbacks
    def make_nodes(self, count: int) -> Generator[Deferred[Any], Any, list[ISharedState]]:
        nodes = []
        for _ in range(count):
            link = started_link(self, self.url)
            node = RedisSharedState(clock=self.clock, link=link, prefix=self.prefix)
            node.start()
            self.addCleanup(node.stop)
            nodes.append(node)
        yield eventually(lambda: all(node.connected() for node in nodes))
        return nodes

    @inlineCallbacks
    def test_keys_expire(self) -> Generator[Deferred[Any], Any, None]:
        """Every key has a TTL: Redis holds only what is active (no unbounded growth)."""
        (node,) = yield self.make_nodes(1)
        assert isinstance(node, RedisSharedState)
        yield node.failures("f", ThrottlePolicy(forget=60.0)).begin("k")
        yield node.window("w", limit=3, window=10.0).record("k")
        handler = node.link.commands()
        keys = yield handler.keys(f"{self.prefix}:*")
        self.assertEqual(len(keys), 2)
        for key in keys:
            ttl = yield handler.execute_command("PTTL", key)
            self.assertGreater(ttl, 0)
            self.assertLessEqual(ttl, 60_000)


UNREACHABLE = "redis://127.0.0.1:1/0"


class RedisSharedStateUnreachableTests(TestCase):
    """Redis down: the limits fail closed, at once, with a clear answer."""

    def link(self) -> RedisLink:
        return started_link(self, UNREACHABLE)

    def test_fails_at_once(self) -> None:
        node = RedisSharedState(clock=Clock(), link=self.link())
        self.failureResultOf(
            node.failures("f", ThrottlePolicy()).begin("k"), SharedStateUnavailable
        )

    def test_sign_in_answers_503(self) -> None:
        clock = Clock()
        shared = RedisSharedState(clock=clock, link=self.link())
        database: Any = None  # never reached: the limits are asked first
        accounts = Accounts(database, clock, token_ttl=60, shared=shared)
        error = self.failureResultOf(accounts.login("a@example.com", "pw", "192.0.2.1"), ApiError)
        self.assertEqual((error.value.status, error.value.code), (503, "unavailable"))

    def test_charger_login_answers_503(self) -> None:
        clock = Clock()
        shared = RedisSharedState(clock=clock, link=self.link())
        database: Any = None
        admission = ChargerAdmission(database, clock, shared=shared)
        error = self.failureResultOf(
            admission.admit("/ocpp/CP1", None, address="192.0.2.1"), HandshakeError
        )
        self.assertEqual(error.value.status, 503)


class RedisSharedStateRefusingTests(TestCase):
    """Redis up but refusing writes (a read-only replica): the limits fail closed, 503."""

    @inlineCallbacks
    def test_read_only_replica(self) -> Generator[Deferred[Any], Any, None]:
        url = yield private_replica(self)
        node = RedisSharedState(clock=Clock(), link=started_link(self, url))
        node.start()
        self.addCleanup(node.stop)
        yield eventually(node.connected)
        window = node.window("w", limit=3, window=10.0)
        yield self.assertFailure(window.record("k"), SharedStateUnavailable)
