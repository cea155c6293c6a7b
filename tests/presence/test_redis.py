"""
The Redis presence, ``ocppd.presence.redis``, against the contract and the real
Redis at ``tests.services.REDIS_URL`` (skipped without it, failing on CI). Each
test uses its own key prefix and deletes its keys when it ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Generator
from typing import Any

import txredisapi
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Factory
from twisted.protocols.portforward import ProxyFactory
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from ocppd.presence.interface import IPresence, Owner, PresenceUnavailable
from ocppd.presence.redis import RedisPresence
from ocppd.redis.address import parse_redis_url
from ocppd.redis.link import RedisLink
from tests.presence.contract import LEASE, PresenceContractTests, eventually
from tests.redis.links import started_link
from tests.services import REDIS_URL, on_ci, require_service


def require_redis() -> str:
    address = parse_redis_url(REDIS_URL)
    require_service("Redis", address.host, address.port)
    return REDIS_URL


@inlineCallbacks
def delete_prefix(prefix: str) -> Generator[Deferred[Any], Any, None]:
    address = parse_redis_url(REDIS_URL)
    redis = yield txredisapi.Connection(
        address.host, address.port, dbid=address.db, reconnect=False
    )
    try:
        keys = yield redis.keys(f"{prefix}:*")
        if keys:
            yield redis.delete(*keys)
    finally:
        yield redis.disconnect()


class RedisPresenceMixin:
    def make_redis_presence(
        self, node_id: str, lease: float, url: str, *, wait: bool = True
    ) -> Deferred[RedisPresence]:
        test = self
        assert isinstance(test, TestCase)
        if not hasattr(self, "prefix"):
            self.prefix = "t" + uuid.uuid4().hex[:10]
            test.addCleanup(delete_prefix, self.prefix)
        # A node's link: its own connections.
        link = started_link(test, url)
        presence = RedisPresence(
            node_id=node_id,
            clock=reactor,  # type: ignore[arg-type]
            lease=lease,
            link=link,
            prefix=self.prefix,
        )
        # Not start(): the contract's presences renew only when a test says so.
        test.addCleanup(presence.stop)

        @inlineCallbacks
        def connected() -> Generator[Deferred[Any], Any, RedisPresence]:
            if wait and not (yield presence.when_connected(10.0)):
                raise AssertionError(f"no connection to Redis at {url}")
            return presence

        return connected()


class RedisPresenceContractTests(RedisPresenceMixin, PresenceContractTests, TestCase):
    def setUp(self) -> None:
        self.url = require_redis()

    def make_presence(self, node_id: str, lease: float = LEASE) -> Deferred[IPresence]:
        return self.make_redis_presence(node_id, lease, self.url)  # type: ignore[return-value]

    def lose_store_data(self) -> Deferred[None]:
        return delete_prefix(self.prefix)


class MalformedOwnerTests(RedisPresenceMixin, TestCase):
    """
    An owner value ocppd did not write (no "{fence} {node}": edited by hand, or
    another program on the prefix), without an expiry: it must not lock the
    charger out for good.
    """

    @inlineCallbacks
    def test_malformed_owner_is_nobody_and_claimed_over(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        presence = yield self.make_redis_presence("a", LEASE, require_redis())
        fence2 = yield presence.claim("CP2")
        address = parse_redis_url(REDIS_URL)
        redis = yield txredisapi.Connection(
            address.host, address.port, dbid=address.db, reconnect=False
        )
        self.addCleanup(redis.disconnect)
        junks = ("ghost", "x ghost", " ", "99999999999999999999999 ghost", "1 a\n2 b", "\n")
        for junk in junks:
            yield redis.set(f"{self.prefix}:owner:CP1", junk)
            # A renewal may run at any time (the presence renews when its
            # connections come up, which the test does not wait for): it
            # renews the claims held, CP2's, and leaves CP1's junk alone.
            self.assertEqual((yield presence.renew()), [], junk)
            self.assertIsNone((yield presence.owner("CP1")), junk)
            # In a batch too, without shifting the answers of the others.
            owners = yield presence.owners(["CP0", "CP1", "CP2"])
            self.assertEqual(owners, {"CP0": None, "CP1": None, "CP2": Owner("a", fence2)}, junk)
            fence = yield presence.claim("CP1")
            self.assertEqual((yield presence.owner("CP1")), Owner("a", fence), junk)
            # Released before the next junk: a renewal of a held CP1 would
            # rightly write its owner back over the junk (CI saw one do so).
            self.assertTrue((yield presence.release("CP1", fence)), junk)


@inlineCallbacks
def private_replica(testcase: TestCase) -> Generator[Deferred[Any], Any, str]:
    """
    The URL of a private ``redis-server`` of this test, a replica of a master
    that does not exist: it answers reads and refuses writes (READONLY), as a
    replica does after a failover went wrong. Stopped when the test ends.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        if on_ci():
            raise AssertionError("CI requires redis-server on the PATH")
        raise SkipTest("redis-server is not on the PATH")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data_dir = os.path.abspath(testcase.mktemp())
    os.makedirs(data_dir)
    # Port 1 on loopback: a master that never answers.
    options = ["--save", "", "--appendonly", "no", "--replicaof", "127.0.0.1", "1"]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", data_dir, *options],
        stdout=subprocess.DEVNULL,
    )

    def stop() -> None:
        process.terminate()
        process.wait(10)

    testcase.addCleanup(stop)
    yield eventually(lambda: _accepts(port), timeout=10)
    return f"redis://127.0.0.1:{port}/0"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class RedisRefusingTests(RedisPresenceMixin, TestCase):
    """Redis up but refusing the scripts' writes: presence is unavailable, not broken."""

    @inlineCallbacks
    def test_read_only_replica(self) -> Generator[Deferred[Any], Any, None]:
        url = yield private_replica(self)
        presence = yield self.make_redis_presence("a", LEASE, url)
        claim = presence.claim("CP1")
        yield self.assertFailure(claim, PresenceUnavailable)
        self.assertEqual(presence.held(), {})
        self.assertIsNone((yield presence.owner("CP1")))  # reads still work


class RedisOutageTests(RedisPresenceMixin, TestCase):
    """Redis down at start and mid-run, through a TCP proxy this test controls."""

    def setUp(self) -> None:
        url = parse_redis_url(require_redis())
        self.factory: Factory = ProxyFactory(url.host, url.port)
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.port_number = self.port.getHost().port
        self.url = f"redis://127.0.0.1:{self.port_number}/{url.db}"
        self.addCleanup(lambda: self.cut())

    def cut(self) -> Deferred[None] | None:
        """Stop the proxy: no new connections, the open ones dropped."""
        if self.port is None:
            return None
        port, self.port = self.port, None
        for protocol in list(getattr(self.factory, "open", [])):
            protocol.transport.abortConnection()
        return port.stopListening()  # type: ignore[no-any-return]

    def restore(self) -> None:
        self.port = reactor.listenTCP(  # type: ignore[attr-defined]
            self.port_number, self.factory, interface="127.0.0.1"
        )

    def track(self) -> None:
        """Remember the proxy's connections, so ``cut`` can drop them."""
        self.factory.open = []  # type: ignore[attr-defined]
        build = self.factory.buildProtocol

        def tracked(addr: Any) -> Any:
            protocol = build(addr)
            self.factory.open.append(protocol)  # type: ignore[attr-defined]
            return protocol

        self.factory.buildProtocol = tracked  # type: ignore[method-assign]

    @inlineCallbacks
    def test_down_at_start_fails_fast_then_recovers(self) -> Generator[Deferred[Any], Any, None]:
        self.track()
        yield self.cut()
        presence = yield self.make_redis_presence("a", LEASE, self.url, wait=False)
        # At once, typed: nothing waits for Redis.
        self.failureResultOf(presence.claim("CP1"), PresenceUnavailable)
        self.failureResultOf(presence.owner_node("CP1"), PresenceUnavailable)
        self.restore()
        self.assertTrue((yield presence.when_connected(30.0)))
        fence = yield presence.claim("CP1")
        self.assertEqual((yield presence.owner("CP1")), Owner("a", fence))

    @inlineCallbacks
    def test_down_mid_run_fails_fast_then_recovers(self) -> Generator[Deferred[Any], Any, None]:
        self.track()
        a = yield self.make_redis_presence("a", LEASE, self.url)
        b = yield self.make_redis_presence("b", LEASE, require_redis())
        fence = yield a.claim("CP1")
        yield self.cut()
        yield eventually(lambda: not a.connected(), timeout=30)
        self.failureResultOf(a.claim("CP2"), PresenceUnavailable)
        self.failureResultOf(a.renew(), PresenceUnavailable)
        self.failureResultOf(a.owner("CP1"), PresenceUnavailable)
        # Meanwhile the charger moves to b: a learns it once it is back.
        lost: list[tuple[str, int]] = []
        a.on_lost(lambda cp, f: lost.append((cp, f)))
        yield b.claim("CP1")
        self.restore()
        # The reconnected subscription renews at once and finds the claim lost
        # (reconnection backs off up to 10 s).
        yield eventually(lambda: lost, timeout=30)
        self.assertEqual(lost, [("CP1", fence)])
        self.assertEqual((yield a.owner_node("CP1")), "b")

    def test_unknown_prefix_message_ignored(self) -> None:
        presence = RedisPresence(
            node_id="a",
            clock=reactor,  # type: ignore[arg-type]
            lease=1.0,
            link=RedisLink(reactor=reactor, url="redis://x/0"),
        )
        lost: list[tuple[str, int]] = []
        presence.on_lost(lambda cp, f: lost.append((cp, f)))
        presence._message(b"garbage")
        presence._message(b"12")
        self.assertEqual(lost, [])


class ParseRedisUrlTests(SynchronousTestCase):
    def test_valid(self) -> None:
        self.assertEqual(
            parse_redis_url("redis://:s%40cret@cache.example:6380/3"),
            parse_redis_url("redis://:s%40cret@cache.example:6380/3"),
        )
        address = parse_redis_url("redis://:s%40cret@cache.example:6380/3")
        self.assertEqual(
            (address.host, address.port, address.db, address.password),
            ("cache.example", 6380, 3, "s@cret"),
        )
        self.assertEqual(str(address), "redis://cache.example:6380/3")
        address = parse_redis_url("redis://127.0.0.1")
        self.assertEqual((address.port, address.db, address.password), (6379, 0, None))

    def test_invalid(self) -> None:
        for url in (
            "http://127.0.0.1:6379/0",
            "redis:///0",
            "redis://h:notaport/0",
            "redis://h:6379/x",
            "redis://h:6379/256",
            "redis://h:6379/-1",
        ):
            with self.assertRaises(ValueError, msg=url):
                parse_redis_url(url)
