"""
The browser tests' base class: a whole ocppd node in the test's reactor
serving the real ``webroot/``, the process's one Chromium (a fresh browser
context per page, so sign-ins never leak between users), accounts, and
helpers that run Playwright calls on the browser thread.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.client import HTTPConnectionPool

from ocppd.store import tokens, users
from tests.api.test_api import ADMIN, CUSTOMER
from tests.browser.browser import (
    SCREENSHOTS,
    WEBROOT,
    BrowserThread,
    require_chromium,
    require_webroot,
    shared_browser,
)
from tests.browser.charger import ScriptedCharger
from tests.integration.daemon import poll, start_daemon
from tests.passwords import password_hash

ADMIN2 = ("lead@example.com", "a second operator's password")
CUSTOMER2 = ("kim@example.com", "kim's own long password")

#: The id tag each customer's own sessions carry.
TAGS = {CUSTOMER[0]: "TAG-JO", CUSTOMER2[0]: "TAG-KIM"}


class BrowserTestCase(TestCase):
    timeout = 90
    overrides: tuple[str, ...] = ()

    @inlineCallbacks
    def setUp(self) -> Any:
        require_chromium()
        require_webroot()
        self.browser: BrowserThread = yield shared_browser()
        self.daemon = yield start_daemon(self, f"web.webroot={WEBROOT}", *self.overrides)
        self._track_web_connections()
        self.page_errors: list[str] = []
        #: Console errors, CSP violations among them (the policy must let every page work).
        self.console_errors: list[str] = []
        self._allowed_console_errors: list[str] = []
        self._tokens: dict[str, str] = {}
        self.user_ids: dict[str, int] = {}
        for (email, password), role in [
            (ADMIN, "admin"),
            (ADMIN2, "admin"),
            (CUSTOMER, "customer"),
            (CUSTOMER2, "customer"),
        ]:
            # Straight into the store with a cheap real Argon2 hash (tests.passwords):
            # signing in verifies it; `ocppctl user add` is tested elsewhere.
            self.user_ids[email] = yield self.daemon.query(
                users.add_user, email, password_hash(password), role, now=datetime.now(UTC)
            )
        for email, tag in TAGS.items():
            self.daemon.ocppctl("tag", "add", tag, "--user", email)

    def _track_web_connections(self) -> None:
        """
        Close the browsers' keep-alive and push sockets at the end of the test
        (registered before any page, so it runs after every page closed):
        stopping a listener leaves its open connections be, and Chromium keeps
        them a while after a context closes.
        """
        site = self.daemon.node.web_site
        connections: list[Any] = []
        build = site.buildProtocol

        def tracking(address: Any) -> Any:
            protocol = build(address)
            # Site's protocol is a proxy around the HTTPChannel holding the transport.
            connections.append(getattr(protocol, "_channel", protocol))
            return protocol

        site.buildProtocol = tracking  # type: ignore[method-assign]

        def close_all() -> Deferred[Any]:
            for protocol in connections:
                if protocol.transport is not None and not protocol.transport.disconnected:
                    protocol.transport.abortConnection()
            return poll(
                lambda: succeed(None),
                until=lambda _: all(
                    p.transport is None or p.transport.disconnected for p in connections
                ),
            )

        self.addCleanup(close_all)

    def tearDown(self) -> None:
        # An uncaught exception in a page is a bug even if the test saw what it wanted.
        self.assertEqual(self.page_errors, [], "uncaught errors in the pages")
        self.assertEqual(self.console_errors, [], "errors in the pages' consoles")

    # -- the daemon ------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.daemon.web_port}{path}"

    def require_push(self) -> None:
        """Skip the live-update tests while this tree has no push channel wired."""
        if self.daemon.node.api.push is None:
            raise SkipTest("the daemon serves no /push yet (ocppd.push not wired)")

    @inlineCallbacks
    def api(
        self, method: str, path: str, body: Any = None, *, who: tuple[str, str] | None = None
    ) -> Any:
        """Call the REST API; returns (status, JSON body)."""
        headers = {}
        if who is not None:
            token = yield self.token(who)
            headers["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {
            "headers": headers,
            "pool": HTTPConnectionPool(reactor, persistent=False),
        }
        if body is not None:
            kwargs["json"] = body
        response = yield treq.request(method, self.url(path), **kwargs)
        text = yield response.text()
        return response.code, json.loads(text) if text else None

    @inlineCallbacks
    def api_ok(
        self, method: str, path: str, body: Any = None, *, who: tuple[str, str] = ADMIN
    ) -> Any:
        code, answer = yield self.api(method, path, body, who=who)
        self.assertIn(code, (200, 201), (method, path, answer))
        return answer

    @inlineCallbacks
    def token(self, who: tuple[str, str]) -> Any:
        """A bearer token of ``who``, minted in the store (sign-in itself is tested in the UI)."""
        if who[0] not in self._tokens:
            token = secrets.token_urlsafe(32)
            now = datetime.now(UTC)
            yield self.daemon.query(
                tokens.add_token,
                token,
                self.user_ids[who[0]],
                now=now,
                expires_at=now + timedelta(hours=1),
            )
            self._tokens[who[0]] = token
        return self._tokens[who[0]]

    @inlineCallbacks
    def scripted(self, charge_point_id: str, key: str) -> Any:
        """Connect a charger that is already registered."""
        charger = yield ScriptedCharger.connect(self.daemon.port, charge_point_id, key)
        self.addCleanup(charger.close)
        return charger

    @inlineCallbacks
    def charger(
        self, charge_point_id: str, *, connectors: int = 1, station: str | None = None
    ) -> Any:
        """Register a charger, connect it, boot it and report its connectors Available."""
        args = ["charger", "add", charge_point_id]
        if station:
            args += ["--station", station]
        self.daemon.ocppctl(*args, stdin=f"key-{charge_point_id}-0123456789\n")
        charger = yield self.scripted(charge_point_id, f"key-{charge_point_id}-0123456789")
        yield charger.boot()
        for connector in range(1, connectors + 1):
            yield charger.status(connector, "Available")
        return charger

    # -- the browser -------------------------------------------------------------------

    def b(self, func: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Run ``func(*args)`` on the browser thread (every Playwright call goes through here)."""
        return self.browser.call(func, *args)

    @inlineCallbacks
    def open(
        self,
        who: tuple[str, str] | None,
        path: str,
        *,
        locale: str = "en-US",
        width: int = 1280,
        height: int = 860,
        color_scheme: str = "light",
    ) -> Any:
        """A new browser context signed in as ``who`` (token in the tree's storage) at ``path``."""
        tree = "cms" if path.startswith("/cms/") else "user"
        token = (yield self.token(who)) if who is not None else None
        page = yield self.b(
            self._open, tree, token, self.url(path), locale, width, height, color_scheme
        )
        self.addCleanup(self.b, page.context.close)
        return page

    def _open(
        self,
        tree: str,
        token: str | None,
        url: str,
        locale: str,
        width: int,
        height: int,
        color_scheme: str = "light",
    ) -> Any:
        context = self.browser.browser.new_context(
            locale=locale,
            timezone_id="UTC",
            viewport={"width": width, "height": height},
            color_scheme=color_scheme,
        )
        if token is not None:
            # Once per tab: a sign-out in the test must stick across navigations.
            context.add_init_script(
                "if (!sessionStorage.getItem('seeded')) {"
                f" localStorage.setItem({json.dumps(f'ocppd.{tree}.token')}, {json.dumps(token)});"
                " sessionStorage.setItem('seeded', '1'); }"
            )
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.on("pageerror", lambda error: self.page_errors.append(f"{page.url}: {error}"))
        page.on("console", lambda message: self._console(page, message))
        page.goto(url)
        return page

    def allow_console_error(self, text: str) -> None:
        """Accept console errors holding ``text`` in this test (say why where it is called)."""
        self._allowed_console_errors.append(text)

    def _console(self, page: Any, message: Any) -> None:
        """Keep a page's console error, unless it is Chromium noting an API answer of 4xx."""
        if message.type != "error":
            return
        source = message.location.get("url") or ""
        if message.text.startswith(
            "Failed to load resource: the server responded with a status of 4"
        ) and source.startswith(self.url("/api/")):
            # The page handles the answer (tests provoke 401, 403, 404, 409 on purpose).
            return
        if any(allowed in message.text for allowed in self._allowed_console_errors):
            return
        self.console_errors.append(f"{page.url}: {message.text} ({source})")

    def wait_live(self, page: Any) -> Deferred[Any]:
        """Until the page's push connection is up and every subscription answered."""
        from playwright.sync_api import expect

        def wait() -> None:
            expect(page.locator(".push-indicator")).to_have_attribute("data-push-state", "online")
            expect(page.locator(".push-indicator")).to_have_attribute("data-push-pending", "0")

        return self.b(wait)

    def expect(self, check: Callable[[], Any]) -> Deferred[Any]:
        """Run a Playwright ``expect(...)`` (it waits until it holds) on the browser thread."""
        return self.b(check)

    def screenshot(self, page: Any, name: str) -> Deferred[Any]:
        os.makedirs(SCREENSHOTS, exist_ok=True)
        return self.b(
            lambda: page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)
        )

    @inlineCallbacks
    def phone_screenshot(self, page: Any, name: str) -> Any:
        """
        Save ``page`` as seen on a 390x844 phone (docs/screenshots.md lists
        each one), then give it its size back so the test can go on with it:
        resizing the page the test already built is cheaper than a new context.
        The page must have drawn itself without a console error by then.
        """
        size = yield self.b(lambda: page.viewport_size)
        yield self.b(lambda: page.set_viewport_size({"width": 390, "height": 844}))
        overflow = yield self.b(
            lambda: page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        )
        self.assertLessEqual(overflow, 0, f"{name}: the page scrolls sideways at 390 px")
        yield self.screenshot(page, name)
        self.assertEqual(self.page_errors, [], f"{name}: uncaught errors in the pages")
        self.assertEqual(self.console_errors, [], f"{name}: errors in the pages' consoles")
        yield self.b(lambda: page.set_viewport_size(size))
