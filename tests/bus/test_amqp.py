"""
Tests for the RabbitMQ bus, ``ocppd.bus.amqp``, against the real broker at
``tests.services.RABBITMQ_URL`` (skipped without it, failing on CI).

Each test declares its topology under a unique prefix and deletes every
exchange and queue it declared when it ends, so the broker is left clean.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs
import pika
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from ocppd.bus.amqp import AmqpBus
from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError, Delivery, IBus
from ocppd.bus.topology import QueueSpec, Topology, bind, make_topology
from ocppd.consumers.notifier import Notifier
from tests.bus.contract import BusContractTests, HandlerError, unique_prefix
from tests.services import RABBITMQ_URL, require_service


def require_rabbitmq() -> None:
    url = urlsplit(RABBITMQ_URL)
    require_service("RabbitMQ", url.hostname or "127.0.0.1", url.port or 5672)


def rabbitmqctl(*args: str) -> Deferred[str]:
    """Run ``rabbitmqctl`` in a thread (it takes a second or so); fires with its output."""

    def run() -> str:
        done = subprocess.run(
            ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout

    return deferToThread(run)


def close_connection(name: str) -> Deferred[None]:
    """
    Have the broker close the connections of the bus named ``name`` (our
    ``connection_name``: its publishing and its consuming one), like
    ``close_all_connections`` but without disturbing anyone else using the
    broker.
    """

    def run() -> None:
        listing = subprocess.run(
            ["rabbitmqctl", "-q", "list_connections", "pid", "client_properties"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        # Both of the bus's connections: "<name> publish" and "<name> consume".
        marker = f'{{"connection_name","{name} '
        pids = [line.split("\t", 1)[0] for line in listing.splitlines() if marker in line]
        if not pids:
            raise AssertionError(f"no connection named {name!r} on the broker")
        for pid in pids:
            subprocess.run(
                ["rabbitmqctl", "-q", "close_connection", pid, "test"],
                capture_output=True,
                timeout=30,
                check=True,
            )

    return deferToThread(run)


class AmqpBusMixin:
    """Builds started, connected AmqpBus instances that clean up after themselves."""

    @inlineCallbacks
    def start_bus(self, topology: Topology, url: str = RABBITMQ_URL, **kwargs: Any) -> Any:
        require_rabbitmq()
        case = self
        assert isinstance(case, TestCase)
        kwargs.setdefault("retry_delays", (0.05, 0.1))
        kwargs.setdefault("max_attempts", 3)
        bus = AmqpBus(
            topology,
            url=url,
            reactor=reactor,
            connection_name=f"ocppd-test-{topology.prefix}",
            drain_timeout=2.0,
            **kwargs,
        )
        bus.startService()
        case.addCleanup(bus.stopService)
        yield bus.when_connected(failAfterFailures=3)
        # Runs before stopService (cleanups are LIFO), while still connected.
        case.addCleanup(bus.delete_topology)
        return bus


class AmqpBusContractTests(AmqpBusMixin, BusContractTests, TestCase):
    """The IBus contract, against the real RabbitMQ."""

    def make_bus(
        self, topology: Topology, retry_delays: Sequence[float], max_attempts: int
    ) -> Deferred[IBus]:
        return self.start_bus(topology, retry_delays=retry_delays, max_attempts=max_attempts)


class _Browsers:
    """A push target: whether anyone on the node subscribes, and what was pushed."""

    def __init__(self) -> None:
        self.anyone = False
        self.pushed: list[str] = []

    def listening(self) -> bool:
        return self.anyone

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        self.pushed.append(topic)
        return 1


class _CountingNotifier(Notifier):
    """A notifier counting the deliveries RabbitMQ makes to it."""

    delivered = 0

    def handle(self, delivery: Delivery) -> None:
        self.delivered += 1
        super().handle(delivery)


def envelope(key: str, n: int = 0) -> Envelope:
    return Envelope.create(key, {"n": n}, node="node-1", charge_point_id="CP-1")


class AmqpBusTests(AmqpBusMixin, TestCase):
    """What only the RabbitMQ bus has: durability, fail-fast, reconnection."""

    def topology(self) -> Topology:
        return make_topology([("work", ["session.#"])], prefix=unique_prefix())

    @inlineCallbacks
    def wait_until(self, predicate: Any, what: str, timeout: float = 30.0) -> Any:
        deadline = reactor.seconds() + timeout
        while not predicate():
            if reactor.seconds() > deadline:
                self.fail(f"timed out waiting for {what}")
            yield deferLater(reactor, 0.02)

    @inlineCallbacks
    def test_prefetch_caps_concurrency(self) -> Any:
        """A consumer asking for more than the prefetch learns what it gets (batches size on it)."""
        bus = yield self.start_bus(self.topology(), prefetch=4)
        consumer = yield bus.consume("work", lambda delivery: None, concurrency=100)
        self.addCleanup(consumer.stop)
        self.assertEqual(consumer.concurrency, 4)

    @inlineCallbacks
    def test_acks_of_a_turn_go_together(self) -> Any:
        """
        Deliveries settled in one reactor turn are acked with one
        ``basic_ack(multiple=True)``; one settled while an earlier one is
        still running is acked alone, and the earlier one later: none is
        redelivered to the next consumer.
        """
        topology = self.topology()
        bus = yield self.start_bus(topology, prefetch=50)
        waiting: dict[int, Deferred[None]] = {}

        def handle(delivery: Delivery) -> Deferred[None]:
            waiting[delivery.envelope.payload["n"]] = Deferred()
            return waiting[delivery.envelope.payload["n"]]

        consumer = yield bus.consume("work", handle, concurrency=50)
        sent: list[tuple[int, bool]] = []
        channel = consumer.channel
        basic_ack = channel.basic_ack

        def recording_ack(delivery_tag: int, multiple: bool = False) -> Any:
            sent.append((delivery_tag, multiple))
            return basic_ack(delivery_tag=delivery_tag, multiple=multiple)

        self.patch(channel, "basic_ack", recording_ack)
        for n in range(20):
            yield bus.publish("session.updated", envelope("session.updated", n))
        yield self.wait_until(lambda: len(waiting) == 20, "20 deliveries")
        # The first 10 but the 3rd settle in one turn, then the 12th alone.
        for n in [*range(2), *range(3, 10), 11]:
            waiting[n].callback(None)
        yield self.wait_until(lambda: bool(sent), "the acks")
        # Tags count from 1: up to the 3rd's (still running) at once, the others alone.
        self.assertEqual(sent, [(2, True), *((tag, False) for tag in (4, 5, 6, 7, 8, 9, 10, 12))])
        sent.clear()
        for n in [2, 10, *range(12, 20)]:
            waiting[n].callback(None)
        yield self.wait_until(lambda: bool(sent), "the last acks")
        self.assertEqual(sent, [(20, True)])
        yield consumer.stop()
        again: list[Delivery] = []
        second = yield bus.consume("work", again.append)
        self.addCleanup(second.stop)
        yield deferLater(reactor, 0.3, lambda: None)
        self.assertEqual(again, [])

    @inlineCallbacks
    def test_provides_ibus(self) -> Any:
        """AmqpBus provides IBus, checked by zope.interface."""
        bus = yield self.start_bus(self.topology())
        self.assertTrue(verifyObject(IBus, bus))

    @inlineCallbacks
    def test_queues_durable_and_messages_persistent(self) -> Any:
        """
        Work, retry and dead-letter queues are durable on the broker, and a
        published message is stored persistent; the retry queues carry their
        TTL and route back to the work queue.
        """
        topology = self.topology()
        bus = yield self.start_bus(topology, retry_delays=(0.05, 0.1), max_attempts=3)
        yield bus.publish("session.updated", envelope("session.updated"))
        out = yield rabbitmqctl(
            "list_queues", "name", "durable", "messages_persistent", "arguments"
        )
        rows = {
            line.split("\t")[0]: line.split("\t")[1:]
            for line in out.splitlines()
            if line.startswith(topology.prefix + ".")
        }
        work = topology.queue_full_name("work")
        self.assertEqual(
            sorted(rows),
            sorted(
                [
                    work,
                    topology.retry_queue_full_name("work", 0.05),
                    topology.retry_queue_full_name("work", 0.1),
                    topology.dead_letter_queue_full_name("work"),
                ]
            ),
        )
        for name, (durable, _persistent, _args) in rows.items():
            self.assertEqual(durable, "true", name)
        self.assertEqual(rows[work][1], "1")
        retry_args = rows[topology.retry_queue_full_name("work", 0.05)][2]
        self.assertIn("x-message-ttl", retry_args)
        self.assertIn("50", retry_args)
        self.assertIn(work, retry_args)

    @inlineCallbacks
    def test_quorum_queues(self) -> Any:
        """
        With ``quorum_queues=True`` the work and retry queues are quorum
        queues (the dead-letter queue stays classic, see ocppd.bus.amqp), and
        a failed message still comes back through its retry queue.
        """
        topology = self.topology()
        bus = yield self.start_bus(topology, quorum_queues=True, max_attempts=2)
        attempts: list[int] = []

        def handler(delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            if delivery.attempt == 1:
                raise HandlerError("once")

        consumer = yield bus.consume("work", handler)
        self.addCleanup(consumer.stop)
        yield bus.publish("session.updated", envelope("session.updated"))
        yield self.wait_until(lambda: attempts == [1, 2], "the retry")
        out = yield rabbitmqctl("list_queues", "name", "type")
        types = dict(
            line.split("\t")[:2]
            for line in out.splitlines()
            if line.startswith(topology.prefix + ".")
        )
        self.assertEqual(types[topology.queue_full_name("work")], "quorum")
        self.assertEqual(types[topology.retry_queue_full_name("work", 0.05)], "quorum")
        self.assertEqual(types[topology.dead_letter_queue_full_name("work")], "classic")
        self.flushLoggedErrors(HandlerError)

    @inlineCallbacks
    def test_publish_fails_fast_when_broker_unreachable(self) -> Any:
        """
        With no broker (a closed port), publish fails at once with BusError
        instead of waiting or vanishing; the bus keeps trying to connect.
        """
        require_rabbitmq()
        bus = AmqpBus(
            self.topology(),
            url="amqp://guest:guest@127.0.0.1:1/%2F",
            reactor=reactor,
            retry_delays=(1,),
            max_attempts=2,
        )
        bus.startService()
        self.addCleanup(bus.stopService)
        yield deferLater(reactor, 0.1)
        # At once: failed before publish returns, not after a wait of any length.
        error = self.failureResultOf(
            bus.publish("session.updated", envelope("session.updated")), BusError
        ).value
        self.assertIn("not connected", str(error))
        self.assertFalse(bus.connected)
        yield self.assertFailure(bus.dead_letters("work"), BusError)

    @inlineCallbacks
    def test_dead_letter_headers_and_replay(self) -> Any:
        """
        A dead letter carries reason, attempts and the original routing key;
        listing it twice shows it twice (reading does not consume), and a
        replay delivers it from attempt 1 under the original key.
        """
        bus = yield self.start_bus(self.topology(), max_attempts=2)
        broken = [True]
        seen: list[tuple[str, int]] = []

        def handler(delivery: Delivery) -> None:
            seen.append((delivery.routing_key, delivery.attempt))
            if broken[0]:
                raise HandlerError("down")

        consumer = yield bus.consume("work", handler)
        self.addCleanup(consumer.stop)
        yield bus.publish("session.a.b", envelope("session.a.b"))
        yield self.wait_until(lambda: len(seen) == 2, "two attempts")
        letters: list[Any] = []

        @inlineCallbacks
        def poll() -> Any:
            while not letters:
                letters.extend((yield bus.dead_letters("work")))
                yield deferLater(reactor, 0.02)

        yield poll()
        again = yield bus.dead_letters("work")
        self.assertEqual(again, letters)
        [letter] = letters
        self.assertEqual((letter.routing_key, letter.attempts), ("session.a.b", 2))
        self.assertIn("HandlerError: down", letter.reason)
        broken[0] = False
        self.assertEqual((yield bus.replay_dead_letters("work")).count, 1)
        yield self.wait_until(lambda: len(seen) == 3, "the replay")
        self.assertEqual(seen, [("session.a.b", 1), ("session.a.b", 2), ("session.a.b", 1)])
        self.assertEqual((yield bus.dead_letters("work")), [])
        self.flushLoggedErrors(HandlerError)

    @inlineCallbacks
    def test_messages_survive_bus_restart(self) -> Any:
        """
        Messages published while no consumer runs stay on the broker across a
        stop and start of the bus, and are delivered after the restart.
        """
        bus = yield self.start_bus(self.topology())
        for n in range(5):
            yield bus.publish("session.updated", envelope("session.updated", n))
        yield bus.stopService()
        yield self.assertFailure(
            bus.publish("session.updated", envelope("session.updated")), BusError
        )
        bus.startService()
        yield bus.when_connected(failAfterFailures=3)
        got: list[int] = []
        consumer = yield bus.consume("work", lambda d: got.append(d.envelope.payload["n"]))
        self.addCleanup(consumer.stop)
        yield self.wait_until(lambda: len(got) == 5, "five deliveries")
        self.assertEqual(got, list(range(5)))

    @inlineCallbacks
    def test_reconnect_mid_stream(self) -> Any:
        """
        The broker closes our connection (``rabbitmqctl close_connection``) in
        the middle of a stream of publishes: the bus reconnects, every publish
        that fired successfully is delivered (at least once), every publish
        that failed succeeds when the caller retries it, and the consumer
        resumes by itself. Duplicates are allowed; losses are not.
        """
        topology = self.topology()
        bus = yield self.start_bus(topology)
        received: dict[str, int] = {}

        def handler(delivery: Delivery) -> None:
            received[delivery.envelope.id] = received.get(delivery.envelope.id, 0) + 1

        consumer = yield bus.consume("work", handler)
        self.addCleanup(consumer.stop)
        acked: list[str] = []
        failed: list[Envelope] = []

        def track(_: object, sent: Envelope) -> None:
            acked.append(sent.id)

        def lost(failure: Any, sent: Envelope) -> None:
            failure.trap(BusError)
            failed.append(sent)

        closing = close_connection(f"ocppd-test-{topology.prefix}")
        sent = 0
        while not closing.called or sent < 200:
            message = envelope("session.updated", sent)
            bus.publish("session.updated", message).addCallbacks(
                track, lost, callbackArgs=(message,), errbackArgs=(message,)
            )
            sent += 1
            yield deferLater(reactor, 0.005)
        yield closing
        yield bus.when_connected()
        yield self.wait_until(lambda: bus.connected, "the reconnection")
        self.assertGreater(len(failed), 0, "the connection was never closed")
        # The caller's retries of what failed.
        retries = list(failed)
        while retries:
            message = retries.pop(0)
            try:
                yield bus.publish("session.updated", message)
                acked.append(message.id)
            except BusError:
                retries.append(message)
                yield deferLater(reactor, 0.1)
        yield self.wait_until(
            lambda: all(i in received for i in acked),
            "every acknowledged message",
        ).addErrback(
            lambda f: self.fail(
                f"{f.getErrorMessage()}: sent {sent}, acknowledged {len(acked)}, "
                f"failed first {len(failed)}, received {len(received)}, missing "
                f"{[n for n, i in enumerate(acked) if i not in received][:20]}"
            )
        )
        self.assertEqual(len(set(acked)), sent)

    @inlineCallbacks
    def test_killed_replay_leaves_no_duplicate(self) -> Any:
        """
        A replay killed after a letter's republish and ack reached the broker
        but before they were committed (its connection dropped, as by
        ``kill -9`` of ``ocppctl``) leaves each letter exactly once: still a
        dead letter, and not also on the work queue.
        """
        topology = self.topology()
        bus = yield self.start_bus(topology, max_attempts=1)

        def handler(delivery: Delivery) -> None:
            raise HandlerError("broken")

        consumer = yield bus.consume("work", handler)
        sent = [envelope("session.updated", n) for n in range(3)]
        for message in sent:
            yield bus.publish("session.updated", message)
        letters: list[Any] = []

        @inlineCallbacks
        def poll() -> Any:
            while len(letters) < 3:
                letters[:] = yield bus.dead_letters("work")
                yield deferLater(reactor, 0.02)

        yield poll()
        # Nothing takes the work queue now: what a replay puts there stays.
        yield consumer.stop()

        @inlineCallbacks
        def killed(channel: Any) -> Any:
            # Let the publish and ack frames reach the broker, then die
            # without committing them.
            yield deferLater(reactor, 0.3)
            bus._protocol.transport.abortConnection()
            # The commit never comes; the replay fails when its channel goes.
            try:
                yield channel.on_closed
            except Exception:
                pass
            raise BusError("killed before the commit")

        bus._commit_replay = killed
        replay = bus.replay_dead_letters("work")
        yield self.assertFailure(replay, Exception)
        del bus._commit_replay
        yield self.wait_until(lambda: bus.connected, "the reconnection")
        again = yield bus.dead_letters("work")
        self.assertEqual(sorted(letter.id for letter in again), sorted(m.id for m in sent))
        out = yield rabbitmqctl("list_queues", "name", "messages")
        depths = dict(line.split("\t") for line in out.splitlines() if "\t" in line)
        self.assertEqual(depths[topology.queue_full_name("work")], "0")
        self.flushLoggedErrors(HandlerError)

    @inlineCallbacks
    def test_malformed_message_dead_after_its_one_attempt(self) -> Any:
        """
        A message that is not an envelope goes straight to the dead letters,
        stamped with the one attempt it had (not ``max_attempts``).
        """
        topology = self.topology()
        bus = yield self.start_bus(topology, max_attempts=5)
        consumer = yield bus.consume("work", lambda delivery: None)
        self.addCleanup(consumer.stop)
        properties = pika.BasicProperties(delivery_mode=2, message_id="not-an-envelope")
        yield bus._publish_raw(
            topology.exchange_for("session.updated"), "session.updated", b"{oops", properties
        )
        letters: list[Any] = []
        while not letters:
            letters = yield bus.dead_letters("work")
            yield deferLater(reactor, 0.02)
        [letter] = letters
        self.assertEqual(letter.attempts, 1)
        self.assertIn("EnvelopeError", letter.reason)

    @inlineCallbacks
    def test_channel_error_fails_the_waiting_publishes(self) -> Any:
        """
        A publish the broker answers by closing the channel (an exchange that
        does not exist) fails with ``BusError``, as does every publish still
        waiting for its confirm then; the bus reconnects and publishes again.
        """
        topology = self.topology()
        bus = yield self.start_bus(topology)
        yield bus.publish("session.updated", envelope("session.updated", 1))
        properties = pika.BasicProperties(delivery_mode=2)
        missing = bus._publish_raw(f"{topology.prefix}.missing", "x", b"{}", properties)
        behind = bus._publish_raw(f"{topology.prefix}.missing", "x", b"{}", properties)
        for waiting in (missing, behind):
            error = yield self.assertFailure(waiting, BusError)
            self.assertIn("no confirm from RabbitMQ", str(error))
        self.assertEqual(bus._confirms.waiting, {})
        yield self.wait_until(lambda: bus.connected, "the reconnection")
        yield bus.publish("session.updated", envelope("session.updated", 2))
        self.assertEqual(bus.stats.publish_confirmed, 2)
        self.assertEqual(bus.stats.publish_failed, 2)

    @inlineCallbacks
    def test_ephemeral_queue_drops_failed_messages(self) -> Any:
        """
        A failed message of an ephemeral queue (a node's notifier) is not sent
        to retry or dead-letter queues that do not exist: it is acked, counted
        as dropped and logged, and the queue has no dead letters.
        """
        base = self.topology()
        push = QueueSpec("push", (bind("session.#", base.prefix),), durable=False, ephemeral=True)
        topology = attrs.evolve(base, queues=(*base.queues, push))
        bus = yield self.start_bus(topology, max_attempts=3)
        attempts: list[int] = []

        def handler(delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            raise HandlerError("browser gone")

        consumer = yield bus.consume("push", handler)
        self.addCleanup(consumer.stop)
        for n in range(5):
            yield bus.publish("session.updated", envelope("session.updated", n))
        yield self.wait_until(lambda: bus.dropped.get("push") == 5, "five drops")
        yield deferLater(reactor, 0.3)
        self.assertEqual(attempts, [1] * 5)
        self.assertEqual((yield bus.dead_letters("push")), [])
        out = yield rabbitmqctl("list_queues", "name", "messages")
        depths = dict(line.split("\t") for line in out.splitlines() if "\t" in line)
        self.assertEqual(depths[topology.queue_full_name("push")], "0")
        self.flushLoggedErrors(HandlerError)

    @inlineCallbacks
    def test_notifier_consumes_only_while_someone_subscribes(self) -> Any:
        """
        A notifier whose node has no subscriber holds no consumer, and its
        auto-delete queue does not exist: RabbitMQ routes nothing to it (the
        queue cannot grow) and delivers it nothing, also after a reconnection.
        A subscriber arriving gets pushes again; after the last one left and
        the grace passed, the queue is gone again.
        """
        base = self.topology()
        push = QueueSpec("push", (bind("session.#", base.prefix),), durable=False, ephemeral=True)
        topology = attrs.evolve(base, queues=(*base.queues, push))
        bus = yield self.start_bus(topology)
        target = _Browsers()
        notifier = _CountingNotifier(bus, target, clock=reactor, idle_grace=0.2)
        self.addCleanup(notifier.stop)
        full_name = topology.queue_full_name("push")

        @inlineCallbacks
        def publish(n: int) -> Any:
            for i in range(n):
                session = {"id": i, "userId": None, "chargePointId": "CP1", "status": "active"}
                yield bus.publish(
                    "session.updated",
                    Envelope.create("session.updated", {"session": session}, node="n1"),
                )

        @inlineCallbacks
        def queue_exists() -> Any:
            out = yield rabbitmqctl("list_queues", "name")
            return full_name in out.split()

        @inlineCallbacks
        def idle_checks() -> Any:
            yield publish(20)
            yield deferLater(reactor, 0.3)
            self.assertEqual(notifier.delivered, 0)
            self.assertNotIn("push", bus.oldest_unprocessed())
            self.assertFalse((yield queue_exists()))

        yield notifier.start("push")
        yield idle_checks()

        # A browser subscribes: pushes from then on (not the 20 before).
        target.anyone = True
        notifier.listening_changed(True)
        yield notifier.settled()
        yield publish(1)
        yield self.wait_until(lambda: notifier.delivered == 1, "a delivery")
        self.assertEqual(target.pushed, ["ocppd.admin.sessions"])
        self.assertTrue((yield queue_exists()))

        # It leaves: after the grace, no consumer and no queue again.
        target.anyone = False
        notifier.listening_changed(False)
        yield self.wait_until(lambda: not notifier.consuming, "the grace")
        yield notifier.settled()
        notifier.delivered = 0
        yield idle_checks()

        # A reconnection while idle does not bring the consumer or the queue back.
        yield close_connection(f"ocppd-test-{topology.prefix}")
        yield self.wait_until(lambda: not bus.connected, "the loss")
        yield self.wait_until(lambda: bus.connected, "the reconnection")
        yield idle_checks()

        # Nor does one while consuming lose it.
        target.anyone = True
        notifier.listening_changed(True)
        yield notifier.settled()
        yield close_connection(f"ocppd-test-{topology.prefix}")
        yield self.wait_until(lambda: not bus.connected, "the loss")
        yield self.wait_until(lambda: bus.connected, "the reconnection")
        # Until the consumer is back (its queue declared anew), publishes go nowhere.
        for _ in range(100):
            yield publish(1)
            yield deferLater(reactor, 0.1)
            if len(target.pushed) > 1:
                break
        self.assertGreater(len(target.pushed), 1, "no push after reconnecting")

    @inlineCallbacks
    def test_counts_for_the_metrics(self) -> Any:
        """
        Confirms, failures, retries and dead letters are counted as RabbitMQ
        settles them, and the oldest message a handler holds is the lag.
        """
        bus = yield self.start_bus(self.topology(), retry_delays=(0.05,), max_attempts=2)
        held: list[Deferred[None]] = []

        def handler(delivery: Delivery) -> Any:
            if delivery.envelope.payload["n"] == 0:
                raise HandlerError("poison")
            held.append(Deferred())
            return held[-1]

        consumer = yield bus.consume("work", handler, concurrency=4)
        self.addCleanup(consumer.stop)
        self.assertEqual(bus.oldest_unprocessed(), {"work": None})
        first = envelope("session.updated", 1)
        yield bus.publish("session.updated", first)
        yield bus.publish("session.updated", envelope("session.updated", 2))
        yield self.wait_until(lambda: len(held) == 2, "two messages in their handler")
        self.assertEqual(bus.oldest_unprocessed(), {"work": first.time})
        yield bus.publish("session.updated", envelope("session.updated", 0))
        yield self.wait_until(
            lambda: bus.stats.dead_lettered.get("work") == 1, "the poison dead-lettered"
        )
        self.assertEqual(bus.stats.retried, {"work": 1})
        # Three publishes and two moves (to the retry queue, to the dead letters).
        self.assertEqual(bus.stats.publish_confirmed, 5)
        self.assertEqual(bus.stats.publish_failed, 0)
        self.failureResultOf(bus.publish("no.such.key", first), BusError)
        self.assertEqual(bus.stats.publish_failed, 1)
        for d in held:
            d.callback(None)
        yield self.wait_until(lambda: bus.oldest_unprocessed() == {"work": None}, "all settled")
        self.flushLoggedErrors(HandlerError)
