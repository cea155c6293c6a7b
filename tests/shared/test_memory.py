"""The in-process shared state, ``ocppd.shared.memory``, against the contract."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd.shared.interface import ISharedState
from ocppd.shared.memory import MemorySharedState
from tests.shared.contract import SharedStateContractTests


class MemorySharedStateContractTests(SharedStateContractTests, TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.state = MemorySharedState(self.clock)

    def make_nodes(self, count: int) -> Deferred[list[ISharedState]]:
        # One process: every "node" is the same store.
        return succeed([self.state] * count)
