"""
The push channel end to end: a whole ocppd node on 127.0.0.1, standard
autobahn-python sessions on real sockets, events caused by a charger on the
OCPP port, by the REST API, or published on the bus.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import treq
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from ocppd.bus.envelope import Envelope
from ocppd.store import users
from tests.api.test_api import ADMIN, CUSTOMER
from tests.integration.clients import connect
from tests.integration.daemon import amqp_overrides, poll, start_daemon
from tests.passwords import password_hash
from tests.push.client import PushClient, Refused, join, raw

OTHER = ("al@example.com", "yet another long password")


def call(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, unique_id, action, payload])


class PushTestCase(TestCase):
    timeout = 60
    overrides: tuple[str, ...] = ()

    def daemon_overrides(self) -> list[str]:
        return list(self.overrides)

    @inlineCallbacks
    def setUp(self) -> Any:
        self.daemon = yield start_daemon(self, *self.daemon_overrides())
        # Straight into the store with cheap real Argon2 hashes (tests.passwords):
        # each sign-in below still verifies one; `ocppctl user add` is tested
        # in tests/test_cli.py.
        for email, password, role in (
            (*ADMIN, "admin"),
            (*CUSTOMER, "customer"),
            (*OTHER, "customer"),
        ):
            yield self.daemon.query(
                users.add_user, email, password_hash(password), role, now=datetime.now(UTC)
            )
        self.daemon.ocppctl("charger", "add", "CP1", stdin="key-1-0123456789ab\n")
        self.tokens: dict[str, str] = {}
        self.user_ids: dict[str, int] = {}
        for email, password in (ADMIN, CUSTOMER, OTHER):
            token, user = yield self.daemon.node.accounts.login(email, password, "127.0.0.1")
            self.tokens[email] = token
            self.user_ids[email] = user.id

    @inlineCallbacks
    def session(self, who: tuple[str, str]) -> Any:
        client = yield join(self.daemon.web_port, self.tokens[who[0]])
        self.addCleanup(self.leave, client)
        return client

    @inlineCallbacks
    def leave(self, client: PushClient) -> Any:
        if client.is_attached():
            client.leave()
        yield client.gone

    @inlineCallbacks
    def charger(self) -> Any:
        charger = yield connect(self.daemon.port, "CP1", "key-1-0123456789ab")
        self.addCleanup(lambda: charger.closed)
        self.addCleanup(charger.close)
        return charger

    @inlineCallbacks
    def api(self, method: str, path: str, body: Any, who: tuple[str, str]) -> Any:
        response = yield treq.request(
            method,
            f"http://127.0.0.1:{self.daemon.web_port}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.tokens[who[0]]}"},
            pool=HTTPConnectionPool(reactor, persistent=False),
        )
        answer = yield response.json()
        self.assertLess(response.code, 300, answer)
        return answer


class AuthenticationTests(PushTestCase):
    @inlineCallbacks
    def test_sign_out_ends_that_tokens_sessions(self) -> Any:
        """POST /api/auth/logout ends the push sessions of that token with GOODBYE; others stay."""
        signed_out = yield self.session(CUSTOMER)
        other = yield self.session(OTHER)
        yield self.api("POST", "/api/auth/logout", None, CUSTOMER)
        details = yield signed_out.left
        self.assertEqual(details.reason, "ocppd.close.signed_out")
        yield signed_out.gone
        self.assertTrue(other.is_attached())
        self.assertEqual(self.daemon.node.push.session_count, 1)

    @inlineCallbacks
    def test_ticket_login(self) -> Any:
        """The REST token as WAMP ticket: WELCOME names the user and role."""
        client = yield self.session(CUSTOMER)
        welcome = client.welcome
        user_id = self.user_ids[CUSTOMER[0]]
        self.assertEqual(
            (welcome.realm, welcome.authid, welcome.authrole, welcome.authmethod),
            ("ocppd", str(user_id), "customer", "ticket"),
        )
        self.assertEqual(
            welcome.authextra, {"userId": user_id, "email": CUSTOMER[0], "role": "customer"}
        )

    @inlineCallbacks
    def test_refusals_are_aborts(self) -> Any:
        """A bad or revoked ticket, no ticket, another realm: ABORT with WAMP's reason."""
        port = self.daemon.web_port
        cases: list[tuple[Any, dict[str, Any], str]] = [
            (join(port, "not-a-token"), {}, "wamp.error.authentication_failed"),
            (join(port, None), {}, "wamp.error.no_auth_method"),
            (join(port, self.tokens[ADMIN[0]], realm="other"), {}, "wamp.error.no_such_realm"),
        ]
        for attempt, _, reason in cases:
            failure = yield self.assertFailure(attempt, Refused)
            self.assertEqual(failure.reason, reason)
        yield self.daemon.node.accounts.logout("Bearer " + self.tokens[OTHER[0]])
        failure = yield self.assertFailure(join(port, self.tokens[OTHER[0]]), Refused)
        self.assertEqual(failure.reason, "wamp.error.authentication_failed")

    @inlineCallbacks
    def test_origin_check(self) -> Any:
        """Pages of this host may connect, pages of another site may not (403)."""
        port = self.daemon.web_port
        client = yield join(port, self.tokens[ADMIN[0]], origin=f"http://127.0.0.1:{port}")
        yield self.leave(client)
        denied = raw(port, origin="https://evil.example")
        error = yield self.assertFailure(denied, ConnectionError)
        self.assertIn("403", str(error))
        refused = join(port, self.tokens[ADMIN[0]], origin=f"http://127.0.0.1:{port + 1}")
        yield self.assertFailure(refused, Refused)
        self.assertEqual(self.daemon.node.push.session_count, 0)

    @inlineCallbacks
    def test_no_wamp_subprotocol_refused(self) -> Any:
        """A WebSocket that does not offer wamp.2.json is refused at the handshake."""
        error = yield self.assertFailure(
            raw(self.daemon.web_port, protocols=["ocpp1.6"]), ConnectionError
        )
        self.assertIn("400", str(error))


class AuthorizationTests(PushTestCase):
    @inlineCallbacks
    def assertRefused(self, client: PushClient, topic: str, error: str) -> Any:
        failure = yield self.assertFailure(client.listen(topic), ApplicationError)
        self.assertEqual(failure.error, error)

    @inlineCallbacks
    def test_customer_topics(self) -> Any:
        """A customer reads the charger states and its own topics, nobody else's."""
        client = yield self.session(CUSTOMER)
        mine, other = self.user_ids[CUSTOMER[0]], self.user_ids[OTHER[0]]
        for topic in (
            "ocppd.chargers.status",
            f"ocppd.user.{mine}.session",
            f"ocppd.user.{mine}.wallet",
        ):
            yield client.listen(topic)
        for topic in (
            f"ocppd.user.{other}.session",
            f"ocppd.user.{other}.wallet",
            "ocppd.admin.sessions",
            "ocppd.admin.meter",
            "ocppd.admin.ocpp",
            "ocppd.admin.cms",
            "ocppd.admin.revenue",
        ):
            yield self.assertRefused(client, topic, "wamp.error.not_authorized")
        yield self.assertRefused(client, "ocppd.nothing", "wamp.error.invalid_uri")
        # Still in session after the refusals.
        self.assertTrue(client.is_attached())

    @inlineCallbacks
    def test_admin_topics(self) -> Any:
        """An admin reads every admin topic, but not a customer's own topics."""
        client = yield self.session(ADMIN)
        for topic in ("sessions", "meter", "ocpp", "cms", "revenue"):
            yield client.listen(f"ocppd.admin.{topic}")
        customer = self.user_ids[CUSTOMER[0]]
        yield self.assertRefused(
            client, f"ocppd.user.{customer}.session", "wamp.error.not_authorized"
        )

    @inlineCallbacks
    def test_publish_refused(self) -> Any:
        """Browsers cannot publish: an acknowledged PUBLISH gets not_authorized."""
        client = yield self.session(ADMIN)
        failure = yield self.assertFailure(
            client.publish("ocppd.admin.cms", {"x": 1}, options=PublishOptions(acknowledge=True)),
            ApplicationError,
        )
        self.assertEqual(failure.error, "wamp.error.not_authorized")


class MetricsTests(PushTestCase):
    """The push families of ``GET /metrics`` as sessions come and go (docs/operations.md)."""

    overrides = ("metrics.listen=tcp:0:interface=127.0.0.1",)

    @inlineCallbacks
    def scrape(self) -> Any:
        from prometheus_client.parser import text_string_to_metric_families

        port = self.daemon.service.metrics.port.getHost().port
        response = yield treq.get(
            f"http://127.0.0.1:{port}/metrics", pool=HTTPConnectionPool(reactor, persistent=False)
        )
        text = yield response.text()
        return {
            s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name.startswith("ocppd_push_sessions")
        }

    @inlineCallbacks
    def test_sessions_counted(self) -> Any:
        before = yield self.scrape()
        self.assertEqual(before["ocppd_push_sessions"], 0)
        first = yield self.session(CUSTOMER)
        yield self.session(ADMIN)
        during = yield self.scrape()
        self.assertEqual(during["ocppd_push_sessions"], 2)
        self.assertEqual(during["ocppd_push_sessions_opened_total"], 2)
        yield self.leave(first)
        after = yield poll(self.scrape, until=lambda s: s["ocppd_push_sessions"] == 1)
        self.assertEqual(after["ocppd_push_sessions_opened_total"], 2)
        self.assertEqual(after["ocppd_push_sessions_cut_off_total"], 0)


class LimitTests(PushTestCase):
    overrides = ("push.max_subscriptions=2", "push.hello_timeout=1")

    @inlineCallbacks
    def test_subscription_limit(self) -> Any:
        """The third topic of a session limited to two is refused; the session lives on."""
        client = yield self.session(CUSTOMER)
        user_id = self.user_ids[CUSTOMER[0]]
        yield client.listen("ocppd.chargers.status")
        yield client.listen(f"ocppd.user.{user_id}.session")
        # The same topic again is the same subscription, not a new one.
        yield client.listen("ocppd.chargers.status")
        failure = yield self.assertFailure(
            client.listen(f"ocppd.user.{user_id}.wallet"), ApplicationError
        )
        self.assertEqual(failure.error, "ocppd.error.subscription_limit")
        self.assertTrue(client.is_attached())

    @inlineCallbacks
    def test_malformed_messages(self) -> Any:
        """Garbage, binary frames and out-of-order messages: ABORT and close 1002."""
        frames: list[tuple[bytes, bool]] = [
            (b"not json", False),
            (b'[1, "ocppd"]', False),
            (b"{}", False),
            (b'[32, 1, {}, "ocppd.chargers.status"]', False),
            (b'[1, "ocppd", {"roles": {"subscriber": {}}}]', True),
            (b"[" * 5000 + b"]" * 5000, False),
        ]
        for data, binary in frames:
            client = yield raw(self.daemon.web_port)
            client.sendMessage(data, isBinary=binary)
            abort = json.loads((yield client.factory.messages.get()))
            self.assertEqual((abort[0], abort[2]), (3, "wamp.error.protocol_violation"), data[:40])
            code, _ = yield client.factory.closed
            self.assertEqual(code, 1002)
        # The node still serves.
        client = yield self.session(CUSTOMER)
        yield client.listen("ocppd.chargers.status")

    @inlineCallbacks
    def test_hello_timeout(self) -> Any:
        """A socket that never says HELLO is aborted after hello_timeout."""
        client = yield raw(self.daemon.web_port)
        abort = json.loads((yield client.factory.messages.get()))
        self.assertEqual((abort[0], abort[2]), (3, "wamp.error.timeout"))
        code, _ = yield client.factory.closed
        self.assertEqual(code, 1000)


class EventTests(PushTestCase):
    overrides = ("billing.payment_provider=test",)

    @inlineCallbacks
    def test_charger_online_status_offline(self) -> Any:
        """A charger's connect, StatusNotification and disconnect reach every signed-in user."""
        customer = yield self.session(CUSTOMER)
        status = yield customer.listen("ocppd.chargers.status")
        admin = yield self.session(ADMIN)
        log = yield admin.listen("ocppd.admin.ocpp")
        charger = yield self.charger()
        online = yield status.get()
        self.assertEqual(online["type"], "charger.online")
        self.assertEqual(online["data"], {"chargePointId": "CP1"})
        request = {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
        charger.send(call("s1", "StatusNotification", request))
        yield charger.messages.get()
        connector = yield status.get()
        self.assertEqual(connector["type"], "connector.status")
        self.assertEqual(
            connector["data"],
            {
                "chargePointId": "CP1",
                "connectorId": 1,
                "status": "Available",
                "errorCode": "NoError",
            },
        )
        frames = [(yield log.get()), (yield log.get())]
        self.assertEqual(
            [(f["data"]["direction"], f["data"]["messageType"]) for f in frames],
            [("in", "CALL"), ("out", "CALLRESULT")],
        )
        self.assertEqual(frames[0]["data"]["payload"], request)
        self.assertEqual(
            {f["data"]["action"] for f in frames} | {f["data"]["uniqueId"] for f in frames},
            {"StatusNotification", "s1"},
        )
        charger.close()
        yield charger.closed
        offline = yield status.get()
        self.assertEqual(
            (offline["type"], offline["data"]), ("charger.offline", {"chargePointId": "CP1"})
        )

    @inlineCallbacks
    def test_cms_change(self) -> Any:
        """A station created through the CMS API appears on ocppd.admin.cms."""
        admin = yield self.session(ADMIN)
        cms = yield admin.listen("ocppd.admin.cms")
        created = yield self.api("POST", "/api/cms/stations", {"name": "Depot"}, ADMIN)
        event = yield cms.get()
        self.assertEqual(event["type"], "cms.changed")
        self.assertEqual(
            (event["data"]["kind"], event["data"]["verb"], event["data"]["id"]),
            ("station", "created", created["id"]),
        )
        self.assertEqual(event["data"]["by"]["email"], ADMIN[0])

    @inlineCallbacks
    def test_session_events(self) -> Any:
        """StartTransaction, MeterValues and StopTransaction of a customer's tag reach the
        customer's session topic and the admin topics, with live energy and power."""
        user_id = self.user_ids[CUSTOMER[0]]
        self.daemon.ocppctl("tag", "add", "TAG1", "--user", CUSTOMER[0])
        customer = yield self.session(CUSTOMER)
        mine = yield customer.listen(f"ocppd.user.{user_id}.session")
        admin = yield self.session(ADMIN)
        sessions = yield admin.listen("ocppd.admin.sessions")
        meter = yield admin.listen("ocppd.admin.meter")
        charger = yield self.charger()
        start = {
            "connectorId": 1,
            "idTag": "TAG1",
            "meterStart": 1000,
            "timestamp": "2026-11-29T10:00:00Z",
        }
        charger.send(call("t1", "StartTransaction", start))
        tx = json.loads((yield charger.messages.get()))[2]["transactionId"]
        started = yield mine.get()
        self.assertEqual(started["type"], "session.started")
        self.assertEqual(
            {k: started["data"][k] for k in ("transactionId", "chargePointId", "userId", "status")},
            {"transactionId": tx, "chargePointId": "CP1", "userId": user_id, "status": "active"},
        )
        self.assertEqual((yield sessions.get()), started)
        sample = {
            "timestamp": "2026-11-29T10:05:00Z",
            "sampledValue": [
                {"value": "1.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
            ],
        }
        meter_values = {"connectorId": 1, "transactionId": tx, "meterValue": [sample]}
        charger.send(call("m1", "MeterValues", meter_values))
        yield charger.messages.get()
        reading = yield meter.get()
        self.assertEqual(reading["type"], "meter.values")
        self.assertEqual(
            reading["data"],
            {
                "chargePointId": "CP1",
                "connectorId": 1,
                "transactionId": tx,
                "energyWh": 1500,
                "powerW": 7200,
                "sampledAt": "2026-11-29T10:05:00Z",
                "meterValue": [sample],
            },
        )
        updated = yield mine.get()
        self.assertEqual(updated["type"], "session.updated")
        self.assertEqual(updated["data"]["live"]["energyWh"], 500)
        self.assertEqual(updated["data"]["live"]["powerW"], 7200)
        self.assertEqual((yield sessions.get()), updated)
        stop = {"transactionId": tx, "meterStop": 2500, "timestamp": "2026-11-29T10:30:00Z"}
        charger.send(call("t2", "StopTransaction", stop))
        yield charger.messages.get()
        stopped = yield mine.get()
        self.assertEqual(stopped["type"], "session.stopped")
        self.assertEqual(
            (stopped["data"]["status"], stopped["data"]["energyWh"]), ("completed", 1500)
        )

    @inlineCallbacks
    def test_wallet_top_up(self) -> Any:
        """A top-up through the API reaches the customer's wallet topic only."""
        user_id = self.user_ids[CUSTOMER[0]]
        customer = yield self.session(CUSTOMER)
        wallet = yield customer.listen(f"ocppd.user.{user_id}.wallet")
        yield self.api("POST", "/api/user/wallet/top-up", {"amount": 2000}, CUSTOMER)
        event = yield wallet.get()
        self.assertEqual(event["type"], "wallet.transaction")
        self.assertEqual(event["data"]["balance"], 2000)
        self.assertEqual(
            (event["data"]["transaction"]["kind"], event["data"]["transaction"]["amount"]),
            ("top_up", 2000),
        )

    @inlineCallbacks
    def test_shutdown_says_goodbye(self) -> Any:
        """Closing the channel (as the daemon's stop does) ends sessions with GOODBYE."""
        client = yield self.session(CUSTOMER)
        yield client.listen("ocppd.chargers.status")
        yield self.daemon.node.push.close_all()
        details = yield client.left
        self.assertEqual(details.reason, "wamp.close.system_shutdown")
        yield client.gone
        self.assertEqual(self.daemon.node.push.session_count, 0)


class RabbitMqEventTests(PushTestCase):
    def daemon_overrides(self) -> list[str]:
        return amqp_overrides(self)

    @inlineCallbacks
    def test_charger_online_over_rabbitmq(self) -> Any:
        """charger.connected travels through RabbitMQ and this node's notifier queue."""
        client = yield self.session(CUSTOMER)
        status = yield client.listen("ocppd.chargers.status")
        # On RabbitMQ the notifier consumes once someone subscribes.
        yield self.daemon.node.notifier.settled()
        yield self.charger()
        online = yield status.get()
        self.assertEqual(
            (online["type"], online["data"]), ("charger.online", {"chargePointId": "CP1"})
        )

    @inlineCallbacks
    def test_session_update_published_on_the_bus(self) -> Any:
        """A session.updated envelope on RabbitMQ reaches the owner's topic."""
        user_id = self.user_ids[CUSTOMER[0]]
        client = yield self.session(CUSTOMER)
        mine = yield client.listen(f"ocppd.user.{user_id}.session")
        yield self.daemon.node.notifier.settled()
        session = {"id": 7, "userId": user_id, "chargePointId": "CP9", "status": "active"}
        live = {
            "energyWh": 42,
            "powerW": None,
            "cost": 3,
            "currency": "EUR",
            "at": "2026-11-29T10:00:00.000Z",
        }
        envelope = Envelope.create(
            "session.updated", {"session": session, "live": live}, node="elsewhere"
        )
        yield self.daemon.node.bus.publish("session.updated", envelope)
        event = yield mine.get()
        self.assertEqual(
            event,
            {"type": "session.updated", "at": live["at"], "data": {**session, "live": live}},
        )


class SlowSubscriberTests(PushTestCase):
    overrides = ("push.max_buffer=262144",)

    @inlineCallbacks
    def test_stalled_subscriber_cut_off(self) -> Any:
        """
        A subscriber that stops reading is disconnected once max_buffer bytes
        wait for it; a reading subscriber of the same topic gets every event.
        """
        factory = self.daemon.node.push.factory
        reader = yield self.session(ADMIN)
        received = yield reader.listen("ocppd.admin.ocpp")
        stalled = yield raw(self.daemon.web_port)
        token = self.tokens[ADMIN[0]]
        answers = []
        for frame in (
            [1, "ocppd", {"roles": {"subscriber": {}}, "authmethods": ["ticket"]}],
            [5, token, {}],
            [32, 1, {}, "ocppd.admin.ocpp"],
        ):
            stalled.sendMessage(json.dumps(frame).encode())
            answers.append(json.loads((yield stalled.factory.messages.get())))
        self.assertEqual([a[0] for a in answers], [4, 2, 33])
        stalled.transport.pauseProducing()  # never reads again

        blob = "x" * 60_000
        published = 0
        while factory.cut_off == 0:
            # Each envelope is one ocpp.message EVENT of about 60 kB.
            envelope = Envelope.create(
                "ocpp.out.DataTransfer",
                {"uniqueId": str(published), "action": "DataTransfer", "request": {"data": blob}},
                node="test-node",
                charge_point_id="CP1",
            )
            yield self.daemon.node.bus.publish("ocpp.out.DataTransfer", envelope)
            published += 1
            self.assertLess(published, 4000, "the stalled subscriber was never cut off")
            if published % 10 == 0:
                yield deferLater(reactor, 0.001, lambda: None)
        stalled.transport.resumeProducing()
        yield stalled.factory.closed
        for n in range(published):
            event = yield received.get()
            self.assertEqual(event["data"]["uniqueId"], str(n))
        self.assertEqual(self.daemon.node.push.session_count, 1)
