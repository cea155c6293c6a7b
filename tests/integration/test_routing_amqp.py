"""
Two nodes' command routers on the real RabbitMQ: node A routes a command to
the charger whose (fake) connection node B holds, and gets its answer; node
B dying mid-command is a timeout on A, not a hang.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from ocppd.ocpp.commands import CallErrorReceived, ChargerNotConnected, CommandTimeout
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.routing.executor import CommandExecutor
from ocppd.routing.router import CommandRouter
from tests.bus.contract import unique_prefix
from tests.routing.contract import node_id
from tests.routing.fakes import FakeConnection
from tests.routing.test_amqp import AmqpTransportMixin

SCHEMAS = SchemaRegistry.load()


class TwoNodeRoutingTests(AmqpTransportMixin, TestCase):
    timeout = 30

    @inlineCallbacks
    def setUp(self) -> Any:
        prefix = unique_prefix()
        self.owners: dict[str, str] = {}
        self.a, self.b = node_id(), node_id()
        self.routers: dict[str, CommandRouter] = {}
        self.registries: dict[str, ConnectionRegistry] = {}
        self.transports: dict[str, Any] = {}
        for node in (self.a, self.b):
            transport = yield self.start_transport(prefix, node)
            registry = ConnectionRegistry()
            serving = yield transport.serve(node, CommandExecutor(registry, max_timeout=30).handle)
            self.addCleanup(serving.stop)
            self.transports[node], self.registries[node] = transport, registry
            self.routers[node] = CommandRouter(
                node_id=node,
                registry=registry,
                owner_of=lambda cp: succeed(self.owners.get(cp)),
                transport=transport,
                schemas=SCHEMAS,
                clock=reactor,
                reply_grace=0.5,
            )

    def connect(self, node: str, timeout: float = 10) -> FakeConnection:
        charger = FakeConnection("CP-9", reactor, SCHEMAS, timeout)
        self.registries[node].register(cast(Any, charger))
        self.owners["CP-9"] = node
        return charger

    @inlineCallbacks
    def wait_for_call(self, charger: FakeConnection) -> Any:
        while not charger.sent:
            yield deferLater(reactor, 0.01, lambda: None)

    @inlineCallbacks
    def test_routed_answer(self) -> Any:
        """A's command reaches the charger on B; B's charger's answer comes back to A."""
        charger = self.connect(self.b)
        asked = self.routers[self.a].call("CP-9", "Reset", {"type": "Hard"}, timeout=10)
        yield self.wait_for_call(charger)
        self.assertEqual(
            (charger.sent[0].action, charger.sent[0].payload), ("Reset", {"type": "Hard"})
        )
        charger.answer({"status": "Accepted"})
        answer = yield asked
        self.assertEqual(answer, {"status": "Accepted"})

    @inlineCallbacks
    def test_routed_call_error(self) -> Any:
        """A CALLERROR on B arrives on A as the same error (502)."""
        charger = self.connect(self.b)
        asked = self.routers[self.a].call("CP-9", "Reset", {"type": "Hard"}, timeout=10)
        yield self.wait_for_call(charger)
        charger.refuse("NotSupported", "not today")
        error = yield self.assertFailure(asked, CallErrorReceived)
        self.assertEqual((error.code, error.description), ("NotSupported", "not today"))

    @inlineCallbacks
    def test_routed_charger_timeout(self) -> Any:
        """The charger on B never answers: B's timeout reaches A as a CommandTimeout (504)."""
        self.connect(self.b)
        started = reactor.seconds()
        asked = self.routers[self.a].call("CP-9", "Reset", {"type": "Hard"}, timeout=0.5)
        yield self.assertFailure(asked, CommandTimeout)
        self.assertLess(reactor.seconds() - started, 5)

    @inlineCallbacks
    def test_owner_dies_mid_command(self) -> Any:
        """B dies holding A's command: A gets CommandTimeout (504) by its deadline."""
        charger = self.connect(self.b, timeout=30)
        asked = self.routers[self.a].call("CP-9", "Reset", {"type": "Hard"}, timeout=1.0)
        yield self.wait_for_call(charger)
        owner = self.transports[self.b]
        owner._protocol.transport.abortConnection()  # as kill -9: no AMQP goodbye
        yield owner.stopService()
        yield self.assertFailure(asked, CommandTimeout)

    @inlineCallbacks
    def test_gone_owner_and_nobody(self) -> Any:
        """Presence naming a node that is gone, or nobody: ChargerNotConnected (409)."""
        self.owners["CP-9"] = node_id()
        yield self.assertFailure(
            self.routers[self.a].call("CP-9", "Reset", {"type": "Hard"}, timeout=5),
            ChargerNotConnected,
        )
        del self.owners["CP-9"]
        yield self.assertFailure(
            self.routers[self.a].call("CP-9", "Reset", {"type": "Hard"}, timeout=5),
            ChargerNotConnected,
        )

    @inlineCallbacks
    def test_local_charger_not_routed(self) -> Any:
        """A charger on this node is called through the local registry."""
        charger = self.connect(self.a)
        asked: Deferred[Any] = self.routers[self.a].call(
            "CP-9", "Reset", {"type": "Soft"}, timeout=5
        )
        self.assertEqual(len(charger.sent), 1)  # synchronously: no broker on the way
        charger.answer({"status": "Rejected"})
        self.assertEqual((yield asked), {"status": "Rejected"})
