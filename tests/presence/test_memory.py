"""The embedded presence, ``ocppd.presence.memory``, against the contract."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.presence.interface import IPresence, Owner
from ocppd.presence.memory import MemoryPresence, MemoryPresenceHub
from tests.presence.contract import LEASE, PresenceContractTests


class MemoryPresenceContractTests(PresenceContractTests, TestCase):
    def setUp(self) -> None:
        self.hub = MemoryPresenceHub(reactor)  # type: ignore[arg-type]

    def make_presence(self, node_id: str, lease: float = LEASE) -> Deferred[IPresence]:
        presence = MemoryPresence(node_id=node_id, clock=reactor, lease=lease, hub=self.hub)  # type: ignore[arg-type]
        self.addCleanup(presence.stop)
        return succeed(presence)

    def lose_store_data(self) -> Deferred[None]:
        self.hub._fences.clear()
        self.hub._owners.clear()
        return succeed(None)


class MemoryPresenceClockTests(SynchronousTestCase):
    """The timer, with a fake clock."""

    def test_renews_every_third_of_the_lease(self) -> None:
        clock = Clock()
        presence = MemoryPresence(node_id="a", clock=clock, lease=30.0)
        fence = self.successResultOf(presence.claim("CP1"))
        presence.start()
        for _ in range(10):
            clock.advance(10)
        self.assertEqual(self.successResultOf(presence.owner("CP1")), Owner("a", fence))
        self.successResultOf(presence.stop())
        self.assertIsNone(self.successResultOf(presence.owner("CP1")))

    def test_dead_node_loses_claims_within_the_lease(self) -> None:
        clock = Clock()
        hub = MemoryPresenceHub(clock)
        dead = MemoryPresence(node_id="a", clock=clock, lease=30.0, hub=hub)
        self.successResultOf(dead.claim("CP1"))
        clock.advance(29.9)
        self.assertEqual(self.successResultOf(dead.owner_node("CP1")), "a")
        clock.advance(0.1)
        self.assertIsNone(self.successResultOf(dead.owner_node("CP1")))

    def test_bad_node_id(self) -> None:
        for bad in ("", "a b", "-a", "a:b", "x" * 64, "ä"):
            with self.assertRaises(ValueError):
                MemoryPresence(node_id=bad, clock=Clock(), lease=1.0)
        with self.assertRaises(ValueError):
            MemoryPresence(node_id="a", clock=Clock(), lease=0)
