"""The daemon's housekeeping: what it does on its own while it runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd.store import processed
from ocppd.store.tables import processed_messages
from ocppd.timeutil import from_timestamp
from tests.integration.daemon import start_daemon


class ClaimPruningTests(TestCase):
    @inlineCallbacks
    def test_old_claims_pruned_recent_kept(self) -> Any:
        """Idempotency claims older than [store] keep_claims_days go; recent ones stay."""
        daemon = yield start_daemon(self, "store.keep_claims_days=2")
        now = from_timestamp(daemon.node.reactor.seconds())
        for name, age in (("old", timedelta(days=3)), ("recent", timedelta(days=1))):
            yield daemon.query(processed.claim_message, "processor", name, now=now - age)
        yield daemon.service._prune_claims()
        rows = yield daemon.query(
            lambda conn: [
                r.message_id
                for r in conn.execute(
                    sa.select(processed_messages.c.message_id).where(
                        processed_messages.c.message_id.in_(["old", "recent"])
                    )
                )
            ]
        )
        self.assertEqual(rows, ["recent"])
        self.assertTrue(daemon.service._pruner is not None and daemon.service._pruner.running)
