"""The daemon's housekeeping: what it does on its own while it runs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd import service
from ocppd.store import messages, processed
from ocppd.store.tables import processed_messages
from ocppd.timeutil import from_timestamp
from tests.integration.daemon import start_daemon
from tests.store.fixtures import inbound_frame


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


class MessageLogPruningTests(TestCase):
    @inlineCallbacks
    def test_old_frames_pruned_in_chunks(self) -> Any:
        """With keep_message_log_days, older frames go (in chunks); without, all stay."""
        daemon = yield start_daemon(self, "store.keep_message_log_days=2")
        now = from_timestamp(daemon.node.reactor.seconds())
        ages = [timedelta(days=3, minutes=n) for n in range(5, 0, -1)] + [timedelta(days=1)]
        rows = [inbound_frame(f"m{n}", now - age, unique_id=str(n)) for n, age in enumerate(ages)]
        yield daemon.query(messages.append_log, rows)
        self.patch(service, "MESSAGE_LOG_PRUNE_CHUNK", 2)  # three chunks: 2, 2, 1
        yield daemon.service._prune()
        left = yield daemon.query(messages.list_messages, "CP1")
        self.assertEqual([r.unique_id for r in left], ["5"])

    @inlineCallbacks
    def test_kept_forever_by_default(self) -> Any:
        """Without the setting the log keeps every frame, however old."""
        daemon = yield start_daemon(self)
        self.assertEqual(daemon.node.config.store.keep_message_log_days, 0)
        old = from_timestamp(daemon.node.reactor.seconds()) - timedelta(days=3650)
        yield daemon.query(messages.append_log, [inbound_frame("ancient", old, unique_id="a")])
        yield daemon.service._prune()
        left = yield daemon.query(messages.list_messages, "CP1")
        self.assertEqual([r.unique_id for r in left], ["a"])


class PaymentProviderWarningTests(TestCase):
    def warnings(self) -> list[str]:
        """The text of every warning logged from now until the test ends."""
        from twisted.logger import LogLevel, formatEvent, globalLogPublisher

        seen: list[str] = []

        def observer(event: dict[str, Any]) -> None:
            if event.get("log_level") == LogLevel.warn:
                seen.append(formatEvent(event))

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        return seen

    @inlineCallbacks
    def test_test_provider_warned_at_every_start(self) -> Any:
        """Each start with payment_provider = test logs a warning that it mints money."""
        seen = self.warnings()
        for _ in range(2):
            yield start_daemon(self, "billing.payment_provider=test")
        self.assertEqual(sum("payment_provider = test" in text for text in seen), 2, seen)

    @inlineCallbacks
    def test_no_warning_by_default(self) -> Any:
        """The default takes no payments, so there is nothing to warn about."""
        seen = self.warnings()
        daemon = yield start_daemon(self)
        self.assertEqual(daemon.node.config.billing.payment_provider, "none")
        self.assertIsNone(daemon.node.customer._payments)
        self.assertFalse([text for text in seen if "payment_provider" in text])
