"""
The CMS's Customers, customer and Id tags pages over 500 seeded users and
500 seeded cards: search on the server in any case, sort, pages, CSV export
of what is shown; a wallet credited by hand once however often Post is
clicked, and audited; a customer and a card blocked (a charger's Authorize
then answers Blocked); sessions naming their customer, live; 360 px phones.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.store import audit, people, tags, users, wallets
from tests.browser.base import ADMIN, CUSTOMER, TAGS, BrowserTestCase

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SEEDED = 500


def seed(conn: Any) -> None:
    """500 customers (Fleet Driver 000 ... 499), each with one card FLEET-000 ..."""
    for n in range(SEEDED):
        user_id = users.add_user(conn, f"driver{n:03d}@fleet.example", "!", "customer", now=T0)
        people.update_user(
            conn, user_id, name=f"Fleet Driver {n:03d}", role="customer", blocked_at=None
        )
        tags.add_id_tag(conn, f"fleet-{n:03d}", user_id=user_id, now=T0)


def narrow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    # What sticks out, to say in the failure.
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 361).slice(0, 5)"
        ".map(e => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`)"
    )
    assert width <= 360, f"the page is {width} px wide on a 360 px screen: {wide}"


class PeoplePageTests(BrowserTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        yield self.daemon.query(seed)

    @inlineCallbacks
    def test_customers_search_pages_export(self) -> Any:
        """Pages of 50, search in any case as you type, sort, and the CSV of what is shown."""
        from playwright.sync_api import expect

        page = yield self.open(ADMIN, "/cms/#/customers")
        rows = page.locator("table tbody tr")

        def pages() -> None:
            expect(page.get_by_role("heading", level=1)).to_have_text("Customers")
            expect(rows).to_have_count(50)
            # E-mail A-Z: the seeded drivers first.
            expect(rows.first).to_contain_text("Fleet Driver 000")
            page.get_by_role("button", name="Show more customers").click()
            expect(rows).to_have_count(100)
            expect(rows.last).to_contain_text("Fleet Driver 099")
            expect(page.locator(".list-count")).to_have_text("100+ shown")

        yield self.b(pages)
        yield self.screenshot(page, "cms-customers")

        def search() -> Any:
            form = page.get_by_role("search", name="Search customers")
            form.get_by_label("Search").fill("fLEET driver 04")
            expect(rows).to_have_count(10)
            expect(page.get_by_role("button", name="Show more customers")).to_be_hidden()
            form.get_by_label("Sort by").select_option("-email")
            expect(rows.first).to_contain_text("Fleet Driver 049")
            with page.expect_download() as info:
                form.get_by_role("button", name="Export CSV").click()
            download = info.value
            assert download.suggested_filename == "customers.csv"
            with open(download.path(), encoding="utf-8") as f:
                exported = list(csv.reader(io.StringIO(f.read())))
            form.get_by_label("Search").fill("by-card:none")
            expect(page.locator(".state--empty")).to_contain_text("Nobody matches this search.")
            form.get_by_label("Search").fill("FLEET-123")
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("driver123@fleet.example")
            return exported

        exported = yield self.b(search)
        self.assertEqual(exported[0][:3], ["id", "email", "name"])
        self.assertEqual(
            [r[2] for r in exported[1:]], [f"Fleet Driver {n:03d}" for n in range(49, 39, -1)]
        )
        phone = yield self.open(ADMIN, "/cms/#/customers", width=360, height=780)

        def on_phone() -> None:
            expect(phone.locator("table tbody tr")).to_have_count(50)
            narrow(phone)

        yield self.b(on_phone)
        yield self.screenshot(phone, "cms-customers-phone")

    @inlineCallbacks
    def test_customer_wallet_and_block(self) -> Any:
        """
        A credit by hand posts once though Post is clicked twice, shows at
        once, and is audited with its reason; blocking asks first, then the
        customer's card is refused at Authorize.
        """
        from playwright.sync_api import expect

        jo = self.user_ids[CUSTOMER[0]]
        yield self.daemon.query(
            people.update_user, jo, name="Jo Driver", role="customer", blocked_at=None
        )
        page = yield self.open(ADMIN, f"/cms/#/customers/{jo}")

        def credit() -> None:
            expect(page.get_by_role("heading", level=1)).to_have_text("Jo Driver")
            expect(page.locator("[data-figure=balance]")).to_have_text("€0.00")
            page.get_by_role("button", name="Credit or debit").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("Amount (EUR)").fill("15.00")
            dialog.get_by_label("Reason").fill("goodwill: faulty charger on Monday")
            dialog.get_by_role("button", name="Post adjustment").dblclick()
            expect(page.locator("[data-figure=balance]")).to_have_text("€15.00")
            expect(page.locator("[data-field=reference]").first).to_have_text(
                " · goodwill: faulty charger on Monday"
            )

        yield self.b(credit)
        yield self.screenshot(page, "cms-customer")
        posted = yield self.daemon.query(wallets.transactions_page, jo, before_id=None, limit=10)
        self.assertEqual([(t.kind, t.amount) for t in posted], [("adjustment", 1500)])
        yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn),
            until=lambda rows: any(
                r.action == "cms.wallet.adjusted"
                and r.detail["data"]["reason"] == "goodwill: faulty charger on Monday"
                for r in rows
            ),
        )

        def too_much() -> None:
            page.get_by_role("button", name="Credit or debit").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("Direction").select_option("debit")
            dialog.get_by_label("Amount (EUR)").fill("20")
            dialog.get_by_label("Reason").fill("a mistake")
            dialog.get_by_role("button", name="Post adjustment").click()
            expect(dialog.locator(".form-error")).to_contain_text("below zero")
            dialog.get_by_role("button", name="Cancel").click()

        yield self.b(too_much)
        charger = yield self.charger("CP-PEOPLE")
        answer = yield charger.call("Authorize", {"idTag": TAGS[CUSTOMER[0]]})
        self.assertEqual(answer["idTagInfo"]["status"], "Accepted")

        def block(confirm: bool) -> None:
            page.locator("[data-action=block-user]").click()
            dialog = page.get_by_role("alertdialog")
            expect(dialog).to_contain_text("chargers refuse their cards")
            dialog.get_by_role("button", name="Block" if confirm else "Cancel").click()
            expect(page.locator("[data-field=status]").first).to_contain_text(
                "Blocked since" if confirm else "Active"
            )

        yield self.b(block, False)
        yield self.b(block, True)
        answer = yield charger.call("Authorize", {"idTag": TAGS[CUSTOMER[0]]})
        self.assertEqual(answer["idTagInfo"]["status"], "Blocked")
        phone = yield self.open(ADMIN, f"/cms/#/customers/{jo}", width=360, height=780)

        def on_phone() -> None:
            expect(phone.locator("[data-figure=balance]")).to_have_text("€15.00")
            narrow(phone)

        yield self.b(on_phone)
        yield self.screenshot(phone, "cms-customer-phone")

    @inlineCallbacks
    def test_tags_search_block_authorize(self) -> Any:
        """Cards in pages, searched by owner in any case; a card blocked here is refused."""
        from playwright.sync_api import expect

        charger = yield self.charger("CP-TAGS")
        page = yield self.open(ADMIN, "/cms/#/tags")
        rows = page.locator("table tbody tr")

        def pages() -> None:
            expect(page.get_by_role("heading", level=1)).to_have_text("Id tags")
            expect(rows).to_have_count(50)
            expect(rows.first).to_contain_text("FLEET-000")
            page.get_by_role("button", name="Show more cards").click()
            expect(rows).to_have_count(100)
            form = page.get_by_role("search", name="Search tags")
            form.get_by_label("Search").fill("driver 25")
            expect(rows).to_have_count(10)
            expect(rows.first).to_contain_text("Fleet Driver 250")

        yield self.b(pages)
        yield self.screenshot(page, "cms-id-tags")
        answer = yield charger.call("Authorize", {"idTag": "FLEET-251"})
        self.assertEqual(answer["idTagInfo"]["status"], "Accepted")

        def block() -> None:
            row = rows.filter(has_text="FLEET-251")
            row.get_by_role("button", name="Block FLEET-251").click()
            page.get_by_role("alertdialog").get_by_role("button", name="Block").click()
            expect(row.locator("[data-field=status]")).to_have_text("Blocked")

        yield self.b(block)
        answer = yield charger.call("Authorize", {"idTag": "fleet-251"})
        self.assertEqual(answer["idTagInfo"]["status"], "Blocked")
        phone = yield self.open(ADMIN, "/cms/#/tags", width=360, height=780)

        def on_phone() -> None:
            expect(phone.locator("table tbody tr")).to_have_count(50)
            narrow(phone)

        yield self.b(on_phone)
        yield self.screenshot(phone, "cms-id-tags-phone")

    @inlineCallbacks
    def test_sessions_name_the_customer_live(self) -> Any:
        """A session started now appears in the list and on its point with its customer's name."""
        from playwright.sync_api import expect

        jo = self.user_ids[CUSTOMER[0]]
        yield self.daemon.query(
            people.update_user, jo, name="Jo Driver", role="customer", blocked_at=None
        )
        charger = yield self.charger("CP-LIVE")
        page = yield self.open(ADMIN, "/cms/#/sessions")
        point = yield self.open(ADMIN, "/cms/#/points/CP-LIVE")
        yield self.wait_live(page)
        yield self.wait_live(point)
        yield charger.start(1, TAGS[CUSTOMER[0]], 1000)

        def named() -> None:
            for shown in (page, point):
                customer = shown.locator("table tbody tr [data-field=customer]").first
                expect(customer).to_have_text("Jo Driver")
            assert "(user" not in page.locator("table tbody").inner_text()

        yield self.b(named)

    @inlineCallbacks
    def test_blocked_customer_signed_out_live(self) -> Any:
        """A customer's open panel is signed out the moment an operator blocks them."""
        from playwright.sync_api import expect

        # autobahn-js answers the node's GOODBYE after closing (tests/browser/test_live.py).
        self.allow_console_error("WebSocket is already in CLOSING or CLOSED state.")
        jo = self.user_ids[CUSTOMER[0]]
        panel = yield self.open(CUSTOMER, "/user/")
        yield self.wait_live(panel)
        yield self.api_ok("PUT", f"/api/cms/users/{jo}", {"blocked": True})

        def signed_out() -> None:
            expect(panel.get_by_role("button", name="Sign in")).to_be_visible()
            panel.get_by_label("Email").fill(CUSTOMER[0])
            panel.get_by_label("Password").fill(CUSTOMER[1])
            panel.get_by_role("button", name="Sign in").click()
            # The code account_blocked in the panel's words (webroot/user/i18n/).
            expect(panel.get_by_role("alert")).to_have_text(
                "This account is blocked. Ask the operator of this charging network."
            )

        yield self.b(signed_out)
