"""
Fuzz of the REST API's JSON bodies (hypothesis): whatever body a client
sends to a route that takes one, the answer is never a 5xx, it is the JSON
error body when it is an error, and nothing is logged as an error.

The routes and their fields come from the OpenAPI document, so a new route
is fuzzed as soon as it is documented. tests.api.test_schemathesis checks the
documented contract over real HTTP; this hunts, in-process and example by
example, for the values that break the code behind it: wrong types, integers
beyond 64 bits, text no store can hold, odd nesting.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import succeed
from twisted.trial.unittest import SynchronousTestCase

from ocppd.api import accounts
from ocppd.api.openapi import document
from ocppd.store import chargers, stations, tags, tariffs
from tests.api.inline import InlineNode
from tests.fuzz.profile import fuzz_settings
from tests.fuzz.strategies import edges, json_values, objects, ordinary
from tests.logs import logged_errors
from tests.store.fixtures import postgres_url

ADMIN = ("ops@example.com", "admin password")
CUSTOMER = ("jo@example.com", "customer password")
#: Names of the rows setUp makes and other good strings, offered for string fields.
KNOWN = ("CP1", "TAG1", ADMIN[0], "EUR", "Depot")
#: ... and the ordinary value of fields of these names.
KNOWN_FIELDS = {
    "chargePointId": "CP1",
    "idTag": "TAG1",
    "parentIdTag": "TAG1",
    "currency": "EUR",
    "email": ADMIN[0],
    "password": ADMIN[1],
}
PATH_KEYS = {"stations": "1", "tariffs": "1", "points": "CP1", "tags": "TAG1"}


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return components[ref.rsplit("/", 1)[1]] if ref else schema


def body_operations() -> list[tuple[str, str, dict[str, Any], list[str]]]:
    """
    (method, path with its keys filled in, top-level properties, required
    ones) of each route taking a body.
    """
    spec = document()
    components = spec["components"]["schemas"]
    found = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody")
            if body is None:
                continue
            schema = _resolve(body["content"]["application/json"]["schema"], components)
            kind = path.split("/")[3] if path.startswith("/api/cms/") else ""
            concrete = re.sub(r"\{[^}]+\}", PATH_KEYS.get(kind, "1"), path)
            properties = schema.get("properties", {})
            found.append((method.upper(), concrete, properties, schema.get("required", [])))
    return found


OPERATIONS = body_operations()


#: Routes whose body reaches the store before anything refuses it, drawn more often.
STORED = {"/api/charger/reserve-now": 6, "/api/charger/send-local-list": 3}


def requests(prefix: str) -> st.SearchStrategy[tuple[tuple[str, str], Any]]:
    """A route under ``prefix`` and a body for it: mostly its fields, now and then any JSON."""
    operations = [
        operation
        for operation in OPERATIONS
        if operation[1].startswith(prefix)
        for _ in range(STORED.get(operation[1], 1))
    ]
    return st.sampled_from(operations).flatmap(
        lambda operation: st.tuples(
            st.just(operation[:2]),
            st.one_of(
                *[objects(operation[2], operation[3], KNOWN)] * 4,
                json_values,
            ),
        )
    )


class BodyTestCase(SynchronousTestCase):
    """A node with one of each row; ``check`` sends a body and checks the answer."""

    def store_overrides(self) -> list[str]:
        """The node's store (SQLite unless a subclass says otherwise)."""
        return []

    def setUp(self) -> None:
        self.inline = InlineNode(self, *self.store_overrides())
        # Argon2 spends the time of real sign-ins on purpose: not here.
        self.patch(accounts, "verify_password", lambda password, stored: password == ADMIN[1])
        # Nor Argon2's hashing of a new account's password, which runs in a
        # thread the synchronous node cannot wait for.
        self.patch(self.inline.node.people, "_hash", lambda password: succeed("!fuzzed"))
        admin = self.inline.add_user(ADMIN[0], ADMIN[1], "admin")
        customer = self.inline.add_user(CUSTOMER[0], CUSTOMER[1], "customer")
        self.tokens = {"admin": self.inline.token(admin), "customer": self.inline.token(customer)}
        run, now = self.inline.node.database.run_sync, self.inline.now()
        run(stations.add_station, "Depot", now=now)
        run(tariffs.add_tariff, "Standard", currency="EUR", price_per_kwh=30, now=now)
        run(chargers.add_charge_point, "CP1", None, now=now)
        run(tags.add_id_tag, "TAG1", user_id=customer, now=now)
        self.errors = logged_errors(self)

    def token_for(self, path: str) -> str | None:
        if path.startswith("/api/user/"):
            return self.tokens["customer"]
        if path.startswith(("/api/cms/", "/api/charger/")):
            return self.tokens["admin"]
        return None

    def call(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        headers = {"Content-Type": ["application/json"]}
        token = self.token_for(path)
        if token is not None:
            headers["Authorization"] = [f"Bearer {token}"]
        data = json.dumps(body).encode("ascii")  # lone surrogates travel as \\ud800 escapes
        results: list[Any] = []
        d = self.inline.treq.request(method, f"http://ocppd.test{path}", headers=headers, data=data)
        d.addCallback(lambda response: response.content().addCallback(lambda c: (response, c)))
        d.addBoth(results.append)
        self.assertEqual(len(results), 1, f"{method} {path} did not answer")
        [result] = results
        if not isinstance(result, tuple):
            result.raiseException()
        response, content = result
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/json"])
        return response.code, content

    def check(self, request: tuple[tuple[str, str], Any]) -> None:
        """A 2xx, or a 4xx with the error body; no error logged."""
        (method, path), body = request
        # Sign-in delays and the per-address limit are tested elsewhere:
        # every example starts with them forgotten.
        self.inline.clock.advance(3600)
        code, content = self.call(method, path, body)
        self.assertLess(code, 500, (method, path, repr(body)[:500], content))
        answer = json.loads(content)
        if code >= 400:
            self.assertIsInstance(answer["error"]["code"], str, content)
            self.assertIsInstance(answer["error"]["message"], str, content)
        self.assertEqual(self.errors, [], (method, path, repr(body)[:500]))


class EdgeSweep(BodyTestCase):
    """Every field at its edges, on SQLite (the subclass: on PostgreSQL)."""

    def test_each_field_at_its_edges(self) -> None:
        """
        Every documented field of every route, one at a time, at each of its
        type's edge values (and a few values of other types) in an
        otherwise ordinary body: systematic, where the examples below are
        drawn at random.
        """
        for method, path, properties, required in OPERATIONS:
            base = {
                name: ordinary(name, properties[name], KNOWN_FIELDS)
                for name in required
                if name in properties
            }
            for name, schema in properties.items():
                for value in edges(schema):
                    self.check(((method, path), {**base, name: value}))


class BodyFuzzTests(BodyTestCase):
    """Bodies drawn at random (on SQLite: they look for bugs of the code, not of an engine)."""

    @fuzz_settings(120)
    @given(requests("/api/cms/"))
    def test_cms(self, request: tuple[tuple[str, str], Any]) -> None:
        """Stations, tariffs, points and tags: created and updated with any body."""
        self.check(request)

    @fuzz_settings(120)
    @given(requests("/api/charger/"))
    def test_charger_commands(self, request: tuple[tuple[str, str], Any]) -> None:
        """Every charger command with any body (no charger is connected: refused or 409)."""
        self.check(request)

    @fuzz_settings(60)
    @given(requests("/api/user/") | requests("/api/auth/"))
    def test_customer_and_sign_in(self, request: tuple[tuple[str, str], Any]) -> None:
        """Sign-in, top-up, start and stop with any body."""
        self.check(request)


class PostgresEdgeSweep(EdgeSweep):
    """The sweep on PostgreSQL, whose columns are narrower than SQLite's (integers, text)."""

    def store_overrides(self) -> list[str]:
        return [f"store.url={postgres_url(self)}"]
