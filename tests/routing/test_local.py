"""The command transport contract on the in-process transport."""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from ocppd.routing.interface import ICommandTransport
from ocppd.routing.local import LocalCommandTransport
from tests.routing.contract import TransportContractTests


class LocalTransportContractTests(TransportContractTests, TestCase):
    def make_pair(self) -> Deferred[tuple[Any, Any]]:
        transport = LocalCommandTransport(reactor)
        verifyObject(ICommandTransport, transport)
        return succeed((transport, transport))

    def kill_owner(self, owner: Any) -> Deferred[None]:
        for node in list(owner._handlers):
            owner._handlers[node][1].stop()
        return succeed(None)
