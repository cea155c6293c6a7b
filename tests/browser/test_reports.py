"""
The CMS reports page: sessions seeded over the last days add up in the
figures, the bar charts and the table (per day and per month), utilisation
and faults per charger; a fault and a session reported by a live charger
show up without a reload; and the page fits a 360 px phone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.store.tables import charge_points, charger_connections, transactions
from tests.browser.base import ADMIN, BrowserTestCase


def today() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def seed(conn: Any) -> None:
    """
    Three finished sessions on CP-R: two days ago (2), yesterday (1); 7.5 kWh,
    €4.25. CP-R added a month ago, connected until yesterday 02:00 UTC, then
    offline until its live connection now: one outage of a day or so.
    """
    base = today()
    conn.execute(charge_points.update().values(created_at=base - timedelta(days=30)))
    conn.execute(
        charger_connections.insert().values(
            charge_point_id="CP-R",
            connection_id="past",
            node="node-gone",
            connected_at=base - timedelta(days=30),
            disconnected_at=base - timedelta(days=1) + timedelta(hours=2),
            close_code=1006,
            close_reason="node stopped",
        )
    )
    for n, (days, hour, energy, cost) in enumerate(
        [(2, 8, 2000, 100), (2, 14, 3000, 150), (1, 9, 2500, 175)]
    ):
        start = base - timedelta(days=days) + timedelta(hours=hour)
        conn.execute(
            transactions.insert().values(
                charge_point_id="CP-R",
                connector_id=1,
                id_tag=f"OLD{n}",
                id_tag_status="Accepted",
                meter_start_wh=0,
                started_at=start,
                meter_stop_wh=energy,
                stopped_at=start + timedelta(hours=1),
                energy_wh=energy,
                last_meter_wh=energy,
                status="completed",
                cost=cost,
                currency="EUR",
                created_at=start,
                updated_at=start,
            )
        )


class ReportsPageTests(BrowserTestCase):
    @inlineCallbacks
    def test_reports(self) -> Any:
        """Figures, charts and tables from the server's aggregation, kept live."""
        from playwright.sync_api import expect

        yield self.api_ok(
            "POST", "/api/cms/stations", {"name": "Harbour", "latitude": 53.55, "longitude": 9.99}
        )
        charger = yield self.charger("CP-R", connectors=2, station="Harbour")
        yield self.daemon.query(seed)
        page = yield self.open(ADMIN, "/cms/#/reports")

        def figure(label: str, on: Any = page) -> Any:
            return on.locator(".figures .stat", has_text=label).locator(".value")

        rows = page.locator("#utilisation table tbody tr")

        def shown() -> None:
            expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
            expect(figure("Sessions")).to_have_text("3")
            expect(figure("Energy delivered")).to_have_text("7.50 kWh")
            expect(figure("Revenue")).to_have_text("€4.25")
            # The last 30 UTC days, one bar each, in both charts.
            expect(page.locator("figure.chart[data-bars='30']")).to_have_count(3)
            expect(
                page.get_by_role("img", name="Energy delivered: Total 7.50 kWh; highest 5.00 kWh")
            ).to_be_visible()
            expect(
                page.get_by_role("img", name="Revenue (EUR): Total €4.25; highest €2.50")
            ).to_be_visible()
            expect(rows).to_have_count(1)
            expect(rows.first).to_contain_text("Harbour")
            expect(page.locator("#faults table tbody tr")).to_have_count(1)
            expect(page.locator("#faults [data-field=faults]")).to_have_text("0")
            # The outage from yesterday 02:00 to the live connection now.
            expect(page.locator("#faults [data-field=outages]")).to_have_text("1")
            expect(page.locator("#faults [data-field=offline]")).to_contain_text(" h ")

        yield self.b(shown)
        yield self.screenshot(page, "cms-reports")

        def months() -> None:
            page.get_by_label("Buckets").select_option("month")
            expect(page.locator("figure.chart[data-bars='12']")).to_have_count(3)
            expect(figure("Sessions")).to_have_text("3")

        yield self.b(months)
        yield self.wait_live(page)
        loads = yield self.b(lambda: page.locator("[data-loaded]").get_attribute("data-loaded"))
        # A fault, then a session, from the live charger: the page asks again.
        yield charger.status(2, "Faulted", "GroundFailure")

        def faulted() -> None:
            expect(page.locator("#faults [data-field=faults]")).to_have_text("1")
            expect(page.locator("#faults table tbody tr").first).to_contain_text("1 faulted")

        yield self.b(faulted)
        yield charger.start(1, "TAG-JO", 0)

        def started() -> None:
            expect(figure("Sessions")).to_have_text("4")
            assert int(page.locator("[data-loaded]").get_attribute("data-loaded")) > int(loads)

        yield self.b(started)
        phone = yield self.open(ADMIN, "/cms/#/reports", width=360, height=780)

        def narrow() -> None:
            expect(figure("Sessions", phone)).to_have_text("4")
            expect(phone.locator("figure.chart[data-bars='30']")).to_have_count(3)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"the page is {width} px wide on a 360 px screen"

        yield self.b(narrow)
        yield self.screenshot(phone, "cms-reports-phone")

    @inlineCallbacks
    def test_point_connection_history(self) -> Any:
        """
        The point page lists its connections: the live one open, a past one
        closed; a disconnect and a reconnect show without a reload.
        """
        from playwright.sync_api import expect

        charger = yield self.charger("CP-R", connectors=1)
        yield self.daemon.query(seed)
        page = yield self.open(ADMIN, "/cms/#/points/CP-R")
        rows = page.locator("#connections table tbody tr")

        def shown() -> None:
            expect(page.get_by_role("heading", name="Connection history")).to_be_visible()
            expect(rows).to_have_count(2)
            expect(rows.first).to_contain_text("Open")
            expect(rows.nth(1).locator("[data-field=node]")).to_have_text("node-gone")
            expect(rows.nth(1).locator("[data-field=close]")).to_have_text("1006 · node stopped")
            expect(rows.nth(1).locator("[data-field=duration]")).to_have_text("698 h 00 min")

        yield self.b(shown)
        yield self.b(lambda: page.locator("#connections").scroll_into_view_if_needed())
        yield self.screenshot(page, "cms-point-connections")
        yield self.wait_live(page)
        yield charger.close()

        def disconnected() -> None:
            expect(rows).to_have_count(2)
            expect(rows.first.locator("[data-field=close]")).to_be_visible()
            expect(rows.first).not_to_contain_text("Open")

        yield self.b(disconnected)
        yield self.scripted("CP-R", "key-CP-R-0123456789")

        def reconnected() -> None:
            expect(rows).to_have_count(3)
            expect(rows.first).to_contain_text("Open")
            expect(rows.nth(1).locator("[data-field=close]")).to_be_visible()

        yield self.b(reconnected)
