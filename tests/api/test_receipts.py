"""
Receipts of finished sessions over real HTTP: the JSON the printable page
shows and the PDF download, for the session's own customer only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.web.client import HTTPConnectionPool

from ocppd.store import tables, transactions
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase
from tests.browser.browser import WEBROOT
from tests.integration.daemon import postgres_overrides

OTHER = ("sam@example.com", "yet another long password")
T0 = datetime(2026, 11, 29, 10, tzinfo=UTC)
# 39 cents per kWh, 2 per minute, 1.00 per session.
TARIFF = {
    "name": "Standard AC",
    "currency": "EUR",
    "pricePerKwh": 39,
    "pricePerMinute": 2,
    "sessionFee": 100,
}


class ReceiptTestCase(ApiTestCase):
    overrides = (
        "billing.vat_rate=1900",
        "billing.receipt_issuer=Example Charging GmbH, Berlin",
        # The PDF's words come from the panel's catalogue there.
        f"web.webroot={WEBROOT}",
    )

    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        yield self.add_user(OTHER, "customer")
        admin = yield self.login(ADMIN)
        self.customer = yield self.login(CUSTOMER)
        self.other = yield self.login(OTHER)
        code, tariff, _ = yield self.request("POST", "/api/cms/tariffs", TARIFF, token=admin)
        self.assertEqual(code, 201, tariff)
        station = {"name": "Main St Garage", "address": "1 Main St, Zürich"}
        code, station, _ = yield self.request("POST", "/api/cms/stations", station, token=admin)
        self.assertEqual(code, 201, station)
        code, body, _ = yield self.request(
            "PUT",
            "/api/cms/points/CP1",
            {"tariffId": tariff["id"], "stationId": station["id"]},
            token=admin,
        )
        self.assertEqual(code, 200, body)
        self.tariff_id = tariff["id"]

    @inlineCallbacks
    def session(self, email: str, *, stop: bool = True, cost: int = 672, **changes: Any) -> Any:
        """A session of ``email``'s on CP1: 12 345 Wh over 45 min 30 s, billed ``cost``."""
        user_id = yield self.daemon.query(
            lambda conn: (
                conn.execute(tables.users.select().where(tables.users.c.email == email)).first().id
            )
        )
        # Each its own start (a start seen before is the same session).
        self.started = getattr(self, "started", 0) + 1
        started_at = T0 + timedelta(days=self.started - 1)
        allocation = yield self.daemon.query(
            transactions.allocate_transaction,
            charge_point_id="CP1",
            connector_id=1,
            id_tag=f"TAG-{user_id}",
            id_tag_status="Accepted",
            meter_start_wh=1000,
            started_at=started_at,
            user_id=user_id,
            now=started_at,
        )
        session_id = allocation.transaction_id
        values: dict[str, Any] = {"user_id": user_id, "tariff_id": self.tariff_id}
        if stop:
            values.update(
                status="completed",
                meter_stop_wh=13345,
                energy_wh=12345,
                stopped_at=started_at + timedelta(minutes=45, seconds=30),
                stop_reason="EVDisconnected",
                cost=cost,
                currency="EUR",
            )
        values.update(changes)
        yield self.daemon.query(
            lambda conn: conn.execute(
                tables.transactions.update()
                .where(tables.transactions.c.id == session_id)
                .values(**values)
            )
        )
        return session_id

    @inlineCallbacks
    def pdf(self, session_id: int, token: str, query: str = "", **headers: str) -> Any:
        response = yield treq.get(
            self.url(f"/api/user/sessions/{session_id}/receipt.pdf{query}"),
            headers={"Authorization": f"Bearer {token}", **headers},
            pool=HTTPConnectionPool(reactor, persistent=False),
        )
        body = yield response.content()
        return response, body


class ReceiptTests(ReceiptTestCase):
    @inlineCallbacks
    def test_receipt_json(self) -> Any:
        """Station, charger, times, energy, tariff lines, total and the VAT in it."""
        session_id = yield self.session(CUSTOMER[0])
        code, receipt, _ = yield self.request(
            "GET", f"/api/user/sessions/{session_id}/receipt", token=self.customer
        )
        self.assertEqual(code, 200, receipt)
        self.assertEqual(receipt["number"], f"S-{session_id:08d}")
        self.assertEqual(receipt["issuer"], "Example Charging GmbH, Berlin")
        self.assertEqual(receipt["customer"], CUSTOMER[0])
        self.assertEqual(receipt["station"]["name"], "Main St Garage")
        self.assertEqual(receipt["charger"]["id"], "CP1")
        self.assertEqual(receipt["session"]["startedAt"], "2026-11-29T10:00:00.000Z")
        self.assertEqual(receipt["session"]["stoppedAt"], "2026-11-29T10:45:30.000Z")
        self.assertEqual(receipt["session"]["durationSeconds"], 2730)
        self.assertEqual(receipt["session"]["energyWh"], 12345)
        self.assertEqual(receipt["tariff"]["name"], "Standard AC")
        self.assertEqual(
            [(line["kind"], line["amount"]) for line in receipt["lines"]],
            [("fee", 100), ("energy", 481), ("time", 91)],
        )
        self.assertEqual((receipt["total"], receipt["currency"]), (672, "EUR"))
        self.assertEqual(receipt["vat"], {"rateBasisPoints": 1900, "amount": 107, "net": 565})

    @inlineCallbacks
    def test_receipt_pdf(self) -> Any:
        """A PDF (starts %PDF) holding the number, the station, the total and the VAT."""
        session_id = yield self.session(CUSTOMER[0])
        response, body = yield self.pdf(session_id, self.customer)
        self.assertEqual(response.code, 200, body[:200])
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/pdf"])
        self.assertIn(
            f'filename="receipt-{session_id}.pdf"',
            response.headers.getRawHeaders("content-disposition")[0],
        )
        self.assertTrue(body.startswith(b"%PDF-"), body[:20])
        # Helvetica's text is Windows-1252: the euro sign is byte 0x80.
        for text in (f"S-{session_id:08d}", "Main St Garage", "€6.72", "€1.07", "€5.65", "19 %"):
            self.assertIn(text.encode("cp1252"), body, text)
        # The same session gives the same document.
        _, again = yield self.pdf(session_id, self.customer)
        self.assertEqual(again, body)

    @inlineCallbacks
    def test_receipt_pdf_in_german(self) -> Any:
        """
        ``lang=de`` (the panel's reader's language) or a German Accept-Language:
        the catalogue's German words, German money and dates.
        """
        session_id = yield self.session(CUSTOMER[0])
        for query, headers in (
            ("?lang=de", {"Accept-Language": "fr-FR,fr"}),
            ("", {"Accept-Language": "pl-PL, de-AT;q=0.9, en;q=0.8"}),
        ):
            response, body = yield self.pdf(session_id, self.customer, query, **headers)
            self.assertEqual(response.code, 200, body[:200])
            for text in (
                "(Ladebeleg) Tj", "(Gesamt) Tj", "(Netto) Tj", "6,72 €", "1,07 €", "5,65 €",
                "Enthaltene MwSt. \\(19 %\\)", "29.11.2026 10:00 UTC", "Anschluss 1",
            ):  # fmt: skip
                self.assertIn(text.encode("cp1252"), body, text)
            self.assertNotIn("€6.72".encode("cp1252"), body)
            self.assertNotIn(b"(Total) Tj", body)

    @inlineCallbacks
    def test_receipt_pdf_english_by_default(self) -> Any:
        """
        No language asked for, one the panel does not speak, or an
        Accept-Language too long or not ASCII: English, never an error.
        """
        session_id = yield self.session(CUSTOMER[0])
        for query, headers in (
            ("", {}),
            ("?lang=xx", {"Accept-Language": "ja, pl;q=0.5"}),
            ("", {"Accept-Language": "de," + "x-y;q=0.1," * 200}),
            ("", {"Accept-Language": "de-\u00e4".encode().decode("unicode_escape")}),
        ):
            response, body = yield self.pdf(session_id, self.customer, query, **headers)
            self.assertEqual(response.code, 200, body[:200])
            for text in ("(Charging receipt) Tj", "(Total) Tj", "€6.72", "2026-11-29 10:00 UTC"):
                self.assertIn(text.encode("cp1252"), body, (query, text))

    @inlineCallbacks
    def test_only_the_customers_own(self) -> Any:
        """
        Another customer's session is 404 like no session at all (JSON and
        PDF), to the admin too; a running session or one held for review is
        409, with no receipt yet.
        """
        mine = yield self.session(CUSTOMER[0])
        for token in (self.other, (yield self.login(ADMIN))):
            for path in (f"/api/user/sessions/{mine}/receipt", "/api/user/sessions/99999/receipt"):
                result = yield self.request("GET", path, token=token)
                self.assertError(result, 404, "not_found")
            response, body = yield self.pdf(mine, token)
            self.assertEqual(response.code, 404, body)
            self.assertNotIn(b"%PDF", body)
        running = yield self.session(CUSTOMER[0], stop=False)
        result = yield self.request(
            "GET", f"/api/user/sessions/{running}/receipt", token=self.customer
        )
        self.assertError(result, 409, "session_active")
        held = yield self.session(CUSTOMER[0], cost=None, review_status="pending")
        result = yield self.request(
            "GET", f"/api/user/sessions/{held}/receipt", token=self.customer
        )
        self.assertError(result, 409, "receipt_pending")
        result = yield self.request("GET", f"/api/user/sessions/{mine}/receipt")
        self.assertError(result, 401, "unauthorized")


class PostgresReceiptTests(ReceiptTests):
    def daemon_overrides(self) -> list[str]:
        return [*postgres_overrides(self), *super().daemon_overrides()]
