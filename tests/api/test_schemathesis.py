"""
schemathesis against the live ``/api/openapi.json`` of a whole node.

schemathesis makes blocking HTTP calls (requests), so it runs as its CLI in a
child process (``python -m schemathesis.cli run``) while the node under test
keeps serving on this test's reactor. The run is bounded (a few examples per
operation and phase, deterministic generation, one worker: about 15 s) and
its JSON report, checked here, names every failure.

``POST /api/auth/logout`` is excluded: it would revoke the very token the run
signs in with, and every later call would be a (documented) 401 that tests
nothing. Logout is covered by ``tests.api.test_api`` and the authorization
matrix.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue

from ocppd.api.openapi import document
from ocppd.store import transactions
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase
from tests.api.test_authorization import ACCESS, ADMIN_ONLY, T0, document_paths, route_of

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    # A method the document does not list: 405 with an Allow header (RFC 9110).
    "unsupported_method",
)
#: Per operation and phase; with ~50 operations the run stays well under a minute.
MAX_EXAMPLES = 8
SEED = 4
#: Path parameters naming the objects ``seed`` creates, so that reads, updates
#: and deletes reach real rows instead of only 404s (per operation path).
KNOWN = {
    "/api/cms/stations/{key}": {"path.key": "1"},
    "/api/cms/tariffs/{key}": {"path.key": "1"},
    "/api/cms/tags/{key}": {"path.key": "OTHER"},
    "/api/cms/points/{key}": {"path.key": "CP1"},
    "/api/cms/points/{chargePointId}/messages": {"path.chargePointId": "CP1"},
    "/api/chargers/{chargePointId}": {"path.chargePointId": "CP1"},
}


def config_file(path: str) -> None:
    """A schemathesis.toml giving ``KNOWN``'s values (TOML strings are JSON strings)."""
    with open(path, "w") as f:
        for operation, parameters in KNOWN.items():
            f.write(f"[[operations]]\ninclude-path = {json.dumps(operation)}\n")
            f.write("[operations.parameters]\n")
            for name, value in parameters.items():
                f.write(f"{json.dumps(name)} = {json.dumps(value)}\n")


class SchemathesisTests(ApiTestCase):
    # The run is CPU-bound in its child: 176 s at load 18 on two cores, where
    # the former 180 s nearly cut it off. A guard against a hang only.
    timeout = 600

    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.admin_token = yield self.login(ADMIN)
        yield self.seed()

    @inlineCallbacks
    def seed(self) -> Any:
        """One of everything, so that lists and lookups answer real objects, not only 404s."""
        self.daemon.ocppctl("tag", "add", "JO", "--user", CUSTOMER[0])
        for path, body in [
            ("/api/cms/stations", {"name": "Depot", "latitude": 52.5, "longitude": 13.4}),
            ("/api/cms/tariffs", {"name": "Std", "currency": "EUR", "pricePerKwh": 30}),
            ("/api/cms/tags", {"idTag": "OTHER"}),
        ]:
            code, created, _ = yield self.request("POST", path, body, token=self.admin_token)
            self.assertEqual(code, 201, created)
        for connector, tag in ((1, "JO"), (2, "OTHER")):
            allocation = yield self.daemon.query(
                transactions.allocate_transaction,
                charge_point_id="CP1",
                connector_id=connector,
                id_tag=tag,
                id_tag_status="Accepted",
                meter_start_wh=1000,
                started_at=T0,
                now=T0,
            )
        yield self.daemon.query(
            transactions.record_stop,
            charge_point_id="CP1",
            transaction_id=allocation.transaction_id,
            meter_stop_wh=4000,
            stopped_at=T0.replace(hour=9),
            reason="Local",
            now=T0,
        )

    @inlineCallbacks
    def schemathesis(self, token: str, *extra: str, spec: dict[str, Any] | None = None) -> Any:
        """
        Run the CLI as the holder of ``token`` against the live document (or
        ``spec``, served from a file, for the canary); (exit code, output, report).
        """
        work = os.path.abspath(self.mktemp())
        os.makedirs(work)
        report = os.path.join(work, "report.json")
        config = os.path.join(work, "schemathesis.toml")
        config_file(config)
        location = [self.url("/api/openapi.json")]
        if spec is not None:
            location = [os.path.join(work, "openapi.json"), "--url", self.url("")]
            with open(location[0], "w") as f:
                json.dump(spec, f)
        args = [
            "-m",
            "schemathesis.cli",
            "--config-file",
            config,
            "run",
            *location,
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--seed",
            str(SEED),
            # Implies no example database: nothing is written outside ``work``.
            "--generation-deterministic",
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--exclude-path",
            "/api/auth/logout",
            "--header",
            f"Authorization: Bearer {token}",
            "--report",
            "json",
            "--report-json-path",
            report,
            "--no-color",
            "--output-truncate",
            "false",
            *extra,
        ]
        out, err, code = yield getProcessOutputAndValue(
            sys.executable, args, env=dict(os.environ), path=work, reactor=reactor
        )
        # The output names each failure with a curl line that reproduces it.
        text = out.decode("utf-8", "replace") + err.decode("utf-8", "replace")
        self.assertTrue(os.path.exists(report), text)
        with open(report) as f:
            return code, text, json.load(f)

    def assertClean(self, code: int, text: str, report: dict[str, Any]) -> None:
        """Every operation but two tested, real cases generated, nothing failed."""
        # Not logout (excluded), nor the document itself, which schemathesis
        # leaves out of a run it loaded from that URL.
        operations = len(list(document_paths())) - 2
        self.assertEqual(
            (report["complete"], report["operations"]["tested"], report["operations"]["errored"]),
            (True, operations, 0),
            text,
        )
        self.assertGreater(report["test_cases"]["generated"], 10 * operations, text)
        self.assertEqual((report["failures"], report["errors"], code), ([], [], 0), text)

    @inlineCallbacks
    def test_as_admin(self) -> Any:
        """As an admin, every operation: no 5xx, and every answer as documented."""
        code, text, report = yield self.schemathesis(self.admin_token)
        self.assertClean(code, text, report)
        # An admin is refused nowhere.
        self.assertEqual(report["warnings"]["missing_auth"], [], text)

    @inlineCallbacks
    def test_as_customer(self) -> Any:
        """As a customer: the same, and only the admin operations ever refused."""
        token = yield self.login(CUSTOMER)
        code, text, report = yield self.schemathesis(token)
        self.assertClean(code, text, report)
        admin_only = {
            f"{method.upper()} {path}"
            for path, item in document()["paths"].items()
            for method in item
            if ACCESS[route_of(method.upper(), path)] == ADMIN_ONLY  # type: ignore[index]
        }
        self.assertEqual(set(report["warnings"]["missing_auth"]), admin_only, text)

    @inlineCallbacks
    def test_canary(self) -> Any:
        """
        The run does fail on a document that lies: here one that promises a
        string where /api/auth/me answers an object. (So a clean run means
        something.)
        """
        spec = document()
        me = spec["paths"]["/api/auth/me"]["get"]["responses"]["200"]
        me["content"]["application/json"]["schema"] = {
            "type": "object",
            "properties": {"user": {"type": "string"}},
        }
        code, text, report = yield self.schemathesis(
            self.admin_token, "--include-path", "/api/auth/me", spec=spec
        )
        self.assertNotEqual(code, 0, text)
        [failure] = report["failures"]
        self.assertEqual(
            (failure["title"], failure["operations"]),
            ("Response violates schema", ["GET /api/auth/me"]),
            text,
        )
