"""
A RabbitMQ resource alarm, on a private node (tests/bus/private_rabbitmq.py):
an alarm blocks every publisher of a node, so it is never raised on the
shared broker.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from ocppd.bus.amqp import AmqpBus
from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError, Delivery
from ocppd.bus.topology import make_topology
from tests.bus.contract import unique_prefix
from tests.bus.private_rabbitmq import start_private_rabbitmq


def envelope(key: str, n: int) -> Envelope:
    return Envelope.create(key, {"n": n}, node="node-1", charge_point_id="CP-1")


class ResourceAlarmTests(TestCase):
    timeout = 180

    @inlineCallbacks
    def wait_until(self, predicate: Any, what: str, timeout: float = 30.0) -> Any:
        deadline = reactor.seconds() + timeout
        while not predicate():
            if reactor.seconds() > deadline:
                self.fail(f"timed out waiting for {what}")
            yield deferLater(reactor, 0.05)

    @inlineCallbacks
    def test_consumers_drain_while_publishing_is_blocked(self) -> Any:
        """
        A memory alarm blocks publishing: publishes fail at once (the charger
        would retry) instead of hanging, a consumer whose ack waits for its
        own follow-up publish (as the processor's does) still drains the
        backlog, and publishing resumes by itself once the alarm clears.
        """
        broker = yield start_private_rabbitmq(self)
        topology = make_topology([("work", ["session.#"])], prefix=unique_prefix())
        bus = AmqpBus(
            topology,
            url=broker.url,
            reactor=reactor,
            retry_delays=(0.05,),
            max_attempts=3,
            prefetch=5,
            connection_name="ocppd-alarm-test",
            drain_timeout=2.0,
        )
        bus.startService()
        self.addCleanup(bus.stopService)
        yield bus.when_connected(failAfterFailures=3)
        backlog = 20
        for n in range(backlog):
            yield bus.publish("session.updated", envelope("session.updated", n))

        yield broker.ctl("set_vm_memory_high_watermark", "absolute", "1")
        refused: list[str] = []

        @inlineCallbacks
        def until_refused() -> Any:
            # The broker blocks a connection when it next publishes.
            deadline = reactor.seconds() + 30
            while reactor.seconds() < deadline:
                probe = bus.publish("command.probe", envelope("command.probe", 0))
                # A publish on a blocked connection must not hang.
                probe.addTimeout(10, reactor)
                try:
                    yield probe
                except BusError as e:
                    refused.append(str(e))
                    return
                yield deferLater(reactor, 0.1)
            self.fail("publishing was never blocked")

        yield until_refused()
        self.assertIsNotNone(bus.blocked, refused)
        self.assertIn("blocks publishing", refused[0])
        # A blocked publish fails fast: before publish returns.
        failure = self.failureResultOf(
            bus.publish("session.updated", envelope("session.updated", -1)), BusError
        )
        self.assertIn("blocks publishing", str(failure.value))

        handled: list[int] = []
        follow_ups: dict[str, int] = {"published": 0, "refused": 0}

        def handler(delivery: Delivery) -> Deferred[None]:
            n = delivery.envelope.payload["n"]
            # Its follow-up event goes out before the ack, as in the processor.
            d = bus.publish("command.done", envelope("command.done", n))

            def published(_: object) -> None:
                follow_ups["published"] += 1

            def not_published(failure: Any) -> None:
                failure.trap(BusError)
                follow_ups["refused"] += 1

            d.addCallbacks(published, not_published)
            d.addCallback(lambda _: handled.append(n))
            return d

        consumer = yield bus.consume("work", handler)
        self.addCleanup(consumer.stop)
        yield self.wait_until(lambda: len(handled) == backlog, "the backlog to drain")
        self.assertEqual(sorted(handled), list(range(backlog)))
        self.assertEqual(follow_ups, {"published": 0, "refused": backlog})

        @inlineCallbacks
        def depth() -> Any:
            out = yield broker.ctl("list_queues", "name", "messages")
            rows = dict(line.split("\t") for line in out.splitlines() if "\t" in line)
            return int(rows[topology.queue_full_name("work")])

        acked = False
        deadline = reactor.seconds() + 30
        while not acked and reactor.seconds() < deadline:
            acked = (yield depth()) == 0
            if not acked:
                yield deferLater(reactor, 0.2)
        self.assertTrue(acked, "the consumed messages were not acknowledged")
        self.assertIsNotNone(bus.blocked)

        yield broker.ctl("set_vm_memory_high_watermark", "0.6")
        yield self.wait_until(lambda: bus.blocked is None, "the unblock")
        yield bus.publish("session.updated", envelope("session.updated", 99))
        yield self.wait_until(lambda: 99 in handled, "a message published after the alarm")
        self.assertEqual(follow_ups["published"], 1)
