"""
Every page of both front ends on a real node: what it shows from the REST API,
its empty and error states, and the CMS forms. Each test leaves screenshots.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import fail, inlineCallbacks

from ocppd.presence.interface import PresenceUnavailable
from ocppd.store import chargers, messages, wallets
from tests.browser.base import ADMIN, CUSTOMER, BrowserTestCase


class CustomerPageTests(BrowserTestCase):
    # The wallet page offers top-ups only with a payment provider, chosen explicitly.
    overrides = ("billing.payment_provider=test",)

    @inlineCallbacks
    def test_empty_states(self) -> Any:
        """A new customer sees friendly empty states, not blank pages."""
        from playwright.sync_api import expect

        page = yield self.open(CUSTOMER, "/user/#/stations")

        def check() -> None:
            expect(page.locator(".state--empty")).to_have_text("There are no stations yet.")
            nav = page.get_by_role("navigation", name="Main")
            nav.get_by_role("link", name="History").click()
            expect(page.locator(".state--empty")).to_contain_text("No charging sessions yet")
            nav.get_by_role("link", name="Charging").click()
            expect(page.locator(".state--empty")).to_contain_text("You are not charging right now")
            page.goto(page.url.split("#")[0] + "#/chargers/NOPE")
            expect(page.locator(".state--error")).to_contain_text("There is no charger NOPE")

        yield self.b(check)

    @inlineCallbacks
    def test_numbers_in_the_readers_locale(self) -> Any:
        """Money and words follow the browser's locale (German: decimal comma, € after)."""
        from playwright.sync_api import expect

        page = yield self.open(CUSTOMER, "/user/#/wallet", locale="de-DE")

        def check() -> None:
            expect(page.locator("[data-figure=balance]")).to_have_text("0,00\u00a0€")
            expect(page.locator("button[data-amount]").first).to_have_text("+ 10,00\u00a0€")
            page.get_by_label("Anderer Betrag (EUR)").fill("12,5")
            page.get_by_role("button", name="Aufladen", exact=True).click()
            expect(page.locator("[data-figure=balance]")).to_have_text("12,50\u00a0€")

        yield self.b(check)

    @inlineCallbacks
    def test_stations_and_charger_detail(self) -> Any:
        """Stations list their chargers' availability; a charger's page shows its connectors."""
        from playwright.sync_api import expect

        yield self.charger("CP-1", connectors=2, station="Main Street")
        offline = yield self.charger("CP-2", station="Main Street")
        yield offline.close()
        yield self.charger("CP-3", station="Harbour")
        yield self.daemon.wait_for(
            chargers.get_charge_point, "CP-2", until=lambda cp: cp is not None and not cp.online
        )
        # Start is offered only with the minimum in the wallet (else disabled, saying why).
        yield self.api_ok("POST", "/api/user/wallet/top-up", {"amount": 1000}, who=CUSTOMER)
        page = yield self.open(CUSTOMER, "/user/#/stations")

        def stations() -> None:
            main = page.locator("[data-station]").filter(has_text="Main Street")
            expect(main.locator(".availability")).to_have_text("1 of 2 chargers available")
            expect(main.locator("[data-charger=CP-1] .badge")).to_have_text(
                ["1: Available", "2: Available"]
            )
            expect(main.locator("[data-charger=CP-2]")).to_contain_text("Offline")
            expect(main.locator("[data-charger=CP-2] [data-field=price]")).to_have_text(
                "No price set: not billed"
            )
            page.get_by_label("Find a station").fill("harb")
            expect(page.locator("[data-station]:visible")).to_have_count(1)
            page.get_by_label("Find a station").fill("")

        yield self.b(stations)
        yield self.screenshot(page, "user-stations")

        def detail() -> None:
            page.get_by_role("link", name="CP-1").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Charger CP-1")
            expect(page.locator("[data-connector]")).to_have_count(2)
            expect(page.get_by_role("button", name="Start charging on connector 1")).to_be_enabled()
            expect(page.locator(".charger-online")).to_have_text("Connected")

        yield self.b(detail)

        phone = yield self.open(CUSTOMER, "/user/#/stations", width=390, height=844)

        def narrow() -> Any:
            expect(phone.locator("[data-station]")).to_have_count(2)
            return phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")

        overflow = yield self.b(narrow)
        self.assertLessEqual(overflow, 0, "the page scrolls sideways on a phone")
        yield self.screenshot(phone, "user-stations-phone")

    @inlineCallbacks
    def test_older_wallet_transactions(self) -> Any:
        """The newest 25 transactions show; "Show older" adds the rest, then hides."""
        from playwright.sync_api import expect

        start = datetime(2026, 11, 1, tzinfo=UTC)
        for n in range(30):
            yield self.daemon.query(
                wallets.post_transaction,
                self.user_ids[CUSTOMER[0]],
                kind="top_up",
                amount=100 + n,
                currency="EUR",
                idempotency_key=f"paging-{n}",
                now=start + timedelta(hours=n),
            )
        page = yield self.open(CUSTOMER, "/user/#/wallet")

        def check() -> None:
            rows = page.locator("table tbody tr")
            expect(rows).to_have_count(25)
            expect(rows.first.locator("[data-field=amount]")).to_contain_text("1.29")
            older = page.get_by_role("button", name="Show older transactions")
            older.click()
            expect(rows).to_have_count(30)
            expect(rows.last.locator("[data-field=amount]")).to_contain_text("1.00")
            expect(older).to_be_hidden()

        yield self.b(check)


class CmsPageTests(BrowserTestCase):
    @inlineCallbacks
    def test_stations_tariffs_points_crud(self) -> Any:
        """An operator creates a station, a tariff and a point, assigns them, edits and deletes."""
        from playwright.sync_api import expect

        page = yield self.open(ADMIN, "/cms/#/stations")

        def stations() -> None:
            expect(page.locator(".state--empty")).to_contain_text("No stations yet")
            page.get_by_role("button", name="New station").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("Name").fill("Depot North")
            dialog.get_by_label("Address").fill("1 Harbour Road")
            dialog.get_by_label("Latitude").fill("52.52")
            dialog.get_by_label("Longitude").fill("13.405")
            dialog.get_by_role("button", name="Create station").click()
            expect(page.locator("tbody tr")).to_have_count(1)
            expect(page.locator("tbody tr")).to_contain_text("1 Harbour Road")
            # A taken name is refused and said so in the dialog.
            page.get_by_role("button", name="New station").click()
            page.get_by_role("dialog").get_by_label("Name").fill("Depot North")
            page.get_by_role("dialog").get_by_role("button", name="Create station").click()
            expect(page.get_by_role("dialog").locator(".form-error")).to_be_visible()
            page.get_by_role("dialog").get_by_role("button", name="Cancel").click()

        yield self.b(stations)
        yield self.screenshot(page, "cms-stations")

        def tariffs() -> None:
            page.get_by_role("link", name="Tariffs").click()
            page.get_by_role("button", name="New tariff").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("Name").fill("Standard")
            dialog.get_by_label("Price per kWh").fill("0.35")
            dialog.get_by_label("Session fee").fill("1,00")
            dialog.get_by_role("button", name="Create tariff").click()
            row = page.locator("tbody tr").filter(has_text="Standard")
            expect(row).to_contain_text("€0.35/kWh")
            expect(row).to_contain_text("€1.00")
            row.get_by_role("button", name="Edit Standard").click()
            page.get_by_role("dialog").get_by_label("Price per kWh").fill("0.42")
            page.get_by_role("dialog").get_by_role("button", name="Save").click()
            expect(row).to_contain_text("€0.42/kWh")

        yield self.b(tariffs)
        yield self.screenshot(page, "cms-tariffs")

        def points() -> None:
            page.get_by_role("link", name="Charging points").click()
            page.get_by_role("button", name="New charging point").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("Charge point id").fill("CP-NEW")
            dialog.get_by_label("Station").select_option(label="Depot North")
            dialog.get_by_label("Tariff").select_option(label="Standard (€0.42/kWh)")
            dialog.get_by_label("Authorization key").fill("the-key-0123456789")
            dialog.get_by_role("button", name="Create charging point").click()
            row = page.locator("tbody tr").filter(has_text="CP-NEW")
            expect(row).to_contain_text("Depot North")
            expect(row).to_contain_text("Standard")
            expect(row).to_contain_text("Set")

        yield self.b(points)
        yield self.screenshot(page, "cms-points")
        # The key set in the form is the one the charger must present.
        charger = yield self.scripted("CP-NEW", "the-key-0123456789")
        answer = yield charger.boot()
        self.assertEqual(answer["status"], "Accepted")

        def delete_station_in_use() -> None:
            page.get_by_role("link", name="Stations").click()
            page.get_by_role("button", name="Delete Depot North").click()
            page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
            expect(page.locator(".toast--bad")).to_be_visible()
            expect(page.locator("tbody tr")).to_have_count(1)

        yield self.b(delete_station_in_use)

    @inlineCallbacks
    def test_older_log_messages(self) -> Any:
        """The log shows its newest 100 frames; "Show older" adds the rest, then hides."""
        from playwright.sync_api import expect

        charger = yield self.charger("CP-8")  # a boot and a status: 4 frames
        for n in range(50):
            yield charger.call("DataTransfer", {"vendorId": "acme", "messageId": f"m{n}"})
        yield self.daemon.wait_for(
            lambda conn: messages.list_messages(conn, "CP-8", limit=200),
            until=lambda rows: len(rows) >= 104,
        )
        page = yield self.open(ADMIN, "/cms/#/points/CP-8")

        def check() -> None:
            frames = page.locator("[data-log] li")
            expect(frames).to_have_count(100)
            older = page.get_by_role("button", name="Show older messages")
            older.click()
            expect(frames).to_have_count(104)
            expect(page.locator("[data-log] li[data-action=BootNotification]")).to_have_count(2)
            expect(older).to_be_hidden()

        yield self.b(check)

    @inlineCallbacks
    def test_online_as_last_recorded_while_presence_is_down(self) -> Any:
        """Presence unreachable: the points list and page say the state is the store's last."""
        from playwright.sync_api import expect

        yield self.charger("CP-7")
        node = self.daemon.node
        yield self.daemon.wait_for(
            chargers.get_charge_point, "CP-7", until=lambda cp: cp is not None and cp.online
        )
        self.patch(node.presence, "owners", lambda ids: fail(PresenceUnavailable("Redis is down")))
        page = yield self.open(ADMIN, "/cms/#/points")

        def check() -> None:
            row = page.locator("tr", has_text="CP-7")
            expect(row.locator("[data-field=online]")).to_contain_text("Online")
            expect(row.locator("[data-field=online-stale]")).to_have_text("(last recorded)")
            page.goto(page.url.replace("#/points", "#/points/CP-7"))
            expect(page.locator("[data-field=online-stale]")).to_have_text("(last recorded)")

        yield self.b(check)

    @inlineCallbacks
    def test_point_detail_commands_and_log(self) -> Any:
        """The point's page shows its status and OCPP log, and the charger's answer to a command."""
        from playwright.sync_api import expect

        charger = yield self.charger("CP-9", connectors=2)
        yield self.daemon.wait_for(
            messages.list_messages, "CP-9", until=lambda rows: len(rows) >= 6
        )
        page = yield self.open(ADMIN, "/cms/#/points/CP-9")

        def check() -> None:
            expect(page.get_by_role("heading", level=1)).to_have_text("CP-9")
            expect(page.locator("[data-field=online]")).to_contain_text("Online")
            expect(page.locator("[data-log] li[data-action=BootNotification]")).to_have_count(2)
            page.get_by_label("Command", exact=True).select_option("reset")
            reset = page.locator("form[data-command=reset]")
            reset.get_by_label("Type").select_option("Hard")
            reset.get_by_role("button", name="Send").click()
            page.get_by_role("alertdialog").get_by_role("button", name="Hard reset").click()
            expect(page.locator(".command-answer")).to_contain_text("Reset:")
            expect(page.locator(".command-answer .badge")).to_have_text("Accepted")
            page.get_by_label("Command", exact=True).select_option("unlock-connector")
            unlock = page.locator("form[data-command=unlock-connector]")
            unlock.get_by_label("Connector id").fill("1")
            unlock.get_by_role("button", name="Send").click()
            page.get_by_role("alertdialog").get_by_role("button", name="Unlock").click()
            expect(page.locator("[data-answer=unlock-connector]")).to_contain_text(
                '"status": "Unlocked"'
            )

        yield self.b(check)
        self.assertIn(("Reset", {"type": "Hard"}), charger.commands)
        yield self.screenshot(page, "cms-point-detail")
        yield charger.close()

        def offline_answer() -> None:
            page.get_by_label("Command", exact=True).select_option("reset")
            page.locator("form[data-command=reset]").get_by_label("Type").select_option("Soft")
            page.locator("form[data-command=reset]").get_by_role("button", name="Send").click()
            page.get_by_role("alertdialog").get_by_role("button", name="Soft reset").click()
            expect(page.locator("[data-answer=reset]")).to_contain_text("not connected")

        yield self.b(offline_answer)
