"""
Headless Chromium (Debian's ``chromium``) driven by Playwright for Python.

Playwright's sync API runs its own event loop and must stay on the thread
that started it, while the daemon under test runs in trial's reactor thread.
So one dedicated thread owns Playwright and the browser for the whole test
process; tests hand it functions with :meth:`BrowserThread.call` and get a
Deferred, which keeps the reactor free to serve the pages meanwhile.
"""

from __future__ import annotations

import atexit
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest

from tests.services import on_ci

CHROMIUM = os.environ.get("OCPPD_TEST_CHROMIUM", "/usr/bin/chromium")

#: What the browser tests pass to Chromium: no sandbox (root in CI containers),
#: no GPU, and nothing that talks to the network on its own.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    """Fail (on CI) or skip (elsewhere) unless Chromium and Playwright are installed."""
    reason = None
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        reason = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "Playwright for Python is not installed (pip install '.[test]')"
    if reason is None:
        return
    if on_ci():
        raise AssertionError(f"CI requires {reason}")
    raise SkipTest(reason)


_Call = tuple[Callable[..., Any], tuple[Any, ...], Deferred[Any]]


class BrowserThread:
    """One thread that owns Playwright and one Chromium; see the module docstring."""

    def __init__(self) -> None:
        self._calls: queue.Queue[_Call | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="playwright", daemon=True)
        self.browser: Any = None
        self._playwright: Any = None
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._calls.get()
            if item is None:
                return
            func, args, d = item
            try:
                result = func(*args)
            except BaseException:
                failure = Failure()
                reactor.callFromThread(d.errback, failure)
            else:
                reactor.callFromThread(d.callback, result)

    def call(self, func: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """Run ``func(*args)`` on the browser thread; fire with its result."""
        d: Deferred[Any] = Deferred()
        self._calls.put((func, args, d))
        return d

    def launch(self) -> None:
        """On the browser thread: start Playwright and Chromium (a fresh profile of its own)."""
        from playwright.sync_api import expect, sync_playwright

        # Waits, not timed assertions: long enough for a loaded CI machine.
        expect.set_options(timeout=15_000)
        self._playwright = sync_playwright().start()
        self.browser = self._playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )

    def shutdown(self) -> None:
        """From any thread but the browser's: close Chromium and end the thread."""
        done = threading.Event()

        def close() -> None:
            try:
                if self.browser is not None:
                    self.browser.close()
                if self._playwright is not None:
                    self._playwright.stop()
            finally:
                done.set()

        self._calls.put((close, (), Deferred()))
        self._calls.put(None)
        done.wait(15)


_shared: dict[str, BrowserThread] = {}


def shared_browser() -> Deferred[BrowserThread]:
    """The test process's one browser, launched on first use, closed at exit."""
    existing = _shared.get("browser")
    if existing is not None:
        d: Deferred[BrowserThread] = Deferred()
        d.callback(existing)
        return d
    thread = BrowserThread()

    def launched(_: object) -> BrowserThread:
        _shared["browser"] = thread
        atexit.register(thread.shutdown)
        return thread

    def failed(failure: Failure) -> Failure:
        thread.shutdown()
        return failure

    return thread.call(thread.launch).addCallbacks(launched, failed)


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEBROOT = os.path.join(ROOT, "webroot")
SCREENSHOTS = os.environ.get("OCPPD_SCREENSHOTS", os.path.join(ROOT, "build", "screenshots"))


def require_webroot() -> None:
    """The npm libraries must be installed: a missing one is a set-up error, not a skip."""
    for path in ("node_modules/autobahn-browser/autobahn.min.js", "node_modules/uplot/dist"):
        if not os.path.exists(os.path.join(WEBROOT, path)):
            raise AssertionError(f"{WEBROOT}/{path} is missing: run `npm ci --prefix webroot`")
