"""
The REST API over real HTTP on 127.0.0.1 (treq), against a whole ocppd node
with a live charger connection where commands need one.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.trial.unittest import TestCase
from twisted.web.client import HTTPConnectionPool

from ocppd.store import audit, reservations, users
from tests.integration.clients import connect
from tests.integration.daemon import start_daemon
from tests.passwords import password_hash

ADMIN = ("ops@example.com", "correct horse battery")
CUSTOMER = ("jo@example.com", "another long password")


class ApiTestCase(TestCase):
    # A guard against a hang, not a deadline: on a loaded CI machine a
    # PostgreSQL-backed setUp that seeds hundreds of rows took over 25 s.
    timeout = 120
    overrides: tuple[str, ...] = ()

    def daemon_overrides(self) -> list[str]:
        """Settings of the node under test (subclasses move it to other backends)."""
        return list(self.overrides)

    @inlineCallbacks
    def setUp(self) -> Any:
        self.daemon = yield start_daemon(self, *self.daemon_overrides())
        yield self.add_user(ADMIN, "admin")
        yield self.add_user(CUSTOMER, "customer")
        self.daemon.ocppctl("charger", "add", "CP1", stdin="key-1-0123456789ab\n")

    def add_user(self, who: tuple[str, str], role: str) -> Deferred[Any]:
        """
        Add a user straight into the node's store, with a real Argon2id hash at
        the cheapest cost (tests.passwords): Argon2 is slow on purpose (full-cost
        hashes and checks were a large part of this package's time), and
        ``ocppctl user add`` is tested in tests/test_cli.py. Signing in still
        verifies the hash.
        """
        email, password = who
        return self.daemon.query(
            users.add_user, email, password_hash(password), role, now=datetime.now(UTC)
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.daemon.web_port}{path}"

    @inlineCallbacks
    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        all_headers = {**(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        # A pool of its own, not persistent: no socket outlives the test.
        kwargs: dict[str, Any] = {
            "headers": all_headers,
            "pool": HTTPConnectionPool(reactor, persistent=False),
        }
        if body is not None:
            kwargs["json"] = body
        if data is not None:
            kwargs["data"] = data
        response = yield treq.request(method, self.url(path), **kwargs)
        text = yield response.text("utf-8")
        content_type = response.headers.getRawHeaders("content-type")
        if response.code == 200 and content_type == ["text/csv; charset=utf-8"]:
            # The CMS's exports (tests.api.test_people reads them).
            return response.code, text, response
        self.assertEqual(content_type, ["application/json"])
        return response.code, json.loads(text), response

    @inlineCallbacks
    def login(self, who: tuple[str, str]) -> Any:
        code, body, _ = yield self.request(
            "POST", "/api/auth/login", {"email": who[0], "password": who[1]}
        )
        self.assertEqual(code, 200, body)
        return body["token"]

    def assertError(self, result: tuple[int, Any, Any], status: int, code: str) -> None:
        self.assertEqual((result[0], result[1]["error"]["code"]), (status, code), result[1])
        self.assertIsInstance(result[1]["error"]["message"], str)


class AccountTests(ApiTestCase):
    @inlineCallbacks
    def test_login_me_logout(self) -> Any:
        """A token from login reads /api/auth/me until logout revokes it."""
        code, body, _ = yield self.request(
            "POST", "/api/auth/login", {"email": "OPS@example.com", "password": ADMIN[1]}
        )
        self.assertEqual(code, 200)
        self.assertEqual(body["user"], {"id": 1, "email": ADMIN[0], "role": "admin"})
        token = body["token"]
        self.assertGreaterEqual(len(token), 40)
        code, body, _ = yield self.request("GET", "/api/auth/me", token=token)
        self.assertEqual((code, body["user"]["email"]), (200, ADMIN[0]))
        code, _, _ = yield self.request("POST", "/api/auth/logout", token=token)
        self.assertEqual(code, 200)
        self.assertError(
            (yield self.request("GET", "/api/auth/me", token=token)), 401, "unauthorized"
        )

    @inlineCallbacks
    def test_bad_credentials_and_bodies(self) -> Any:
        """Wrong password and unknown email get the same 401; bad bodies 400 naming the field."""
        wrong = yield self.request("POST", "/api/auth/login", {"email": ADMIN[0], "password": "x"})
        self.assertError(wrong, 401, "invalid_credentials")
        nobody = yield self.request(
            "POST", "/api/auth/login", {"email": "no@example.com", "password": "x"}
        )
        self.assertEqual(nobody[1], wrong[1])
        for body, field in [
            ({"password": "x"}, "email"),
            ({"email": ADMIN[0]}, "password"),
            ({"email": 5, "password": "x"}, "email"),
            ([], None),
        ]:
            result = yield self.request("POST", "/api/auth/login", body)
            self.assertError(result, 400, "bad_request")
            if field:
                self.assertIn(field, result[1]["error"]["message"])
        for data in [b"{nope", b'{"email": NaN}', b"[" * 100_000]:
            result = yield self.request(
                "POST", "/api/auth/login", data=data, headers={"Content-Type": "application/json"}
            )
            self.assertError(result, 400, "bad_request")
        result = yield self.request(
            "POST", "/api/auth/login", data=b"email=x", headers={"Content-Type": "text/plain"}
        )
        self.assertError(result, 415, "unsupported_media_type")

    @inlineCallbacks
    def test_bad_tokens(self) -> Any:
        """No token, a malformed header or an unknown token: 401 with a Bearer challenge."""
        for headers in [{}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer nope"}]:
            result = yield self.request("GET", "/api/auth/me", headers=headers)
            self.assertError(result, 401, "unauthorized")
            self.assertEqual(
                result[2].headers.getRawHeaders("www-authenticate"), ['Bearer realm="ocppd"']
            )

    @inlineCallbacks
    def test_rate_limited_per_account(self) -> Any:
        """
        Ten wrong passwords at once from one address: past the free ones,
        429 with Retry-After (the limits themselves: test_accounts). Another
        account is not affected.
        """
        attempts = [
            self.request("POST", "/api/auth/login", {"email": ADMIN[0], "password": f"x{n}"})
            for n in range(10)
        ]
        results = yield gatherResults(attempts)
        codes = sorted(result[0] for result in results)
        # At most the three free ones were checked; however slow the machine,
        # the next came within a second of the third (they were sent at once).
        self.assertEqual(codes[:3], [401, 401, 401])
        self.assertEqual(codes[-1], 429)
        for result in results:
            if result[0] == 429:
                self.assertError(result, 429, "too_many_attempts")
                self.assertGreater(int(result[2].headers.getRawHeaders("retry-after")[0]), 0)
        yield self.login(CUSTOMER)

    @inlineCallbacks
    def test_unknown_route_and_method(self) -> Any:
        """Unknown paths are a JSON 404, wrong methods a JSON 405."""
        self.assertError((yield self.request("GET", "/api/nothing")), 404, "not_found")
        self.assertError((yield self.request("GET", "/api/auth/login")), 405, "method_not_allowed")


class BodyLimitTests(ApiTestCase):
    overrides = ("web.max_body_size=2048",)

    @inlineCallbacks
    def test_oversized_body_refused(self) -> Any:
        """A body over max_body_size gets 413 before it is buffered; the site still answers."""
        result = yield self.request(
            "POST",
            "/api/auth/login",
            data=b'{"email": "' + b"x" * 5000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        self.assertError(result, 413, "payload_too_large")
        yield self.login(ADMIN)


class ChargerCommandTests(ApiTestCase):
    overrides = ("ocpp.call_timeout=1",)

    @inlineCallbacks
    def charger(self) -> Any:
        client = yield connect(self.daemon.port, "CP1", "key-1-0123456789ab")
        self.addCleanup(lambda: (client.close(), client.closed)[1])
        return client

    @inlineCallbacks
    def test_authorization_matrix(self) -> Any:
        """Anonymous 401, customer 403; neither reaches the charger."""
        body = {"chargePointId": "CP1", "type": "Soft"}
        self.assertError(
            (yield self.request("POST", "/api/charger/reset", body)), 401, "unauthorized"
        )
        customer = yield self.login(CUSTOMER)
        self.assertError(
            (yield self.request("POST", "/api/charger/reset", body, token=customer)),
            403,
            "forbidden",
        )

    @inlineCallbacks
    def test_validation_and_not_connected(self) -> Any:
        """Schema errors are 400 naming the field; an unknown command 404; no socket 409."""
        token = yield self.login(ADMIN)
        cases = [
            ("reset", {"type": "Soft"}, 400, "chargePointId"),
            ("reset", {"chargePointId": "CP1", "type": "Sideways"}, 400, "type"),
            ("reset", {"chargePointId": "CP1"}, 400, "type"),
            ("remote-start", {"chargePointId": "CP1", "idTag": "X" * 21}, 400, "idTag"),
            (
                "change-configuration",
                {"chargePointId": "CP1", "key": "K", "value": 5},
                400,
                "value",
            ),
        ]
        for name, body, status, field in cases:
            result = yield self.request("POST", f"/api/charger/{name}", body, token=token)
            self.assertError(result, status, "bad_request")
            self.assertIn(field, result[1]["error"]["message"])
        self.assertError(
            (yield self.request("POST", "/api/charger/fly", {"chargePointId": "CP1"}, token=token)),
            404,
            "not_found",
        )
        self.assertError(
            (
                yield self.request(
                    "POST",
                    "/api/charger/reset",
                    {"chargePointId": "CP1", "type": "Soft"},
                    token=token,
                )
            ),
            409,
            "not_connected",
        )

    @inlineCallbacks
    def test_answered_refused_and_silent(self) -> Any:
        """The charger's whole answer (200), a CALLERROR (502), silence (504); all audited."""
        token = yield self.login(ADMIN)
        client = yield self.charger()

        pending = self.request(
            "POST",
            "/api/charger/get-configuration",
            {"chargePointId": "CP1", "key": ["HeartbeatInterval", "Nope"]},
            token=token,
        )
        call = json.loads((yield client.messages.get()))
        self.assertEqual(call[:3], [2, call[1], "GetConfiguration"])
        self.assertEqual(call[3], {"key": ["HeartbeatInterval", "Nope"]})
        answer = {
            "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"}],
            "unknownKey": ["Nope"],
        }
        client.send(json.dumps([3, call[1], answer]))
        code, body, _ = yield pending
        command_id = body.pop("commandId")
        self.assertEqual((code, body), (200, answer))
        self.assertRegex(command_id, r"^[0-9a-f]{32}$")

        pending = self.request(
            "POST", "/api/charger/reset", {"chargePointId": "CP1", "type": "Hard"}, token=token
        )
        call = json.loads((yield client.messages.get()))
        client.send(json.dumps([4, call[1], "NotSupported", "no hard resets here", {}]))
        result = yield pending
        self.assertError(result, 502, "NotSupported")

        result = yield self.request(
            "POST", "/api/charger/clear-cache", {"chargePointId": "CP1"}, token=token
        )
        self.assertError(result, 504, "timeout")
        yield client.messages.get()  # the ClearCache CALL the charger ignored

        entries = yield self.daemon.wait_for(
            audit.list_audit_entries, until=lambda rows: len(rows) >= 6
        )
        outcomes = [(e.action, e.outcome) for e in entries]
        self.assertEqual(
            sorted(outcomes),
            sorted(
                [
                    ("command.get-configuration", "requested"),
                    ("command.get-configuration", "answered"),
                    ("command.reset", "requested"),
                    ("command.reset", "failed"),
                    ("command.clear-cache", "requested"),
                    ("command.clear-cache", "failed"),
                ]
            ),
        )
        self.assertTrue(all(e.actor_user_id == 1 and e.charge_point_id == "CP1" for e in entries))
        answered = next(e for e in entries if e.outcome == "answered")
        self.assertEqual(answered.detail["response"], answer)

    @inlineCallbacks
    def test_send_local_list_defaults_to_the_id_tags(self) -> Any:
        """send-local-list without a list sends the id tags table, statuses as of now."""
        self.daemon.ocppctl("tag", "add", "parent")
        self.daemon.ocppctl("tag", "add", "card1", "--parent", "PARENT")
        self.daemon.ocppctl("tag", "add", "OLD", "--expires", "2020-01-01T00:00:00Z")
        self.daemon.ocppctl("tag", "add", "STOLEN", "--status", "Blocked")
        token = yield self.login(ADMIN)
        client = yield self.charger()
        pending = self.request(
            "POST",
            "/api/charger/send-local-list",
            {"chargePointId": "CP1", "listVersion": 7, "updateType": "Full"},
            token=token,
        )
        call = json.loads((yield client.messages.get()))
        self.assertEqual(call[2], "SendLocalList")
        self.assertEqual(call[3]["listVersion"], 7)
        self.assertEqual(
            call[3]["localAuthorizationList"],
            [
                {"idTag": "CARD1", "idTagInfo": {"status": "Accepted", "parentIdTag": "PARENT"}},
                {
                    "idTag": "OLD",
                    "idTagInfo": {"status": "Expired", "expiryDate": "2020-01-01T00:00:00.000Z"},
                },
                {"idTag": "PARENT", "idTagInfo": {"status": "Accepted"}},
                {"idTag": "STOLEN", "idTagInfo": {"status": "Blocked"}},
            ],
        )
        client.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        code, body, _ = yield pending
        self.assertEqual((code, body["status"]), (200, "Accepted"))

    @inlineCallbacks
    def test_reserve_now_gets_an_allocated_id(self) -> Any:
        """reserve-now without reservationId gets one from ocppd, which keeps the outcome."""
        token = yield self.login(ADMIN)
        client = yield self.charger()
        body = {
            "chargePointId": "CP1",
            "connectorId": 1,
            "idTag": "card9",
            "expiryDate": "2030-01-01T10:00:00Z",
        }
        ids = []
        for answer in ("Accepted", "Occupied"):
            pending = self.request("POST", "/api/charger/reserve-now", body, token=token)
            call = json.loads((yield client.messages.get()))
            self.assertEqual(call[2], "ReserveNow")
            ids.append(call[3]["reservationId"])
            client.send(json.dumps([3, call[1], {"status": answer}]))
            code, result, _ = yield pending
            self.assertEqual((code, result["status"]), (200, answer))
        self.assertEqual(len(set(ids)), 2)
        first = yield self.daemon.query(reservations.get_reservation, ids[0])
        second = yield self.daemon.query(reservations.get_reservation, ids[1])
        self.assertEqual((first.status, first.id_tag, first.connector_id), ("accepted", "CARD9", 1))
        self.assertEqual(second.status, "occupied")

        pending = self.request(
            "POST",
            "/api/charger/cancel-reservation",
            {"chargePointId": "CP1", "reservationId": ids[0]},
            token=token,
        )
        call = json.loads((yield client.messages.get()))
        client.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        yield pending
        first = yield self.daemon.query(reservations.get_reservation, ids[0])
        self.assertEqual(first.status, "cancelled")

    @inlineCallbacks
    def test_remote_start_leads_to_its_session(self) -> Any:
        """A remote start's commandId tells, once the charger starts, which session it led to."""
        self.daemon.ocppctl("tag", "add", "APP-7")
        token = yield self.login(ADMIN)
        client = yield self.charger()
        pending = self.request(
            "POST",
            "/api/charger/remote-start",
            {"chargePointId": "CP1", "connectorId": 2, "idTag": "app-7"},
            token=token,
        )
        call = json.loads((yield client.messages.get()))
        client.send(json.dumps([3, call[1], {"status": "Accepted"}]))
        code, body, _ = yield pending
        command_id = body["commandId"]
        record = yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn, command_id=command_id),
            until=lambda rows: len(rows) == 2,
        )
        self.assertEqual([r.outcome for r in record], ["requested", "answered"])
        code, status, _ = yield self.request(
            "GET", f"/api/charger/commands/{command_id}", token=token
        )
        self.assertEqual((code, status["outcome"], status["sessionId"]), (200, "answered", None))
        self.assertEqual(status["response"], {"status": "Accepted"})
        # The charger starts the session the remote start asked for.
        client.send(
            json.dumps(
                [
                    2,
                    "s1",
                    "StartTransaction",
                    {
                        "connectorId": 2,
                        "idTag": "APP-7",
                        "meterStart": 10,
                        "timestamp": "2030-01-01T00:00:00Z",
                    },
                ]
            )
        )
        started = json.loads((yield client.messages.get()))
        code, status, _ = yield self.request(
            "GET", f"/api/charger/commands/{command_id}", token=token
        )
        self.assertEqual(status["sessionId"], started[2]["transactionId"])
        customer = yield self.login(CUSTOMER)
        self.assertError(
            (yield self.request("GET", f"/api/charger/commands/{command_id}", token=customer)),
            403,
            "forbidden",
        )
        self.assertError(
            (yield self.request("GET", "/api/charger/commands/nope", token=token)), 404, "not_found"
        )
