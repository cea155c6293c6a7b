"""
The contract of ``ISharedState``: what every implementation must do.

``SharedStateContractTests`` is a mixin; each implementation's tests subclass
it with ``twisted.trial.unittest.TestCase`` and provide ``make_nodes``: the
shared state of ``count`` nodes sharing one store, on the Clock ``self.clock``
(the limits' times come from the node's clock; Redis only stores them).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from ocppd.shared.interface import IFailures, ISharedState, IWindow
from ocppd.throttle import ThrottlePolicy
from tests.presence.contract import eventually

POLICY = ThrottlePolicy(free=3, base=1.0, cap=8.0, forget=60.0)
DIGEST = "ab" * 32


class SharedStateContractTests:
    clock: Clock

    def make_nodes(self, count: int) -> Deferred[list[ISharedState]]:
        raise NotImplementedError

    @property
    def _test(self) -> TestCase:
        assert isinstance(self, TestCase)
        return self

    @inlineCallbacks
    def _failures(self, count: int = 2) -> Generator[Deferred[Any], Any, list[IFailures]]:
        nodes = yield self.make_nodes(count)
        return [node.failures("signin", POLICY) for node in nodes]

    def test_interfaces(self) -> Deferred[None]:
        @inlineCallbacks
        def check() -> Generator[Deferred[Any], Any, None]:
            (node,) = yield self.make_nodes(1)
            verifyObject(ISharedState, node)
            verifyObject(IFailures, node.failures("x", POLICY))
            verifyObject(IWindow, node.window("y", limit=1, window=1.0))

        return check()

    @inlineCallbacks
    def test_free_attempts_then_progressive_delay(self) -> Generator[Deferred[Any], Any, None]:
        a, b = yield self._failures()
        for _ in range(POLICY.free):
            self._test.assertIsNone((yield a.begin("k")))
        # Counted before the check: the next attempt, on any node, must wait.
        self._test.assertAlmostEqual((yield b.begin("k")), 1.0, places=2)
        self._test.assertAlmostEqual((yield a.retry_after("k")), 1.0, places=2)
        self.clock.advance(0.5)
        self._test.assertAlmostEqual((yield b.retry_after("k")), 0.5, places=2)
        self.clock.advance(0.5)
        self._test.assertIsNone((yield b.begin("k")))
        self._test.assertAlmostEqual((yield a.begin("k")), 2.0, places=2)
        self.clock.advance(2.0)
        self._test.assertIsNone((yield a.begin("k")))
        self._test.assertAlmostEqual((yield b.retry_after("k")), 4.0, places=2)
        self.clock.advance(4.0)
        yield a.begin("k")
        self.clock.advance(8.0)
        yield a.begin("k")
        # Capped.
        self._test.assertAlmostEqual((yield b.retry_after("k")), POLICY.cap, places=2)

    @inlineCallbacks
    def test_parallel_attempts_cannot_all_pass(self) -> Generator[Deferred[Any], Any, None]:
        a, b = yield self._failures()
        results = yield gatherResults([n.begin("k") for n in (a, b, a, b, a, b)])
        self._test.assertEqual(sum(r is None for r in results), POLICY.free)

    @inlineCallbacks
    def test_success_forgives(self) -> Generator[Deferred[Any], Any, None]:
        a, b = yield self._failures()
        for _ in range(POLICY.free + 1):
            yield a.begin("k")
        yield b.succeeded("k")
        self._test.assertIsNone((yield a.retry_after("k")))
        self._test.assertIsNone((yield a.begin("k")))

    @inlineCallbacks
    def test_keys_and_scopes_are_separate(self) -> Generator[Deferred[Any], Any, None]:
        (node,) = yield self.make_nodes(1)
        a = node.failures("one", POLICY)
        other = node.failures("two", POLICY)
        for _ in range(POLICY.free + 1):
            yield a.begin("k")
        self._test.assertIsNotNone((yield a.retry_after("k")))
        self._test.assertIsNone((yield a.retry_after("k2")))
        self._test.assertIsNone((yield other.retry_after("k")))

    @inlineCallbacks
    def test_forgotten_after_forget(self) -> Generator[Deferred[Any], Any, None]:
        a, b = yield self._failures()
        for _ in range(POLICY.free + 3):
            self.clock.advance(POLICY.cap)
            yield a.begin("k")
        self.clock.advance(POLICY.forget)
        self._test.assertIsNone((yield b.retry_after("k")))
        # Forgotten entirely: three free attempts again.
        for _ in range(POLICY.free):
            self._test.assertIsNone((yield b.begin("k")))

    @inlineCallbacks
    def test_window(self) -> Generator[Deferred[Any], Any, None]:
        nodes = yield self.make_nodes(2)
        a, b = (node.window("addr", limit=2, window=10.0) for node in nodes)
        self._test.assertIsNone((yield a.retry_after("x")))
        yield a.record("x")
        self.clock.advance(4.0)
        yield b.record("x")
        self._test.assertAlmostEqual((yield b.retry_after("x")), 6.0, places=2)
        self._test.assertIsNone((yield b.retry_after("y")))
        self.clock.advance(6.0)
        self._test.assertIsNone((yield a.retry_after("x")))
        yield a.record("x")
        self._test.assertAlmostEqual((yield a.retry_after("x")), 4.0, places=2)

    @inlineCallbacks
    def test_revocation_reaches_every_node(self) -> Generator[Deferred[Any], Any, None]:
        a, b = yield self.make_nodes(2)
        told_a: list[str] = []
        told_b: list[str] = []
        a.on_revoked(told_a.append)
        b.on_revoked(told_b.append)
        yield a.publish_revoked(DIGEST)
        self._test.assertIn(DIGEST, told_a)  # at once on the node that revoked
        yield eventually(lambda: DIGEST in told_b)
