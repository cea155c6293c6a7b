"""
The command transport contract on RabbitMQ (``tests.services.RABBITMQ_URL``;
skipped without it, failing on CI), and what only RabbitMQ has.

Each test uses its own prefix and node ids; command queues delete themselves
seconds after their last consumer (``queue_expiry``), reply queues with their
connection, so the broker is left clean.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from ocppd.routing.amqp import AmqpCommandTransport
from ocppd.routing.errors import NodeUnreachable, RoutingUnavailable
from ocppd.routing.interface import ICommandTransport
from tests.bus.contract import unique_prefix
from tests.bus.test_amqp import require_rabbitmq
from tests.routing.contract import TransportContractTests, echo, node_id
from tests.services import RABBITMQ_URL


class AmqpTransportMixin:
    @inlineCallbacks
    def start_transport(self, prefix: str, name: str) -> Any:
        require_rabbitmq()
        case = self
        assert isinstance(case, TestCase)
        transport = AmqpCommandTransport(
            url=RABBITMQ_URL,
            reactor=reactor,
            prefix=prefix,
            connection_name=f"ocppd-test-{prefix}-{name}",
            queue_expiry=5.0,
        )
        transport.startService()
        case.addCleanup(lambda: transport.stopService() if transport.running else None)
        yield transport.when_connected(failAfterFailures=3)
        return transport


class AmqpTransportContractTests(AmqpTransportMixin, TransportContractTests, TestCase):
    @inlineCallbacks
    def make_pair(self) -> Any:
        prefix = unique_prefix()
        caller = yield self.start_transport(prefix, "caller")
        owner = yield self.start_transport(prefix, "owner")
        verifyObject(ICommandTransport, caller)
        return caller, owner

    def kill_owner(self, owner: Any) -> Deferred[None]:
        # Its TCP connection drops without an AMQP goodbye, as on kill -9.
        owner._protocol.transport.abortConnection()
        return owner.stopService()


class AmqpTransportTests(AmqpTransportMixin, TestCase):
    @inlineCallbacks
    def test_disconnected_refuses_at_once(self) -> Any:
        """Without a broker connection a request fails at once: RoutingUnavailable (503)."""
        transport = yield self.start_transport(unique_prefix(), "t")
        yield transport.stopService()
        yield self.assertFailure(transport.request(node_id(), b"{}", 60), RoutingUnavailable)

    @inlineCallbacks
    def test_forged_reply_address_ignored(self) -> Any:
        """A request whose reply_to is not a server-named queue is never run."""
        import pika

        prefix = unique_prefix()
        owner = yield self.start_transport(prefix, "owner")
        node = node_id()
        taken: list[bytes] = []

        def handler(body: bytes) -> Deferred[bytes]:
            taken.append(body)
            return echo(body)

        serving = yield owner.serve(node, handler)
        self.addCleanup(serving.stop)
        caller = yield self.start_transport(prefix, "caller")
        yield caller._channel.basic_publish(
            exchange="",
            routing_key=f"{prefix}.commands.{node}",
            body=b"forged",
            properties=pika.BasicProperties(reply_to=f"{prefix}.processor", correlation_id="x"),
        )
        reply = yield caller.request(node, b"real", 5)
        self.assertEqual((reply, taken), (b"re:real", [b"real"]))

    @inlineCallbacks
    def test_returned_request_not_logged(self) -> Any:
        """A request for a gone node is not quoted in the log (it may hold a key)."""
        import logging

        records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = records.append  # type: ignore[method-assign]
        logger = logging.getLogger("pika.adapters.twisted_connection")
        logger.addHandler(handler)
        self.addCleanup(logger.removeHandler, handler)
        transport = yield self.start_transport(unique_prefix(), "t")
        yield self.assertFailure(
            transport.request(node_id(), b'{"secret": "key-123"}', 5), NodeUnreachable
        )
        self.assertEqual([r for r in records if "key-123" in r.getMessage()], [])
