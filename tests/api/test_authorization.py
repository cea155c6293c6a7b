"""
The authorization matrix over every route the web app serves, over real HTTP
on 127.0.0.1 against a whole node.

The routes come from the Klein url_map and the OpenAPI document, never from
a list kept here: a route added later is probed as soon as it exists, and a
route nobody has classified in ``ACCESS`` fails ``test_every_route_classified``
with its name, so no new route escapes the matrix.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase
from werkzeug.routing import Rule

from ocppd.api.app import Api
from ocppd.api.openapi import document
from ocppd.store import transactions
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase

#: Anyone, signed in or not.
PUBLIC = "public"
#: Any signed-in user, customer or admin, and what they see is not per user.
SIGNED_IN = "signed-in"
#: Any signed-in user, and only that user's own data (the customer routes).
OWN = "own"
#: Admins only: customers get 403.
ADMIN_ONLY = "admin"
#: Not the REST API: the static trees and the push channel (which authenticates
#: inside WAMP, DESIGN.md section 4); classified so a new one is a decision too.
WEB = "web"

#: Who may call each route, by method and path in the OpenAPI document's
#: spelling (``{kind}`` for the CMS kinds, ``{command}`` for the commands).
ACCESS: dict[tuple[str, str], str] = {
    ("GET", "/push"): WEB,
    ("GET", "/"): WEB,
    ("GET", "/favicon.ico"): WEB,
    ("GET", "/{tree}/"): WEB,
    ("GET", "/{tree}/{rest}"): WEB,
    ("GET", "/api/openapi.json"): PUBLIC,
    # Probes of a load balancer or orchestrator: what they show strangers is
    # status only (docs/operations.md, "Health and readiness").
    ("GET", "/health"): PUBLIC,
    ("GET", "/ready"): PUBLIC,
    ("POST", "/api/auth/login"): PUBLIC,
    # Called by Stripe, not by a user: no token, its signature is the check
    # (tests.api.test_payments).
    ("POST", "/api/payments/stripe/webhook"): PUBLIC,
    ("POST", "/api/auth/logout"): SIGNED_IN,
    ("GET", "/api/auth/me"): SIGNED_IN,
    ("GET", "/api/stations"): SIGNED_IN,
    ("GET", "/api/chargers/{chargePointId}"): SIGNED_IN,
    ("GET", "/api/user/sessions"): OWN,
    ("GET", "/api/user/sessions/running"): OWN,
    ("GET", "/api/user/sessions/{sessionId}"): OWN,
    ("POST", "/api/user/charging/start"): OWN,
    ("POST", "/api/user/charging/stop"): OWN,
    ("GET", "/api/user/wallet"): OWN,
    ("GET", "/api/user/sessions/{sessionId}/receipt"): OWN,
    ("GET", "/api/user/sessions/{sessionId}/receipt.pdf"): OWN,
    ("POST", "/api/user/wallet/top-up"): OWN,
    ("GET", "/api/user/wallet/transactions"): OWN,
    ("POST", "/api/charger/{command}"): ADMIN_ONLY,
    ("GET", "/api/charger/commands/{commandId}"): ADMIN_ONLY,
    ("GET", "/api/cms/{kind}"): ADMIN_ONLY,
    ("POST", "/api/cms/{kind}"): ADMIN_ONLY,
    ("GET", "/api/cms/{kind}/{key}"): ADMIN_ONLY,
    ("PUT", "/api/cms/{kind}/{key}"): ADMIN_ONLY,
    ("DELETE", "/api/cms/{kind}/{key}"): ADMIN_ONLY,
    ("GET", "/api/cms/sessions"): ADMIN_ONLY,
    ("POST", "/api/cms/sessions/{sessionId}/review"): ADMIN_ONLY,
    ("POST", "/api/cms/sessions/{sessionId}/close"): ADMIN_ONLY,
    ("GET", "/api/cms/audit"): ADMIN_ONLY,
    ("GET", "/api/cms/firmware"): ADMIN_ONLY,
    # Firmware for UpdateFirmware: chargers download it without credentials.
    ("GET", "/firmware/{name}"): PUBLIC,
    ("GET", "/api/cms/points/{chargePointId}/diagnostics"): ADMIN_ONLY,
    ("GET", "/api/cms/points/{chargePointId}/unmatched-stops"): ADMIN_ONLY,
    ("GET", "/api/cms/diagnostics/{uploadId}/file"): ADMIN_ONLY,
    ("DELETE", "/api/cms/diagnostics/{uploadId}"): ADMIN_ONLY,
    # A charger's diagnostics upload: the URL's token, given to it alone, is
    # the credential (ocppd.diagnostics); an unknown one is 404.
    ("PUT", "/diagnostics/{token}"): PUBLIC,
    ("POST", "/diagnostics/{token}"): PUBLIC,
    ("PUT", "/diagnostics/{token}/"): PUBLIC,
    ("POST", "/diagnostics/{token}/"): PUBLIC,
    ("PUT", "/diagnostics/{token}/{name}"): PUBLIC,
    ("POST", "/diagnostics/{token}/{name}"): PUBLIC,
    ("GET", "/api/cms/dashboard"): ADMIN_ONLY,
    ("GET", "/api/cms/alerts"): ADMIN_ONLY,
    ("GET", "/api/cms/points/{chargePointId}/messages"): ADMIN_ONLY,
    ("GET", "/api/cms/users"): ADMIN_ONLY,
    ("POST", "/api/cms/users"): ADMIN_ONLY,
    ("GET", "/api/cms/users.csv"): ADMIN_ONLY,
    ("GET", "/api/cms/tags.csv"): ADMIN_ONLY,
    ("GET", "/api/cms/stations.csv"): ADMIN_ONLY,
    ("GET", "/api/cms/points.csv"): ADMIN_ONLY,
    ("GET", "/api/cms/sessions.csv"): ADMIN_ONLY,
    ("GET", "/api/cms/users/{userId}"): ADMIN_ONLY,
    ("PUT", "/api/cms/users/{userId}"): ADMIN_ONLY,
    ("GET", "/api/cms/users/{userId}/wallet/transactions"): ADMIN_ONLY,
    ("POST", "/api/cms/users/{userId}/wallet/adjustments"): ADMIN_ONLY,
    ("GET", "/api/cms/points/{chargePointId}/meter"): ADMIN_ONLY,
    ("GET", "/api/cms/commands"): ADMIN_ONLY,
    ("GET", "/api/cms/reports/sessions"): ADMIN_ONLY,
    ("GET", "/api/cms/reports/utilisation"): ADMIN_ONLY,
    ("GET", "/api/cms/reports/faults"): ADMIN_ONLY,
    ("GET", "/api/cms/points/{chargePointId}/connections"): ADMIN_ONLY,
    ("GET", "/api/cms/map"): ADMIN_ONLY,
}

#: The contract's rule by prefix (DESIGN.md section 4), which the table may not contradict.
PREFIX_POLICY = (
    ("/api/cms/", ADMIN_ONLY),
    ("/api/charger/", ADMIN_ONLY),
    ("/api/user/", OWN),
)

#: Path parameter values for probing; what they name need not exist.
SAMPLES = {"chargePointId": "CP1", "command": "reset", "commandId": "1", "key": "1"}

_PARAMETER = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\((?P<options>[^)]*)\))?:)?(?P<name>\w+)>")


def camel(name: str) -> str:
    first, *rest = name.strip("_").split("_")
    return first + "".join(word.title() for word in rest)


def template(rule: Rule) -> str:
    """A Klein rule as the document spells it: ``<string:cp_id>`` is ``{cpId}``."""
    return _PARAMETER.sub(lambda m: "{" + camel(m.group("name")) + "}", str(rule.rule))


def methods(rule: Rule) -> list[str]:
    # A branch or resource route with no methods answers GET (and anything else).
    return sorted(set(rule.methods or {"GET"}) - {"HEAD", "OPTIONS"})


def rule_paths(rule: Rule) -> Iterator[str]:
    """Concrete paths of a rule: each option of an ``any``, a sample for the others."""
    paths = [""]
    position = 0
    text = str(rule.rule)
    for match in _PARAMETER.finditer(text):
        literal = text[position : match.start()]
        if match.group("converter") == "any":
            values = [v.strip().strip("'\"") for v in match.group("options").split(",")]
        else:
            values = [SAMPLES.get(camel(match.group("name")), "1")]
        paths = [p + literal + v for p in paths for v in values]
        position = match.end()
    yield from (p + text[position:] for p in paths)


def document_paths() -> Iterator[tuple[str, str]]:
    """(method, concrete path) of every operation in the OpenAPI document."""
    for path, item in document()["paths"].items():
        concrete = re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m.group(1), "1"), path)
        for method in item:
            yield method.upper(), concrete


def route_of(method: str, path: str) -> tuple[str, str] | None:
    """The (method, template) key of the Klein route serving a request, or None."""
    adapter = Api.app.url_map.bind("127.0.0.1")
    try:
        rule, _ = adapter.match(path, method=method, return_rule=True)
    except Exception:
        return None
    return method, template(rule)


def probes() -> list[tuple[str, str, str]]:
    """
    (method, concrete path, access) of every API operation: each Klein route
    under /api/ (every CMS kind) and each operation of the document (every
    command), sorted so that logout, which ends the token, comes last.
    """
    found: set[tuple[str, str]] = set(document_paths())
    for rule in Api.app.url_map.iter_rules():
        if str(rule.rule).startswith("/api/"):
            found.update((method, path) for method in methods(rule) for path in rule_paths(rule))
    result = []
    for method, path in found:
        key = route_of(method, path)
        assert key is not None, f"{method} {path} is documented but no route serves it"
        assert key in ACCESS, unclassified(key)
        result.append((method, path, ACCESS[key]))
    return sorted(result, key=lambda p: (p[1] == "/api/auth/logout", p[1], p[0]))


def unclassified(key: tuple[str, str]) -> str:
    return (
        f"{key[0]} {key[1]} is not in tests/api/test_authorization.py ACCESS: classify it"
        " as PUBLIC, SIGNED_IN, OWN or ADMIN_ONLY before it ships"
    )


#: The Authorization headers of callers nobody knows.
ANONYMOUS: dict[str, dict[str, str]] = {
    "no token": {},
    "a garbage token": {"Authorization": "Bearer not-a-token-we-issued"},
    "an empty bearer": {"Authorization": "Bearer "},
    "basic auth": {"Authorization": "Basic b3BzQGV4YW1wbGUuY29tOng="},
}


class RouteTableTests(SynchronousTestCase):
    """The table itself: complete, not stale, and in line with the document and the contract."""

    def test_every_route_classified(self) -> None:
        """Each route the app serves has a row in ACCESS; each row is a route that exists."""
        served = {
            (method, template(rule))
            for rule in Api.app.url_map.iter_rules()
            for method in methods(rule)
        }
        missing = sorted(served - set(ACCESS))
        self.assertEqual(missing, [], "\n".join(unclassified(key) for key in missing))
        stale = sorted(set(ACCESS) - served)
        self.assertEqual(stale, [], "rows of ACCESS that no route serves any more")

    def test_every_document_operation_is_a_route(self) -> None:
        """Every operation in the document is served by a classified route."""
        for method, path in document_paths():
            key = route_of(method, path)
            self.assertIsNotNone(key, f"{method} {path} is documented but no route serves it")
            assert key is not None
            self.assertIn(key, ACCESS, unclassified(key))

    def test_document_security_matches(self) -> None:
        """The document asks for a bearer token on every operation but the public ones."""
        for path, item in document()["paths"].items():
            for method, operation in item.items():
                key = route_of(method.upper(), re.sub(r"\{\w+\}", "1", path))
                assert key is not None
                public = ACCESS[key] == PUBLIC
                self.assertEqual(
                    "security" in operation, not public, f"{method.upper()} {path}: security"
                )
                if not public:
                    self.assertIn("401", operation["responses"], f"{method.upper()} {path}")
                if ACCESS[key] == ADMIN_ONLY:
                    self.assertIn("403", operation["responses"], f"{method.upper()} {path}")

    def test_prefix_policy(self) -> None:
        """The table never contradicts the contract: /api/cms/ and /api/charger/ are admin's."""
        for (method, path), access in ACCESS.items():
            for prefix, required in PREFIX_POLICY:
                if path.startswith(prefix):
                    self.assertEqual(access, required, f"{method} {path}")
            if access == WEB:
                self.assertFalse(path.startswith("/api/"), f"{method} {path}")


class MatrixTestCase(ApiTestCase):
    B = ("kim@example.com", "a third long password")

    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        yield self.add_user(self.B, "customer")

    @inlineCallbacks
    def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> Any:
        """A request whose error answer, if any, is checked to be the one error format."""
        body: Any = {} if method in ("POST", "PUT") else None
        result = yield self.request(method, path, body, token=token, **kwargs)
        code, payload, _ = result
        if code >= 400:
            self.assertIsInstance(payload, dict, f"{method} {path}")
            self.assertEqual(list(payload), ["error"], f"{method} {path}: {payload}")
            self.assertEqual(sorted(payload["error"]), ["code", "message"], f"{method} {path}")
            self.assertIsInstance(payload["error"]["code"], str)
            self.assertIsInstance(payload["error"]["message"], str)
        return result


class AnonymousTests(MatrixTestCase):
    @inlineCallbacks
    def test_anonymous_401_everywhere_but_public(self) -> Any:
        """
        No token, a garbage one, a malformed header or a logged-out token: 401
        with the Bearer challenge on every route but login and the document,
        which answer anyone.
        """
        token = yield self.login(CUSTOMER)
        code, _, _ = yield self.request("POST", "/api/auth/logout", token=token)
        self.assertEqual(code, 200)
        callers = {**ANONYMOUS, "a logged-out token": {"Authorization": f"Bearer {token}"}}
        routes = probes()
        self.assertGreater(len(routes), 40)
        for method, path, access in routes:
            for who, headers in callers.items():
                result = yield self.call(method, path, headers=headers)
                if access == PUBLIC:
                    self.assertNotEqual(result[0], 401, f"{who}: {method} {path}")
                    continue
                self.assertEqual(
                    (result[0], result[1]["error"]["code"]),
                    (401, "unauthorized"),
                    f"{who}: {method} {path}",
                )
                self.assertEqual(
                    result[2].headers.getRawHeaders("www-authenticate"),
                    ['Bearer realm="ocppd"'],
                    f"{who}: {method} {path}",
                )

    @inlineCallbacks
    def test_wrong_method_405_with_allow(self) -> Any:
        """A method no route takes is a JSON 405 whose Allow header lists the ones it does."""
        allowed: dict[str, set[str]] = {}
        for method, path, _ in probes():
            allowed.setdefault(path, set()).add(method)
        for path, methods_of_path in sorted(allowed.items()):
            result = yield self.call("PATCH", path)
            self.assertEqual(
                (result[0], result[1]["error"]["code"]), (405, "method_not_allowed"), path
            )
            [header] = result[2].headers.getRawHeaders("allow")
            self.assertLessEqual(methods_of_path, set(header.split(", ")), path)


class RoleTests(MatrixTestCase):
    @inlineCallbacks
    def test_customer_403_on_admin_routes(self) -> Any:
        """A customer gets 403 on every admin route and is let through everywhere else."""
        token = yield self.login(CUSTOMER)
        for method, path, access in probes():
            if path == "/api/auth/logout":
                token = yield self.login(CUSTOMER)
            result = yield self.call(method, path, token=token)
            if access == ADMIN_ONLY:
                self.assertEqual(
                    (result[0], result[1]["error"]["code"]), (403, "forbidden"), f"{method} {path}"
                )
            else:
                self.assertNotIn(result[0], (401, 403), f"{method} {path}: {result[1]}")
                self.assertLess(result[0], 500, f"{method} {path}: {result[1]}")

    @inlineCallbacks
    def test_admin_reaches_everything(self) -> Any:
        """An admin is refused nowhere (the answer may still be 400, 404 or 409)."""
        token = yield self.login(ADMIN)
        for method, path, _ in probes():
            result = yield self.call(method, path, token=token)
            self.assertNotIn(result[0], (401, 403), f"{method} {path}: {result[1]}")
            self.assertLess(result[0], 500, f"{method} {path}: {result[1]}")


T0 = datetime(2030, 1, 1, 8, tzinfo=UTC)


class IsolationTests(MatrixTestCase):
    """Customer A never reads or changes customer B's data."""

    # B tops up through the test provider, which must be chosen explicitly.
    overrides = ("billing.payment_provider=test",)

    @inlineCallbacks
    def session_of(self, id_tag: str, email: str, connector: int) -> Any:
        """An active session on CP1 started with a tag of ``email``'s; its id."""
        self.daemon.ocppctl("tag", "add", id_tag, "--user", email)
        allocation = yield self.daemon.query(
            transactions.allocate_transaction,
            charge_point_id="CP1",
            connector_id=connector,
            id_tag=id_tag,
            id_tag_status="Accepted",
            meter_start_wh=1000,
            started_at=T0,
            now=T0,
        )
        return allocation.transaction_id

    @inlineCallbacks
    def session_ids(self, token: str, query: str = "") -> Any:
        code, body, _ = yield self.call("GET", "/api/user/sessions" + query, token=token)
        self.assertEqual(code, 200, body)
        self.assertTrue(all("userId" in s for s in body["items"]))
        return {s["id"]: s["userId"] for s in body["items"]}

    @inlineCallbacks
    def test_sessions_only_ones_own(self) -> Any:
        """B's sessions never appear in A's list, whatever userId A asks for."""
        a_session = yield self.session_of("TAG-A", CUSTOMER[0], 1)
        b_session = yield self.session_of("TAG-B", self.B[0], 2)
        a = yield self.login(CUSTOMER)
        b = yield self.login(self.B)
        _, me, _ = yield self.call("GET", "/api/auth/me", token=b)
        b_id = me["user"]["id"]
        a_sessions = yield self.session_ids(a)
        self.assertEqual(list(a_sessions), [a_session])
        self.assertEqual(list((yield self.session_ids(b))), [b_session])
        for query in (f"?userId={b_id}", f"?userId={b_id}&chargePointId=CP1", "?status=active"):
            self.assertEqual((yield self.session_ids(a, query)), a_sessions, query)

    @inlineCallbacks
    def test_stop_of_anothers_session_is_404(self) -> Any:
        """
        A stopping B's active session gets 404, exactly what an id that does not
        exist gets (so ids cannot be probed), and B's session stays active.
        """
        self.assertIsNotNone(route_of("POST", "/api/user/charging/stop"), "no stop route yet")
        b_session = yield self.session_of("TAG-B", self.B[0], 2)
        a = yield self.login(CUSTOMER)
        theirs = yield self.request(
            "POST", "/api/user/charging/stop", {"sessionId": b_session}, token=a
        )
        nobodys = yield self.request(
            "POST", "/api/user/charging/stop", {"sessionId": b_session + 1000}, token=a
        )
        self.assertError(theirs, 404, "not_found")
        self.assertEqual(
            theirs[1]["error"]["message"].replace(str(b_session), "N"),
            nobodys[1]["error"]["message"].replace(str(b_session + 1000), "N"),
        )
        record = yield self.daemon.query(transactions.get_transaction, b_session)
        self.assertIsNone(record.stopped_at)
        admin = yield self.login(ADMIN)
        code, body, _ = yield self.request("GET", "/api/cms/sessions?status=active", token=admin)
        self.assertEqual(code, 200, body)
        self.assertEqual([s["id"] for s in body["items"]], [b_session])

    @inlineCallbacks
    def test_wallet_only_ones_own(self) -> Any:
        """B's top-up shows in B's wallet and transactions, never in A's."""
        self.assertIsNotNone(route_of("GET", "/api/user/wallet"), "no wallet route yet")
        a = yield self.login(CUSTOMER)
        b = yield self.login(self.B)
        code, me, _ = yield self.call("GET", "/api/auth/me", token=b)
        b_id = me["user"]["id"]
        code, a_before, _ = yield self.call("GET", "/api/user/wallet", token=a)
        self.assertEqual(code, 200, a_before)
        code, body, _ = yield self.request(
            "POST", "/api/user/wallet/top-up", {"amount": 2500}, token=b
        )
        self.assertLess(code, 300, body)
        code, b_wallet, _ = yield self.call("GET", "/api/user/wallet", token=b)
        self.assertEqual(b_wallet["balance"], 2500)
        for query in ("", f"?userId={b_id}"):
            code, a_wallet, _ = yield self.call("GET", "/api/user/wallet" + query, token=a)
            self.assertEqual(a_wallet, a_before, query)
            code, listed, _ = yield self.call(
                "GET", "/api/user/wallet/transactions" + query, token=a
            )
            self.assertEqual((code, listed["items"]), (200, []), query)
        code, listed, _ = yield self.call("GET", "/api/user/wallet/transactions", token=b)
        self.assertEqual([t["amount"] for t in listed["items"]], [2500])
