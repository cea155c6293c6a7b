"""Tests for the embedded bus, ``ocppd.bus.memory``, and for ``ocppd.bus.topology``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError, Delivery, IBus, IConsumer
from ocppd.bus.journal import InMemoryJournal
from ocppd.bus.memory import MemoryBus, Settlement
from ocppd.bus.topology import (
    AUDIT_QUEUE,
    CHARGER_CONNECTED,
    CHARGER_DISCONNECTED,
    FUNDS_STOP_QUEUE,
    OCPP_REJECTED,
    PROCESSOR_QUEUE,
    Binding,
    Exchange,
    QueueSpec,
    Topology,
    bind,
    default_topology,
    make_topology,
    notifier_queue,
    ocpp_in,
    ocpp_out,
    ocpp_reply,
    standard_exchanges,
    topic_matches,
)
from ocppd.timeutil import utcnow
from tests.bus.contract import BusContractTests, HandlerError


class MemoryBusContractTests(BusContractTests, TestCase):
    """The IBus contract, against the embedded bus on the real reactor."""

    def make_bus(
        self, topology: Topology, retry_delays: Sequence[float], max_attempts: int
    ) -> Deferred[IBus]:
        bus = MemoryBus(
            topology,
            reactor=reactor,
            retry_delays=retry_delays,
            max_attempts=max_attempts,
            drain_timeout=2.0,
        )
        bus.startService()
        self.addCleanup(bus.stopService)
        return succeed(bus)


def envelope(key: str, n: int = 0) -> Envelope:
    return Envelope.create(key, {"n": n}, node="node-1", charge_point_id="CP-1")


class Recorder:
    """A log observer that keeps events, to check what the bus logged."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def at(self, level: LogLevel) -> list[dict[str, Any]]:
        return [e for e in self.events if e["log_level"] == level]


class MemoryBusTests(SynchronousTestCase):
    """The embedded bus on a fake clock: timing, bounds, stop and drain."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.recorder = Recorder()
        self.topology = make_topology(
            [("work", ["session.#"]), ("other", ["session.started"])], prefix="t"
        )

    def make(self, **kwargs: Any) -> MemoryBus:
        bus = MemoryBus(self.topology, reactor=self.clock, **kwargs)
        # Per instance, so the tests see exactly what this bus logged.
        bus.log = Logger(namespace="test", source=bus, observer=self.recorder)
        bus.startService()
        return bus

    def ephemeral(self) -> MemoryBus:
        """A bus whose queues are ephemeral (as pushes'): no journal write takes a turn."""
        queues = tuple(attrs.evolve(queue, ephemeral=True) for queue in self.topology.queues)
        self.topology = attrs.evolve(self.topology, queues=queues)
        return self.make()

    def consume(self, bus: MemoryBus, queue: str, handler: Any) -> IConsumer:
        return self.successResultOf(bus.consume(queue, handler))

    def test_provides_interfaces(self) -> None:
        """MemoryBus provides IBus and its consumers IConsumer."""
        bus = self.make()
        self.assertTrue(verifyObject(IBus, bus))
        consumer = self.consume(bus, "work", lambda d: None)
        self.assertTrue(verifyObject(IConsumer, consumer))

    def test_delivery_is_never_reentrant(self) -> None:
        """A consumer is called from the reactor, never from inside ``publish``."""
        bus = self.make()
        got: list[Delivery] = []
        self.consume(bus, "work", got.append)
        self.successResultOf(bus.publish("session.updated", envelope("session.updated")))
        self.assertEqual(got, [])
        self.clock.advance(0)
        self.assertEqual(len(got), 1)

    def test_ready_messages_go_to_a_prompt_handler_in_one_turn(self) -> None:
        """
        A handler that finishes at once is handed, in one reactor turn and in
        order, every message ready when the turn began; what it publishes
        meanwhile waits for the next turn.
        """
        bus = self.ephemeral()
        got: list[int] = []

        def handler(delivery: Delivery) -> None:
            n = delivery.envelope.payload["n"]
            got.append(n)
            if n == 1:
                bus.publish("session.updated", envelope("session.updated", 9))

        self.consume(bus, "work", handler)
        for n in range(4):
            bus.publish("session.updated", envelope("session.updated", n))
        self.assertEqual(self.turn(), 1)
        self.assertEqual(got, [0, 1, 2, 3])
        self.assertEqual(self.turn(), 1)
        self.assertEqual(got, [0, 1, 2, 3, 9])
        self.assertEqual(self.turn(), 0)

    def turn(self) -> int:
        """
        One turn of a real reactor: the calls due now, not those they add
        (``Clock.advance`` runs those too); how many ran.
        """
        due = [
            call for call in self.clock.getDelayedCalls() if call.getTime() <= self.clock.seconds()
        ]
        for call in due:
            self.clock.calls.remove(call)
            call.func(*call.args, **call.kw)
        return len(due)

    def test_turn_ends_with_a_waiting_handler_or_a_stop(self) -> None:
        """
        The turn's deliveries stop at a handler still working (one at a time,
        in order) and at a consumer stopped by its own handler.
        """
        bus = self.ephemeral()
        got: list[int] = []
        pending: Deferred[None] = Deferred()
        consumer: list[IConsumer] = []

        def handler(delivery: Delivery) -> Deferred[None] | None:
            n = delivery.envelope.payload["n"]
            got.append(n)
            if n == 1:
                return pending
            if n == 3:
                consumer[0].stop()
            return None

        consumer.append(self.consume(bus, "work", handler))
        for n in range(5):
            bus.publish("session.updated", envelope("session.updated", n))
        self.turn()
        self.assertEqual(got, [0, 1])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        pending.callback(None)
        self.turn()
        self.assertEqual(got, [0, 1, 2, 3])
        self.assertEqual(bus.queue_length("work"), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_backoff_follows_retry_delays(self) -> None:
        """
        Retries come exactly ``retry_delays`` apart, the last delay repeating,
        and the message is dead after ``max_attempts``.
        """
        bus = self.make(retry_delays=(1, 5, 30), max_attempts=5)
        times: list[tuple[int, float]] = []

        def handler(delivery: Delivery) -> None:
            times.append((delivery.attempt, self.clock.seconds()))
            raise HandlerError("down")

        self.consume(bus, "work", handler)
        bus.publish("session.updated", envelope("session.updated"))
        self.clock.advance(0)
        for delay in (1, 5, 30, 30):
            # Halves are exact in binary floating point, so times add up exactly.
            self.clock.advance(delay - 0.5)
            count = len(times)
            self.clock.advance(0.5)
            self.assertEqual(len(times), count + 1)
        self.assertEqual(times, [(1, 0), (2, 1), (3, 6), (4, 36), (5, 66)])
        [letter] = self.successResultOf(bus.dead_letters("work"))
        self.assertEqual(letter.attempts, 5)
        self.assertEqual(letter.reason, "HandlerError: down")
        self.assertEqual(letter.failed_at, "1970-01-01T00:01:06.000Z")
        self.clock.advance(1000)
        self.assertEqual(len(times), 5)
        # Every failed attempt is logged or counted, a line a minute: at t=0
        # with its traceback, t=1, 6 and 36 in the summary at t=60, and t=66
        # in the one at t=120.
        failures = [e for e in self.recorder.events if "attempt" in e and "suppressed" in e]
        self.assertEqual([e["suppressed"] for e in failures], [0, 3, 1])
        self.assertEqual(["log_failure" in e for e in failures], [True, False, False])

    def test_failure_is_logged_with_fields(self) -> None:
        """A handler failure is logged as a failure, with queue, key, message id and attempt."""
        bus = self.make(max_attempts=2)

        def handler(delivery: Delivery) -> None:
            raise HandlerError("down")

        self.consume(bus, "work", handler)
        sent = envelope("session.updated")
        bus.publish("session.updated", sent)
        self.clock.advance(0)
        [event] = [e for e in self.recorder.events if "log_failure" in e]
        self.assertEqual(event["log_level"], LogLevel.critical)
        self.assertEqual(event["queue"], "work")
        self.assertEqual(event["routing_key"], "session.updated")
        self.assertEqual(event["message_id"], sent.id)
        self.assertEqual(event["attempt"], 1)
        self.assertIsInstance(event["log_failure"].value, HandlerError)

    def test_replay_starts_again_at_attempt_one(self) -> None:
        """A replayed dead letter is redelivered with attempt 1 and full retries."""
        bus = self.make(retry_delays=(1,), max_attempts=2)
        attempts: list[int] = []

        def handler(delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            raise HandlerError("down")

        self.consume(bus, "work", handler)
        bus.publish("session.updated", envelope("session.updated"))
        self.clock.advance(0)
        self.clock.advance(1)
        self.assertEqual(self.successResultOf(bus.replay_dead_letters("work")).count, 1)
        self.clock.advance(0)
        self.clock.advance(1)
        self.assertEqual(attempts, [1, 2, 1, 2])
        self.assertEqual(len(self.successResultOf(bus.dead_letters("work"))), 1)

    def test_bounded_queue_refuses(self) -> None:
        """A full queue makes ``publish`` fail with BusError; nothing is dropped."""
        bus = self.make(max_queue_length=2)
        for n in range(2):
            self.successResultOf(bus.publish("session.updated", envelope("session.updated", n)))
        self.failureResultOf(
            bus.publish("session.updated", envelope("session.updated", 2)), BusError
        )
        self.assertEqual(bus.queue_length("work"), 2)
        self.assertTrue(self.recorder.at(LogLevel.warn))
        got: list[int] = []
        self.consume(bus, "work", lambda d: got.append(d.envelope.payload["n"]))
        self.clock.advance(0)
        self.assertEqual(got, [0, 1])
        # Delivered messages free their place.
        self.successResultOf(bus.publish("session.updated", envelope("session.updated", 3)))

    def test_full_queue_refuses_for_every_queue(self) -> None:
        """
        A message for two queues, one of them full, goes to neither: a publish
        is all or nothing.
        """
        bus = self.make(max_queue_length=1)
        self.successResultOf(bus.publish("session.updated", envelope("session.updated")))
        self.assertEqual(bus.queue_length("work"), 1)
        self.failureResultOf(bus.publish("session.started", envelope("session.started")), BusError)
        self.assertEqual(bus.queue_length("other"), 0)

    def test_dead_letters_count_toward_bound(self) -> None:
        """Dead letters fill the queue too, until discarded or replayed."""
        bus = self.make(max_queue_length=1, max_attempts=1)

        def handler(delivery: Delivery) -> None:
            raise HandlerError("down")

        self.consume(bus, "work", handler)
        bus.publish("session.updated", envelope("session.updated"))
        self.clock.advance(0)
        self.failureResultOf(bus.publish("session.updated", envelope("session.updated")), BusError)
        self.assertEqual(self.successResultOf(bus.discard_dead_letters("work", ["x"])), 0)
        self.assertEqual(self.successResultOf(bus.discard_dead_letters("work")), 1)
        self.successResultOf(bus.publish("session.updated", envelope("session.updated")))

    def test_retrying_messages_count_toward_bound(self) -> None:
        """A message waiting for its retry still takes its place in the queue."""
        bus = self.make(max_queue_length=1, retry_delays=(10,))

        def handler(delivery: Delivery) -> None:
            raise HandlerError("down")

        self.consume(bus, "work", handler)
        bus.publish("session.updated", envelope("session.updated"))
        self.clock.advance(0)
        self.assertEqual(bus.queue_length("work"), 1)
        self.failureResultOf(bus.publish("session.updated", envelope("session.updated")), BusError)

    def test_publish_after_stop_fails(self) -> None:
        """Once stopService is called, ``publish`` and replays fail with BusError."""
        bus = self.make()
        self.successResultOf(bus.stopService())
        self.failureResultOf(bus.publish("session.updated", envelope("session.updated")), BusError)
        self.failureResultOf(bus.replay_dead_letters("work"), BusError)
        bus.startService()
        self.successResultOf(bus.publish("session.updated", envelope("session.updated")))

    def test_unroutable_is_dropped_and_logged_at_debug(self) -> None:
        """A key no queue is bound to is accepted, dropped, and logged at debug."""
        bus = self.make()
        self.successResultOf(bus.publish("charger.connected", envelope("charger.connected")))
        self.assertEqual(bus.queue_length("work"), 0)
        [event] = self.recorder.at(LogLevel.debug)
        self.assertEqual(event["routing_key"], "charger.connected")

    def test_second_consumer_refused(self) -> None:
        """One consumer per queue: a second one fails with BusError until the first stops."""
        bus = self.make()
        consumer = self.consume(bus, "work", lambda d: None)
        self.failureResultOf(bus.consume("work", lambda d: None), BusError)
        self.successResultOf(consumer.stop())
        self.consume(bus, "work", lambda d: None)

    def test_stop_service_drains_queued_messages(self) -> None:
        """
        stopService delivers what is queued for consumers, waits for the
        handlers, and only then fires; nothing accepted is lost.
        """
        bus = self.make()
        gates: list[Deferred[None]] = []
        got: list[int] = []

        def handler(delivery: Delivery) -> Deferred[None]:
            got.append(delivery.envelope.payload["n"])
            gates.append(Deferred())
            return gates[-1]

        self.consume(bus, "work", handler)
        for n in range(3):
            bus.publish("session.updated", envelope("session.updated", n))
        stopped = bus.stopService()
        self.assertNoResult(stopped)
        self.failureResultOf(bus.publish("session.updated", envelope("session.updated")), BusError)
        for n in range(3):
            self.clock.advance(0)
            self.assertEqual(got, list(range(n + 1)))
            self.assertNoResult(stopped)
            gates[n].callback(None)
        self.successResultOf(stopped)
        self.assertEqual(bus.queue_length("work"), 0)
        # Only the queue without a consumer ("other") is reported; it holds nothing.
        self.assertEqual(self.recorder.at(LogLevel.warn), [])

    def test_stop_service_drain_timeout(self) -> None:
        """
        A handler that never finishes does not hold stopService past
        ``drain_timeout``; what is left undelivered is logged.
        """
        bus = self.make(drain_timeout=3)
        self.consume(bus, "work", lambda d: Deferred())
        for n in range(2):
            bus.publish("session.updated", envelope("session.updated", n))
        bus.publish("session.started", envelope("session.started"))
        self.clock.advance(0)
        stopped = bus.stopService()
        self.clock.advance(2.9)
        self.assertNoResult(stopped)
        self.clock.advance(0.1)
        self.successResultOf(stopped)
        [event] = self.recorder.at(LogLevel.warn)
        self.assertEqual(
            event["left"]["work"],
            {
                "ready": 2,
                "in_flight": 1,
                "retrying": 0,
                "dead": 0,
                "journaling": 0,
                "consumed": True,
            },
        )
        self.assertEqual(event["left"]["other"]["ready"], 1)
        self.assertEqual(event["left"]["other"]["consumed"], False)

    def test_stop_service_keeps_waiting_retries(self) -> None:
        """
        A retry still waiting at stop is not waited for; it is kept and
        delivered when the bus starts again.
        """
        bus = self.make(retry_delays=(60,))
        attempts: list[int] = []

        def handler(delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            if delivery.attempt == 1:
                raise HandlerError("down")

        self.consume(bus, "work", handler)
        bus.publish("session.updated", envelope("session.updated"))
        self.clock.advance(0)
        self.successResultOf(bus.stopService())
        self.assertEqual(self.recorder.at(LogLevel.warn)[0]["left"]["work"]["retrying"], 1)
        self.clock.advance(120)
        self.assertEqual(attempts, [1])
        bus.startService()
        self.clock.advance(0)
        self.assertEqual(attempts, [1, 2])

    def test_consumer_stop_fires_after_in_flight(self) -> None:
        """``IConsumer.stop`` fires when the in-flight handler finishes, and stops deliveries."""
        bus = self.make()
        gate: Deferred[None] = Deferred()
        got: list[Delivery] = []

        def handler(delivery: Delivery) -> Deferred[None]:
            got.append(delivery)
            return gate

        consumer = self.consume(bus, "work", handler)
        bus.publish("session.updated", envelope("session.updated", 0))
        bus.publish("session.updated", envelope("session.updated", 1))
        self.clock.advance(0)
        stopped = consumer.stop()
        self.assertNoResult(stopped)
        gate.callback(None)
        self.successResultOf(stopped)
        self.clock.advance(10)
        self.assertEqual(len(got), 1)
        self.assertEqual(bus.queue_length("work"), 1)

    def test_envelope_delivered_as_published(self) -> None:
        """
        In one process the published envelope itself reaches every consumer,
        not a copy decoded from its bytes (those are only for the journal):
        payloads are read-only once published (``IBus.publish``).
        """
        bus = self.make()
        sent = envelope("session.started")
        bus.publish("session.started", sent)
        work: list[Delivery] = []
        other: list[Delivery] = []
        self.consume(bus, "work", work.append)
        self.consume(bus, "other", other.append)
        self.clock.advance(0)
        self.assertIs(work[0].envelope, sent)
        self.assertIs(other[0].envelope, sent)

    def test_coroutine_handler(self) -> None:
        """An ``async def`` handler is awaited like a Deferred-returning one."""
        bus = self.make()
        gate: Deferred[None] = Deferred()
        done: list[int] = []

        async def handler(delivery: Delivery) -> None:
            await gate
            done.append(delivery.envelope.payload["n"])

        self.consume(bus, "work", handler)
        bus.publish("session.updated", envelope("session.updated", 0))
        bus.publish("session.updated", envelope("session.updated", 1))
        self.clock.advance(0)
        self.assertEqual(done, [])
        gate.callback(None)
        self.clock.advance(0)
        self.assertEqual(done, [0, 1])

    def test_settlement_handler(self) -> None:
        """
        A handler may return a ``Settlement`` in place of a Deferred: its
        outcome, given later or before the handler returned, settles the
        delivery as a Deferred's would (success removes its journal record,
        a failure keeps it for a retry), and is given once.
        """
        journal = InMemoryJournal()
        bus = self.make(journal=journal)
        settlements: list[tuple[int, Settlement]] = []

        def handler(delivery: Delivery) -> Settlement:
            settlement = Settlement()
            n = delivery.envelope.payload["n"]
            if n == 2:
                settlement.callback(None)  # settled before it returned
            settlements.append((n, settlement))
            return settlement

        def journaled() -> list[int]:
            return sorted(
                Envelope.from_bytes(r.body).payload["n"] for r in journal.records.values()
            )

        self.successResultOf(bus.consume("work", handler, concurrency=5))
        for n in range(3):
            self.successResultOf(bus.publish("session.updated", envelope("session.updated", n)))
        self.assertEqual(journaled(), [0, 1, 2])
        self.clock.advance(0)  # delivered, and 2 settled at once
        self.assertEqual([n for n, _ in settlements], [0, 1, 2])
        self.assertEqual(bus.queue_length("work"), 2)
        self.clock.advance(0)  # its removal written
        self.assertEqual(journaled(), [0, 1])
        settlements[0][1].callback(None)
        settlements[1][1].errback(Failure(HandlerError("down")))
        self.assertRaises(RuntimeError, settlements[0][1].callback, None)
        self.assertEqual(bus.queue_length("work"), 1)  # 1 waits for its retry
        self.clock.advance(0)
        self.assertEqual(journaled(), [1])
        self.clock.advance(1)  # the retry delay
        self.assertEqual([n for n, _ in settlements], [0, 1, 2, 1])
        settlements[3][1].callback(None)
        self.clock.advance(0)
        self.assertEqual((journaled(), bus.queue_length("work")), ([], 0))

    def test_constructor_validates(self) -> None:
        """Nonsensical settings are refused at construction."""
        for kwargs in (
            {"retry_delays": ()},
            {"retry_delays": (-1,)},
            {"max_attempts": 0},
            {"max_queue_length": 0},
        ):
            with self.assertRaises(ValueError):
                MemoryBus(self.topology, reactor=self.clock, **kwargs)


class TopicMatchesTests(SynchronousTestCase):
    """``topic_matches`` follows AMQP topic-exchange semantics."""

    TABLE = [
        # pattern, routing key, matches
        ("a.b", "a.b", True),
        ("a.b", "a.c", False),
        ("a.b", "a.b.c", False),
        ("a.*", "a.b", True),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
        ("*.b", "a.b", True),
        ("*", "a", True),
        ("*", "", False),
        ("*.*", "a.b", True),
        ("*.*", "a", False),
        ("a.#", "a", True),
        ("a.#", "a.b", True),
        ("a.#", "a.b.c.d", True),
        ("a.#", "b.a", False),
        ("#", "", True),
        ("#", "a", True),
        ("#", "a.b.c", True),
        ("#.c", "c", True),
        ("#.c", "a.b.c", True),
        ("#.c", "a.b.c.d", False),
        ("a.#.d", "a.d", True),
        ("a.#.d", "a.b.c.d", True),
        ("a.#.d", "a.b.c", False),
        ("a.*.#", "a", False),
        ("a.*.#", "a.b", True),
        ("a.*.#", "a.b.c", True),
        ("#.#", "a.b", True),
        ("#.*.#", "", False),
        ("#.*.#", "x", True),
        ("a.*.c", "a..c", True),
        ("ocpp.#", "ocpp.in.BootNotification", True),
        ("ocpp.in.*", "ocpp.in.BootNotification", True),
        ("ocpp.in.*", "ocpp.out.Reset", False),
        ("charger.#", "charging.started", False),
        ("", "", True),
        ("", "a", False),
    ]

    def test_table(self) -> None:
        """Each (pattern, key) pair of the table matches as AMQP would."""
        for pattern, key, expected in self.TABLE:
            self.assertEqual(topic_matches(pattern, key), expected, (pattern, key))

    def test_many_hashes_are_fast(self) -> None:
        """Patterns with many ``#`` do not backtrack exponentially."""
        key = ".".join(["x"] * 200)
        self.assertFalse(topic_matches("#." * 30 + "y", key))
        self.assertTrue(topic_matches("#." * 30 + "x", key))


class TopologyTests(SynchronousTestCase):
    """The topology: exchanges by first word, bindings, the default layout."""

    def test_exchange_for(self) -> None:
        """A routing key goes to the exchange of its first word."""
        topology = default_topology()
        for key, exchange in [
            (ocpp_in("BootNotification"), "ocppd.ocpp"),
            (OCPP_REJECTED, "ocppd.ocpp"),
            (CHARGER_CONNECTED, "ocppd.events"),
            ("session.started", "ocppd.events"),
            ("charging.stopped", "ocppd.events"),
            ("wallet.topup", "ocppd.events"),
            ("cms.station.updated", "ocppd.events"),
            ("command.reset", "ocppd.commands"),
            ("audit.login", "ocppd.audit"),
        ]:
            self.assertEqual(topology.exchange_for(key), exchange, key)
        self.assertEqual(default_topology("x").exchange_for("wallet.x"), "x.events")

    def test_exchange_for_unknown_word(self) -> None:
        """An unknown first word (or a wildcard, or nothing) is a ValueError."""
        topology = default_topology()
        for key in ("unknown.thing", "", "*.x", "#", "ocppx.in.Foo"):
            with self.assertRaises(ValueError):
                topology.exchange_for(key)

    def test_routing_key_helpers(self) -> None:
        """The routing-key helpers spell the documented keys and refuse bad actions."""
        self.assertEqual(ocpp_in("StartTransaction"), "ocpp.in.StartTransaction")
        self.assertEqual(ocpp_out("Reset"), "ocpp.out.Reset")
        self.assertEqual(ocpp_reply("Reset"), "ocpp.reply.Reset")
        self.assertEqual(OCPP_REJECTED, "ocpp.rejected")
        self.assertEqual(CHARGER_DISCONNECTED, "charger.disconnected")
        for action in ("", "a.b", "*", "#"):
            with self.assertRaises(ValueError):
                ocpp_in(action)

    def test_default_topology(self) -> None:
        """The default topology declares the four topic exchanges and the two queues."""
        topology = default_topology()
        self.assertEqual(
            topology.exchanges,
            (
                Exchange("ocppd.ocpp"),
                Exchange("ocppd.events"),
                Exchange("ocppd.commands"),
                Exchange("ocppd.audit"),
            ),
        )
        self.assertEqual(
            topology.queue(PROCESSOR_QUEUE).bindings,
            (Binding("ocppd.ocpp", "ocpp.#"), Binding("ocppd.events", "charger.#")),
        )
        self.assertEqual(
            topology.queue(AUDIT_QUEUE).bindings,
            (
                Binding("ocppd.commands", "command.#"),
                Binding("ocppd.audit", "audit.#"),
                Binding("ocppd.events", "charging.#"),
            ),
        )
        self.assertTrue(all(q.durable for q in topology.queues))
        self.assertEqual(topology.queue_full_name(PROCESSOR_QUEUE), "ocppd.processor")
        self.assertEqual(default_topology("t1").queue_full_name(AUDIT_QUEUE), "t1.audit")

    def test_routes(self) -> None:
        """OCPP traffic and charger events reach the processor; commands and audit the audit."""
        topology = default_topology()

        def names(key: str) -> list[str]:
            return [q.name for q in topology.queues_for(topology.exchange_for(key), key)]

        self.assertEqual(names(ocpp_in("MeterValues")), [PROCESSOR_QUEUE])
        self.assertEqual(names(ocpp_reply("Reset")), [PROCESSOR_QUEUE])
        self.assertEqual(names(OCPP_REJECTED), [PROCESSOR_QUEUE])
        self.assertEqual(names(CHARGER_CONNECTED), [PROCESSOR_QUEUE])
        self.assertEqual(names("command.reset"), [AUDIT_QUEUE])
        self.assertEqual(names("audit.cms.station"), [AUDIT_QUEUE])
        self.assertEqual(names("session.started"), [])
        self.assertEqual(names("charging.stop.requested"), [AUDIT_QUEUE, FUNDS_STOP_QUEUE])
        # A pattern only matches on its own exchange.
        self.assertEqual(topology.queues_for("ocppd.events", "ocpp.in.Foo"), [])

    def test_notifier_routes(self) -> None:
        """
        A node's notifier gets every pushable key; told which inbound actions
        it shows, the other CALLs (Heartbeats) are routed past it, and only them.
        """
        everything = default_topology(node_id="n1")
        shown = default_topology(node_id="n1", notifier_inbound={"MeterValues", "Authorize"})
        notifier = notifier_queue("n1")

        def gets(topology: Topology, key: str) -> bool:
            found = topology.queues_for(topology.exchange_for(key), key)
            return notifier in [q.name for q in found]

        for key in (
            ocpp_in("MeterValues"),
            ocpp_in("Authorize"),
            ocpp_out("Reset"),
            ocpp_reply("Reset"),
            OCPP_REJECTED,
            CHARGER_CONNECTED,
            "session.started",
            "wallet.transaction",
            "charging.started",
            "cms.station.created",
        ):
            self.assertTrue(gets(everything, key), key)
            self.assertTrue(gets(shown, key), key)
        self.assertTrue(gets(everything, ocpp_in("Heartbeat")))
        self.assertFalse(gets(shown, ocpp_in("Heartbeat")))
        self.assertFalse(gets(shown, "command.reset"))
        # The processor still gets every OCPP message.
        self.assertEqual(
            [q.name for q in shown.queues_for("ocppd.ocpp", ocpp_in("Heartbeat"))],
            [PROCESSOR_QUEUE],
        )

    def test_validation(self) -> None:
        """Undeclared exchanges, duplicate queues and unknown queues are refused."""
        exchanges = standard_exchanges("p")
        with self.assertRaises(ValueError):
            Topology(exchanges, (QueueSpec("q", (Binding("p.nope", "x"),)),), prefix="p")
        with self.assertRaises(ValueError):
            Topology(exchanges, (QueueSpec("q", ()), QueueSpec("q", ())), prefix="p")
        with self.assertRaises(ValueError):
            default_topology().queue("nope")
        with self.assertRaises(ValueError):
            bind("*.x")
        # A topology without the events exchange cannot place event keys.
        small = Topology((Exchange("p.ocpp"),), (), prefix="p")
        with self.assertRaises(ValueError):
            small.exchange_for("session.started")


class RepeatedFailureLogTests(SynchronousTestCase):
    """What an outage writes to the log: bounded, and every event counted."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.recorder = Recorder()

    def make(self, topology: Any, **kwargs: Any) -> MemoryBus:
        bus = MemoryBus(topology, reactor=self.clock, **kwargs)
        bus.log = Logger(namespace="test", source=bus, observer=self.recorder)
        bus.startService()
        return bus

    def test_thousand_failures_make_two_lines(self) -> None:
        """
        1,000 messages whose handler fails alike (the database is down) log
        one traceback and one summary counting the 999 others, per minute.
        """
        bus = self.make(make_topology([("work", ["session.#"])], prefix="t"), retry_delays=(600,))

        def handler(delivery: Delivery) -> None:
            raise HandlerError("database down")

        self.successResultOf(bus.consume("work", handler))
        for n in range(1000):
            self.successResultOf(bus.publish("session.updated", envelope("session.updated", n)))
        for _ in range(1000):
            self.clock.advance(0)
        self.clock.advance(60)
        lines = [e for e in self.recorder.events if "suppressed" in e]
        self.assertEqual(len(lines), 2, [e["log_format"] for e in lines])
        self.assertEqual([e["suppressed"] for e in lines], [0, 999])

    def test_ephemeral_queue_drops_failed_messages(self) -> None:
        """
        A failed push of an ephemeral queue (the notifier's) is neither
        retried nor kept as a dead letter: it is dropped, counted, and logged
        rate-limited.
        """
        base = make_topology([("work", ["session.#"])], prefix="t")
        push = QueueSpec("push", (bind("session.#", "t"),), durable=False, ephemeral=True)
        bus = self.make(attrs.evolve(base, queues=(*base.queues, push)), max_attempts=3)
        attempts: list[int] = []

        def handler(delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            raise HandlerError("browser gone")

        self.successResultOf(bus.consume("push", handler))
        for n in range(50):
            bus.publish("session.updated", envelope("session.updated", n))
        for _ in range(100):
            self.clock.advance(0)
        self.clock.advance(1000)
        self.assertEqual(attempts, [1] * 50)
        self.assertEqual(self.successResultOf(bus.dead_letters("push")), [])
        self.assertEqual(bus.dropped, {"push": 50})
        self.assertEqual(bus.queue_length("push"), 0)
        lines = [e for e in self.recorder.events if "suppressed" in e]
        self.assertEqual([e["suppressed"] for e in lines], [0, 49])


class WantedTests(SynchronousTestCase):
    """An ephemeral queue whose consumer wants nothing now is passed by at publish."""

    def setUp(self) -> None:
        self.clock = Clock()
        base = make_topology([("work", ["session.#"])], prefix="t")
        push = QueueSpec(
            "push", (bind("session.#", "t"), bind("cms.#", "t")), durable=False, ephemeral=True
        )
        self.bus = MemoryBus(attrs.evolve(base, queues=(*base.queues, push)), reactor=self.clock)
        self.bus.startService()
        self.watching = False
        self.pushed: list[int] = []
        self.worked: list[int] = []
        self.work = self.successResultOf(
            self.bus.consume("work", lambda d: self.worked.append(d.envelope.payload["n"]))
        )

    def push(self, delivery: Delivery) -> None:
        self.pushed.append(delivery.envelope.payload["n"])

    def publish(self, n: int) -> None:
        self.successResultOf(self.bus.publish("session.updated", envelope("session.updated", n)))

    def test_unwanted_messages_are_not_queued(self) -> None:
        """
        While ``wanted`` says no, nothing is queued for the consumer (the other
        queues get every message); once it says yes, every message published
        from then on is delivered; what was queued before it said no still is.
        """
        self.watching = True
        consumer = self.successResultOf(
            self.bus.consume("push", self.push, wanted=lambda: self.watching)
        )
        self.publish(1)
        self.watching = False
        self.publish(2)
        self.assertEqual(self.bus.queue_length("push"), 1)
        self.clock.advance(0)
        self.publish(3)
        self.watching = True
        self.publish(4)
        self.clock.advance(0)
        self.assertEqual(self.pushed, [1, 4])
        self.assertEqual(self.worked, [1, 2, 3, 4])
        # Without its consumer the queue keeps what is published, as before.
        self.successResultOf(consumer.stop())
        self.watching = False
        self.publish(5)
        self.assertEqual(self.bus.queue_length("push"), 1)

    def test_unwanted_is_still_refused_when_not_json(self) -> None:
        """A payload that is not JSON fails its publish even where no queue wants it."""
        self.successResultOf(self.bus.consume("push", self.push, wanted=lambda: False))
        bad = Envelope.create("cms.changed", {"n": float("nan")}, node="n", charge_point_id=None)
        self.failureResultOf(self.bus.publish("cms.changed", bad), BusError)
        good = Envelope.create("cms.changed", {"n": 1}, node="n", charge_point_id=None)
        self.successResultOf(self.bus.publish("cms.changed", good))
        self.assertEqual(self.bus.queue_length("push"), 0)

    def test_passed_by_as_publish_would_settle_it(self) -> None:
        """
        ``pass_by`` settles a message no queue wants now as ``publish`` of its
        envelope does, without the envelope: fired at once, counted as
        published, and refused (``BusError``, counted as failed) exactly
        where the envelope would be (NaN, infinity beside a None, a datetime
        beside a None, a set, a key JSON cannot carry, a charger id that is
        not JSON); what either encoder writes passes (a datetime orjson
        writes, keys, big integers and lone surrogates the strict encoder does).
        """
        self.successResultOf(self.bus.consume("push", self.push, wanted=lambda: False))
        cases: list[tuple[dict[str, Any], Any]] = [
            ({"n": 1, "s": None}, "CP-1"),
            ({"n": [None, {"x": float("nan")}]}, "CP-1"),
            ({"n": [None, float("inf")]}, None),
            ({"n": utcnow()}, "CP-1"),
            ({"n": utcnow(), "s": None}, "CP-1"),
            ({"n": {1, 2}}, "CP-1"),
            ({(1, 2): "tuple key"}, "CP-1"),
            ({1: "int key", "big": 2**70, "lone": "\ud800"}, None),
            ({"n": 1}, object()),
        ]
        outcomes = []
        for payload, charge_point_id in cases:
            published = self.bus.publish(
                "cms.changed",
                Envelope.create("cms.changed", payload, node="n", charge_point_id=charge_point_id),
            )
            counts = (self.bus.stats.publish_confirmed, self.bus.stats.publish_failed)
            passed = self.bus.pass_by(
                "cms.changed", payload, node="n", charge_point_id=charge_point_id
            )
            assert passed is not None
            self.assertTrue(passed.called, payload)
            outcomes.append(not isinstance(published.result, Failure))
            if isinstance(published.result, Failure):
                self.failureResultOf(published, BusError)
                self.failureResultOf(passed, BusError)
                self.assertEqual(
                    (self.bus.stats.publish_confirmed, self.bus.stats.publish_failed),
                    (counts[0], counts[1] + 1),
                )
            else:
                self.assertIsNone(self.successResultOf(published), payload)
                self.assertIsNone(self.successResultOf(passed), payload)
                self.assertEqual(
                    (self.bus.stats.publish_confirmed, self.bus.stats.publish_failed),
                    (counts[0] + 1, counts[1]),
                )
        self.assertEqual(outcomes, [True, False, False, True, False, False, False, True, False])
        self.assertEqual(self.bus.queue_length("push"), 0)
        self.clock.advance(0)
        self.assertEqual(self.pushed, [])

    def test_pass_by_leaves_publish_what_a_queue_takes(self) -> None:
        """
        ``pass_by`` is None (publish the envelope) where a queue would take the
        message: one wants it, or a durable queue is bound; and where
        ``publish`` has more to say: an unknown key, no queue bound, the bus
        stopped.
        """
        self.successResultOf(self.bus.consume("push", self.push, wanted=lambda: self.watching))

        def pass_by(key: str) -> object:
            return self.bus.pass_by(key, {"n": 1}, node="n", charge_point_id=None)

        self.assertIsNotNone(pass_by("cms.changed"))
        self.assertIsNone(pass_by("session.updated"))  # the durable "work" takes it
        self.assertIsNone(pass_by("nowhere.at.all"))
        self.assertIsNone(pass_by("charger.connected"))  # bound to no queue
        self.watching = True
        self.assertIsNone(pass_by("cms.changed"))
        self.watching = False
        self.bus.stopService()
        self.assertIsNone(pass_by("cms.changed"))

    def test_durable_queue_takes_every_message(self) -> None:
        """``wanted`` is refused for a durable queue, which loses nothing routed to it."""
        self.successResultOf(self.work.stop())
        self.failureResultOf(self.bus.consume("work", self.push, wanted=lambda: False), ValueError)


class FlowControlTests(SynchronousTestCase):
    """
    ``publish(flow=True)`` (a charger's message whose answer waits for it)
    waits while a durable queue it reaches has more than ``flow_limit``
    messages ready; other publishes never do.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.topology = make_topology(
            [("work", ["session.#"]), ("other", ["session.started"])], prefix="t"
        )
        #: The handlers' Deferreds, per queue, in delivery order.
        self.held: dict[str, list[tuple[int, Deferred[None]]]] = {"work": [], "other": []}

    def make(self, **kwargs: Any) -> MemoryBus:
        bus = MemoryBus(self.topology, reactor=self.clock, **kwargs)
        bus.startService()
        return bus

    def hold(self, bus: MemoryBus, queue: str, concurrency: int = 1) -> IConsumer:
        """A consumer of ``queue`` whose handler finishes only when ``finish`` says."""

        def handler(delivery: Delivery) -> Deferred[None]:
            d: Deferred[None] = Deferred()
            self.held[queue].append((delivery.envelope.payload["n"], d))
            return d

        return self.successResultOf(bus.consume(queue, handler, concurrency))

    def finish(self, queue: str, count: int = 1) -> None:
        for _ in range(count):
            _, d = self.held[queue].pop(0)
            d.callback(None)
            self.clock.advance(0)

    def flowed(self, bus: MemoryBus, key: str, n: int, fired: list[int]) -> Deferred[None]:
        d = bus.publish(key, envelope(key, n), flow=True)
        d.addCallback(lambda _: fired.append(n))
        return d

    def test_waits_above_the_limit_until_the_consumer_drains(self) -> None:
        """
        A flowed publish that finds its queue above the limit fires once the
        consumer has taken enough, in publication order; its message is
        queued (and delivered) meanwhile.
        """
        bus = self.make(flow_limit=2)
        self.hold(bus, "work")
        fired: list[int] = []
        for n in range(5):
            self.flowed(bus, "session.updated", n, fired)
        # Ready 1 and 2 are within the limit; 3, 4 and 5 above it.
        self.assertEqual(fired, [0, 1])
        self.assertEqual(bus.stats.flow_waited, 3)
        self.clock.advance(0)
        # The consumer holds message 0 (not counted): 4 ready.
        self.assertEqual(fired, [0, 1])
        self.finish("work")  # 1 taken: 3 ready, still above.
        self.assertEqual(fired, [0, 1])
        self.finish("work")  # 2 taken: 2 ready, not above.
        self.assertEqual(fired, [0, 1, 2, 3, 4])
        self.finish("work", 2)
        self.assertEqual([n for n, _ in self.held["work"]], [4])
        self.assertEqual(bus.queue_length("work"), 1)

    def test_order_across_queues(self) -> None:
        """
        A flowed publish waits behind an earlier one still waiting, even when
        its own queues are below the limit: they fire in publication order.
        """
        bus = self.make(flow_limit=1)
        self.hold(bus, "work", concurrency=100)
        self.hold(bus, "other")
        fired: list[int] = []
        for n in range(3):
            # `other` (concurrency 1) fills; `work` takes everything.
            self.flowed(bus, "session.started", n, fired)
        self.clock.advance(0)
        # `work` holds 0-2, nothing ready; `other` holds 0, has 1 and 2 ready.
        self.assertEqual(fired, [0])
        self.flowed(bus, "session.updated", 3, fired)
        self.clock.advance(0)
        self.assertEqual(len(self.held["work"]), 4)
        self.assertEqual(fired, [0])
        self.finish("other")
        self.assertEqual(fired, [0, 1, 2, 3])

    def test_consumers_publishes_never_wait(self) -> None:
        """
        A publish without ``flow`` fires at once above the limit: a consumer
        that publishes into its own full queue (the processor's follow-ups)
        goes on, and its queue drains.
        """
        bus = self.make(flow_limit=1)
        got: list[int] = []

        def handler(delivery: Delivery) -> Deferred[None] | None:
            n = delivery.envelope.payload["n"]
            got.append(n)
            if n < 10:
                return bus.publish("session.updated", envelope("session.updated", n + 10))
            return None

        for n in range(5):
            self.successResultOf(bus.publish("session.updated", envelope("session.updated", n)))
        self.successResultOf(bus.consume("work", handler))
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(sorted(got), [*range(5), *range(10, 15)])
        self.assertEqual(bus.queue_length("work"), 0)
        self.assertEqual(bus.stats.flow_waited, 0)

    def test_limit_zero_is_off(self) -> None:
        """With ``flow_limit`` 0 a flowed publish never waits."""
        bus = self.make(flow_limit=0)
        self.hold(bus, "work")
        fired: list[int] = []
        for n in range(50):
            self.flowed(bus, "session.updated", n, fired)
        self.assertEqual(fired, list(range(50)))
        self.assertEqual(bus.stats.flow_waited, 0)

    def test_no_consumer_no_wait(self) -> None:
        """A queue nobody consumes holds nobody back: nothing would drain it."""
        bus = self.make(flow_limit=1)
        fired: list[int] = []
        for n in range(5):
            self.flowed(bus, "session.updated", n, fired)
        self.assertEqual(fired, list(range(5)))

    def test_consumer_stop_releases(self) -> None:
        """When the queue's consumer stops, those waiting for it go."""
        bus = self.make(flow_limit=1)
        consumer = self.hold(bus, "work")
        fired: list[int] = []
        for n in range(4):
            self.flowed(bus, "session.updated", n, fired)
        self.assertEqual(fired, [0])
        consumer.stop()
        self.assertEqual(fired, [0, 1, 2, 3])

    def test_stop_service_releases(self) -> None:
        """A stop whose drain ends (here: times out) lets every waiting publish go."""
        bus = self.make(flow_limit=1, drain_timeout=5)
        self.hold(bus, "work")
        fired: list[int] = []
        for n in range(4):
            self.flowed(bus, "session.updated", n, fired)
        self.clock.advance(0)
        stopped = bus.stopService()
        self.assertEqual(fired, [0])
        self.clock.advance(5)
        self.assertEqual(fired, [0, 1, 2, 3])
        self.finish("work")
        self.successResultOf(stopped)

    def test_cancelled_wait_keeps_the_message(self) -> None:
        """
        A waiting publish that is cancelled (the answer's timeout) fails with
        CancelledError; its message stays queued and is delivered, and it
        holds back none of those after it.
        """
        bus = self.make(flow_limit=1)
        self.hold(bus, "work")
        fired: list[int] = []
        for n in range(3):
            self.flowed(bus, "session.updated", n, fired)
        waiting = self.flowed(bus, "session.updated", 3, [])
        self.assertNoResult(waiting)
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        self.clock.advance(0)  # 0 taken: 1, 2, 3 ready.
        self.finish("work")  # 1 taken: 2, 3 ready.
        self.assertEqual(fired, [0])
        self.finish("work")  # 2 taken: 3 ready.
        self.assertEqual(fired, [0, 1, 2])
        self.finish("work", 2)
        self.assertEqual([n for n, _ in self.held["work"]], [])
        self.assertEqual(bus.queue_length("work"), 0)

    def test_validates(self) -> None:
        """A negative limit is refused."""
        with self.assertRaises(ValueError):
            MemoryBus(self.topology, reactor=self.clock, flow_limit=-1)
