"""
GetDiagnostics out of the box, from the CMS: the operator asks a simulated
charger (``ocppd.sim``, over a real socket) for its diagnostics; it uploads
them over HTTP to the URL ocppd handed it, says so, and the point's page
shows the upload, live, downloads it and deletes it (asked first, audited).
"""

from __future__ import annotations

import os
import random
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks

from ocppd.sim.charger import ChargerSettings, SimulatedCharger
from ocppd.sim.cli import http_upload
from ocppd.sim.client import Fleet, charger_service
from ocppd.store import audit, chargers
from tests.browser.base import ADMIN, BrowserTestCase
from tests.sim.fakes import SCHEMAS

KEY = "sim-diagnostics-key-0123"


class DiagnosticsPageTests(BrowserTestCase):
    @inlineCallbacks
    def test_simulated_charger_uploads_its_diagnostics(self) -> Any:
        """Get diagnostics: the simulator uploads, the page lists the file and downloads it."""
        from playwright.sync_api import expect

        # The URL chargers reach this node at: known once it listens.
        self.daemon.node.diagnostics.public_url = self.url("").rstrip("/")
        self.daemon.ocppctl("charger", "add", "SIM-D", stdin=f"{KEY}\n")
        charger = SimulatedCharger(
            ChargerSettings("SIM-D", call_timeout=5),
            schemas=SCHEMAS,
            clock=reactor,
            rng=random.Random(1),
            upload=http_upload,
        )
        fleet = Fleet(
            [charger],
            lambda c: charger_service(
                c,
                base_url=f"ws://127.0.0.1:{self.daemon.port}/ocpp/",
                key=KEY,
                reactor=reactor,
                rng=random.Random(0),
                initial_delay=0.05,
                max_delay=0.5,
            ),
        )
        fleet.startService()
        self.addCleanup(fleet.stopService)
        yield self.daemon.wait_for(
            chargers.get_charge_point, "SIM-D", until=lambda cp: cp.boot_at is not None
        )
        page = yield self.open(ADMIN, "/cms/#/points/SIM-D")
        yield self.wait_live(page)
        card = page.get_by_role("region", name="Diagnostics")

        def ask() -> None:
            expect(card).to_contain_text("No diagnostics asked for yet.")
            card.get_by_role("button", name="Get diagnostics").click()
            expect(card.locator("[data-field=diagnostics-request]")).to_have_text(
                "The charger will upload SIM-D-diagnostics.log."
            )
            expect(card.locator("[data-field=file-name]")).to_have_text("SIM-D-diagnostics.log")
            expect(page.locator("[data-field=diagnostics-status]")).to_contain_text("Uploaded")

        yield self.b(ask)
        yield self.screenshot(page, "cms-point-diagnostics")

        def download() -> bytes:
            with page.expect_download() as info:
                card.get_by_role("button", name="Download SIM-D-diagnostics.log").click()
            path = info.value.path()
            with open(path, "rb") as f:
                return f.read()

        content = yield self.b(download)
        self.assertTrue(content.startswith(b"SIM-D diagnostics\n"), content[:40])
        self.assertIn(b"HeartbeatInterval=", content)

        def delete() -> None:
            card.get_by_role("button", name="Delete SIM-D-diagnostics.log").click()
            dialog = page.get_by_role("alertdialog")
            expect(dialog).to_contain_text("Delete SIM-D-diagnostics.log")
            dialog.get_by_role("button", name="Delete file").click()
            expect(card.locator("[data-field=file-name]")).to_have_count(0)
            expect(card).to_contain_text("No diagnostics asked for yet.")

        yield self.b(delete)
        # The audit entry is staged in the transaction that removed the file:
        # once it is stored, the file is gone.
        entries = yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn, charge_point_id="SIM-D"),
            until=lambda rows: any(r.action == "cms.diagnostics.deleted" for r in rows),
        )
        folder = self.daemon.node.diagnostics.directory
        self.assertEqual(os.listdir(folder), [])
        [deleted] = [r for r in entries if r.action == "cms.diagnostics.deleted"]
        self.assertEqual(deleted.detail["fileName"], "SIM-D-diagnostics.log")
