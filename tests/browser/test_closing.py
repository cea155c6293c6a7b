"""
A session that cannot end, closed by an operator from the point's page: the
dialog names what the close does, Cancel closes nothing, and a reason
closes it; the page shows it ended, live, with no console error. A
charger's "a boot closes its open sessions" setting, toggled in the CMS.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.store import audit, chargers, transactions
from tests.browser.base import ADMIN, BrowserTestCase


class CloseSessionPageTests(BrowserTestCase):
    @inlineCallbacks
    def test_close_by_hand_from_the_point_page(self) -> Any:
        """Cancel leaves the session charging; a reason closes it on its last reading."""
        from playwright.sync_api import expect

        self.daemon.ocppctl("tag", "add", "TAG-STUCK")
        charger = yield self.charger("CP-STUCK", connectors=2)
        tx = yield charger.start(1, "TAG-STUCK", 1000)
        yield charger.meter(1, tx, 3500, 7000)
        yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.last_meter_wh == 3500
        )
        page = yield self.open(ADMIN, "/cms/#/points/CP-STUCK")
        yield self.wait_live(page)
        running = page.get_by_role("region", name="Running sessions")
        close = running.get_by_role("button", name=f"Close session {tx}")
        dialog = page.get_by_role("dialog", name=f"Close session {tx}?")

        def cancel() -> None:
            expect(running.locator("tbody tr")).to_have_count(1)
            close.click()
            expect(dialog).to_contain_text("ends on its last meter reading (2.50 kWh)")
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_have_count(0)
            expect(running.locator("[data-status=active]")).to_have_text("Charging")

        yield self.b(cancel)
        self.assertEqual(
            (yield self.daemon.query(transactions.get_transaction, tx)).status, "active"
        )

        def ask() -> None:
            close.click()
            dialog.get_by_label("Reason (kept in the audit log)").fill("charger replaced")

        yield self.b(ask)
        yield self.screenshot(page, "cms-close-session")

        def confirm() -> None:
            dialog.get_by_role("button", name="Close session").click()
            expect(dialog).to_have_count(0)
            expect(running.locator("[data-status=completed]")).to_have_text("Completed")
            expect(running.locator("[data-field=stop-reason]")).to_have_text(" closed by operator")
            expect(close).to_have_count(0)

        yield self.b(confirm)
        session = yield self.daemon.query(transactions.get_transaction, tx)
        self.assertEqual(
            (session.status, session.stop_reason, session.energy_wh),
            ("completed", "closed by operator", 2500),
        )
        entries = yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn, charge_point_id="CP-STUCK"),
            until=lambda rows: any(r.action == "session.closed" for r in rows),
        )
        closed = [e.detail for e in entries if e.action == "session.closed"]
        self.assertEqual(
            [(d["sessionId"], d["reason"]) for d in closed], [(tx, "charger replaced")]
        )

        # The charger's own stop after all: billed again on its reading (one
        # correction), not kept as a stop that changed no session.
        yield charger.stop(tx, 4000)
        session = yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.late_stop_at is not None
        )
        self.assertEqual(
            (
                session.meter_stop_wh,
                session.energy_wh,
                session.stop_reason,
                session.charger_stop_reason,
            ),
            (4000, 3000, "closed by operator", "Local"),
        )
        stops = page.get_by_role("region", name="Stops that changed no session")

        def late_stop() -> None:
            expect(running.locator("[data-status=completed]")).to_have_text("Completed")
            expect(running.locator("[data-field=energy]")).to_have_text("3.00 kWh")
            expect(running.locator("[data-field=charger-stop-reason]")).to_have_text(
                " · then the charger's own stop: Local"
            )
            expect(stops).to_have_count(0)

        yield self.b(late_stop)
        yield self.screenshot(page, "cms-session-closed")

    @inlineCallbacks
    def test_sessions_survive_a_boot_when_set_so(self) -> Any:
        """
        An operator turns off "A boot closes its open sessions" for a charger
        that boots on every reconnect: the point page says so, and its next
        boot leaves the running session open; turned on again, a boot closes it.
        """
        from playwright.sync_api import expect

        self.daemon.ocppctl("tag", "add", "TAG-BOOT")
        charger = yield self.charger("CP-BOOT")
        tx = yield charger.start(1, "TAG-BOOT", 1000)
        page = yield self.open(ADMIN, "/cms/#/points")
        setting = "A boot closes its open sessions"

        def toggle(on: bool) -> None:
            page.get_by_role("button", name="Edit CP-BOOT").click()
            dialog = page.get_by_role("dialog")
            box = dialog.get_by_label(setting)
            expect(box).to_be_checked(checked=not on)
            box.set_checked(on)
            dialog.get_by_role("button", name="Save").click()
            expect(dialog).to_be_hidden()

        yield self.b(toggle, False)
        point = yield self.api_ok("GET", "/api/cms/points/CP-BOOT")
        self.assertIs(point["bootClosesSessions"], False)

        def shown() -> None:
            page.goto(page.url.split("#")[0] + "#/points/CP-BOOT")
            expect(page.locator("[data-field=boot-closes-sessions]")).to_have_text(
                "Sessions run on (Available or a newer start closes them)"
            )

        yield self.b(shown)
        yield self.screenshot(page, "cms-point-boot-setting")
        booted = (yield self.daemon.query(chargers.get_charge_point, "CP-BOOT")).boot_at
        yield charger.boot()
        yield self.daemon.wait_for(
            chargers.get_charge_point, "CP-BOOT", until=lambda p: p.boot_at > booted
        )
        session = yield self.daemon.query(transactions.get_transaction, tx)
        self.assertEqual(session.status, "active")

        def back_on() -> None:
            page.goto(page.url.split("#")[0] + "#/points")
            toggle(True)

        yield self.b(back_on)
        yield charger.boot()
        session = yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.status == "completed"
        )
        self.assertEqual(session.stop_reason, "charger rebooted")
