"""
The CMS's Charging points and Charging sessions pages over 500 seeded
chargers and 500 seeded sessions: search on the server in any case as you
type, "Show more" pages, the CSV of what is shown; a 360 px phone.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.store import chargers
from ocppd.store.tables import transactions
from tests.browser.base import ADMIN, BrowserTestCase
from tests.browser.test_people import narrow

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SEEDED = 500


def seed(conn: Any) -> None:
    """500 chargers cp-000 ... cp-499 (vendor Acme), each sessions of 50 of them."""
    for n in range(SEEDED):
        chargers.add_charge_point(conn, f"cp-{n:03d}", None, now=T0 + timedelta(seconds=n))
    conn.execute(
        transactions.insert(),
        [
            {
                "charge_point_id": f"cp-{n % 50:03d}",
                "connector_id": 1,
                "id_tag": f"CARD-{n:03d}",
                "id_tag_status": "Accepted",
                "meter_start_wh": 0,
                "started_at": T0 + timedelta(minutes=n),
                "status": "completed",
                "created_at": T0,
                "updated_at": T0,
            }
            for n in range(SEEDED)
        ],
    )


class CmsListPageTests(BrowserTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        yield self.daemon.query(seed)

    @inlineCallbacks
    def test_points_search_pages_export_on_a_phone(self) -> Any:
        """On a 360 px phone: pages of 50, search in any case as you type, the CSV shown."""
        from playwright.sync_api import expect

        page = yield self.open(ADMIN, "/cms/#/points", width=360, height=780)
        rows = page.locator("table tbody tr")
        more = page.get_by_role("button", name="Show more charging points")

        def pages() -> Any:
            expect(page.get_by_role("heading", level=1)).to_have_text("Charging points")
            expect(rows).to_have_count(50)
            expect(rows.first).to_contain_text("cp-000")
            more.click()
            expect(rows).to_have_count(100)
            expect(rows.last).to_contain_text("cp-099")
            narrow(page)
            form = page.get_by_role("search", name="Search points")
            form.get_by_label("Search").fill("CP-04")
            expect(rows).to_have_count(10)
            expect(rows.first).to_contain_text("cp-040")
            expect(more).to_be_hidden()
            form.get_by_label("Sort by").select_option("-chargePointId")
            expect(rows.first).to_contain_text("cp-049")
            with page.expect_download() as info:
                form.get_by_role("button", name="Export CSV").click()
            download = info.value
            assert download.suggested_filename == "charging-points.csv"
            with open(download.path(), encoding="utf-8") as f:
                exported = list(csv.reader(io.StringIO(f.read())))
            narrow(page)
            return exported

        exported = yield self.b(pages)
        yield self.screenshot(page, "cms-points-phone")
        self.assertEqual(exported[0][:2], ["chargePointId", "online"])
        self.assertEqual([r[0] for r in exported[1:]], [f"cp-{n:03d}" for n in range(49, 39, -1)])

    @inlineCallbacks
    def test_sessions_search_any_case(self) -> Any:
        """The sessions of one charger named in another case; a card searched as you type."""
        from playwright.sync_api import expect

        page = yield self.open(ADMIN, "/cms/#/sessions")
        rows = page.locator("table tbody tr")

        def search() -> None:
            expect(rows).to_have_count(50)
            page.get_by_role("button", name="Show older sessions").click()
            expect(rows).to_have_count(100)
            form = page.get_by_role("search", name="Search sessions")
            form.get_by_label("Charge point").fill("CP-007")
            expect(rows).to_have_count(10)
            form.get_by_label("Charge point").fill("")
            form.get_by_label("Search").fill("card-12")
            expect(rows).to_have_count(10)
            expect(rows.first).to_contain_text("cp-029")

        yield self.b(search)
        yield self.screenshot(page, "cms-sessions-search")
