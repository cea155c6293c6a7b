"""
A whole node's web app in the test's thread, for synchronous tests of the
API: the real routes and services (``ocppd.service.Ocppd``) on a migrated
SQLite file (a copy of the process's one, ``tests.nodecache``) and the
in-memory bus, on a ``Clock``, requests through
``StubTreq(node.web_site.resource)``.

What would leave the thread runs in it instead: store transactions and the
bus journal's writes (``Database.run_sync``, ``run_held_sync``) and the
Argon2 / key hashing that the API hands to ``deferToThread``. So every
answer is there when ``StubTreq`` returns, and hypothesis can drive the app
example by example.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.api import accounts, cms
from ocppd.config import load_config
from ocppd.service import Ocppd
from ocppd.store import migrate, tokens, users
from ocppd.store.database import default_sqlite_url
from ocppd.store.journal import prepare_journal_file
from ocppd.timeutil import from_timestamp
from tests.nodecache import seed_migrated_sqlite, share_schemas
from tests.passwords import password_hash


def _in_this_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
    return maybeDeferred(func, *args, **kwargs)


class InlineNode:
    """See the module docstring."""

    def __init__(self, testcase: SynchronousTestCase, *overrides: str) -> None:
        data_dir = os.path.abspath(testcase.mktemp())
        os.makedirs(data_dir)
        config = load_config(
            None, [f"ocppd.data_dir={data_dir}", "ocppd.node_id=inline", *overrides]
        )
        self.clock = Clock()
        self.clock.advance(1_800_000_000)  # 2027: times in rows look like today's
        # The process's compiled schemas and, on the default SQLite store, a
        # copy of its migrated database: built once, not per example
        # (tests.nodecache). Another store is migrated here (a no-op at head).
        seeded = config.store_url == default_sqlite_url(data_dir)
        if seeded:
            seed_migrated_sqlite(data_dir)
        share_schemas(testcase)
        self.node = Ocppd(config, self.clock)
        database = self.node.database
        if seeded:
            migrate.require_current(database.engine)
        else:
            migrate.upgrade(database.engine)
        testcase.addCleanup(database.engine.dispose)
        testcase.patch(
            database, "run", lambda func, *a, **kw: maybeDeferred(database.run_sync, func, *a, **kw)
        )
        # The embedded bus's journal file beside the SQLite store, likewise.
        journal = self.node.journal_database
        if journal is not None:
            journal.run_sync(prepare_journal_file)
            # (stop: also closes the connection run_held keeps.)
            testcase.addCleanup(journal.stop)
            testcase.patch(
                journal,
                "run",
                lambda func, *a, **kw: maybeDeferred(journal.run_sync, func, *a, **kw),
            )
            # The group commits' own way (Database.run_held), likewise.
            testcase.patch(
                journal,
                "run_held",
                lambda func, *a, **kw: maybeDeferred(journal.run_held_sync, func, *a, **kw),
            )
        for module in (accounts, cms):
            if hasattr(module, "deferToThread"):
                testcase.patch(module, "deferToThread", _in_this_thread)
        # The outbox relay publishes what the services stage (in this thread too).
        self.node.relay.start()
        testcase.addCleanup(self.node.relay.stop)
        self.treq = StubTreq(self.node.web_site.resource)

    def add_user(self, email: str, password: str, role: str) -> int:
        return int(
            self.node.database.run_sync(
                users.add_user, email, password_hash(password), role, now=self.now()
            )
        )

    def token(self, user_id: int) -> str:
        """A bearer token of ``user_id`` valid for years of the test's clock."""
        token = f"inline-token-{user_id}"
        now = self.now()
        self.node.database.run_sync(
            tokens.add_token, token, user_id, now=now, expires_at=now + timedelta(days=3650)
        )
        return token

    def now(self) -> Any:
        return from_timestamp(self.clock.seconds())

    def request(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> tuple[int, bytes]:
        """``method path`` with ``token`` (and ``body`` as JSON): its status and body, pumped."""
        results: list[Any] = []
        headers = {"Authorization": [f"Bearer {token}"]}
        if body is not None:
            headers["Content-Type"] = ["application/json"]
        d = self.treq.request(
            method,
            f"http://ocppd.test{path}",
            headers=headers,
            data=None if body is None else json.dumps(body).encode(),
        )
        d.addCallback(lambda response: response.content().addCallback(lambda c: (response, c)))
        d.addBoth(results.append)
        for _ in range(5):
            self.clock.advance(0)
            self.treq.flush()
        [(response, content)] = results
        return response.code, content
