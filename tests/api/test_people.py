"""
Customers, id tags and wallets in the CMS (ocppd.api.cms_people) over real
HTTP against a whole node: search, sort and cursor pages, CSV exports,
creating, editing and blocking (a blocked account's tags answer Blocked at
Authorize, its tokens stop working), wallet adjustments by hand (once per
Idempotency-Key, bounded, audited), and sessions naming their customer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from twisted.internet.defer import inlineCallbacks

from ocppd.store import audit, tags, transactions, users
from tests.api.listing import ListReading
from tests.api.test_api import ADMIN, CUSTOMER
from tests.integration.clients import connect
from tests.integration.daemon import postgres_overrides

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
#: The number of extra customers seeded for paging.
SEEDED = 30


class PeopleTests(ListReading):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.token = yield self.login(ADMIN)

        def seed(conn: Any) -> None:
            for n in range(SEEDED):
                user_id = users.add_user(
                    conn, f"driver{n:03d}@fleet.example", "!", "customer", now=T0
                )
                tags.add_id_tag(conn, f"fleet-{n:03d}", user_id=user_id, now=T0)

        yield self.daemon.query(seed)

    @inlineCallbacks
    def test_users_searched_sorted_paged(self) -> Any:
        """Any case; each page resumes where the last ended, also sorted descending."""
        emails = [u["email"] for u in (yield self.all_pages("/api/cms/users", limit=7))]
        self.assertEqual(emails, sorted(emails))
        self.assertEqual(len(emails), SEEDED + 2)
        found = yield self.all_pages("/api/cms/users", q="DRIVER01", limit=3, sort="-email")
        self.assertEqual(
            [u["email"] for u in found], [f"driver{n:03d}@fleet.example" for n in range(19, 9, -1)]
        )
        by_tag = yield self.get("/api/cms/users", q="fleet-007")
        self.assertEqual([u["email"] for u in by_tag["items"]], ["driver007@fleet.example"])
        self.assertEqual(by_tag["items"][0]["tags"], 1)
        customers = yield self.all_pages("/api/cms/users", role="admin")
        self.assertEqual([u["email"] for u in customers], [ADMIN[0]])

    @inlineCallbacks
    def test_tags_searched_sorted_paged(self) -> Any:
        """Tags by their id, parent or owner (any case); sorted both ways in pages."""
        ids = [t["idTag"] for t in (yield self.all_pages("/api/cms/tags", limit=4, sort="-idTag"))]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(len(ids), SEEDED)
        found = yield self.get("/api/cms/tags", q="Driver02")
        self.assertEqual(
            [t["idTag"] for t in found["items"]], [f"FLEET-{n:03d}" for n in range(20, 30)]
        )
        self.assertEqual(found["items"][0]["owner"]["email"], "driver020@fleet.example")

    @inlineCallbacks
    def test_bad_queries(self) -> Any:
        """A bad sort, filter or another list's (or order's) cursor: 400 naming it."""
        first = yield self.get("/api/cms/users", limit=2)
        for path, query, field in (
            ("/api/cms/users", {"sort": "password"}, "sort"),
            ("/api/cms/users", {"role": "root"}, "role"),
            ("/api/cms/users", {"blocked": "yes"}, "blocked"),
            ("/api/cms/users", {"q": "x" * 101}, "q"),
            ("/api/cms/users", {"cursor": first["next"], "sort": "-email"}, "cursor"),
            ("/api/cms/tags", {"cursor": first["next"]}, "cursor"),
            ("/api/cms/tags", {"status": "blocked"}, "status"),
            ("/api/cms/tags", {"userId": "0"}, "userId"),
            ("/api/cms/tags.csv", {"userId": "x"}, "userId"),
            ("/api/cms/users.csv", {"sort": "x"}, "sort"),
        ):
            result = yield self.request("GET", f"{path}?{urlencode(query)}", token=self.token)
            self.assertError(result, 400, "bad_request")
            self.assertIn(field, result[1]["error"]["message"])

    @inlineCallbacks
    def test_csv_exports(self) -> Any:
        """The list with its filters and order, whole; a cell that would be a formula is text."""
        code, made, _ = yield self.request(
            "POST",
            "/api/cms/users",
            {"email": "Eve@Example.com", "name": "=HYPERLINK(1)"},
            token=self.token,
        )
        self.assertEqual(code, 201, made)
        rows = yield self.csv_rows("/api/cms/users.csv", q="example.com", sort="-email")
        self.assertEqual(rows[0][:4], ["id", "email", "name", "role"])
        self.assertEqual([r[1] for r in rows[1:]], [ADMIN[0], CUSTOMER[0], "eve@example.com"])
        self.assertEqual(rows[3][2], "'=HYPERLINK(1)")
        tag_rows = yield self.csv_rows("/api/cms/tags.csv", q="fleet-00")
        self.assertEqual(tag_rows[0][0], "idTag")
        self.assertEqual([r[0] for r in tag_rows[1:]], [f"FLEET-{n:03d}" for n in range(10)])
        self.assertEqual(tag_rows[1][-2], "driver000@fleet.example")

    @inlineCallbacks
    def test_create_edit_block(self) -> Any:
        """
        A blocked customer's token stops working and they cannot sign in;
        their tags answer Blocked at Authorize at once; unblocked, all is back.
        An operator cannot block themselves.
        """
        customer_token = yield self.login(CUSTOMER)
        code, me, _ = yield self.request("GET", "/api/auth/me", token=customer_token)
        customer_id = me["user"]["id"]
        id_tag = me["user"]["idTag"]
        charger = yield connect(self.daemon.port, "CP1", "key-1-0123456789ab")
        self.addCleanup(lambda: (charger.close(), charger.closed)[1])

        @inlineCallbacks
        def authorize() -> Any:
            charger.send(json.dumps([2, "a", "Authorize", {"idTag": id_tag}]))
            answer = json.loads((yield charger.messages.get()))
            return answer[2]["idTagInfo"]["status"]

        self.assertEqual((yield authorize()), "Accepted")
        path = f"/api/cms/users/{customer_id}"
        code, edited, _ = yield self.request(
            "PUT", path, {"name": "Jo Driver", "blocked": True}, token=self.token
        )
        self.assertEqual(code, 200, edited)
        self.assertEqual((edited["name"], edited["blocked"]), ("Jo Driver", True))
        self.assertEqual((yield authorize()), "Blocked")
        self.assertError(
            (yield self.request("GET", "/api/auth/me", token=customer_token)), 401, "unauthorized"
        )
        self.assertError(
            (
                yield self.request(
                    "POST", "/api/auth/login", {"email": CUSTOMER[0], "password": CUSTOMER[1]}
                )
            ),
            403,
            "account_blocked",
        )
        code, edited, _ = yield self.request("PUT", path, {"blocked": False}, token=self.token)
        self.assertEqual((code, edited["blocked"], edited["name"]), (200, False, "Jo Driver"))
        self.assertEqual((yield authorize()), "Accepted")
        yield self.login(CUSTOMER)

        code, me_admin, _ = yield self.request("GET", "/api/auth/me", token=self.token)
        self.assertError(
            (
                yield self.request(
                    "PUT",
                    f"/api/cms/users/{me_admin['user']['id']}",
                    {"blocked": True},
                    token=self.token,
                )
            ),
            409,
            "conflict",
        )
        self.assertError(
            (
                yield self.request(
                    "POST", "/api/cms/users", {"email": "JO@example.com"}, token=self.token
                )
            ),
            409,
            "conflict",
        )
        for body in (
            {"email": "nope"},
            {"email": "a@b.c", "password": "short"},
            {"email": "a@b.c", "x": 1},
        ):
            self.assertError(
                (yield self.request("POST", "/api/cms/users", body, token=self.token)),
                400,
                "bad_request",
            )
        self.assertError(
            (yield self.request("GET", "/api/cms/users/999", token=self.token)), 404, "not_found"
        )

    @inlineCallbacks
    def test_blocked_tag_refused_at_authorize(self) -> Any:
        """A tag an operator blocks answers Blocked at the next Authorize (no cache delay)."""
        charger = yield connect(self.daemon.port, "CP1", "key-1-0123456789ab")
        self.addCleanup(lambda: (charger.close(), charger.closed)[1])

        @inlineCallbacks
        def authorize(id_tag: str) -> Any:
            charger.send(json.dumps([2, "a", "Authorize", {"idTag": id_tag}]))
            answer = json.loads((yield charger.messages.get()))
            return answer[2]["idTagInfo"]["status"]

        self.assertEqual((yield authorize("fleet-001")), "Accepted")
        code, _, _ = yield self.request(
            "PUT", "/api/cms/tags/fleet-001", {"status": "Blocked"}, token=self.token
        )
        self.assertEqual(code, 200)
        self.assertEqual((yield authorize("FLEET-001")), "Blocked")
        self.assertEqual((yield authorize("NEW-CARD")), "Invalid")
        code, _, _ = yield self.request(
            "POST", "/api/cms/tags", {"idTag": "new-card"}, token=self.token
        )
        self.assertEqual(code, 201)
        self.assertEqual((yield authorize("NEW-CARD")), "Accepted")

    @inlineCallbacks
    def adjust(self, user_id: int, body: Any, key: str | None) -> Any:
        headers = {} if key is None else {"Idempotency-Key": key}
        result = yield self.request(
            "POST",
            f"/api/cms/users/{user_id}/wallet/adjustments",
            body,
            token=self.token,
            headers=headers,
        )
        return result

    @inlineCallbacks
    def test_wallet_adjustments(self) -> Any:
        """
        Credited once per key (a double click posts once), debits bounded by
        what is available, amounts bounded; audited with the reason; the
        customer sees it.
        """
        customer_token = yield self.login(CUSTOMER)
        code, me, _ = yield self.request("GET", "/api/auth/me", token=customer_token)
        customer_id = me["user"]["id"]
        credit = {"amount": 1500, "reason": "goodwill: charger fault on 28 Nov"}
        code, first, _ = yield self.adjust(customer_id, credit, "k1")
        self.assertEqual(code, 201, first)
        self.assertEqual(
            (
                first["transaction"]["kind"],
                first["transaction"]["amount"],
                first["wallet"]["balance"],
            ),
            ("adjustment", 1500, 1500),
        )
        code, again, _ = yield self.adjust(customer_id, credit, "k1")
        self.assertEqual((code, again["transaction"]["id"]), (200, first["transaction"]["id"]))
        self.assertEqual(again["wallet"]["balance"], 1500)
        self.assertError(
            (yield self.adjust(customer_id, {**credit, "amount": 10}, "k1")),
            409,
            "idempotency_conflict",
        )
        self.assertError((yield self.adjust(customer_id, credit, None)), 400, "bad_request")
        self.assertError(
            (yield self.adjust(customer_id, {"amount": -1501, "reason": "too much"}, "k2")),
            409,
            "insufficient_funds",
        )
        for body in (
            {"amount": 0, "reason": "nothing"},
            {"amount": 50_001, "reason": "beyond the bound"},
            {"amount": 1.5, "reason": "a fraction"},
            {"amount": 5, "reason": "x"},
            {"amount": 5},
        ):
            self.assertError((yield self.adjust(customer_id, body, "k3")), 400, "bad_request")
        code, debit, _ = yield self.adjust(
            customer_id, {"amount": -500, "reason": "double top-up"}, "k4"
        )
        self.assertEqual((code, debit["wallet"]["balance"]), (201, 1000))
        code, wallet, _ = yield self.request("GET", "/api/user/wallet", token=customer_token)
        self.assertEqual(wallet["balance"], 1000)
        history = yield self.get(f"/api/cms/users/{customer_id}/wallet/transactions")
        self.assertEqual(
            [(t["amount"], t["reference"]) for t in history["items"]],
            [(-500, "double top-up"), (1500, credit["reason"])],
        )
        detail = yield self.get(f"/api/cms/users/{customer_id}")
        self.assertEqual(detail["wallet"]["available"], 1000)
        rows = yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn),
            until=lambda rows: sum(r.action == "cms.wallet.adjusted" for r in rows) == 2,
        )
        entry = next(r for r in rows if r.action == "cms.wallet.adjusted")
        self.assertEqual(
            (entry.actor_user_id, entry.detail["data"]["amount"], entry.detail["data"]["reason"]),
            (1, 1500, credit["reason"]),
        )

    @inlineCallbacks
    def test_sessions_name_their_customer(self) -> Any:
        """The CMS's sessions and dashboard carry the customer's e-mail and name."""
        code, made, _ = yield self.request(
            "POST",
            "/api/cms/users",
            {"email": "ann@example.com", "name": "Ann Lee"},
            token=self.token,
        )
        self.assertEqual(code, 201, made)
        yield self.daemon.query(
            transactions.allocate_transaction,
            charge_point_id="CP1",
            connector_id=1,
            id_tag="ANN-CARD",
            id_tag_status="Accepted",
            meter_start_wh=0,
            started_at=T0,
            user_id=made["id"],
            now=T0,
        )
        sessions = yield self.get("/api/cms/sessions")
        self.assertEqual(
            sessions["items"][0]["customer"],
            {"userId": made["id"], "email": "ann@example.com", "name": "Ann Lee"},
        )
        dashboard = yield self.get("/api/cms/dashboard")
        self.assertEqual(dashboard["recentSessions"][0]["customer"]["name"], "Ann Lee")

    @inlineCallbacks
    def test_customers_refused(self) -> Any:
        """Every route of this module answers a customer 403."""
        customer = yield self.login(CUSTOMER)
        for method, path in (
            ("GET", "/api/cms/users"),
            ("GET", "/api/cms/users.csv"),
            ("GET", "/api/cms/tags.csv"),
            ("POST", "/api/cms/users"),
            ("GET", "/api/cms/users/2"),
            ("PUT", "/api/cms/users/2"),
            ("GET", "/api/cms/users/2/wallet/transactions"),
            ("POST", "/api/cms/users/2/wallet/adjustments"),
        ):
            body = {} if method in ("POST", "PUT") else None
            result = yield self.request(method, path, body, token=customer)
            self.assertError(result, 403, "forbidden")


class PostgresPeopleTests(PeopleTests):
    def daemon_overrides(self) -> list[str]:
        return [*postgres_overrides(self), *self.overrides]
