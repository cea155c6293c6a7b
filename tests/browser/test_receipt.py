"""
The receipt page of a finished session: what it shows, printable, its PDF
download, and nothing of another customer's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.store import tables, transactions, wallets
from tests.api.test_api import ADMIN, CUSTOMER
from tests.browser.base import CUSTOMER2, BrowserTestCase

T0 = datetime(2026, 11, 29, 10, tzinfo=UTC)
TARIFF = {
    "name": "Standard AC",
    "currency": "EUR",
    "pricePerKwh": 39,
    "pricePerMinute": 2,
    "sessionFee": 100,
}


class ReceiptPageTests(BrowserTestCase):
    overrides = ("billing.vat_rate=1900", "billing.receipt_issuer=Example Charging GmbH, Berlin")

    @inlineCallbacks
    def finished_session(self, who: tuple[str, str]) -> Any:
        """A session of ``who``'s at "Main St Garage": 12.345 kWh in 45 min 30 s, €6.72."""
        self.daemon.ocppctl(
            "charger", "add", "CP-R1", "--station", "Main St Garage", stdin="key-CP-R1-0123456789\n"
        )
        tariff = yield self.api_ok("POST", "/api/cms/tariffs", TARIFF, who=ADMIN)
        yield self.api_ok("PUT", "/api/cms/points/CP-R1", {"tariffId": tariff["id"]}, who=ADMIN)
        allocation = yield self.daemon.query(
            transactions.allocate_transaction,
            charge_point_id="CP-R1",
            connector_id=1,
            id_tag="TAG-R",
            id_tag_status="Accepted",
            meter_start_wh=1000,
            started_at=T0,
            user_id=self.user_ids[who[0]],
            now=T0,
        )
        session_id = allocation.transaction_id
        yield self.daemon.query(
            lambda conn: conn.execute(
                tables.transactions.update()
                .where(tables.transactions.c.id == session_id)
                .values(
                    tariff_id=tariff["id"],
                    status="completed",
                    meter_stop_wh=13345,
                    energy_wh=12345,
                    stopped_at=T0 + timedelta(minutes=45, seconds=30),
                    stop_reason="EVDisconnected",
                    cost=672,
                    currency="EUR",
                )
            )
        )
        return session_id

    @inlineCallbacks
    def test_receipt_page_and_pdf(self) -> Any:
        """
        The receipt shows station, charger, times, energy, the tariff's
        lines, the total and the VAT in it; "Download PDF" saves the
        server's PDF; on paper only the receipt is printed.
        """
        from playwright.sync_api import expect

        session_id = yield self.finished_session(CUSTOMER)
        page = yield self.open(CUSTOMER, f"/user/#/receipt/{session_id}")
        saved: list[bytes] = []

        def check() -> None:
            receipt = page.locator("article.receipt")
            expect(receipt).to_contain_text("Charging receipt")
            expect(receipt).to_contain_text("Example Charging GmbH, Berlin")
            expect(receipt).to_contain_text("Main St Garage")
            expect(receipt).to_contain_text("CP-R1, connector 1")
            expect(receipt).to_contain_text("Standard AC")
            expect(page.locator("[data-line=fee] td.num")).to_have_text("€1.00")
            expect(page.locator("[data-line=energy] td.num")).to_have_text("€4.81")
            expect(page.locator("[data-line=time] td.num")).to_have_text("€0.91")
            expect(page.locator("[data-figure=total]")).to_have_text("€6.72")
            expect(page.locator("[data-figure=vat]")).to_have_text("€1.07")
            expect(receipt).to_contain_text("VAT included (19%)")
            with page.expect_download() as info:
                page.get_by_role("button", name="Download PDF").click()
            download = info.value
            assert download.suggested_filename == f"receipt-{session_id}.pdf"
            with open(download.path(), "rb") as f:
                saved.append(f.read())
            # Printed: the receipt, without the navigation or the buttons.
            page.emulate_media(media="print")
            expect(page.locator(".topbar")).to_be_hidden()
            expect(page.get_by_role("button", name="Download PDF")).to_be_hidden()
            expect(receipt).to_be_visible()
            page.emulate_media(media="screen")

        yield self.b(check)
        self.assertTrue(saved[0].startswith(b"%PDF-"))
        self.assertIn("€6.72".encode("cp1252"), saved[0])
        yield self.screenshot(page, "user-receipt")
        phone = yield self.open(CUSTOMER, f"/user/#/receipt/{session_id}", width=390, height=844)

        def narrow() -> Any:
            expect(phone.locator("[data-figure=total]")).to_have_text("€6.72")
            return phone.evaluate("document.documentElement.scrollWidth")

        width = yield self.b(narrow)
        self.assertLessEqual(width, 390)
        yield self.screenshot(phone, "user-receipt-phone")

    @inlineCallbacks
    def test_from_the_wallet_and_not_anothers(self) -> Any:
        """
        The wallet's charging debit links to its receipt; another customer
        opening that receipt reads that there is no such session of theirs.
        """
        from playwright.sync_api import expect

        session_id = yield self.finished_session(CUSTOMER)
        yield self.daemon.query(
            lambda conn: wallets.post_transaction(
                conn,
                self.user_ids[CUSTOMER[0]],
                kind="debit",
                amount=-672,
                currency="EUR",
                idempotency_key=f"debit:{session_id}",
                session_id=session_id,
                now=T0,
            )
        )
        page = yield self.open(CUSTOMER, "/user/#/wallet")

        def follow() -> None:
            page.locator(f"[data-receipt-link='{session_id}']").click()
            expect(page.locator("[data-figure=total]")).to_have_text("€6.72")

        yield self.b(follow)
        other = yield self.open(CUSTOMER2, f"/user/#/receipt/{session_id}")

        def refused() -> None:
            expect(other.locator("[data-receipt=none]")).to_have_text(
                "There is no such session of yours."
            )
            expect(other.locator("article.receipt")).to_have_count(0)

        # The 404 of the API call is the browser's console line, not a page error.
        self.allow_console_error("404 (Not Found)")
        yield self.b(refused)

    @inlineCallbacks
    def test_pdf_in_the_readers_language(self) -> Any:
        """
        A reader who switched the panel to German, in an English browser
        (Accept-Language en-US), downloads a German PDF: the link passes the
        panel's language.
        """
        from playwright.sync_api import expect

        session_id = yield self.finished_session(CUSTOMER)
        page = yield self.open(CUSTOMER, f"/user/#/receipt/{session_id}")
        saved: list[bytes] = []

        def check() -> None:
            page.evaluate("localStorage.setItem('ocppd.language', 'de')")
            page.reload()
            expect(page.locator("article.receipt")).to_contain_text("Ladebeleg")
            with page.expect_download() as info:
                page.get_by_role("button", name="PDF herunterladen").click()
            with open(info.value.path(), "rb") as f:
                saved.append(f.read())

        yield self.b(check)
        for text in ("(Ladebeleg) Tj", "(Gesamt) Tj", "6,72 €", "Enthaltene MwSt."):
            self.assertIn(text.encode("cp1252"), saved[0], text)
