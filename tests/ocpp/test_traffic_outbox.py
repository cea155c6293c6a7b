"""
ocppd.ocpp.traffic: a charger's connect and disconnect, which nobody would
send again, are kept in the outbox when the bus refuses them.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd.bus.outbox import Outbox
from ocppd.bus.relay import OutboxRelay
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.store import outbox
from tests.bus.test_outbox import START, FlakyBus
from tests.store.fixtures import make_sqlite_database


class ConnectionEventsTests(TestCase):
    def setUp(self) -> None:
        self.database = make_sqlite_database(self)
        self.clock = Clock()
        self.clock.advance(START)
        self.bus = FlakyBus()
        self.relay = OutboxRelay(
            self.database,
            self.bus,  # type: ignore[arg-type]
            node="n1",
            clock=self.clock,
            poll_interval=1e9,
        )
        self.relay.start()
        self.addCleanup(self.relay.stop)
        self.traffic = TrafficPublisher(
            self.bus,  # type: ignore[arg-type]
            node="n1",
            clock=self.clock,
            outbox=Outbox(node="n1", clock=self.clock, relay=self.relay),
            database=self.database,
        )

    @inlineCallbacks
    def test_disconnect_kept_while_the_bus_refuses(self) -> Any:
        """
        A disconnect (and a connect) the bus refuses goes to the outbox and is
        published once the bus takes messages again: the charger is not shown
        online after it left.
        """
        self.bus.down = True
        yield self.traffic.connected("CP1", connection_id="c1", remote="1.2.3.4")
        yield self.traffic.disconnected("CP1", connection_id="c1", code=1000, reason="bye")
        self.assertEqual(self.database.run_sync(outbox.count_events), 2)
        self.assertEqual(self.bus.published, [])
        self.bus.down = False
        self.clock.advance(30)
        while self.relay._pass is not None:
            yield self.relay._pass
        self.assertEqual(
            [(key, e.payload["connectionId"]) for key, e in self.bus.published],
            [("charger.connected", "c1"), ("charger.disconnected", "c1")],
        )
        self.assertEqual(self.database.run_sync(outbox.count_events), 0)

    @inlineCallbacks
    def test_published_at_once_while_the_bus_is_up(self) -> Any:
        yield self.traffic.disconnected("CP1", connection_id="c1", code=1000, reason="bye")
        self.assertEqual([key for key, _ in self.bus.published], ["charger.disconnected"])
        self.assertEqual(self.database.run_sync(outbox.count_events), 0)
