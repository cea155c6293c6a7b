"""
The CMS station map without a tile server: the stations with coordinates as
markers on a plain background, coloured by what their connectors can do,
changing live as a charger reports; the stations without coordinates named;
no tile requested; and the page fits a 360 px phone. With a tile server
configured, its tiles load (the Content-Security-Policy lets them in).
"""

from __future__ import annotations

import re
import struct
import zlib
from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.web.resource import Resource
from twisted.web.server import Site

from tests.browser.base import ADMIN, BrowserTestCase
from tests.sites import listen_closing


class MapPageTests(BrowserTestCase):
    @inlineCallbacks
    def test_map_without_tiles(self) -> Any:
        """Markers on a plain background, live availability, the list beside them."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout
        from playwright.sync_api import expect

        for name, place in (
            ("Harbour", {"latitude": 53.5461, "longitude": 9.9661}),
            ("Depot", {"latitude": 53.6001, "longitude": 10.0502}),
            ("Nowhere", {}),
        ):
            yield self.api_ok("POST", "/api/cms/stations", {"name": name, **place})
        charger = yield self.charger("CP-M1", connectors=2, station="Harbour")
        # Registered at the depot, never connected: offline.
        self.daemon.ocppctl(
            "charger", "add", "CP-M2", "--station", "Depot", stdin="key-CP-M2-0123456789\n"
        )
        page = yield self.open(ADMIN, "/cms/#/map")
        # Every image the page asks for: without a tile server, none from elsewhere.
        images: list[str] = []
        yield self.b(
            page.on,
            "request",
            lambda r: images.append(r.url) if r.resource_type == "image" else None,
        )
        box = page.locator(".station-map")

        def marker(state: str) -> Any:
            return page.locator(f"path.leaflet-interactive[data-state={state}]")

        def shown() -> None:
            expect(page.get_by_role("heading", level=1)).to_have_text("Station map")
            expect(box).to_have_attribute("data-tiles", "off")
            expect(box).to_have_class(re.compile(r"\bstation-map--plain\b"))
            expect(box).to_have_attribute("data-markers", "2")
            expect(marker("available")).to_have_count(1)
            expect(marker("offline")).to_have_count(1)
            expect(page.locator(".leaflet-tile")).to_have_count(0)
            expect(page.locator("[data-field=unplaced]")).to_have_text(
                "Not on the map (no coordinates): Nowhere."
            )
            rows = page.locator("table tbody tr")
            expect(rows).to_have_count(3)
            expect(
                rows.filter(has_text="Harbour").locator("[data-field=availability]")
            ).to_have_text("2 of 2 connectors available")
            # The marker names itself, for the tooltip and for assistive technology.
            expect(marker("available")).to_have_attribute(
                "aria-label", "Harbour: Available, 2 of 2 connectors available"
            )

        yield self.b(shown)
        yield self.screenshot(page, "cms-map")

        def zoom() -> None:
            # Leaflet's zoom buttons are links to "#": they must not leave the page.
            page.get_by_role("button", name="Zoom in").click()
            expect(page).to_have_url(re.compile(r"#/map$"))
            expect(page.get_by_role("heading", level=1)).to_have_text("Station map")

        yield self.b(zoom)
        yield self.wait_live(page)
        yield charger.status(1, "Charging")
        yield charger.status(2, "Charging")

        def occupied() -> None:
            expect(marker("occupied")).to_have_count(1)
            expect(marker("available")).to_have_count(0)
            row = page.locator("table tbody tr").filter(has_text="Harbour")
            expect(row.locator("[data-field=availability]")).to_have_text(
                "0 of 2 connectors available"
            )
            expect(row).to_contain_text("All in use")

        yield self.b(occupied)
        yield charger.status(2, "Faulted", "GroundFailure")
        yield charger.status(1, "Available")

        def available_again() -> None:
            expect(marker("available")).to_have_count(1)
            expect(
                page.locator("table tbody tr")
                .filter(has_text="Harbour")
                .locator("[data-field=availability]")
            ).to_have_text("1 of 2 connectors available")
            popup = page.locator(".leaflet-popup-content")
            # On a loaded machine a click can land while Leaflet redraws the
            # marker for the status that just arrived: click again, at most
            # three times, until its popup opens.
            for _ in range(3):
                marker("available").click()
                try:
                    popup.wait_for(timeout=5000)
                    break
                except PlaywrightTimeout:
                    continue
            expect(popup).to_contain_text("Harbour")
            expect(popup.get_by_role("link", name="CP-M1")).to_be_visible()

        yield self.b(available_again)
        yield charger.close()

        def offline() -> None:
            expect(marker("offline")).to_have_count(2)

        yield self.b(offline)
        phone = yield self.open(ADMIN, "/cms/#/map", width=360, height=780)

        def narrow() -> None:
            expect(phone.locator(".station-map")).to_have_attribute("data-markers", "2")
            expect(phone.locator("path.leaflet-interactive")).to_have_count(2)
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"the page is {width} px wide on a 360 px screen"

        yield self.b(narrow)
        yield self.screenshot(phone, "cms-map-phone")
        self.assertEqual([url for url in images if not url.startswith(self.url("/"))], [])


def png() -> bytes:
    """A 1x1 grey PNG: a tile."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xc8"))
        + chunk(b"IEND", b"")
    )


class _Tiles(Resource):
    """A tile server on a port (an origin) of its own: every path is a tile, each noted."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []

    def render_GET(self, request: Any) -> bytes:
        self.paths.append(request.path.decode())
        request.setHeader(b"content-type", b"image/png")
        return png()


class MapTilesPageTests(BrowserTestCase):
    """With ``[web] map_tiles``: the tiles load from their server, the policy lets them in."""

    @inlineCallbacks
    def setUp(self) -> Any:
        self.tiles = _Tiles()
        port = listen_closing(self, Site(self.tiles))
        self.overrides = (
            f"web.map_tiles=http://127.0.0.1:{port.getHost().port}/tiles/{{z}}/{{x}}/{{y}}.png",
            "web.map_attribution=<b>Tiles</b> & friends",
        )
        yield super().setUp()

    @inlineCallbacks
    def test_tiles(self) -> Any:
        """Tiles requested by z/x/y and shown; the credit shown as the text it is."""
        from playwright.sync_api import expect

        yield self.api_ok(
            "POST",
            "/api/cms/stations",
            {"name": "Harbour", "latitude": 53.5461, "longitude": 9.9661},
        )
        page = yield self.open(ADMIN, "/cms/#/map")

        def shown() -> None:
            box = page.locator(".station-map")
            expect(box).to_have_attribute("data-tiles", "on")
            expect(box).to_have_attribute("data-markers", "1")
            expect(page.locator("img.leaflet-tile-loaded").first).to_be_visible()
            expect(page.locator(".leaflet-control-attribution")).to_contain_text(
                "<b>Tiles</b> & friends"
            )

        yield self.b(shown)
        self.assertTrue(self.tiles.paths)
        for path in self.tiles.paths:
            self.assertRegex(path, r"^/tiles/\d+/\d+/\d+\.png$")
