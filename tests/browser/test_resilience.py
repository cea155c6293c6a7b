"""
The panel when things go wrong (issue 17, point 8): a page module that did not
load retries by itself when the push channel reconnects (and offers Retry
meanwhile), data shown while offline is marked stale, /favicon.ico exists,
and a cold load's static files arrive compressed.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet.defer import inlineCallbacks

from tests.browser.base import CUSTOMER, BrowserTestCase
from tests.browser.browser import SCREENSHOTS


def cold_load_bytes(page: Any, url: str) -> dict[str, int]:
    """
    Load ``url`` in ``page`` (a fresh context: nothing cached) until the
    dashboard shows, and count what came over the wire from our origin:
    bodies as sent (compressed or not) and as decoded, and the requests.
    """
    from playwright.sync_api import expect

    responses: list[Any] = []
    page.on("response", lambda response: responses.append(response))
    page.goto(url)
    expect(page.locator(".push-indicator")).to_have_attribute("data-push-state", "online")
    expect(page.locator("[data-page=dashboard] h1")).to_be_visible()
    page.wait_for_load_state("networkidle")
    sent = decoded = 0
    for response in responses:
        if response.status != 200:
            continue
        sent += response.request.sizes()["responseBodySize"]
        decoded += len(response.body())
    return {"requests": len(responses), "sentBytes": sent, "decodedBytes": decoded}


class ColdLoadTests(BrowserTestCase):
    @inlineCallbacks
    def test_static_files_arrive_compressed(self) -> Any:
        """
        A cold load of the panel's dashboard sends well under half of its
        decoded bytes (gzip), and no request fails: /favicon.ico included.
        """
        self.require_push()
        # A fresh context (empty cache) on a page that loads nothing else.
        page = yield self.open(CUSTOMER, "/api/openapi.json")
        figures = yield self.b(cold_load_bytes, page, self.url("/user/#/"))
        os.makedirs(SCREENSHOTS, exist_ok=True)
        with open(os.path.join(SCREENSHOTS, "cold-load.json"), "w") as f:
            json.dump(figures, f)
        self.assertLess(figures["sentBytes"] * 2, figures["decodedBytes"], figures)

    @inlineCallbacks
    def test_favicon(self) -> Any:
        """/favicon.ico answers the site's icon (browsers ask for it unprompted)."""
        page = yield self.open(None, "/user/")

        def icon() -> Any:
            response = page.request.get(self.url("/favicon.ico"))
            return response.status, response.headers.get("content-type"), response.body()

        status, kind, body = yield self.b(icon)
        self.assertEqual((status, kind), (200, "image/svg+xml"))
        self.assertIn(b"<svg", body)


class ResilienceTests(BrowserTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.require_push()

    def allow_autobahn_goodbye_race(self) -> None:
        # As in tests/browser/test_live.py: autobahn-js's late GOODBYE answer.
        self.allow_console_error("WebSocket is already in CLOSING or CLOSED state.")

    @inlineCallbacks
    def test_module_load_failure_retries_on_reconnect(self) -> Any:
        """
        The live session page's module fails to load (as while the daemon restarts):
        the page says so with a Retry button, and loads by itself once the
        push channel reconnects.
        """
        from playwright.sync_api import expect

        self.allow_autobahn_goodbye_race()
        # The refused fetch is the failure under test: Chromium logs it.
        self.allow_console_error("Failed to load resource")
        page = yield self.open(CUSTOMER, "/user/#/")
        yield self.wait_live(page)

        def refuse(route: Any) -> None:
            route.abort("connectionrefused")

        module = "**/user/modules/active-session.js"
        yield self.b(lambda: page.route(module, refuse))
        yield self.b(lambda: page.locator("nav a[data-path='/session']").click())

        def failed() -> None:
            box = page.locator("[data-load-failed]")
            expect(box).to_contain_text("could not be loaded")
            expect(box.get_by_role("button", name="Retry")).to_be_visible()

        yield self.b(failed)
        yield self.screenshot(page, "user-load-failed")
        yield self.b(lambda: page.unroute(module))
        yield self.daemon.node.push.close_all()
        yield self.expect(
            lambda: expect(page.locator("[data-page=session] .state--empty")).to_contain_text(
                "You are not charging right now"
            )
        )
        yield self.wait_live(page)

    @inlineCallbacks
    def test_offline_data_marked_stale(self) -> Any:
        """While the push channel is down the page says its data may be out of date."""
        from playwright.sync_api import expect

        self.allow_autobahn_goodbye_race()
        yield self.charger("CP-1", station="Main Street")
        page = yield self.open(CUSTOMER, "/user/#/stations")
        yield self.wait_live(page)
        yield self.expect(lambda: expect(page.locator("[data-stale-notice]")).to_be_hidden())
        # Refuse the reconnect for a while: close the channel and its listener's upgrades.
        push = self.daemon.node.api.push
        self.daemon.node.api.push = None
        yield self.daemon.node.push.close_all()

        def stale() -> None:
            expect(page.locator("main")).to_have_attribute("data-stale", "true")
            expect(page.locator("[data-stale-notice]")).to_contain_text("may be out of date")

        yield self.b(stale)
        yield self.screenshot(page, "user-stale")
        self.daemon.node.api.push = push

        def live_again() -> None:
            # The client's back-off (1 s doubling) decides when: up to some 30 s.
            expect(page.locator("main")).not_to_have_attribute("data-stale", "true", timeout=40_000)
            expect(page.locator("[data-stale-notice]")).to_be_hidden()

        yield self.b(live_again)
