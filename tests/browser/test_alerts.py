"""The CMS dashboard's alerts panel: an alert raised or resolved shows without a reload."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks

from tests.browser.base import ADMIN, BrowserTestCase
from tests.integration.daemon import poll


class AlertsPanelTests(BrowserTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.require_push()

    def evaluated(self) -> Any:
        """Evaluate until the processor has stored what the charger said and it changed an alert."""
        return poll(self.daemon.node.alerts.evaluate, until=bool)

    @inlineCallbacks
    def test_a_faulted_connector_comes_and_goes(self) -> Any:
        from playwright.sync_api import expect

        charger = yield self.charger("CP-1", connectors=2)
        dashboard = yield self.open(ADMIN, "/cms/#/")
        yield self.wait_live(dashboard)
        panel = dashboard.locator("section[aria-labelledby=alerts-title]")
        yield self.expect(lambda: expect(panel).to_contain_text("No open alerts."))

        yield charger.status(2, "Faulted", error_code="GroundFailure")
        yield self.evaluated()
        item = panel.locator("[data-alert='connector_faulted:CP-1/2']")
        yield self.expect(lambda: expect(item).to_contain_text("Faulted"))
        yield self.expect(
            lambda: expect(item).to_contain_text("connector 2 Faulted (GroundFailure)")
        )
        yield self.expect(
            lambda: expect(panel.locator("[data-figure=alerts]")).to_have_text("1 open")
        )

        yield self.screenshot(dashboard, "cms-dashboard-alerts")
        phone = yield self.open(ADMIN, "/cms/#/", width=360, height=780)
        phone_item = phone.locator("[data-alert='connector_faulted:CP-1/2']")

        def narrow() -> None:
            expect(phone_item).to_contain_text("GroundFailure")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"the page is {width} px wide on a 360 px screen"

        yield self.b(narrow)
        yield self.screenshot(phone, "cms-dashboard-alerts-phone")

        yield charger.status(2, "Available")
        yield self.evaluated()
        yield self.expect(lambda: expect(panel).to_contain_text("No open alerts."))
        yield charger.close()
