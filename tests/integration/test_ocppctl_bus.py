"""`ocppctl bus dead-letters list|replay` against the real RabbitMQ, in a subprocess."""

from __future__ import annotations

import io
import json
import os
import sys
import uuid
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, succeed
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from ocppd import cli
from ocppd.bus import topology
from ocppd.bus.amqp import AmqpBus
from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery
from tests.integration.daemon import poll
from tests.services import RABBITMQ_URL, require_service

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Refused(Exception):
    """The test handler's failure, which ends up as the dead letter's reason."""


class DeadLetterCommandTests(TestCase):
    timeout = 60

    def test_embedded_bus_refused(self) -> None:
        """With the embedded bus the command explains why it cannot help, exit 1."""
        err = io.StringIO()
        self.patch(cli.sys, "stderr", err)
        code = cli.main(["bus", "dead-letters", "list"], stdin=io.StringIO(), stdout=io.StringIO())
        self.assertEqual(code, 1)
        self.assertIn("backend = amqp", err.getvalue())

    @inlineCallbacks
    def ocppctl(self, prefix: str, *argv: str) -> Any:
        out, err, code = yield getProcessOutputAndValue(
            sys.executable,
            [
                "-m",
                "ocppd.cli",
                "--set",
                "bus.backend=amqp",
                "--set",
                f"bus.url={RABBITMQ_URL}",
                # The bus under test's retry settings: ocppctl then declares no
                # retry queue that the cleanup would not know to delete.
                "--set",
                "bus.retry_delays=0.05",
                "--set",
                "bus.max_attempts=2",
                "--set",
                f"bus.prefix={prefix}",
                *argv,
            ],
            env=dict(os.environ),
            path=ROOT,
        )
        self.assertEqual(code, 0, (out + err).decode(errors="replace"))
        return out.decode()

    @inlineCallbacks
    def start_bus(self, *, max_attempts: int) -> Any:
        """A RabbitMQ bus on a topology of its own (deleted after the test), connected."""
        require_service("RabbitMQ", "127.0.0.1", 5672)
        prefix = f"t{uuid.uuid4().hex[:10]}"
        bus = AmqpBus(
            topology.default_topology(prefix),
            url=RABBITMQ_URL,
            reactor=reactor,
            retry_delays=(0.05,),
            max_attempts=max_attempts,
            connection_name=f"test {prefix}",
        )
        bus.startService()
        self.addCleanup(bus.stopService)
        yield bus.when_connected(failAfterFailures=3)
        self.addCleanup(bus.delete_topology)
        return prefix, bus

    @inlineCallbacks
    def test_list_and_replay(self) -> Any:
        """A message that failed every attempt is listed with its reason, then replayed once."""
        prefix, bus = yield self.start_bus(max_attempts=2)

        fail_it = [True]
        seen: list[Delivery] = []

        def handler(delivery: Delivery) -> None:
            if fail_it[0]:
                raise Refused("the processor refused it")
            seen.append(delivery)

        consumer = yield bus.consume(topology.PROCESSOR_QUEUE, handler)
        envelope = Envelope.create("ocpp.in.Heartbeat", {"n": 1}, node="n", charge_point_id="CP-DL")
        yield bus.publish(envelope.type, envelope)
        yield poll(lambda: bus.dead_letters(topology.PROCESSOR_QUEUE), until=lambda d: len(d) == 1)
        self.flushLoggedErrors(Refused)

        listed = json.loads((yield self.ocppctl(prefix, "bus", "dead-letters", "list", "--json")))
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0]["id"], envelope.id)
        self.assertEqual(listed[0]["attempts"], 2)
        self.assertIn("the processor refused it", listed[0]["reason"])
        self.assertEqual(listed[0]["envelope"]["chargePointId"], "CP-DL")
        text = yield self.ocppctl(prefix, "bus", "dead-letters", "list")
        self.assertIn(envelope.id, text)
        self.assertIn("1 dead letters", text)

        fail_it[0] = False
        replayed = yield self.ocppctl(prefix, "bus", "dead-letters", "replay", "--id", envelope.id)
        self.assertIn("1 dead letters replayed", replayed)
        yield poll(lambda: succeed(seen), until=lambda s: len(s) == 1)
        self.assertEqual((seen[0].envelope.id, seen[0].attempt), (envelope.id, 1))
        self.assertEqual((yield bus.dead_letters(topology.PROCESSOR_QUEUE)), [])
        yield consumer.stop()

    @inlineCallbacks
    def test_replay_of_letters_that_fail_again_ends_and_names_them(self) -> Any:
        """
        ``replay`` without ``--id`` of letters that fail again at once ends
        (each is replayed once) and prints the ids of those that came back.
        """
        prefix, bus = yield self.start_bus(max_attempts=1)
        tries: list[str] = []

        def handler(delivery: Delivery) -> None:
            tries.append(delivery.envelope.id)
            raise Refused("still broken")

        consumer = yield bus.consume(topology.PROCESSOR_QUEUE, handler)
        self.addCleanup(consumer.stop)
        sent = [
            Envelope.create("ocpp.in.Heartbeat", {"n": n}, node="n", charge_point_id="CP-DL")
            for n in range(2)
        ]
        for envelope in sent:
            yield bus.publish(envelope.type, envelope)
        yield poll(lambda: bus.dead_letters(topology.PROCESSOR_QUEUE), until=lambda d: len(d) == 2)
        out = yield self.ocppctl(prefix, "bus", "dead-letters", "replay", "--wait", "2")
        self.assertIn("2 dead letters replayed", out)
        self.assertIn("2 failed again within 2 s", out)
        for envelope in sent:
            self.assertIn(f"  {envelope.id}\n", out)
        self.assertEqual(sorted(tries), sorted([e.id for e in sent] * 2))
        self.flushLoggedErrors(Refused)
