"""
The audit log for operators (``GET /api/cms/audit``) over real HTTP against
a whole node: newest first, filtered by charger, actor (id or e-mail), kind
and time, in keyset pages; a CMS change shows up with who made it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from twisted.internet.defer import inlineCallbacks

from ocppd.store import audit
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase
from tests.integration.daemon import postgres_overrides

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)

#: (minutes after T0, actor, action, outcome, charger)
SEEDED = [
    (0, 1, "command.reset", "requested", "CP1"),
    (1, 1, "command.reset", "answered", "CP1"),
    (2, 2, "command.remote_stop", "failed", "CP2"),
    (3, 1, "cms.tariff.updated", "answered", None),
    (4, None, "charging.stopped", "answered", "CP2"),
    (5, 1, "commandeer.x", "answered", "CP1"),  # a prefix of a word is no kind
    (6, 1, "session.closed", "answered", "CP1"),
]


class AuditLogTests(ApiTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.token = yield self.login(ADMIN)

        def seed(conn: Any) -> None:
            for minute, actor, action, outcome, charger in SEEDED:
                audit.add_audit_entry(
                    conn,
                    at=T0 + timedelta(minutes=minute),
                    actor_user_id=actor,
                    action=action,
                    outcome=outcome,
                    detail={"by": {"userId": actor, "email": "old@example.com"}, "n": minute},
                    charge_point_id=charger,
                )

        yield self.daemon.query(seed)

    @inlineCallbacks
    def entries(self, **query: Any) -> Any:
        code, body, _ = yield self.request(
            "GET", f"/api/cms/audit?{urlencode(query)}", token=self.token
        )
        self.assertEqual(code, 200, body)
        return body

    @inlineCallbacks
    def minutes(self, **query: Any) -> Any:
        body = yield self.entries(**query)
        return [entry["detail"]["n"] for entry in body["items"]]

    @inlineCallbacks
    def test_filters(self) -> Any:
        """Newest first; by charger, actor id or e-mail (any case), kind (whole words), time."""
        self.assertEqual((yield self.minutes()), [6, 5, 4, 3, 2, 1, 0])
        self.assertEqual((yield self.minutes(chargePointId="CP2")), [4, 2])
        self.assertEqual((yield self.minutes(userId=2)), [2])
        self.assertEqual((yield self.minutes(email="OPS@example.com")), [6, 5, 3, 1, 0])
        self.assertEqual((yield self.minutes(kind="command")), [2, 1, 0])
        self.assertEqual((yield self.minutes(kind="command.reset")), [1, 0])
        self.assertEqual((yield self.minutes(kind="cms")), [3])
        self.assertEqual(
            (yield self.minutes(**{"from": "2026-11-29T08:02:00Z", "to": "2026-11-29T08:04:00Z"})),
            [3, 2],
        )
        self.assertEqual((yield self.minutes(kind="command", chargePointId="CP1")), [1, 0])
        body = yield self.entries(kind="cms")
        entry = body["items"][0]
        self.assertEqual(
            (entry["action"], entry["outcome"], entry["by"], entry["at"]),
            (
                "cms.tariff.updated",
                "answered",
                {"userId": 1, "email": "ops@example.com"},
                "2026-11-29T08:03:00.000Z",
            ),
        )
        nobody = (yield self.entries(kind="charging"))["items"][0]
        self.assertIsNone(nobody["by"])

    @inlineCallbacks
    def test_pages(self) -> Any:
        """Keyset pages: every entry once, in order, also while new ones arrive."""
        seen: list[int] = []
        body = yield self.entries(limit=3)
        seen += [e["detail"]["n"] for e in body["items"]]
        yield self.daemon.query(
            audit.add_audit_entry,
            at=T0 + timedelta(minutes=9),
            actor_user_id=1,
            action="cms.station.created",
            outcome="answered",
            detail={"n": 9},
        )
        while body["next"]:
            body = yield self.entries(limit=3, cursor=body["next"])
            seen += [e["detail"]["n"] for e in body["items"]]
        self.assertEqual(seen, [6, 5, 4, 3, 2, 1, 0])

    @inlineCallbacks
    def test_a_change_is_audited_with_its_author(self) -> Any:
        """A CMS change made through the API is on the log, with who made it."""
        code, station, _ = yield self.request(
            "POST", "/api/cms/stations", {"name": "Depot"}, token=self.token
        )
        self.assertEqual(code, 201, station)
        yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn),
            until=lambda rows: any(r.action == "cms.station.created" for r in rows),
        )
        entry = (yield self.entries(kind="cms.station"))["items"][0]
        self.assertEqual(
            (entry["action"], entry["by"]["email"], entry["detail"]["data"]["name"]),
            ("cms.station.created", "ops@example.com", "Depot"),
        )

    @inlineCallbacks
    def test_refusals(self) -> Any:
        """Customers 403; a bad filter or another list's cursor 400."""
        customer = yield self.login(CUSTOMER)
        self.assertError(
            (yield self.request("GET", "/api/cms/audit", token=customer)), 403, "forbidden"
        )
        for query in (
            {"kind": "Command"},
            {"kind": "a..b"},
            {"kind": "x" * 65},
            {"userId": "x"},
            {"userId": "0"},
            {"from": "yesterday"},
            {"email": ""},
            {"limit": "0"},
            {"cursor": "bm90IGEgY3Vyc29y"},
        ):
            result = yield self.request(
                "GET", f"/api/cms/audit?{urlencode(query)}", token=self.token
            )
            self.assertError(result, 400, "bad_request")


class PostgresAuditLogTests(AuditLogTests):
    def daemon_overrides(self) -> list[str]:
        return [*postgres_overrides(self), *self.overrides]
