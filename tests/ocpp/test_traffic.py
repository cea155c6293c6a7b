"""``ocppd.ocpp.traffic``: what an outage of the bus writes to the log."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError
from ocppd.ocpp.frames import Call
from ocppd.ocpp.traffic import TrafficPublisher


class RefusingBus:
    """A bus that is down: every publish fails with ``BusError``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error or BusError("not connected to RabbitMQ at 127.0.0.1:5672")
        self.published = 0

    def publish(self, routing_key: str, envelope: Envelope) -> Deferred[None]:
        self.published += 1
        return fail(self.error)


class RefusedPublishLogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_namespace") == "ocppd.ocpp.traffic.TrafficPublisher":
                self.events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def heartbeats(self, traffic: TrafficPublisher, count: int) -> None:
        for n in range(count):
            call = Call(unique_id=str(n), action="Heartbeat", payload={})
            traffic.inbound(f"CP-{n % 20}", call, {"currentTime": "x"}, wait=False)
            self.clock.advance(0.01)

    def test_thousand_refused_publishes_make_two_lines(self) -> None:
        """
        1,000 Heartbeats answered while the broker is down: one warning
        without a traceback, then one line a minute counting the rest.
        """
        bus = RefusingBus()
        traffic = TrafficPublisher(bus, node="n1", clock=self.clock)  # type: ignore[arg-type]
        self.heartbeats(traffic, 1000)
        self.clock.advance(60)
        self.assertEqual(bus.published, 1000)
        self.assertEqual(len(self.events), 2, [e["log_format"] for e in self.events])
        self.assertEqual([e["log_level"] for e in self.events], [LogLevel.warn] * 2)
        self.assertEqual([e["suppressed"] for e in self.events], [0, 999])
        self.assertNotIn("log_failure", self.events[0])
        self.assertIn("not connected", self.events[0]["error"])
        self.assertEqual(self.flushLoggedErrors(BusError), [])

    def test_other_failures_keep_a_traceback(self) -> None:
        """A publish failing for another reason (a bug) keeps its traceback, rate-limited."""
        bus = RefusingBus(ZeroDivisionError("bug"))
        traffic = TrafficPublisher(bus, node="n1", clock=self.clock)  # type: ignore[arg-type]
        self.heartbeats(traffic, 100)
        self.clock.advance(60)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.assertEqual([e["suppressed"] for e in self.events], [0, 99])
