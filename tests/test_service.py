"""The daemon's housekeeping: what it does on its own while it runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import TestCase

from ocppd import nodeservices
from ocppd.config import load_config
from ocppd.service import OcppdService
from ocppd.store import chargers, connections, messages, processed
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
        yield daemon.service.timers.prune_claims()
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
        pruner = daemon.service.timers.pruner
        self.assertTrue(pruner is not None and pruner.running)


@contextmanager
def capture_logs() -> Iterator[list[str]]:
    """The text of every event logged inside the block."""
    from twisted.logger import formatEvent, globalLogPublisher

    seen: list[str] = []

    def observer(event: dict[str, Any]) -> None:
        seen.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    try:
        yield seen
    finally:
        globalLogPublisher.removeObserver(observer)


class MessageLogPruningTests(TestCase):
    @inlineCallbacks
    def test_old_frames_pruned_in_chunks(self) -> Any:
        """With keep_message_log_days, older frames go (in chunks); without, all stay."""
        daemon = yield start_daemon(self, "store.keep_message_log_days=2")
        now = from_timestamp(daemon.node.reactor.seconds())
        ages = [timedelta(days=3, minutes=n) for n in range(5, 0, -1)] + [timedelta(days=1)]
        rows = [inbound_frame(f"m{n}", now - age, unique_id=str(n)) for n, age in enumerate(ages)]
        yield daemon.query(messages.append_log, rows)
        self.patch(nodeservices, "MESSAGE_LOG_PRUNE_CHUNK", 2)  # three chunks: 2, 2, 1
        yield daemon.service.timers.prune()
        left = yield daemon.query(messages.list_messages, "CP1")
        self.assertEqual([r.unique_id for r in left], ["5"])

    @inlineCallbacks
    def test_kept_forever_with_zero(self) -> Any:
        """keep_message_log_days = 0 keeps every frame, however old, and says so at start."""
        with capture_logs() as logged:
            daemon = yield start_daemon(self, "store.keep_message_log_days=0")
        self.assertIn(
            "OCPP message log: every frame kept forever ([store] keep_message_log_days = 0);"
            " the database grows without bound",
            logged,
        )
        old = from_timestamp(daemon.node.reactor.seconds()) - timedelta(days=3650)
        yield daemon.query(messages.append_log, [inbound_frame("ancient", old, unique_id="a")])
        yield daemon.service.timers.prune()
        left = yield daemon.query(messages.list_messages, "CP1")
        self.assertEqual([r.unique_id for r in left], ["a"])

    @inlineCallbacks
    def test_thirty_days_by_default(self) -> Any:
        """
        Without the setting frames are kept 30 days (a forever default filled
        disks), and the start says so in one line.
        """
        with capture_logs() as logged:
            daemon = yield start_daemon(self)
        self.assertEqual(
            [line for line in logged if line.startswith("OCPP message log")],
            ["OCPP message log: frames kept 30 days ([store] keep_message_log_days)"],
        )
        now = from_timestamp(daemon.node.reactor.seconds())
        rows = [
            inbound_frame("old", now - timedelta(days=31), unique_id="old"),
            inbound_frame("recent", now - timedelta(days=29), unique_id="recent"),
        ]
        yield daemon.query(messages.append_log, rows)
        yield daemon.service.timers.prune()
        left = yield daemon.query(messages.list_messages, "CP1")
        self.assertEqual([r.unique_id for r in left], ["recent"])


class ConnectionHistoryPruningTests(TestCase):
    def add_connections(self, daemon: Any, *ages: tuple[str, timedelta]) -> Any:
        now = from_timestamp(daemon.node.reactor.seconds())

        def add(conn: Any) -> None:
            if chargers.get_charge_point(conn, "CP1") is None:
                chargers.add_charge_point(conn, "CP1", None, now=now - timedelta(days=4000))
            for name, age in ages:
                at = now - age
                connections.record_connected(conn, "CP1", connection_id=name, node="n", at=at)
                connections.record_disconnected(conn, "CP1", connection_id=name, at=at)

        return daemon.query(add)

    def left(self, daemon: Any) -> Any:
        return daemon.query(
            lambda conn: sorted(
                r.connection_id for r in connections.recent_connections(conn, "CP1")
            )
        )

    @inlineCallbacks
    def test_ended_before_the_retention_pruned_in_chunks(self) -> Any:
        """Connections that ended over [reports] connection_history_days ago go, in chunks."""
        daemon = yield start_daemon(self, "reports.connection_history_days=2")
        yield self.add_connections(
            daemon, *((f"old{n}", timedelta(days=3, minutes=n)) for n in range(3))
        )
        yield self.add_connections(daemon, ("recent", timedelta(days=1)))
        self.patch(nodeservices, "PRUNE_CHUNK", 2)  # two chunks: 2, 1
        yield daemon.service.timers.prune()
        self.assertEqual((yield self.left(daemon)), ["recent"])

    @inlineCallbacks
    def test_four_hundred_days_by_default(self) -> Any:
        daemon = yield start_daemon(self)
        yield self.add_connections(
            daemon, ("old", timedelta(days=401)), ("kept", timedelta(days=399))
        )
        yield daemon.service.timers.prune()
        self.assertEqual((yield self.left(daemon)), ["kept"])

    @inlineCallbacks
    def test_zero_keeps_all(self) -> Any:
        daemon = yield start_daemon(self, "reports.connection_history_days=0")
        yield self.add_connections(daemon, ("ancient", timedelta(days=3650)))
        yield daemon.service.timers.prune()
        self.assertEqual((yield self.left(daemon)), ["ancient"])


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
    def test_stripe_test_key_warned(self) -> Any:
        """A Stripe test-mode key pays with test cards: warned like the test provider."""
        seen = self.warnings()
        stripe = [
            "billing.payment_provider=stripe",
            "billing.stripe_webhook_secret=whsec_x",
            "billing.checkout_return_url=https://charge.example.com/user/#/wallet",
        ]
        yield start_daemon(self, *stripe, "billing.stripe_secret_key=sk_test_abc")
        yield start_daemon(self, *stripe, "billing.stripe_secret_key=sk_live_abc")
        self.assertEqual(sum("test-mode key" in text for text in seen), 1, seen)
        self.assertFalse([text for text in seen if "sk_test_abc" in text or "sk_live" in text])

    @inlineCallbacks
    def test_no_warning_by_default(self) -> Any:
        """The default takes no payments, so there is nothing to warn about."""
        seen = self.warnings()
        daemon = yield start_daemon(self)
        self.assertEqual(daemon.node.config.billing.payment_provider, "none")
        self.assertIsNone(daemon.node.customer._payments)
        self.assertFalse([text for text in seen if "payment_provider" in text])


class CrashedNodeTests(TestCase):
    @inlineCallbacks
    def test_start_marks_the_node_own_chargers_offline(self) -> Any:
        """
        A node killed with chargers online (no disconnect events) restarts
        with them offline; a charger another node holds stays online.
        """
        first = yield start_daemon(self)
        now = from_timestamp(first.node.reactor.seconds())
        for charge_point_id, node in (("CP1", "test-node"), ("CP2", "other-node")):
            yield first.query(chargers.add_charge_point, charge_point_id, None, now=now)
            yield first.query(
                chargers.set_connected, charge_point_id, connection_id="c", node=node, at=now
            )
        yield first.service.stopService()  # as after a crash: the rows still say online
        data_dir = first.node.config.ocppd.data_dir
        second = yield start_daemon(self, f"ocppd.data_dir={data_dir}")
        online = {}
        for charge_point_id in ("CP1", "CP2"):
            record = yield second.query(chargers.get_charge_point, charge_point_id)
            online[charge_point_id] = record.online
        self.assertEqual(online, {"CP1": False, "CP2": True})
        self.assertTrue(second.node.liveness.running)
        self.assertEqual(second.node.liveness.timeout, 180)


class TimersStopTests(TestCase):
    def test_stop_waits_for_the_liveness_and_diagnostics_runs(self) -> None:
        """The timers' stop fires once the liveness run and the pruning pass under way end."""
        data_dir = os.path.abspath(self.mktemp())
        os.makedirs(data_dir)
        config = load_config(None, [f"ocppd.data_dir={data_dir}"])
        service = OcppdService(config, MemoryReactor())
        runs: dict[str, Deferred[None]] = {"liveness": Deferred(), "pruning": Deferred()}
        self.patch(service.ocppd.liveness, "stopService", lambda: runs["liveness"])
        self.patch(service.ocppd.diagnostics_pruner, "stopService", lambda: runs["pruning"])
        stopped = service.timers.stopService()
        runs["liveness"].callback(None)
        self.assertNoResult(stopped)
        runs["pruning"].callback(None)
        self.successResultOf(stopped)
