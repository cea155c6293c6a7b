"""
Every page of the driver panel has a desktop and a phone screenshot, listed in
``docs/screenshots.md`` and saved by a browser test.

Read as text, no browser: this is the check that fails when someone adds a page
module to ``webroot/user/modules/`` without screenshots of it, or lists a
screenshot that no browser test takes.
"""

from __future__ import annotations

import os
import re

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = os.path.join(ROOT, "webroot", "user", "modules")
BROWSER_TESTS = os.path.join(ROOT, "tests", "browser")

#: Each page of the panel (module file, or the sign-in form app.js draws) and
#: its screenshots: (desktop, phone). Explicit, so a new module must be added here.
PAGES: dict[str, tuple[str, str]] = {
    "app.js (sign-in)": ("user-signin", "user-signin-phone"),
    "active-session.js": ("user-active-session", "user-active-session-phone"),
    "charger-detail.js": ("user-charger-detail", "user-charger-detail-phone"),
    "dashboard.js": ("user-dashboard", "user-dashboard-phone"),
    "receipt.js": ("user-receipt", "user-receipt-phone"),
    "sessions.js": ("user-sessions", "user-sessions-phone"),
    "stations-list.js": ("user-stations", "user-stations-phone"),
    "wallet.js": ("user-wallet", "user-wallet-phone"),
}


def listed() -> set[str]:
    """The screenshot names docs/screenshots.md lists in its table (without ``.png``)."""
    with open(os.path.join(ROOT, "docs", "screenshots.md"), encoding="utf-8") as f:
        rows = [line for line in f if line.startswith("|")]
    return {name for row in rows for name in re.findall(r"`([\w-]+)\.png`", row)}


def saved() -> set[str]:
    """Every string literal in the browser tests that could name a screenshot."""
    names: set[str] = set()
    for entry in sorted(os.listdir(BROWSER_TESTS)):
        if entry.endswith(".py"):
            with open(os.path.join(BROWSER_TESTS, entry), encoding="utf-8") as f:
                names.update(re.findall(r"\"((?:user|cms)-[\w-]+)\"", f.read()))
    return names


class ScreenshotListTests(SynchronousTestCase):
    def test_every_module_is_mapped(self) -> None:
        """A page module without an entry in PAGES is a page nobody screenshots."""
        modules = {name for name in os.listdir(MODULES) if name.endswith(".js")}
        mapped = {page for page in PAGES if page.endswith(".js") and " " not in page}
        self.assertEqual(sorted(modules - mapped), [], "page modules without screenshots")
        self.assertEqual(sorted(mapped - modules), [], "screenshots of modules that are gone")

    def test_every_page_has_desktop_and_phone_listed(self) -> None:
        names = listed()
        missing = [
            (page, shot)
            for page, shots in sorted(PAGES.items())
            for shot in shots
            if shot not in names
        ]
        self.assertEqual(missing, [], "not listed in docs/screenshots.md")
        for page, (_desktop, phone) in PAGES.items():
            self.assertTrue(phone.endswith("-phone"), (page, phone))

    def test_every_listed_screenshot_is_taken(self) -> None:
        """docs/screenshots.md names only files that a browser test saves."""
        self.assertEqual(sorted(listed() - saved()), [], "listed but no browser test saves it")
