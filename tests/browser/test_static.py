"""The web listener serving webroot/: types, no listings, the npm libraries at /vendor/."""

from __future__ import annotations

import gzip
import os
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers

from ocppd.web import CONTENT_SECURITY_POLICY, static_trees
from tests.browser.browser import WEBROOT, require_webroot
from tests.integration.daemon import start_daemon


class StaticTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def setUp(self) -> Any:
        require_webroot()
        self.daemon = yield start_daemon(self, f"web.webroot={WEBROOT}")

    @inlineCallbacks
    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        # An Agent of its own: treq's decodes gzip and drops Content-Encoding.
        agent = Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False))
        response = yield agent.request(
            b"GET",
            f"http://127.0.0.1:{self.daemon.web_port}{path}".encode(),
            Headers({k: [v] for k, v in (headers or {}).items()}),
        )
        body = yield readBody(response)
        return response.code, response.headers, body

    @inlineCallbacks
    def test_pages_modules_and_libraries(self) -> Any:
        """
        Pages as HTML, modules as text/javascript (browsers refuse other
        module types), each with the listener's headers.
        """
        for path, kind in [
            ("/user/", "text/html"),
            ("/cms/", "text/html"),
            ("/user/app.js", "text/javascript"),
            ("/cms/modules/charging-point-detail-view.js", "text/javascript"),
            ("/shared/push.js", "text/javascript"),
            ("/shared/style.css", "text/css"),
            ("/vendor/autobahn-browser/autobahn.min.js", "text/javascript"),
            ("/vendor/uplot/dist/uPlot.esm.js", "text/javascript"),
            ("/shared/favicon.svg", "image/svg+xml"),
        ]:
            code, headers, _ = yield self.get(path)
            self.assertEqual(code, 200, path)
            self.assertTrue(headers.getRawHeaders("content-type")[0].startswith(kind), path)
            self.assertEqual(headers.getRawHeaders("x-content-type-options"), ["nosniff"])
            self.assertEqual(
                headers.getRawHeaders("content-security-policy"), [CONTENT_SECURITY_POLICY]
            )
            self.assertEqual(headers.getRawHeaders("x-frame-options"), ["DENY"])
            self.assertEqual(headers.getRawHeaders("server"), ["ocppd"])

    @inlineCallbacks
    def test_compressed_and_revalidated(self) -> Any:
        """
        Text files go gzip-compressed to a client that accepts it, as they
        are to one that does not; each answer has an ETag of its encoding,
        and a revalidation with it is a 304 without a body.
        """
        path = "/vendor/uplot/dist/uPlot.esm.js"
        with open(os.path.join(WEBROOT, "node_modules/uplot/dist/uPlot.esm.js"), "rb") as f:
            original = f.read()
        code, headers, body = yield self.get(path, {"Accept-Encoding": "gzip, deflate, br"})
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-encoding"), ["gzip"])
        self.assertEqual(headers.getRawHeaders("vary"), ["Accept-Encoding"])
        self.assertEqual(headers.getRawHeaders("cache-control"), ["no-cache"])
        self.assertTrue(headers.getRawHeaders("content-type")[0].startswith("text/javascript"))
        self.assertEqual(gzip.decompress(body), original)
        self.assertLess(len(body) * 3, len(original))
        [etag] = headers.getRawHeaders("etag")
        self.assertTrue(etag.endswith('-gz"'), etag)
        code, headers, body = yield self.get(
            path, {"Accept-Encoding": "gzip", "If-None-Match": etag}
        )
        self.assertEqual((code, body), (304, b""))
        for refused in ({}, {"Accept-Encoding": "gzip;q=0"}, {"Accept-Encoding": "br"}):
            code, headers, body = yield self.get(path, refused)
            self.assertEqual((code, body), (200, original), refused)
            self.assertIsNone(headers.getRawHeaders("content-encoding"), refused)
            [plain] = headers.getRawHeaders("etag")
            self.assertNotEqual(plain, etag)
        code, _, body = yield self.get(path, {"If-None-Match": plain})
        self.assertEqual((code, body), (304, b""))
        # A picture is sent as it is; a range of a text file too.
        code, headers, _ = yield self.get("/favicon.ico", {"Accept-Encoding": "gzip"})
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-type"), ["image/svg+xml"])
        code, headers, body = yield self.get(
            path, {"Accept-Encoding": "gzip", "Range": "bytes=0-9"}
        )
        self.assertEqual((code, body), (206, original[:10]))

    @inlineCallbacks
    def test_no_listings_and_no_escape(self) -> Any:
        """Folders are not listed, nothing outside webroot is reachable, / goes to the panel."""
        for path in [
            "/user/modules/",
            "/vendor/",
            "/user/../../setup.cfg",
            "/shared/%2e%2e/README.md",
        ]:
            code, _, body = yield self.get(path)
            self.assertEqual(code, 404, path)
            self.assertNotIn(b"autobahn", body)
        code, headers, _ = yield self.get("/")
        self.assertEqual((code, headers.getRawHeaders("location")), (302, ["/user/"]))


class StaticTreesTests(SynchronousTestCase):
    def test_missing_folders_are_logged(self) -> None:
        """A webroot without node_modules serves the rest and says what is missing and why."""
        root = self.mktemp()
        for tree in ("cms", "user", "shared"):
            os.makedirs(os.path.join(root, tree))
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        trees = static_trees(root)
        self.assertEqual(sorted(trees), ["cms", "shared", "user"])
        warnings = [e for e in events if e.get("log_level") == LogLevel.warn]
        self.assertEqual([e["tree"] for e in warnings], ["vendor"])
        self.assertIn("npm ci --prefix webroot", warnings[0]["log_format"])
