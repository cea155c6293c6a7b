"""
The customer panel as a driver meets it (issue 17): prices before starting,
a live session whole from its first second and across a reload, the
dashboard finding the running session, sessions that never started, phones
(360 and 390 px), and actions that cannot succeed disabled with the reason.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import inlineCallbacks, succeed

from ocppd.store import transactions
from tests.browser.base import ADMIN, CUSTOMER, TAGS, BrowserTestCase
from tests.browser.charger import now
from tests.integration.daemon import poll

PHONE = {"width": 390, "height": 844}


class DriverTestCase(BrowserTestCase):
    # Top-ups need a payment provider, chosen explicitly.
    overrides = ("billing.payment_provider=test",)

    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.require_push()

    @inlineCallbacks
    def priced_charger(self, charge_point_id: str, *, connectors: int = 1) -> Any:
        """A connected charger with a tariff: €0.30/kWh, €0.02/min and €1.00 a session."""
        charger = yield self.charger(charge_point_id, connectors=connectors, station="Main Street")
        tariff = yield self.api_ok(
            "POST",
            "/api/cms/tariffs",
            {
                "name": f"Standard {charge_point_id}",
                "currency": "EUR",
                "pricePerKwh": 30,
                "pricePerMinute": 2,
                "sessionFee": 100,
            },
        )
        yield self.api_ok("PUT", f"/api/cms/points/{charge_point_id}", {"tariffId": tariff["id"]})
        return charger

    def top_up(self, amount: int) -> Any:
        return self.api_ok("POST", "/api/user/wallet/top-up", {"amount": amount}, who=CUSTOMER)

    @staticmethod
    def refuse_remote_starts(charger: Any) -> None:
        """``charger`` answers every RemoteStartTransaction Rejected, other commands as usual."""
        command = charger._command

        def refuse(unique_id: str, action: str, payload: dict[str, Any]) -> None:
            if action != "RemoteStartTransaction":
                command(unique_id, action, payload)
                return
            charger.client.send(json.dumps([3, unique_id, {"status": "Rejected"}]))

        charger._command = refuse

    @inlineCallbacks
    def started_from_the_panel(self, page: Any, charger: Any) -> Any:
        """Press Start on ``page`` (the charger's) and let the charger start: the session id."""
        from playwright.sync_api import expect

        started: list[int] = []
        charger.on_remote_start = lambda connector, tag: charger.start(
            connector, tag, 10_000
        ).addCallback(started.append)
        yield self.b(
            lambda: page.get_by_role("button", name="Start charging on connector 1").click()
        )
        yield poll(lambda: succeed(started), until=bool)
        yield self.expect(
            lambda: expect(page.locator("[data-session-state=active]")).to_contain_text(
                f"Charging at {charger.charge_point_id}"
            )
        )
        return started[0]


class PricesAndReasonsTests(DriverTestCase):
    @inlineCallbacks
    def test_prices_up_front_and_start_disabled_with_the_reason(self) -> Any:
        """
        The stations list and the charger page show the price; Start is
        disabled, saying why, until the wallet holds the minimum; while a
        session runs every other Start says the driver is charging already.
        """
        from playwright.sync_api import expect

        charger = yield self.priced_charger("CP-1", connectors=2)
        stations = yield self.open(CUSTOMER, "/user/#/stations")
        yield self.expect(
            lambda: expect(stations.locator("[data-charger=CP-1] [data-field=price]")).to_have_text(
                "€0.30 per kWh · €0.02 per minute · €1.00 per session"
            )
        )
        page = yield self.open(CUSTOMER, "/user/#/chargers/CP-1")
        yield self.wait_live(page)

        def short_of_funds() -> None:
            prices = page.locator("[data-card=price]")
            expect(prices.locator("li")).to_have_text(
                ["€0.30 per kWh", "€0.02 per minute", "€1.00 per session"]
            )
            expect(prices).to_contain_text("charged once energy flows")
            start = page.get_by_role("button", name="Start charging on connector 1")
            expect(start).to_be_disabled()
            expect(page.locator("[data-connector='1'] [data-why=start]")).to_have_text(
                "Starting needs €5.00 available in your wallet; you have €0.00. Top up your wallet"
            )
            expect(start).to_have_attribute("aria-describedby", "why-1")

        yield self.b(short_of_funds)
        yield self.screenshot(page, "user-charger-detail")
        yield self.phone_screenshot(page, "user-charger-detail-phone")
        yield self.top_up(2000)
        start = page.get_by_role("button", name="Start charging on connector 1")
        yield self.expect(lambda: expect(start).to_be_enabled())
        yield self.expect(lambda: expect(page.locator("[data-why=start]")).to_have_count(0))
        detail = yield self.open(CUSTOMER, "/user/#/chargers/CP-1")
        yield self.wait_live(detail)
        yield self.started_from_the_panel(detail, charger)
        yield self.expect(
            lambda: expect(page.locator("[data-connector='2'] [data-why=start]")).to_contain_text(
                "You are already charging at CP-1 (connector 1)."
            )
        )
        yield self.expect(
            lambda: expect(
                page.get_by_role("button", name="Start charging on connector 2")
            ).to_be_disabled()
        )
        yield self.expect(
            lambda: expect(page.locator("[data-connector='1']")).to_contain_text(
                "Your session: open"
            )
        )

    @inlineCallbacks
    def test_plug_and_power_from_the_cms(self) -> Any:
        """An operator records the plug and power in the CMS; drivers see them before starting."""
        from playwright.sync_api import expect

        yield self.priced_charger("CP-1")
        cms = yield self.open(ADMIN, "/cms/#/points")

        def record() -> None:
            cms.get_by_role("button", name="Edit CP-1").click()
            dialog = cms.get_by_role("dialog")
            dialog.get_by_label("Plug").select_option(label="Type 2")
            dialog.get_by_label("Maximum power (kW)").fill("22")
            dialog.get_by_role("button", name="Save").click()
            expect(dialog).to_be_hidden()

        yield self.b(record)
        point = yield self.api_ok("GET", "/api/cms/points/CP-1")
        self.assertEqual((point["connectorType"], point["maxPowerW"]), ("Type2", 22000))
        stations = yield self.open(CUSTOMER, "/user/#/stations")
        yield self.expect(
            lambda: expect(stations.locator("[data-charger=CP-1] [data-field=plug]")).to_have_text(
                "Type 2 · up to 22.0 kW"
            )
        )
        page = yield self.open(CUSTOMER, "/user/#/chargers/CP-1")
        yield self.expect(
            lambda: expect(page.locator("dd[data-field=plug]")).to_have_text(
                "Type 2 · up to 22.0 kW"
            )
        )

    @inlineCallbacks
    def test_a_refused_start_says_so_in_words(self) -> Any:
        """A charger that refuses the start: a sentence, not the server's code."""
        from playwright.sync_api import expect

        charger = yield self.priced_charger("CP-1")
        yield self.top_up(2000)
        page = yield self.open(CUSTOMER, "/user/#/chargers/CP-1")
        yield self.wait_live(page)
        self.refuse_remote_starts(charger)

        def refused() -> None:
            page.get_by_role("button", name="Start charging on connector 1").click()
            expect(page.locator(".start-message")).to_have_text(
                "The charger refused to start. Try again, or try another connector."
            )
            expect(page.get_by_role("button", name="Start charging on connector 1")).to_be_enabled()

        yield self.b(refused)


class LiveSessionTests(DriverTestCase):
    @inlineCallbacks
    def test_whole_from_its_first_second_and_across_a_reload(self) -> Any:
        """
        On a phone (390x844): before any meter value the session shows 0 kWh,
        €0.00 and its price, energy and cost above the fold; meter values
        climb; a reload shows the same numbers and chart; the stop says why
        in words.
        """
        from playwright.sync_api import expect

        charger = yield self.priced_charger("CP-1")
        yield self.top_up(2000)
        page = yield self.open(CUSTOMER, "/user/#/chargers/CP-1", **PHONE)
        yield self.wait_live(page)
        tx = yield self.started_from_the_panel(page, charger)

        def first_second() -> Any:
            expect(page.locator("[data-figure=energy]")).to_have_text("0.00 kWh")
            expect(page.locator("[data-figure=cost]")).to_have_text("€0.00")
            expect(page.locator("[data-figure=power]")).to_have_text("0.0 kW")
            expect(page.locator("[data-field=fee-note]")).to_contain_text("charged once energy")
            expect(page.locator("[data-card=price] li").first).to_have_text("€0.30 per kWh")
            return [
                page.locator(f"[data-figure={name}]").bounding_box() for name in ("energy", "cost")
            ]

        boxes = yield self.b(first_second)
        for box in boxes:
            self.assertLessEqual(box["y"] + box["height"], PHONE["height"], boxes)
        yield self.screenshot(page, "user-session-start-phone")
        yield self.wait_live(page)
        yield charger.meter(1, tx, 10_800, 7_200)
        yield charger.meter(1, tx, 11_500, 7_400)

        def climbing() -> dict[str, str]:
            expect(page.locator("[data-figure=energy]")).to_have_text("1.50 kWh")
            expect(page.locator("[data-figure=power]")).to_have_text("7.4 kW")
            expect(page.locator(".chart")).to_have_attribute("data-points", "2")
            expect(page.locator("[data-field=fee-note]")).to_have_text(
                "Includes the €1.00 session fee."
            )
            return {
                name: page.locator(f"[data-figure={name}]").inner_text()
                for name in ("energy", "cost", "power")
            }

        before = yield self.b(climbing)
        session = yield self.daemon.query(transactions.get_transaction, tx)
        self.assertIsNotNone(session)
        # The session's own URL, reloaded: the same figures and chart, from the snapshot.
        yield self.b(lambda: page.goto(page.url.split("#")[0] + f"#/session/{tx}"))
        yield self.b(lambda: page.reload())
        yield self.wait_live(page)

        def same_after_reload() -> Any:
            expect(page.locator("[data-figure=energy]")).to_have_text(before["energy"])
            expect(page.locator("[data-figure=cost]")).to_have_text(before["cost"])
            expect(page.locator("[data-figure=power]")).to_have_text(before["power"])
            expect(page.locator(".chart")).to_have_attribute("data-points", "2")
            # The time axis is the session's minutes, never a span of years.
            return page.locator(".chart .u-axis").first.inner_text()

        axis = yield self.b(same_after_reload)
        self.assertNotRegex(axis, r"20\d\d", axis)
        yield self.screenshot(page, "user-active-session-phone")
        # A reading with the car's state of charge (the SoC measurand).
        yield charger.call(
            "MeterValues",
            {
                "connectorId": 1,
                "transactionId": tx,
                "meterValue": [
                    {
                        "timestamp": now(),
                        "sampledValue": [
                            {"value": "11900", "measurand": "Energy.Active.Import.Register"},
                            {"value": "7.0", "measurand": "Power.Active.Import", "unit": "kW"},
                            {"value": "48", "measurand": "SoC", "unit": "Percent"},
                        ],
                    }
                ],
            },
        )

        def with_soc() -> None:
            expect(page.locator(".chart")).to_have_attribute("data-points", "3")
            expect(page.locator("[data-figure=soc]")).to_have_text("48%")

        yield self.b(with_soc)
        yield charger.stop(tx, 12_000, "EVDisconnected")

        def stopped() -> None:
            notice = page.locator("[data-session-state=stopped]")
            expect(notice).to_contain_text("Charging has stopped")
            expect(notice.locator("[data-field=stop-reason]")).to_have_text(
                "Stopped because the car was unplugged."
            )
            expect(page.locator(".chart")).to_have_attribute("data-points", "3")
            expect(notice.get_by_role("link", name="Receipt")).to_have_attribute(
                "href", f"#/receipt/{tx}"
            )

        yield self.b(stopped)
        yield self.screenshot(page, "user-session-stopped-phone")


class DashboardTests(DriverTestCase):
    @inlineCallbacks
    def test_running_session_behind_newer_ones_and_starts_that_never_were(self) -> Any:
        """
        The dashboard finds the running session however many sessions are
        newer; a start that ended at once reads "Not started", "No charge".
        """
        from playwright.sync_api import expect

        charger = yield self.priced_charger("CP-1", connectors=2)
        yield self.top_up(2000)
        tag = TAGS[CUSTOMER[0]]
        running = yield charger.start(1, tag, 1_000)
        yield charger.meter(1, running, 1_500, 3_000)
        for _ in range(6):
            tx = yield charger.start(2, tag, 0)
            yield charger.stop(tx, 0, "EVDisconnected")
        user_id = self.user_ids[CUSTOMER[0]]
        yield self.daemon.wait_for(
            lambda conn: transactions.list_sessions_page(conn, user_id=user_id, limit=10),
            until=lambda rows: len(rows) == 7 and sum(r.status == "completed" for r in rows) == 6,
        )
        page = yield self.open(CUSTOMER, "/user/#/")
        yield self.wait_live(page)

        def found() -> None:
            banner = page.locator("[data-session-state=active]")
            expect(banner).to_contain_text("Charging at CP-1")
            expect(banner).to_contain_text("0.50 kWh")
            expect(page.locator("[data-card=charge]")).to_contain_text("Charging now")
            rows = page.locator("tbody tr")
            expect(rows).to_have_count(5)
            expect(rows.first.locator("[data-field=status]")).to_have_text("Not started")
            expect(rows.first.locator("[data-field=cost]")).to_have_text("No charge")

        yield self.b(found)
        yield self.screenshot(page, "user-dashboard")
        phone = yield self.open(CUSTOMER, "/user/#/", **PHONE)
        yield self.expect(
            lambda: expect(phone.locator("[data-session-state=active]")).to_contain_text("CP-1")
        )
        yield self.screenshot(phone, "user-dashboard-phone")


class PhoneTests(DriverTestCase):
    @inlineCallbacks
    def test_navigation_never_hides_a_page_and_lists_page(self) -> Any:
        """
        At 360 px every link of the navigation is on screen and works; a
        long stations list shows a page at a time.
        """
        from playwright.sync_api import expect

        for n in range(15):
            yield self.api_ok("POST", "/api/cms/stations", {"name": f"Station {n:02}"})
        page = yield self.open(CUSTOMER, "/user/#/stations", width=360, height=740)

        def links() -> list[Any]:
            nav = page.get_by_role("navigation", name="Main")
            expect(nav.get_by_role("link")).to_have_count(5)
            return [link.bounding_box() for link in nav.get_by_role("link").all()]

        boxes = yield self.b(links)
        for box in boxes:
            self.assertGreaterEqual(box["x"], 0, boxes)
            self.assertLessEqual(box["x"] + box["width"], 360, boxes)
        overflow = yield self.b(
            lambda: page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        )
        self.assertLessEqual(overflow, 0, "the page scrolls sideways at 360 px")

        def paged() -> None:
            expect(page.locator("[data-station]:visible")).to_have_count(12)
            expect(page.locator("[data-field=shown]")).to_have_text("12 of 15 stations shown")
            page.get_by_role("button", name="Show 3 more").click()
            expect(page.locator("[data-station]:visible")).to_have_count(15)
            expect(page.get_by_role("button", name="Show 3 more")).to_be_hidden()
            nav = page.get_by_role("navigation", name="Main")
            for name, heading in (("Wallet", "Wallet"), ("History", "History")):
                nav.get_by_role("link", name=name).click()
                expect(page.get_by_role("heading", level=1)).to_have_text(heading)

        yield self.b(paged)
        yield self.screenshot(page, "user-history-phone")
        # The operators' CMS shares the header: its links all on screen too.
        cms = yield self.open(ADMIN, "/cms/#/", width=360, height=740)

        def cms_links() -> list[Any]:
            nav = cms.get_by_role("navigation", name="Main")
            expect(nav.get_by_role("link").first).to_be_visible()
            return [link.bounding_box() for link in nav.get_by_role("link").all()]

        boxes = yield self.b(cms_links)
        self.assertGreaterEqual(len(boxes), 5)
        for box in boxes:
            self.assertGreaterEqual(box["x"], 0, boxes)
            self.assertLessEqual(box["x"] + box["width"], 360, boxes)
