"""Tests for ``ocppd.bus.publisher``: publishing, and announcing that never fails."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus import publisher as publisher_module
from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.memory import MemoryBus
from ocppd.bus.publisher import EventPublisher


class RaisingBus:
    """A bus whose publish raises instead of returning a failed Deferred (a bug)."""

    def publish(self, routing_key: str, envelope: Envelope) -> Deferred[None]:
        raise RuntimeError("boom")


class AnnounceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.bus = MemoryBus(topology.default_topology("t", node_id="n1"), reactor=self.clock)
        self.bus.startService()
        self.logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(self.logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.logged.append)

    def test_accepted_at_once(self) -> None:
        """
        The embedded bus accepts an event for ephemeral queues at once: the
        announcement has fired when ``announce`` returns, so a consumer need
        not wait on it.
        """
        events = EventPublisher(self.bus, node="n1", clock=self.clock)
        announced = events.announce("session.updated", {"session": {}}, charge_point_id="CP1")
        self.assertTrue(announced.called)
        self.assertIsNone(self.successResultOf(announced))
        self.assertEqual(self.bus.queue_length(topology.notifier_queue("n1")), 1)

    def test_nobody_wanting_it_builds_no_envelope(self) -> None:
        """
        While no queue would take it (the notifier's, nobody watching), an
        announcement is settled by the embedded bus without an envelope (no
        id drawn) and counted as published; a payload that is not JSON is
        still refused, a warning.
        """
        notifier = topology.notifier_queue("n1")
        self.successResultOf(self.bus.consume(notifier, lambda d: None, wanted=lambda: False))
        drawn: list[str] = []
        self.patch(publisher_module, "new_id", lambda: drawn.append("id") or "0" * 32)
        events = EventPublisher(self.bus, node="n1", clock=self.clock)
        announced = events.announce("session.updated", {"session": {}}, charge_point_id="CP1")
        self.assertIsNone(self.successResultOf(announced))
        self.assertEqual(drawn, [])
        self.assertEqual(self.bus.stats.publish_confirmed, 1)
        self.assertEqual(self.bus.queue_length(notifier), 0)
        nan = events.announce("session.updated", {"n": float("nan")}, charge_point_id="CP1")
        self.assertIsNone(self.successResultOf(nan))
        warnings = [e for e in self.logged if e.get("log_level") == LogLevel.warn]
        self.assertEqual([e["routing_key"] for e in warnings], ["session.updated"])
        self.assertIn("not serialisable", warnings[0]["error"])
        self.assertEqual(self.bus.stats.publish_failed, 1)

    def test_refused_is_a_warning(self) -> None:
        """A publish the bus refuses (stopped) is logged as a warning; the announcement succeeds."""
        self.bus.stopService()
        events = EventPublisher(self.bus, node="n1", clock=self.clock)
        self.assertIsNone(self.successResultOf(events.announce("session.updated", {})))
        warnings = [e for e in self.logged if e.get("log_level") == LogLevel.warn]
        self.assertEqual([e["routing_key"] for e in warnings], ["session.updated"])
        self.assertIn("stopped", warnings[0]["error"])

    def test_raising_bus_is_logged_with_its_traceback(self) -> None:
        """Anything else (even raised, not failed) is logged as a failure, never raised."""
        events = EventPublisher(RaisingBus(), node="n1", clock=self.clock)  # type: ignore[arg-type]
        self.assertIsNone(self.successResultOf(events.announce("session.updated", {})))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
