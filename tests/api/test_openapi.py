"""The OpenAPI document describes every route, and live responses match it."""

from __future__ import annotations

import re
from typing import Any

from jsonschema import Draft202012Validator
from twisted.internet.defer import inlineCallbacks

from ocppd.api.app import Api
from ocppd.api.commands import COMMANDS
from ocppd.api.openapi import CMS_KINDS
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase


def documented_routes() -> set[tuple[str, str]]:
    """(path in OpenAPI form, method) of every Klein route under /api/."""
    routes = set()
    for rule in Api.app.url_map.iter_rules():
        path = str(rule.rule)
        if not path.startswith("/api/"):
            continue
        paths = [path]
        if "<any(" in path:
            paths = [re.sub(r"<any\([^)]*\):kind>", kind, path) for kind in CMS_KINDS]
        if path == "/api/charger/<string:command>":
            paths = [f"/api/charger/{name}" for name in COMMANDS]
        for method in rule.methods or ():
            if method in ("HEAD", "OPTIONS"):
                continue
            for concrete in paths:
                routes.add(
                    (re.sub(r"<(?:[a-z]+:)?(\w+)>", camel_parameter, concrete), method.lower())
                )
    return routes


def camel_parameter(match: re.Match[str]) -> str:
    """Klein's ``<string:charge_point_id>`` is the document's ``{chargePointId}``."""
    first, *rest = match.group(1).split("_")
    return "{" + first + "".join(word.title() for word in rest) + "}"


def check_response(
    testcase: Any, document: dict[str, Any], path: str, method: str, result: Any
) -> None:
    """The response body validates against what the document says for its status."""
    code, body, _ = result
    responses = document["paths"][path][method]["responses"]
    testcase.assertIn(str(code), responses, f"{method} {path} answered an undocumented {code}")
    schema = responses[str(code)].get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        validator = Draft202012Validator({**schema, "components": document["components"]})
        errors = [e.message for e in validator.iter_errors(body)]
        testcase.assertEqual(errors, [], f"{method} {path} {code}: {body}")


class OpenApiTests(ApiTestCase):
    @inlineCallbacks
    def document(self) -> Any:
        code, document, _ = yield self.request("GET", "/api/openapi.json")
        self.assertEqual(code, 200)
        return document

    def check(self, document: dict[str, Any], path: str, method: str, result: Any) -> None:
        check_response(self, document, path, method, result)

    @inlineCallbacks
    def test_every_route_documented(self) -> Any:
        """Each route the app serves is in the document with its method, and nothing else is."""
        document = yield self.document()
        self.assertTrue(document["openapi"].startswith("3.1"))
        described = {(path, method) for path, item in document["paths"].items() for method in item}
        self.assertEqual(described, documented_routes())
        Draft202012Validator.check_schema({"$defs": document["components"]["schemas"]})

    @inlineCallbacks
    def test_live_responses_match(self) -> Any:
        """Responses of a real session of calls validate against the document."""
        document = yield self.document()
        check = self.check
        check(
            document,
            "/api/auth/login",
            "post",
            (
                yield self.request(
                    "POST", "/api/auth/login", {"email": ADMIN[0], "password": "wrong"}
                )
            ),
        )
        token = yield self.login(ADMIN)
        customer = yield self.login(CUSTOMER)
        check(
            document,
            "/api/auth/me",
            "get",
            (yield self.request("GET", "/api/auth/me", token=token)),
        )
        check(document, "/api/auth/me", "get", (yield self.request("GET", "/api/auth/me")))
        created = yield self.request(
            "POST", "/api/cms/stations", {"name": "Depot", "latitude": 52.5}, token=token
        )
        check(document, "/api/cms/stations", "post", created)
        check(
            document,
            "/api/cms/stations",
            "get",
            (yield self.request("GET", "/api/cms/stations", token=token)),
        )
        check(
            document,
            "/api/cms/stations/{key}",
            "get",
            (yield self.request("GET", f"/api/cms/stations/{created[1]['id']}", token=token)),
        )
        check(
            document,
            "/api/cms/points",
            "get",
            (yield self.request("GET", "/api/cms/points", token=token)),
        )
        check(
            document,
            "/api/cms/tags",
            "get",
            (yield self.request("GET", "/api/cms/tags", token=customer)),
        )
        check(
            document,
            "/api/cms/sessions",
            "get",
            (yield self.request("GET", "/api/cms/sessions", token=token)),
        )
        check(
            document,
            "/api/charger/reset",
            "post",
            (
                yield self.request(
                    "POST",
                    "/api/charger/reset",
                    {"chargePointId": "CP1", "type": "Soft"},
                    token=token,
                )
            ),
        )
        check(
            document,
            "/api/charger/reset",
            "post",
            (
                yield self.request(
                    "POST", "/api/charger/reset", {"chargePointId": "CP1"}, token=token
                )
            ),
        )
        check(
            document,
            "/api/charger/commands/{commandId}",
            "get",
            (yield self.request("GET", "/api/charger/commands/none", token=token)),
        )
