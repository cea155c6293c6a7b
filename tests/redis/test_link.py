"""
``ocppd.redis.link.RedisLink``: a node's one command and one subscriber
connection to Redis, shared by presence, the shared limits and revocations.
Through a TCP proxy this test controls (``tests/proxy.py``), to count the
connections and to cut them; against the real Redis (failing on CI without it).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.testing import MemoryReactor
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.config import load_config
from ocppd.presence.redis import RedisPresence
from ocppd.redis.address import parse_redis_url
from ocppd.redis.link import RedisLink
from ocppd.service import Ocppd
from ocppd.shared.redis import RedisSharedState
from ocppd.throttle import ThrottlePolicy
from tests.presence.contract import eventually
from tests.presence.test_redis import delete_prefix, require_redis
from tests.proxy import FreezableProxy, start_proxy
from tests.redis.links import started_link

DIGEST = "ab" * 32


class OneLinkTests(TestCase):
    @inlineCallbacks
    def setUp(self) -> Generator[Deferred[Any], Any, None]:
        self.url = require_redis()
        address = parse_redis_url(self.url)
        self.prefix = "t" + uuid.uuid4().hex[:10]
        self.addCleanup(delete_prefix, self.prefix)
        self.proxy: FreezableProxy = yield start_proxy(self, address.host, address.port)
        self.link = started_link(self, f"redis://127.0.0.1:{self.proxy.local_port}/{address.db}")
        # The node: presence and the shared state on its one link.
        self.presence = RedisPresence(
            node_id="a",
            clock=reactor,  # type: ignore[arg-type]
            lease=30,
            link=self.link,
            prefix=self.prefix,
        )
        self.addCleanup(self.presence.stop)
        self.shared = RedisSharedState(clock=reactor, link=self.link, prefix=self.prefix)  # type: ignore[arg-type]
        self.lost: list[tuple[str, int]] = []
        self.presence.on_lost(lambda cp, fence: self.lost.append((cp, fence)))
        self.revoked: list[str] = []
        self.shared.on_revoked(self.revoked.append)
        # Another node, on its own link.
        other_link = started_link(self, self.url)
        self.other = RedisPresence(
            node_id="b",
            clock=reactor,  # type: ignore[arg-type]
            lease=30,
            link=other_link,
            prefix=self.prefix,
        )
        self.addCleanup(self.other.stop)
        self.other_shared = RedisSharedState(clock=reactor, link=other_link, prefix=self.prefix)  # type: ignore[arg-type]
        self.assertTrue((yield self.link.when_connected(10)))
        self.assertTrue((yield other_link.when_connected(10)))
        yield self.subscribed()

    def subscribed(self) -> Deferred[Any]:
        """Until Redis counts the subscriptions: a's lost claims, and both nodes' revocations."""
        channels = [self.presence.channel, self.shared.channel]

        @inlineCallbacks
        def both() -> Generator[Deferred[Any], Any, bool]:
            commands = self.other.link.commands()
            reply = yield commands.execute_command("PUBSUB", "NUMSUB", *channels)
            return list(reply[1::2]) == [1, 2]

        return eventually(both, timeout=30)

    @inlineCallbacks
    def test_one_command_and_one_subscriber_connection(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """Claims, limits, takeover messages and revocations: two connections in all."""
        fence = yield self.presence.claim("CP1")
        yield self.shared.failures("sign-in", ThrottlePolicy()).begin("someone")
        yield self.other.claim("CP1")  # the takeover message, on a's subscriber connection
        yield self.other_shared.publish_revoked(DIGEST)  # a revocation, on the same one
        yield eventually(lambda: self.lost and self.revoked)
        self.assertEqual((self.lost, self.revoked), ([("CP1", fence)], [DIGEST]))
        # Each proxied connection is two halves (to the client, to Redis).
        self.assertEqual(len(self.proxy.halves), 4)

    @inlineCallbacks
    def test_resubscribes_after_reconnecting(self) -> Generator[Deferred[Any], Any, None]:
        """Redis away and back: both channels subscribed again, presence renewed at once."""
        fence = yield self.presence.claim("CP1")
        yield self.proxy.down()
        yield eventually(lambda: not self.link.connected(), timeout=30)
        yield self.proxy.up()
        # Reconnection backs off up to 10 s.
        self.assertTrue((yield self.link.when_connected(30)))
        yield self.subscribed()
        yield self.other_shared.publish_revoked(DIGEST)
        yield self.other.claim("CP1")
        yield eventually(lambda: self.lost and self.revoked)
        self.assertEqual((self.lost, self.revoked), ([("CP1", fence)], [DIGEST]))
        self.assertEqual(len(self.proxy.halves), 4)


class DispatchTests(SynchronousTestCase):
    """Messages go to their channel's handler; a bad handler or channel is logged, no more."""

    def setUp(self) -> None:
        self.link = RedisLink(reactor=MemoryReactor(), url="redis://127.0.0.1:1/0")
        self.events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def logged(self, level: LogLevel) -> list[str]:
        return [
            e["log_format"]
            for e in self.events
            if e.get("log_namespace") == "ocppd.redis.link.RedisLink" and e["log_level"] == level
        ]

    def test_by_channel(self) -> None:
        got: list[tuple[str, Any]] = []
        self.link.subscribe("x", lambda m: got.append(("x", m)), while_unsubscribed="-")
        self.link.subscribe("y", lambda m: got.append(("y", m)), while_unsubscribed="-")
        self.link._message("y", b"1")
        self.link._message("x", b"2")
        self.assertEqual(got, [("y", b"1"), ("x", b"2")])

    def test_one_handler_per_channel(self) -> None:
        self.link.subscribe("x", lambda m: None, while_unsubscribed="-")
        with self.assertRaises(ValueError):
            self.link.subscribe("x", lambda m: None, while_unsubscribed="-")

    def test_unknown_channel_and_failing_handler(self) -> None:
        def broken(message: Any) -> None:
            raise RuntimeError("handler bug")

        self.link.subscribe("x", broken, while_unsubscribed="-")
        self.link._message("nobody", b"1")
        self.link._message("x", b"2")
        self.assertEqual(len(self.logged(LogLevel.warn)), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_reconnection_callbacks(self) -> None:
        calls: list[str] = []
        self.link.on_connected(lambda: calls.append("a"))

        def broken() -> None:
            raise RuntimeError("callback bug")

        self.link.on_connected(broken)
        self.link.on_connected(lambda: calls.append("c"))
        self.link._connected()
        self.assertEqual(calls, ["a", "c"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class NodeWiringTests(SynchronousTestCase):
    def test_presence_and_shared_state_on_the_node_link(self) -> None:
        data_dir = os.path.abspath(self.mktemp())
        os.makedirs(data_dir)
        config = load_config(
            None, [f"ocppd.data_dir={data_dir}", "presence.backend=redis", "ocppd.node_id=n1"]
        )
        node = Ocppd(config, MemoryReactor())
        self.addCleanup(node.database.engine.dispose)
        assert node.redis is not None
        self.assertIs(node.presence.link, node.redis)  # type: ignore[attr-defined]
        self.assertIs(node.shared.link, node.redis)  # type: ignore[attr-defined]

    def test_no_link_when_embedded(self) -> None:
        data_dir = os.path.abspath(self.mktemp())
        os.makedirs(data_dir)
        node = Ocppd(load_config(None, [f"ocppd.data_dir={data_dir}"]), MemoryReactor())
        self.addCleanup(node.database.engine.dispose)
        self.assertIsNone(node.redis)
