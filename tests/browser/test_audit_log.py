"""
The CMS audit log page over 500 seeded entries: newest first in pages of
50, the server's filters (kind, charge point, operator, days), and a CMS
change appearing on top, live, with its author; also on a 360 px phone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.store import audit
from tests.browser.base import ADMIN, BrowserTestCase

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
ACTIONS = [
    ("command.reset", "answered"),
    ("command.remote_stop", "failed"),
    ("cms.tariff.updated", "answered"),
    ("session.closed", "answered"),
    ("command.unlock_connector", "requested"),
]


def seed(conn: Any, admin: int) -> None:
    """500 entries, one a minute from T0: five kinds, five chargers, the admin or nobody."""
    for n in range(500):
        action, outcome = ACTIONS[n % len(ACTIONS)]
        audit.add_audit_entry(
            conn,
            at=T0 + timedelta(minutes=n),
            actor_user_id=admin if n % 2 == 0 else None,
            action=action,
            outcome=outcome,
            detail={"n": n, "reason": f"entry {n}"} if action == "session.closed" else {"n": n},
            charge_point_id=f"CP-{n % 5}",
        )


class AuditLogPageTests(BrowserTestCase):
    @inlineCallbacks
    def test_filters_pages_and_live(self) -> Any:
        """Pages of 50, server-side filters, and a new change on top, live."""
        from playwright.sync_api import expect

        yield self.daemon.query(seed, self.user_ids[ADMIN[0]])
        page = yield self.open(ADMIN, "/cms/#/audit")
        rows = page.locator("table tbody tr")
        actions = page.locator("[data-field=action]")

        def pages() -> None:
            expect(page.get_by_role("heading", level=1)).to_have_text("Audit log")
            expect(rows).to_have_count(50)
            expect(rows.first).to_contain_text("CP-4")  # entry 499, the newest
            older = page.get_by_role("button", name="Show older entries")
            older.click()
            expect(rows).to_have_count(100)
            expect(rows.last).to_contain_text("CP-0")  # entry 400

        yield self.b(pages)
        yield self.screenshot(page, "cms-audit-log")

        def filters() -> None:
            form = page.get_by_role("search", name="Filter the audit log")
            form.get_by_label("Kind").select_option("session")
            form.get_by_role("button", name="Apply").click()
            # 100 session entries (n % 5 == 3): two pages.
            expect(actions).to_have_count(50)
            expect(page.locator("[data-field=action]", has_text="command")).to_have_count(0)
            expect(rows.first.locator("summary")).to_have_text("Reason: entry 498")
            form.get_by_label("Kind").select_option("command")
            form.get_by_label("Charge point").fill("CP-1")
            form.get_by_role("button", name="Apply").click()
            # n % 5 == 1 is always command.remote_stop: 100 of them.
            expect(actions.first).to_have_text("command.remote_stop")
            expect(page.locator("[data-field=action]", has_text="reset")).to_have_count(0)
            form.get_by_label("By (e-mail)").fill("OPS@example.com")
            form.get_by_role("button", name="Apply").click()
            # Odd n have no actor, and n % 5 == 1 with n even: 50 entries, one page.
            expect(rows).to_have_count(50)
            expect(page.get_by_role("button", name="Show older entries")).to_be_hidden()
            form.get_by_label("Charge point").fill("NOPE")
            form.get_by_role("button", name="Apply").click()
            expect(page.locator(".state--empty")).to_contain_text("No entries match these filters.")
            form.get_by_label("Charge point").fill("")
            form.get_by_label("By (e-mail)").fill("")
            form.get_by_label("Kind").select_option("")
            form.get_by_role("button", name="Apply").click()
            expect(rows).to_have_count(50)

        yield self.b(filters)
        yield self.wait_live(page)
        yield self.api_ok("POST", "/api/cms/stations", {"name": "Harbour"})

        def live() -> None:
            top = rows.first
            expect(top.locator("[data-field=action]")).to_have_text("cms.station.created")
            expect(top).to_contain_text("ops@example.com")
            expect(rows).to_have_count(51)

        yield self.b(live)
        phone = yield self.open(ADMIN, "/cms/#/audit", width=360, height=780)

        def narrow() -> None:
            expect(phone.locator("table tbody tr")).to_have_count(50)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"the page is {width} px wide on a 360 px screen"

        yield self.b(narrow)
        yield self.screenshot(phone, "cms-audit-log-phone")
