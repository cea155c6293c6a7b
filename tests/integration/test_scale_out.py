"""
Scale-out for real (issue 15, "What it must show"): two or three ``twistd -n
ocppd`` processes with their own ``node_id`` and ports, sharing PostgreSQL,
RabbitMQ and Redis on loopback. Chargers are plain OCPP WebSockets driven by
the test; the operator is plain HTTP to a node's REST API; the push client is
autobahn-python's WAMP session on a node's /push.
"""

from __future__ import annotations

import io
import json
import signal
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.task import deferLater
from twisted.web.client import HTTPConnectionPool

from ocppd import cli
from ocppd.ocpp.registry import CLOSE_REPLACED
from ocppd.push.topics import CHARGERS_STATUS
from ocppd.redis.address import parse_redis_url
from tests.integration.clients import TestClient, connect
from tests.integration.daemon import (
    amqp_overrides,
    cancel_spent_autobahn_timers,
    postgres_overrides,
)
from tests.integration.test_twistd import TwistdTestCase
from tests.presence.contract import eventually
from tests.presence.test_redis import delete_prefix, require_redis
from tests.proxy import start_proxy
from tests.push.client import join

KEY = "scale-out-key-0123456789"
PASSWORD = "operator-password"
#: A short lease, so a killed node's chargers move within seconds here.
LEASE = 2
#: 30 a kWh, 2 a minute, 50 a session (minor units).
TARIFF = {
    "name": "Std",
    "currency": "EUR",
    "pricePerKwh": 30,
    "pricePerMinute": 2,
    "sessionFee": 50,
}
#: Seconds a charger has to answer a command: a dead owner's command is a 504 by then.
CALL_TIMEOUT = 3
#: What issue 15 asks of a takeover: the old socket closed within seconds.
TAKEOVER_LIMIT = 5.0
#: What issue 15 asks after kill -9 of a charger's node: online and commandable elsewhere.
MOVE_LIMIT = 30.0


@dataclass
class Node:
    name: str
    process: Any
    transport: Any
    ocpp_port: int
    web_port: int

    def kill(self) -> Deferred[Any]:
        self.transport.signalProcess(signal.SIGKILL)
        return self.process.ended


class ScaleOutTestCase(TwistdTestCase):
    # A hang detector, not a speed bound: each test takes ~11 s, but two
    # twistd processes starting and stopping on a loaded 2-core machine
    # have taken over 60 s.
    timeout = 180

    def setUp(self) -> None:
        redis_url = require_redis()
        presence_prefix = "t" + uuid.uuid4().hex[:10]
        # Before the nodes: cleanups run last-in first-out, after they stopped.
        self.addCleanup(delete_prefix, presence_prefix)
        self.shared = [
            *postgres_overrides(self),
            *amqp_overrides(self),
            "bus.retry_delays=0.05",
            "presence.backend=redis",
            f"presence.prefix={presence_prefix}",
            f"presence.lease={LEASE}",
            f"ocpp.call_timeout={CALL_TIMEOUT}",
            "billing.payment_provider=test",
            "billing.minimum_to_start=500",
        ]
        self.redis_url = redis_url
        self.nodes: list[Node] = []
        self.ctl("db", "upgrade")
        self.ctl("user", "add", "ops@example.com", "--role", "admin", stdin=PASSWORD + "\n")
        self.ctl("charger", "add", "CP-1", "--station", "Main St", stdin=KEY + "\n")
        self.ctl("tag", "add", "TAG-1")
        self.addCleanup(self.stop_nodes)
        self.http = HTTPConnectionPool(reactor, persistent=False)

    def ctl(self, *argv: str, stdin: str = "") -> str:
        """``ocppctl`` on the shared store (as an operator runs it on any node)."""
        out = io.StringIO()
        args: list[str] = []
        for setting in self.shared:
            args += ["--set", setting]
        code = cli.main([*args, *argv], stdin=io.StringIO(stdin), stdout=out)
        if code != 0:
            raise AssertionError(f"ocppctl {' '.join(argv)} exited {code}: {out.getvalue()}")
        return out.getvalue()

    @inlineCallbacks
    def start_node(self, name: str, *, redis_url: str | None = None) -> Generator[Any, Any, Node]:
        process, transport = self.twistd(
            *self.shared,
            f"presence.url={redis_url or self.redis_url}",
            f"ocppd.node_id={name}",
        )
        ready = yield self.until_ready(process)
        self.assertIsNotNone(ready, process.text)
        assert ready is not None
        node = Node(name, process, transport, int(ready.group(1)), int(ready.group(2)))
        self.nodes.append(node)
        return node

    def start_nodes(self, *names: str) -> Deferred[list[Node]]:
        """Start the nodes side by side (each start is seconds of imports and connects)."""
        return gatherResults([self.start_node(name) for name in names], consumeErrors=True)

    @inlineCallbacks
    def stop_nodes(self) -> Any:
        for node in self.nodes:
            if not node.process.ended.called:
                node.transport.signalProcess(signal.SIGTERM)
        for node in self.nodes:
            yield node.process.ended
            self.assertNotIn("Traceback", node.process.text)
        # The chargers' and push clients' sockets closed with the nodes.
        yield deferLater(reactor, 0.1, lambda: None)
        cancel_spent_autobahn_timers()

    @inlineCallbacks
    def login(self, node: Node, email: str = "ops@example.com") -> Any:
        response = yield treq.post(
            f"http://127.0.0.1:{node.web_port}/api/auth/login",
            json={"email": email, "password": PASSWORD},
            pool=self.http,
        )
        body = yield response.json()
        self.assertEqual(response.code, 200, body)
        return body["token"]

    @inlineCallbacks
    def command(
        self, node: Node, token: str, name: str, body: dict[str, Any]
    ) -> Generator[Any, Any, tuple[int, Any]]:
        """POST /api/charger/<name> on ``node``: (status, JSON body)."""
        response = yield treq.post(
            f"http://127.0.0.1:{node.web_port}/api/charger/{name}",
            json={"chargePointId": "CP-1", **body},
            headers={"Authorization": f"Bearer {token}"},
            pool=self.http,
        )
        text = yield response.text()
        return response.code, json.loads(text)

    @inlineCallbacks
    def charger(self, node: Node) -> Any:
        client = yield connect(node.ocpp_port, "CP-1", KEY)
        return client


@inlineCallbacks
def next_call(client: TestClient) -> Any:
    """The next CALL the node sent the charger (answers to the charger's own CALLs skipped)."""
    while True:
        frame = json.loads((yield client.messages.get()))
        if frame[0] == 2:
            return frame


@inlineCallbacks
def answer_next(client: TestClient, payload: dict[str, Any]) -> Any:
    """Answer the next CALL with a CALLRESULT ``payload``; the CALL."""
    frame = yield next_call(client)
    client.send(json.dumps([3, frame[1], payload]))
    return frame


@inlineCallbacks
def ask(client: TestClient, action: str, payload: dict[str, Any]) -> Any:
    """The charger's own CALL; the node's CALLRESULT payload."""
    unique_id = uuid.uuid4().hex[:12]
    client.send(json.dumps([2, unique_id, action, payload]))
    while True:
        frame = json.loads((yield client.messages.get()))
        if frame[0] in (3, 4) and frame[1] == unique_id:
            assert frame[0] == 3, frame
            return frame[2]


class RoutedCommandTests(ScaleOutTestCase):
    @inlineCallbacks
    def test_command_through_other_node(self) -> Any:
        """(a) A charger on B answers a command sent through A's REST API: 200, its answer."""
        a, b = yield self.start_nodes("node-a", "node-b")
        token = yield self.login(a)
        on_b = yield self.charger(b)
        asked = self.command(a, token, "clear-cache", {})
        call = yield answer_next(on_b, {"status": "Rejected"})
        self.assertEqual(call[2:], ["ClearCache", {}])
        status, body = yield asked
        self.assertEqual((status, body["status"]), (200, "Rejected"), body)

    @inlineCallbacks
    def test_takeover_then_command_through_old_node(self) -> Any:
        """(c) Reconnecting to A closes the socket on B within 5 s; B's command reaches A's."""
        a, b = yield self.start_nodes("node-a", "node-b")
        token = yield self.login(b)
        on_b = yield self.charger(b)
        on_a = yield self.charger(a)
        code, _ = yield on_b.closed.addTimeout(TAKEOVER_LIMIT, reactor)
        self.assertEqual(code, CLOSE_REPLACED)
        asked = self.command(b, token, "reset", {"type": "Soft"})
        call = yield answer_next(on_a, {"status": "Accepted"})
        self.assertEqual(call[2:], ["Reset", {"type": "Soft"}])
        status, body = yield asked
        self.assertEqual((status, body["status"]), (200, "Accepted"), body)

    @inlineCallbacks
    def test_kill_holder_charger_moves(self) -> Any:
        """
        (d) kill -9 of the node holding a charger: it reconnects to another
        node, charges, and is shown online and commandable there within 30 s.
        """
        a, b = yield self.start_nodes("node-a", "node-b")
        token = yield self.login(a)
        on_b = yield self.charger(b)
        yield self.wait_online(a, token, True)
        yield b.kill()
        killed = reactor.seconds()
        yield on_b.closed
        on_a = yield self.charger(a)
        started = yield ask(
            on_a,
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG-1", "meterStart": 0, "timestamp": now_iso()},
        )
        self.assertEqual(started["idTagInfo"]["status"], "Accepted", started)
        self.assertGreater(started["transactionId"], 0)
        yield self.wait_online(a, token, True)
        asked = self.command(a, token, "remote-stop", {"transactionId": started["transactionId"]})
        yield answer_next(on_a, {"status": "Accepted"})
        status, body = yield asked
        self.assertEqual((status, body["status"]), (200, "Accepted"), body)
        self.assertLess(reactor.seconds() - killed, MOVE_LIMIT)

    @inlineCallbacks
    def test_owner_dies_mid_command(self) -> Any:
        """(f) The node holding the charger dies while A waits for its answer: 504, no hang."""
        a, b = yield self.start_nodes("node-a", "node-b")
        token = yield self.login(a)
        on_b = yield self.charger(b)
        asked_at = reactor.seconds()
        asked = self.command(a, token, "reset", {"type": "Hard"})
        yield next_call(on_b)  # on B, never answered
        yield b.kill()
        status, body = yield asked
        self.assertEqual((status, body["error"]["code"]), (504, "timeout"), body)
        self.assertLess(reactor.seconds() - asked_at, CALL_TIMEOUT + 5)

    @inlineCallbacks
    def wait_online(self, node: Node, token: str, online: bool) -> Any:
        @inlineCallbacks
        def shown() -> Any:
            response = yield treq.get(
                f"http://127.0.0.1:{node.web_port}/api/chargers/CP-1",
                headers={"Authorization": f"Bearer {token}"},
                pool=self.http,
            )
            body = yield response.json()
            return body.get("online") == online

        yield eventually(shown, MOVE_LIMIT)


class PushAcrossNodesTests(ScaleOutTestCase):
    @inlineCallbacks
    def test_push_client_sees_other_nodes_charger(self) -> Any:
        """(b) A push client on A sees the events of a charger on B."""
        a, b = yield self.start_nodes("node-a", "node-b")
        token = yield self.login(a)
        client = yield join(a.web_port, token)
        self.addCleanup(lambda: client.leave() if client.is_attached() else None)
        events = yield client.listen(CHARGERS_STATUS)
        on_b = yield self.charger(b)
        status = {"connectorId": 1, "status": "Preparing", "errorCode": "NoError"}
        yield ask(on_b, "StatusNotification", status)
        while True:
            event = yield events.get()
            if event["type"] == "connector.status":
                break
        self.assertEqual(
            {k: event["data"][k] for k in ("chargePointId", "connectorId", "status")},
            {"chargePointId": "CP-1", "connectorId": 1, "status": "Preparing"},
        )


class RedisOutageTests(ScaleOutTestCase):
    @inlineCallbacks
    def test_redis_down_mid_run(self) -> Any:
        """
        (f) Redis unreachable mid-run (a proxy cut, the shared Redis untouched):
        commands answer 503 with a JSON body, no node crashes, and commands
        reach the charger again by themselves once Redis is back.
        """
        address = parse_redis_url(self.redis_url)
        proxy = yield start_proxy(self, address.host, address.port)
        through_proxy = f"redis://127.0.0.1:{proxy.local_port}/{address.db}"
        a, b = yield gatherResults(
            [self.start_node(name, redis_url=through_proxy) for name in ("node-a", "node-b")],
            consumeErrors=True,
        )
        token = yield self.login(a)
        charger = AnsweringCharger(self, b)
        yield charger.connect()
        status, body = yield self.command(a, token, "clear-cache", {})
        self.assertEqual((status, body["status"]), (200, "Accepted"), body)

        yield proxy.down()
        status, body = yield self.command(a, token, "clear-cache", {})
        self.assertEqual((status, body["error"]["code"]), (503, "unavailable"), body)
        status, body = yield self.command(b, token, "clear-cache", {})
        self.assertIn(status, (200, 503), body)  # B may still answer for its own charger

        yield proxy.up()
        back = reactor.seconds()

        @inlineCallbacks
        def commandable() -> Any:
            yield charger.connected()
            status, _ = yield self.command(a, token, "clear-cache", {})
            return status == 200

        yield eventually(commandable, 20)
        self.recovered_in = reactor.seconds() - back
        for node in (a, b):
            self.assertFalse(node.process.ended.called, node.process.text)


class FundsGuardAcrossNodesTests(ScaleOutTestCase):
    @inlineCallbacks
    def test_wallet_runs_out_on_other_node(self) -> Any:
        """
        (e) A customer starts through A's API on a charger held by B; when the
        running cost reaches their funds, the funds guard's stop reaches the
        charger on B (charging.stop.requested, then the funds_stop consumer
        routes RemoteStopTransaction to the owning node).
        """
        self.ctl("user", "add", "jo@example.com", "--role", "customer", stdin=PASSWORD + "\n")
        a, b = yield self.start_nodes("node-a", "node-b")
        admin = yield self.login(a)
        tariff = yield self.api(a, admin, "POST", "/api/cms/tariffs", TARIFF, expect=201)
        yield self.api(a, admin, "PUT", "/api/cms/points/CP-1", {"tariffId": tariff["id"]})
        customer = yield self.login(a, "jo@example.com")
        me = yield self.api(a, customer, "GET", "/api/auth/me")
        id_tag = me["user"]["idTag"]
        yield self.api(a, customer, "POST", "/api/user/wallet/top-up", {"amount": 600}, 201)

        on_b = yield self.charger(b)
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        yield ask(on_b, "BootNotification", boot)
        available = {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
        yield ask(on_b, "StatusNotification", available)
        start = {"chargePointId": "CP-1", "connectorId": 1}

        # The connector's Available reaches the store through the bus first.
        @inlineCallbacks
        def available_on_a() -> Any:
            charger = yield self.api(a, customer, "GET", "/api/chargers/CP-1")
            return charger["available"]

        yield eventually(available_on_a, 15)
        asked = self.api(a, customer, "POST", "/api/user/charging/start", start, 202)
        call = yield next_call(on_b)
        self.assertEqual(call[2:], ["RemoteStartTransaction", {"connectorId": 1, "idTag": id_tag}])
        on_b.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        yield asked
        tx = yield ask(
            on_b,
            "StartTransaction",
            {"connectorId": 1, "idTag": id_tag, "meterStart": 1000, "timestamp": now_iso()},
        )
        self.assertEqual(tx["idTagInfo"]["status"], "Accepted", tx)
        # 29 kWh at 30 a kWh: 870, past the 600 held.
        yield ask(on_b, "MeterValues", meter(tx["transactionId"], now_iso(), 30000))
        call = yield next_call(on_b).addTimeout(15, reactor)
        self.assertEqual(
            call[2:], ["RemoteStopTransaction", {"transactionId": tx["transactionId"]}]
        )
        on_b.send(json.dumps([3, call[1], {"status": "Accepted"}]))

    @inlineCallbacks
    def api(
        self,
        node: Node,
        token: str,
        method: str,
        path: str,
        body: Any = None,
        expect: int | None = 200,
    ) -> Any:
        """A REST call; its JSON body (with ``expect=None``: (status, body))."""
        response = yield treq.request(
            method,
            f"http://127.0.0.1:{node.web_port}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            pool=self.http,
        )
        answer = json.loads((yield response.text()))
        if expect is None:
            return response.code, answer
        self.assertEqual(response.code, expect, answer)
        return answer


def meter(tx: int, at: str, wh: int) -> dict[str, Any]:
    sampled = [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
    return {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [{"timestamp": at, "sampledValue": sampled}],
    }


class AnsweringCharger:
    """CP-1 on a node, answering every command Accepted; reconnects when asked."""

    def __init__(self, testcase: ScaleOutTestCase, node: Node) -> None:
        self.testcase, self.node = testcase, node
        self.client: TestClient | None = None

    @inlineCallbacks
    def connect(self) -> Any:
        self.client = yield self.testcase.charger(self.node)
        self.answer(self.client)

    def answer(self, client: TestClient) -> None:
        def answered(_: Any) -> None:
            if not client.closed.called:
                self.answer(client)

        answer_next(client, {"status": "Accepted"}).addCallbacks(answered, lambda _: None)

    def connected(self) -> Deferred[Any]:
        """Connected again if the node closed the socket meanwhile."""
        if self.client is not None and not self.client.closed.called:
            return succeed(None)
        return self.connect()


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
