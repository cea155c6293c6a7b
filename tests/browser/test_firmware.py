"""
UpdateFirmware from the CMS (issue 18, item 8): the command's form offers the
files ``[files] firmware_dir`` holds as a picker that fills in its location
with the absolute URL ocppd serves the file at; the charger receives that
URL and can download the file from it. A URL can still be typed by hand, and
an empty folder is said to be empty.
"""

from __future__ import annotations

import os
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, succeed
from twisted.web.client import HTTPConnectionPool

from tests.browser.base import ADMIN, BrowserTestCase
from tests.browser.test_point_page import narrow
from tests.integration.daemon import poll

FIRMWARE = b"\x7fELF firmware 3.0"


class FirmwarePickerTests(BrowserTestCase):
    @inlineCallbacks
    def test_pick_a_served_file_or_type_a_url(self) -> Any:
        """Picked: the charger gets the served file's URL (and can fetch it); typed: as typed."""
        from playwright.sync_api import expect

        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        with open(os.path.join(folder, "wallbox-3.0.bin"), "wb") as f:
            f.write(FIRMWARE)
        # Where the folder is and how chargers reach this node: known once it listens.
        firmware = self.daemon.node.api.firmware
        firmware.directory = folder
        firmware.public_url = self.url("").rstrip("/")
        url = self.url("/firmware/wallbox-3.0.bin")

        charger = yield self.charger("CP-FW")
        page = yield self.open(ADMIN, "/cms/#/points/CP-FW", width=360)
        commands = page.get_by_role("region", name="Commands")
        form = page.locator("form[data-command=update-firmware]")

        def pick() -> None:
            commands.get_by_label("Command", exact=True).select_option("update-firmware")
            picker = form.get_by_label("Firmware file served here")
            expect(picker.locator("option")).to_have_count(2)
            expect(picker.locator("option").nth(1)).to_contain_text("wallbox-3.0.bin (17 B, ")
            picker.select_option(url)
            expect(form.get_by_label("Location")).to_have_value(url)
            form.get_by_label("Retrieve date").fill("2026-12-08T03:00:00")
            narrow(page)
            form.get_by_role("button", name="Send").click()
            # The charger's answer, not "Update firmware: waiting for the
            # charger…", which is shown (and matched) before the POST returns.
            expect(
                page.locator('.command-answer pre[data-answer="update-firmware"]')
            ).to_be_visible()
            expect(page.locator(".command-answer")).to_contain_text("Update firmware:")

        yield self.b(pick)
        yield self.screenshot(page, "cms-point-update-firmware")
        self.assertEqual(
            charger.commands[-1],
            ("UpdateFirmware", {"location": url, "retrieveDate": "2026-12-08T03:00:00.000Z"}),
        )
        # The charger downloads what it was sent, without credentials.
        response = yield treq.get(
            charger.commands[-1][1]["location"],
            pool=HTTPConnectionPool(reactor, persistent=False),
        )
        self.assertEqual((response.code, (yield response.content())), (200, FIRMWARE))

        def typed() -> None:
            # A URL of another server, typed over the picked one: the pick is undone.
            form.get_by_label("Location").fill("https://firmware.example/wallbox-3.1.bin")
            expect(form.get_by_label("Firmware file served here")).to_have_value("")
            form.get_by_role("button", name="Send").click()
            expect(page.locator(".command-answer")).to_contain_text("Update firmware:")

        yield self.b(typed)
        yield poll(lambda: succeed(len(charger.commands)), until=lambda n: n >= 2)
        self.assertEqual(
            charger.commands[-1][1]["location"], "https://firmware.example/wallbox-3.1.bin"
        )

        os.remove(os.path.join(folder, "wallbox-3.0.bin"))

        def empty() -> None:
            commands.get_by_label("Command", exact=True).select_option("reset")
            commands.get_by_label("Command", exact=True).select_option("update-firmware")
            expect(form.locator("[data-field=firmware-note]")).to_contain_text(
                "No firmware files are served"
            )
            expect(form.get_by_label("Firmware file served here")).to_have_count(0)

        yield self.b(empty)
