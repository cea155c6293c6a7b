"""
The status codes of charger commands when the charger is on another node:
a whole node's API on a ``Clock`` (``tests/api/inline.py``), requests through
``StubTreq``, the charger on "node-b" behind the in-process transport.
"""

from __future__ import annotations

import json
from typing import Any, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery
from ocppd.bus.topology import FUNDS_STOP_QUEUE
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.routing.executor import CommandExecutor
from ocppd.routing.local import LocalCommandTransport
from ocppd.store import chargers, tags, transactions
from tests.api.inline import InlineNode
from tests.routing.fakes import FakeConnection

RESET = {"chargePointId": "CP1", "type": "Soft"}
TIMEOUT = 30.0  # [ocpp] call_timeout's default


class TwoNodeCase(SynchronousTestCase):
    """Node A (the inline node) and node B, which holds CP1's socket."""

    def setUp(self) -> None:
        self.inline = InlineNode(self)
        node = self.inline.node
        admin = self.inline.add_user("ops@example.com", "a long password", "admin")
        self.token = self.inline.token(admin)
        node.database.run_sync(chargers.add_charge_point, "CP1", None, now=self.inline.now())
        # Node B shares node A's in-process transport and holds CP1's socket.
        self.registry_b = ConnectionRegistry()
        self.charger = FakeConnection("CP1", self.inline.clock, node.schemas, TIMEOUT)
        self.registry_b.register(cast(Any, self.charger))
        transport = cast(LocalCommandTransport, node.command_transport)
        executor = CommandExecutor(self.registry_b, max_timeout=TIMEOUT)
        self.serving_b = self.successResultOf(transport.serve("node-b", executor.handle))
        self.owner: Any = "node-b"
        node.router._owner_of = lambda charge_point_id: (
            self.owner if not isinstance(self.owner, str | None) else succeed(self.owner)
        )

    def serve_b(self, handler: Any) -> None:
        """Node B answers with ``handler`` instead of its executor."""
        self.serving_b.stop()
        transport = cast(LocalCommandTransport, self.inline.node.command_transport)
        self.serving_b = self.successResultOf(transport.serve("node-b", handler))

    def send(self, body: dict[str, Any]) -> Any:
        """POST the command; the Deferred of (status, body), once pumped."""
        headers = {
            "Content-Type": ["application/json"],
            "Authorization": [f"Bearer {self.token}"],
        }
        results: list[Any] = []
        d = self.inline.treq.request(
            "POST",
            "http://ocppd.test/api/charger/reset",
            headers=headers,
            data=json.dumps(body).encode(),
        )
        d.addCallback(lambda response: response.content().addCallback(lambda c: (response, c)))
        d.addBoth(results.append)
        self.pump()
        return results

    def pump(self, seconds: float = 0.0) -> None:
        self.inline.clock.advance(seconds)
        for _ in range(10):
            self.inline.clock.advance(0)
            self.inline.treq.flush()

    def outcome(self, results: list[Any]) -> tuple[int, Any]:
        self.assertEqual(len(results), 1, "no answer")
        response, content = results[0]
        return response.code, json.loads(content)


class RoutedCommandStatusTests(TwoNodeCase):
    def test_answer_through_the_owner(self) -> None:
        """200 with the charger's answer, the CALL sent on node B's socket, audited on A."""
        results = self.send(RESET)
        self.assertEqual(
            [(c.action, c.payload) for c in self.charger.sent], [("Reset", {"type": "Soft"})]
        )
        self.assertEqual(results, [])
        self.charger.answer({"status": "Accepted"})
        self.pump()
        status, body = self.outcome(results)
        self.assertEqual((status, body["status"]), (200, "Accepted"))
        # command.reset.requested and .answered, published by this node.
        self.assertEqual(self.inline.node.bus.queue_length("audit"), 2)

    def test_not_connected_anywhere(self) -> None:
        """No owner: 409 not_connected, nothing sent."""
        self.owner = None
        status, body = self.outcome(self.send(RESET))
        self.assertEqual((status, body["error"]["code"]), (409, "not_connected"))
        self.assertEqual(self.charger.sent, [])

    def test_owner_node_gone(self) -> None:
        """Presence names a node that takes no commands: 409 at once, not a wait."""
        self.owner = "node-gone"
        status, body = self.outcome(self.send(RESET))
        self.assertEqual((status, body["error"]["code"]), (409, "not_connected"))

    def test_call_error(self) -> None:
        """The charger's CALLERROR on node B: 502 with its code."""
        results = self.send(RESET)
        self.charger.refuse("NotSupported", "no resets here")
        self.pump()
        status, body = self.outcome(results)
        self.assertEqual((status, body["error"]["code"]), (502, "NotSupported"))

    def test_answer_outside_the_schema(self) -> None:
        """An answer outside the response schema: 502, as for a local charger."""
        results = self.send(RESET)
        self.charger.answer({"status": "Maybe"})
        self.pump()
        status, _ = self.outcome(results)
        self.assertEqual(status, 502)

    def test_charger_does_not_answer(self) -> None:
        """The charger stays silent: 504 after call_timeout, reported by node B."""
        results = self.send(RESET)
        self.pump(TIMEOUT - 0.1)
        self.assertEqual(results, [])
        self.pump(0.2)
        status, body = self.outcome(results)
        self.assertEqual((status, body["error"]["code"]), (504, "timeout"))

    def test_owner_dies_mid_command(self) -> None:
        """Node B takes the command and dies before replying: 504 at the deadline, no hang."""
        taken: list[bytes] = []

        def dies(body: bytes) -> Deferred[bytes]:
            taken.append(body)
            return Deferred()  # the reply that never comes

        self.serve_b(dies)
        results = self.send(RESET)
        self.assertEqual(len(taken), 1)
        self.pump(TIMEOUT + 1.9)  # the reply has up to 2 s to come back
        self.assertEqual(results, [])
        self.pump(0.2)
        status, body = self.outcome(results)
        self.assertEqual((status, body["error"]["code"]), (504, "timeout"))

    def test_charger_moved_meanwhile(self) -> None:
        """B no longer holds it when the command arrives, A does now: sent again, to A."""
        node = self.inline.node
        self.registry_b.unregister(cast(Any, self.charger))
        here = FakeConnection("CP1", self.inline.clock, node.schemas, TIMEOUT)
        node.registry.register(cast(Any, here))
        owners = ["node-b", "inline"]
        node.router._owner_of = lambda charge_point_id: succeed(owners.pop(0))
        results = self.send(RESET)
        self.assertEqual([c.action for c in here.sent], ["Reset"])
        here.answer({"status": "Accepted"})
        self.pump()
        self.assertEqual(self.outcome(results)[0], 200)

    def test_lookup_unavailable(self) -> None:
        """Presence unreachable: 503 with a JSON body, nothing sent."""
        self.owner = fail(ConnectionRefusedError("presence is down"))
        status, body = self.outcome(self.send(RESET))
        self.assertEqual((status, body["error"]["code"]), (503, "unavailable"))
        self.assertEqual(self.charger.sent, [])

    def test_malformed_reply(self) -> None:
        """A reply that is not one of ours: 502 bad_gateway."""
        self.serve_b(lambda body: succeed(b'{"v": 1, "outcome": "answer", "payload": [1]}'))
        status, body = self.outcome(self.send(RESET))
        self.assertEqual((status, body["error"]["code"]), (502, "bad_gateway"))


class RoutedFundsStopTests(TwoNodeCase):
    """The funds guard's stop reaches the charger on node B, and retries while it is away."""

    def setUp(self) -> None:
        super().setUp()
        run, now = self.inline.node.database.run_sync, self.inline.now()
        self.customer = self.inline.add_user("jo@example.com", "another password", "customer")
        run(tags.add_id_tag, "TAG1", user_id=self.customer, now=now)
        self.session = run(
            transactions.allocate_transaction,
            charge_point_id="CP1",
            connector_id=1,
            id_tag="TAG1",
            id_tag_status="Accepted",
            meter_start_wh=0,
            started_at=now,
            user_id=self.customer,
            now=now,
        ).transaction_id

    def funds_stop(self) -> Deferred[None]:
        payload = {
            "userId": self.customer,
            "sessionId": self.session,
            "chargePointId": "CP1",
            "transactionId": self.session,
            "reason": "funds",
        }
        envelope = Envelope.create("charging.stop.requested", payload, node="node-c")
        delivery = Delivery(envelope, envelope.type, FUNDS_STOP_QUEUE, 1)
        return self.inline.node.funds_stop.handle(delivery)

    def test_funds_stop_routed(self) -> None:
        """RemoteStopTransaction goes to B's socket; audited on this node as the customer's."""
        done = self.funds_stop()
        self.pump()
        calls = [(c.action, c.payload) for c in self.charger.sent]
        self.assertEqual(calls, [("RemoteStopTransaction", {"transactionId": self.session})])
        self.charger.answer({"status": "Accepted"})
        self.pump()
        self.successResultOf(done)
        self.assertEqual(self.inline.node.bus.queue_length("audit"), 2)

    def test_funds_stop_retried_while_unreachable(self) -> None:
        """The charger is between nodes: the stop is tried again after 5 s and then reaches it."""
        self.owner = None
        done = self.funds_stop()
        self.pump()
        self.assertEqual(self.charger.sent, [])
        self.owner = "node-b"
        self.pump(5)
        self.assertEqual([c.action for c in self.charger.sent], ["RemoteStopTransaction"])
        self.charger.answer({"status": "Accepted"})
        self.pump()
        self.successResultOf(done)
