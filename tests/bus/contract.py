"""
The contract of ``IBus``: what every bus implementation must do.

``BusContractTests`` is a mixin; each implementation's tests subclass it
together with ``twisted.trial.unittest.TestCase`` and provide ``make_bus``.
The tests use only the ``IBus`` API and real time (the global reactor, short
retry delays), so they run unchanged against the embedded bus and RabbitMQ.

Every test builds its own topology under a unique prefix, so tests do not see
each other's messages on a shared broker. Routing keys must start with a word
the topology knows (``session``, ``charger``, ``command``...); the tests use
the events exchange (``session.*``) and the commands exchange.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError, DeadLetter, Delivery, IBus, IConsumer
from ocppd.bus.topology import Topology, make_topology
from ocppd.timeutil import parse_iso

#: Long enough for a broker round trip, short enough to keep the suite fast.
FAST_RETRIES: tuple[float, ...] = (0.05, 0.1)
POLL_INTERVAL = 0.01
#: How long a wait on a real broker or store may take before the test fails:
#: a bound for a hang, not a deadline (polls end as soon as what they wait for
#: holds; under CI's load a reactor stalls for seconds).
POLL_TIMEOUT = 30.0


class HandlerError(Exception):
    """What the tests' failing handlers raise (and flush from the log)."""


def unique_prefix() -> str:
    return "t" + uuid.uuid4().hex[:8]


class BusContractTests:
    """
    Mixin: the IBus contract. Subclasses provide ``make_bus``.

    Typed against ``TestCase`` for the helpers it calls, although it only
    becomes one in the concrete subclass.
    """

    def make_bus(
        self, topology: Topology, retry_delays: Sequence[float], max_attempts: int
    ) -> Deferred[IBus]:
        """
        A started bus for ``topology`` whose handler failures are retried after
        ``retry_delays`` and dead-lettered after ``max_attempts`` attempts. The
        subclass arranges (with ``addCleanup``) to stop it and to remove
        anything it created outside the process.
        """
        raise NotImplementedError

    # --- helpers ------------------------------------------------------------

    @property
    def _case(self) -> TestCase:
        assert isinstance(self, TestCase)
        return self

    def topology(self, **queues: Iterable[str]) -> Topology:
        """A topology with a unique prefix and one queue per keyword: name=patterns."""
        return make_topology(list(queues.items()), prefix=unique_prefix())

    @inlineCallbacks
    def bus(
        self,
        topology: Topology,
        retry_delays: Sequence[float] = FAST_RETRIES,
        max_attempts: int = 3,
    ) -> Any:
        bus = yield self.make_bus(topology, retry_delays, max_attempts)
        self._case.assertTrue(IBus.providedBy(bus), f"{bus!r} does not provide IBus")
        return bus

    @inlineCallbacks
    def consume(self, bus: IBus, queue: str, handler: Callable[[Delivery], Any]) -> Any:
        """``bus.consume``, with the consumer stopped when the test ends."""
        consumer = yield bus.consume(queue, handler)
        self._case.assertTrue(IConsumer.providedBy(consumer))
        self._case.assertEqual(consumer.queue, queue)
        self._case.addCleanup(consumer.stop)
        return consumer

    @inlineCallbacks
    def wait_until(self, predicate: Callable[[], bool], what: str) -> Any:
        """Poll ``predicate`` every 10 ms; fail the test after ``POLL_TIMEOUT``."""
        deadline = reactor.seconds() + POLL_TIMEOUT
        while not predicate():
            if reactor.seconds() > deadline:
                self._case.fail(f"timed out waiting for {what}")
            yield deferLater(reactor, POLL_INTERVAL)

    def settle(self, seconds: float = 0.2) -> Deferred[None]:
        """
        Let time pass, for the few tests that check something does NOT happen.
        """
        return deferLater(reactor, seconds)

    @inlineCallbacks
    def wait_dead(self, bus: IBus, queue: str, count: int) -> Any:
        """Wait until ``queue`` has ``count`` dead letters; return them."""
        letters: list[DeadLetter] = []
        deadline = reactor.seconds() + POLL_TIMEOUT
        while True:
            letters = yield bus.dead_letters(queue)
            if len(letters) >= count:
                return letters
            if reactor.seconds() > deadline:
                self._case.fail(f"timed out waiting for {count} dead letter(s), got {letters}")
            yield deferLater(reactor, POLL_INTERVAL)

    @staticmethod
    def envelope(key: str, n: int = 0, **payload: Any) -> Envelope:
        return Envelope.create(key, {"n": n, **payload}, node="node-1", charge_point_id="CP-1")

    def flush_handler_errors(self) -> None:
        # The bus logs handler failures with log.failure, which trial counts as
        # test errors unless flushed.
        self._case.flushLoggedErrors(HandlerError)

    # --- publish and deliver -------------------------------------------------

    @inlineCallbacks
    def test_publish_then_consume_delivers_envelope(self) -> Any:
        """
        A published envelope is delivered with every field intact, with its
        routing key, the queue's logical name and attempt 1.
        """
        bus = yield self.bus(self.topology(work=["session.#"]))
        sent = Envelope.create(
            "session.started",
            {
                "text": "déjà vu ⚡",
                "int": 12345678901234,
                "float": 1.5,
                "bool": True,
                "none": None,
                "list": [1, "two", {"three": 3}],
                "nested": {"a": {"b": []}},
            },
            node="node-7",
            charge_point_id="CP-42",
        )
        result = yield bus.publish("session.started", sent)
        self._case.assertIsNone(result)
        got: list[Delivery] = []
        yield self.consume(bus, "work", got.append)
        yield self.wait_until(lambda: len(got) == 1, "the delivery")
        delivery = got[0]
        self._case.assertEqual(delivery.envelope, sent)
        self._case.assertEqual(delivery.envelope.to_dict(), sent.to_dict())
        self._case.assertEqual(delivery.routing_key, "session.started")
        self._case.assertEqual(delivery.queue, "work")
        self._case.assertEqual(delivery.attempt, 1)

    @inlineCallbacks
    def test_envelope_without_charge_point(self) -> Any:
        """An envelope whose ``charge_point_id`` is None arrives with None."""
        bus = yield self.bus(self.topology(work=["command.#"]))
        sent = Envelope.create("command.reset", {"type": "Soft"}, node="n")
        got: list[Delivery] = []
        yield self.consume(bus, "work", got.append)
        yield bus.publish("command.reset", sent)
        yield self.wait_until(lambda: len(got) == 1, "the delivery")
        self._case.assertEqual(got[0].envelope, sent)
        self._case.assertIsNone(got[0].envelope.charge_point_id)

    @inlineCallbacks
    def test_messages_published_before_consumer_wait(self) -> Any:
        """Messages published while no consumer is attached wait in the queue, in order."""
        bus = yield self.bus(self.topology(work=["session.*"]))
        sent = [self.envelope("session.updated", n) for n in range(3)]
        for envelope in sent:
            yield bus.publish("session.updated", envelope)
        got: list[Delivery] = []
        yield self.consume(bus, "work", got.append)
        yield self.wait_until(lambda: len(got) == 3, "three deliveries")
        self._case.assertEqual([d.envelope for d in got], sent)

    @inlineCallbacks
    def test_order_preserved(self) -> Any:
        """Within a queue, messages are delivered in publication order."""
        bus = yield self.bus(self.topology(work=["session.#"]))
        got: list[int] = []
        yield self.consume(bus, "work", lambda d: got.append(d.envelope.payload["n"]))
        for n in range(50):
            yield bus.publish("session.updated", self.envelope("session.updated", n))
        yield self.wait_until(lambda: len(got) == 50, "fifty deliveries")
        self._case.assertEqual(got, list(range(50)))

    @inlineCallbacks
    def test_order_preserved_without_waiting_for_confirms(self) -> Any:
        """
        Publishes issued back to back, without waiting for each to be accepted,
        are still delivered in the order they were issued.
        """
        bus = yield self.bus(self.topology(work=["session.#"]))
        got: list[int] = []
        yield self.consume(bus, "work", lambda d: got.append(d.envelope.payload["n"]))
        pending = [
            bus.publish("session.updated", self.envelope("session.updated", n)) for n in range(20)
        ]
        yield gatherResults(pending)
        yield self.wait_until(lambda: len(got) == 20, "twenty deliveries")
        self._case.assertEqual(got, list(range(20)))

    # --- routing -------------------------------------------------------------

    @inlineCallbacks
    def test_star_matches_exactly_one_word(self) -> Any:
        """``session.*`` takes ``session.x`` but neither ``session`` nor ``session.x.y``."""
        bus = yield self.bus(self.topology(star=["session.*"]))
        for key in ("session", "session.a.b", "session.started"):
            yield bus.publish(key, self.envelope(key))
        got: list[str] = []
        yield self.consume(bus, "star", lambda d: got.append(d.routing_key))
        yield self.wait_until(lambda: len(got) >= 1, "a delivery")
        yield self.settle()
        self._case.assertEqual(got, ["session.started"])

    @inlineCallbacks
    def test_hash_matches_zero_or_more_words(self) -> Any:
        """``session.#`` takes ``session``, ``session.x`` and ``session.x.y``."""
        bus = yield self.bus(self.topology(hash=["session.#"]))
        keys = ["session", "session.started", "session.a.b.c"]
        for key in [*keys, "charging.started"]:
            yield bus.publish(key, self.envelope(key))
        got: list[str] = []
        yield self.consume(bus, "hash", lambda d: got.append(d.routing_key))
        yield self.wait_until(lambda: len(got) >= 3, "three deliveries")
        yield self.settle()
        self._case.assertEqual(got, keys)

    @inlineCallbacks
    def test_key_matching_two_queues_reaches_both(self) -> Any:
        """A routing key bound to two queues is delivered to each of them."""
        bus = yield self.bus(self.topology(one=["session.*"], two=["session.#"]))
        sent = self.envelope("session.stopped")
        yield bus.publish("session.stopped", sent)
        one: list[Delivery] = []
        two: list[Delivery] = []
        yield self.consume(bus, "one", one.append)
        yield self.consume(bus, "two", two.append)
        yield self.wait_until(lambda: len(one) == 1 and len(two) == 1, "one delivery each")
        self._case.assertEqual(one[0].envelope, sent)
        self._case.assertEqual(two[0].envelope, sent)
        self._case.assertEqual((one[0].queue, two[0].queue), ("one", "two"))

    @inlineCallbacks
    def test_queue_bound_on_two_exchanges(self) -> Any:
        """A queue with bindings on two exchanges receives from both."""
        bus = yield self.bus(self.topology(mixed=["session.started", "command.#"]))
        yield bus.publish("command.reset", self.envelope("command.reset", 1))
        yield bus.publish("session.started", self.envelope("session.started", 2))
        got: list[str] = []
        yield self.consume(bus, "mixed", lambda d: got.append(d.routing_key))
        yield self.wait_until(lambda: len(got) == 2, "two deliveries")
        self._case.assertEqual(got, ["command.reset", "session.started"])

    @inlineCallbacks
    def test_non_matching_key_reaches_no_queue(self) -> Any:
        """
        A key no queue is bound to is accepted (as AMQP does without
        ``mandatory``) and delivered nowhere.
        """
        bus = yield self.bus(self.topology(one=["session.started"], two=["session.*.x"]))
        result = yield bus.publish("session.stopped", self.envelope("session.stopped"))
        self._case.assertIsNone(result)
        yield bus.publish("session.started", self.envelope("session.started"))
        one: list[str] = []
        two: list[str] = []
        yield self.consume(bus, "one", lambda d: one.append(d.routing_key))
        yield self.consume(bus, "two", lambda d: two.append(d.routing_key))
        # The marker was published after the unroutable message: once it has
        # arrived, an earlier one routed to "one" would have arrived first.
        yield self.wait_until(lambda: len(one) == 1, "the marker")
        yield self.settle()
        self._case.assertEqual(one, ["session.started"])
        self._case.assertEqual(two, [])

    @inlineCallbacks
    def test_unknown_routing_key_word_fails(self) -> Any:
        """A routing key whose first word the topology does not know fails with BusError."""
        bus = yield self.bus(self.topology(work=["session.#"]))
        yield self._case.assertFailure(
            bus.publish("nonsense.x", self.envelope("nonsense.x")), BusError
        )

    @inlineCallbacks
    def test_unserialisable_envelope_fails(self) -> Any:
        """An envelope that is not valid JSON (NaN, a set) is refused with BusError."""
        bus = yield self.bus(self.topology(work=["session.#"]))
        for payload in ({"v": float("nan")}, {"v": {1, 2}}):
            envelope = Envelope.create("session.updated", payload, node="n")
            yield self._case.assertFailure(bus.publish("session.updated", envelope), BusError)

    @inlineCallbacks
    def test_consume_undeclared_queue_fails(self) -> Any:
        """Consuming a queue the topology does not declare fails with ValueError."""
        bus = yield self.bus(self.topology(work=["session.#"]))
        yield self._case.assertFailure(bus.consume("nope", lambda d: None), ValueError)

    @inlineCallbacks
    def test_queues_deliver_independently(self) -> Any:
        """A handler busy on one queue does not hold up another queue."""
        bus = yield self.bus(self.topology(slow=["session.#"], fast=["command.#"]))
        gate: Deferred[None] = Deferred()
        slow: list[Delivery] = []
        fast: list[Delivery] = []

        def slow_handler(delivery: Delivery) -> Deferred[None]:
            slow.append(delivery)
            return gate

        yield self.consume(bus, "slow", slow_handler)
        yield self.consume(bus, "fast", fast.append)
        yield bus.publish("session.updated", self.envelope("session.updated"))
        yield self.wait_until(lambda: len(slow) == 1, "the slow delivery")
        yield bus.publish("command.reset", self.envelope("command.reset"))
        yield self.wait_until(lambda: len(fast) == 1, "the fast delivery")
        gate.callback(None)

    # --- handlers that take time ---------------------------------------------

    @inlineCallbacks
    def test_deferred_handler_is_waited_for(self) -> Any:
        """
        A handler's Deferred is waited for: the next message of the queue is not
        delivered until it fires.
        """
        bus = yield self.bus(self.topology(work=["session.#"]))
        gates: list[Deferred[None]] = []
        got: list[int] = []

        def handler(delivery: Delivery) -> Deferred[None]:
            got.append(delivery.envelope.payload["n"])
            gate: Deferred[None] = Deferred()
            gates.append(gate)
            return gate

        yield self.consume(bus, "work", handler)
        for n in range(3):
            yield bus.publish("session.updated", self.envelope("session.updated", n))
        yield self.wait_until(lambda: len(got) == 1, "the first delivery")
        yield self.settle()
        self._case.assertEqual(got, [0])
        gates[0].callback(None)
        yield self.wait_until(lambda: len(got) == 2, "the second delivery")
        yield self.settle()
        self._case.assertEqual(got, [0, 1])
        gates[1].callback(None)
        yield self.wait_until(lambda: len(got) == 3, "the third delivery")
        gates[2].callback(None)

    @inlineCallbacks
    def test_at_most_one_handler_in_flight(self) -> Any:
        """Handlers of one queue never overlap, even when each takes a moment."""
        bus = yield self.bus(self.topology(work=["session.#"]))
        state = {"running": 0, "max": 0, "done": 0}

        @inlineCallbacks
        def handler(delivery: Delivery) -> Any:
            state["running"] += 1
            state["max"] = max(state["max"], state["running"])
            yield deferLater(reactor, 0.005)
            state["running"] -= 1
            state["done"] += 1

        yield self.consume(bus, "work", handler)
        for n in range(10):
            yield bus.publish("session.updated", self.envelope("session.updated", n))
        yield self.wait_until(lambda: state["done"] == 10, "ten handled")
        self._case.assertEqual(state["max"], 1)

    @inlineCallbacks
    def test_concurrency_bounds_handlers_in_flight(self) -> Any:
        """
        With ``concurrency=3``, three handlers run at once, started in
        publication order; each finishing makes room for the next.
        """
        bus = yield self.bus(self.topology(work=["session.#"]))
        gates: dict[int, Deferred[None]] = {}

        def handler(delivery: Delivery) -> Deferred[None]:
            n = delivery.envelope.payload["n"]
            gates[n] = Deferred()
            return gates[n]

        consumer = yield bus.consume("work", handler, concurrency=3)
        self._case.addCleanup(consumer.stop)
        self._case.assertEqual(consumer.concurrency, 3)
        for n in range(5):
            yield bus.publish("session.updated", self.envelope("session.updated", n))
        yield self.wait_until(lambda: len(gates) == 3, "three handlers in flight")
        yield self.settle()
        self._case.assertEqual(sorted(gates), [0, 1, 2])
        gates[1].callback(None)
        yield self.wait_until(lambda: len(gates) == 4, "a fourth delivery")
        self._case.assertIn(3, gates)
        for n in (0, 2, 3):
            gates[n].callback(None)
        yield self.wait_until(lambda: len(gates) == 5, "the fifth delivery")
        gates[4].callback(None)

    @inlineCallbacks
    def test_concurrent_stop_waits_for_every_handler(self) -> Any:
        """``stop()`` of a concurrent consumer fires once all its handlers have finished."""
        bus = yield self.bus(self.topology(work=["session.#"]))
        gates: list[Deferred[None]] = []

        def handler(delivery: Delivery) -> Deferred[None]:
            gates.append(Deferred())
            return gates[-1]

        consumer = yield bus.consume("work", handler, concurrency=2)
        for n in range(2):
            yield bus.publish("session.updated", self.envelope("session.updated", n))
        yield self.wait_until(lambda: len(gates) == 2, "two handlers in flight")
        stopped: list[bool] = []
        consumer.stop().addCallback(lambda _: stopped.append(True))
        gates[0].callback(None)
        yield self.settle(0.1)
        self._case.assertEqual(stopped, [])
        gates[1].callback(None)
        yield self.wait_until(lambda: stopped == [True], "the stop")

    @inlineCallbacks
    def test_consumer_stop_waits_for_in_flight_handler(self) -> Any:
        """
        ``stop()`` ends deliveries and fires only once the in-flight handler has
        finished; messages published afterwards stay for the next consumer.
        """
        bus = yield self.bus(self.topology(work=["session.#"]))
        gate: Deferred[None] = Deferred()
        first: list[int] = []

        def handler(delivery: Delivery) -> Deferred[None]:
            first.append(delivery.envelope.payload["n"])
            return gate

        consumer = yield bus.consume("work", handler)
        yield bus.publish("session.updated", self.envelope("session.updated", 0))
        yield self.wait_until(lambda: len(first) == 1, "the first delivery")
        stopped = consumer.stop()
        stopped_at: list[bool] = []
        stopped.addCallback(lambda _: stopped_at.append(True))
        yield self.settle(0.1)
        self._case.assertEqual(stopped_at, [])
        gate.callback(None)
        yield stopped
        # Stopping again is harmless.
        yield consumer.stop()
        yield bus.publish("session.updated", self.envelope("session.updated", 1))
        second: list[int] = []
        yield self.consume(bus, "work", lambda d: second.append(d.envelope.payload["n"]))
        yield self.wait_until(lambda: len(second) == 1, "delivery to the new consumer")
        self._case.assertEqual(first, [0])
        self._case.assertEqual(second, [1])

    @inlineCallbacks
    def test_consumer_stop_when_idle(self) -> Any:
        """``stop()`` of a consumer with nothing in flight fires promptly."""
        bus = yield self.bus(self.topology(work=["session.#"]))
        consumer = yield bus.consume("work", lambda d: None)
        yield consumer.stop()

    # --- failures, retries, dead letters ---------------------------------------

    @inlineCallbacks
    def test_failed_handler_is_retried_with_next_attempt(self) -> Any:
        """
        A handler that raises gets the message again with ``attempt`` 2, 3...;
        once it succeeds, the message is done (not dead-lettered).
        """
        bus = yield self.bus(self.topology(work=["session.#"]), max_attempts=4)
        sent = self.envelope("session.updated")
        attempts: list[int] = []

        def handler(delivery: Delivery) -> None:
            self._case.assertEqual(delivery.envelope, sent)
            attempts.append(delivery.attempt)
            if delivery.attempt < 3:
                raise HandlerError(f"failing attempt {delivery.attempt}")

        yield self.consume(bus, "work", handler)
        yield bus.publish("session.updated", sent)
        yield self.wait_until(lambda: len(attempts) == 3, "three attempts")
        yield self.settle()
        self._case.assertEqual(attempts, [1, 2, 3])
        self._case.assertEqual((yield bus.dead_letters("work")), [])
        self.flush_handler_errors()

    @inlineCallbacks
    def test_failed_deferred_is_retried(self) -> Any:
        """A handler whose Deferred fails (asynchronously) is retried too."""
        bus = yield self.bus(self.topology(work=["session.#"]))
        attempts: list[int] = []

        def handler(delivery: Delivery) -> Deferred[None]:
            attempts.append(delivery.attempt)
            d: Deferred[None] = deferLater(reactor, 0.001)
            if delivery.attempt == 1:

                def boom(_: None) -> None:
                    raise HandlerError("late failure")

                d.addCallback(boom)
            return d

        yield self.consume(bus, "work", handler)
        yield bus.publish("session.updated", self.envelope("session.updated"))
        yield self.wait_until(lambda: attempts == [1, 2], "the retry")
        self.flush_handler_errors()

    @inlineCallbacks
    def test_waiting_retry_does_not_block_later_messages(self) -> Any:
        """
        While a failed message waits for its retry, later messages of the
        queue are delivered (as with AMQP retry queues).
        """
        bus = yield self.bus(self.topology(work=["session.#"]), retry_delays=(0.3,))
        seen: list[tuple[int, int]] = []

        def handler(delivery: Delivery) -> None:
            n = delivery.envelope.payload["n"]
            seen.append((n, delivery.attempt))
            if n == 0 and delivery.attempt == 1:
                raise HandlerError("first try of 0")

        yield bus.publish("session.updated", self.envelope("session.updated", 0))
        yield bus.publish("session.updated", self.envelope("session.updated", 1))
        yield self.consume(bus, "work", handler)
        yield self.wait_until(lambda: len(seen) == 3, "three deliveries")
        self._case.assertEqual(seen, [(0, 1), (1, 1), (0, 2)])
        self.flush_handler_errors()

    @inlineCallbacks
    def test_dead_letter_after_max_attempts(self) -> Any:
        """
        After ``max_attempts`` failures the message is a dead letter, with the
        failure as reason and the attempt count, and later messages still flow.
        """
        bus = yield self.bus(self.topology(work=["session.#"]), max_attempts=3)
        poison = self.envelope("session.updated", 0)
        attempts: list[int] = []
        handled: list[int] = []

        def handler(delivery: Delivery) -> None:
            n = delivery.envelope.payload["n"]
            if n == 0:
                attempts.append(delivery.attempt)
                raise HandlerError("poison message 0")
            handled.append(n)

        yield self.consume(bus, "work", handler)
        yield bus.publish("session.updated", poison)
        yield bus.publish("session.updated", self.envelope("session.updated", 1))
        letters = yield self.wait_dead(bus, "work", 1)
        yield bus.publish("session.updated", self.envelope("session.updated", 2))
        yield self.wait_until(lambda: handled == [1, 2], "the later messages")
        self._case.assertEqual(attempts, [1, 2, 3])
        [letter] = letters
        self._case.assertIsInstance(letter, DeadLetter)
        self._case.assertEqual(letter.envelope, poison)
        self._case.assertEqual(letter.queue, "work")
        self._case.assertEqual(letter.routing_key, "session.updated")
        self._case.assertEqual(letter.attempts, 3)
        self._case.assertIn("poison message 0", letter.reason)
        self._case.assertIsInstance(letter.id, str)
        parse_iso(letter.failed_at)  # an ISO-8601 time
        self._case.assertTrue(letter.failed_at.endswith("Z"))
        self.flush_handler_errors()

    @inlineCallbacks
    def test_max_attempts_one_means_no_retry(self) -> Any:
        """With ``max_attempts`` 1, the first failure dead-letters the message."""
        bus = yield self.bus(self.topology(work=["session.#"]), max_attempts=1)
        attempts: list[int] = []

        def handler(delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            raise HandlerError("no second chance")

        yield self.consume(bus, "work", handler)
        yield bus.publish("session.updated", self.envelope("session.updated"))
        [letter] = yield self.wait_dead(bus, "work", 1)
        self._case.assertEqual(letter.attempts, 1)
        yield self.settle()
        self._case.assertEqual(attempts, [1])
        self.flush_handler_errors()

    @inlineCallbacks
    def test_dead_letters_empty(self) -> Any:
        """A queue without failures has no dead letters; replaying them does nothing."""
        bus = yield self.bus(self.topology(work=["session.#"]))
        self._case.assertEqual((yield bus.dead_letters("work")), [])
        replay = yield bus.replay_dead_letters("work")
        self._case.assertEqual((replay.replayed, replay.failed_again), ((), ()))

    @inlineCallbacks
    def test_replay_dead_letter_is_processed_once(self) -> Any:
        """
        A replayed dead letter is delivered again from attempt 1, processed
        once, and leaves the dead letters.
        """
        bus = yield self.bus(self.topology(work=["session.#"]), max_attempts=2)
        broken = [True]
        handled: list[tuple[int, int]] = []

        def handler(delivery: Delivery) -> None:
            if broken[0]:
                raise HandlerError("dependency down")
            handled.append((delivery.envelope.payload["n"], delivery.attempt))

        yield self.consume(bus, "work", handler)
        sent = self.envelope("session.updated", 7)
        yield bus.publish("session.updated", sent)
        yield self.wait_dead(bus, "work", 1)
        broken[0] = False
        replay = yield bus.replay_dead_letters("work")
        self._case.assertEqual(replay.replayed, (sent.id,))
        yield self.wait_until(lambda: len(handled) == 1, "the replayed delivery")
        yield self.settle()
        self._case.assertEqual(handled, [(7, 1)])
        self._case.assertEqual((yield bus.dead_letters("work")), [])
        self.flush_handler_errors()

    @inlineCallbacks
    def test_replay_selected_dead_letters(self) -> Any:
        """``replay_dead_letters(queue, ids)`` replays only those; the rest stay dead."""
        bus = yield self.bus(self.topology(work=["session.#"]), max_attempts=1)
        broken = [True]
        handled: list[int] = []

        def handler(delivery: Delivery) -> None:
            if broken[0]:
                raise HandlerError("dependency down")
            handled.append(delivery.envelope.payload["n"])

        yield self.consume(bus, "work", handler)
        for n in range(3):
            yield bus.publish("session.updated", self.envelope("session.updated", n))
        letters = yield self.wait_dead(bus, "work", 3)
        # Oldest first.
        self._case.assertEqual([letter.envelope.payload["n"] for letter in letters], [0, 1, 2])
        broken[0] = False
        replay = yield bus.replay_dead_letters("work", [letters[1].id, "no-such-id"])
        self._case.assertEqual(replay.replayed, (letters[1].id,))
        yield self.wait_until(lambda: handled == [1], "the replayed delivery")
        remaining = yield bus.dead_letters("work")
        self._case.assertEqual([letter.envelope.payload["n"] for letter in remaining], [0, 2])
        self.flush_handler_errors()

    @inlineCallbacks
    def test_handler_never_sees_dead_letter_again(self) -> Any:
        """A dead letter is not delivered again unless it is replayed."""
        bus = yield self.bus(self.topology(work=["session.#"]), max_attempts=2)
        attempts: list[int] = []

        def handler(delivery: Delivery) -> None:
            attempts.append(delivery.attempt)
            raise HandlerError("always")

        yield self.consume(bus, "work", handler)
        yield bus.publish("session.updated", self.envelope("session.updated"))
        yield self.wait_dead(bus, "work", 1)
        yield self.settle(max(FAST_RETRIES) * 3)
        self._case.assertEqual(attempts, [1, 2])
        self.flush_handler_errors()

    @inlineCallbacks
    def test_replay_ends_when_letters_fail_again(self) -> Any:
        """
        A replay takes only the letters dead when it starts: letters that
        fail again at once come back as dead letters, and are not replayed
        again by the same replay (which ends), each delivered once more.
        """
        bus = yield self.bus(self.topology(work=["session.#"]), max_attempts=1)
        attempts: dict[str, int] = {}

        def handler(delivery: Delivery) -> None:
            attempts[delivery.envelope.id] = attempts.get(delivery.envelope.id, 0) + 1
            raise HandlerError("still broken")

        yield self.consume(bus, "work", handler)
        sent = [self.envelope("session.updated", n) for n in range(3)]
        for envelope in sent:
            yield bus.publish("session.updated", envelope)
        yield self.wait_dead(bus, "work", 3)
        replay = yield bus.replay_dead_letters("work")
        self._case.assertEqual(replay.replayed, tuple(e.id for e in sent))
        letters = yield self.wait_dead(bus, "work", 3)
        yield self.settle()
        self._case.assertEqual(attempts, {e.id: 2 for e in sent})
        self._case.assertEqual(sorted(letter.id for letter in letters), sorted(e.id for e in sent))
        self.flush_handler_errors()

    test_replay_ends_when_letters_fail_again.timeout = 20  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_replay_reports_letters_that_failed_again(self) -> Any:
        """
        With ``wait``, the replay reports which of the replayed letters were
        dead letters again by then; the others were processed.
        """
        bus = yield self.bus(self.topology(work=["session.#"]), max_attempts=1)
        broken = {0, 1, 2}
        handled: list[int] = []

        def handler(delivery: Delivery) -> None:
            n = delivery.envelope.payload["n"]
            if n in broken:
                raise HandlerError(f"message {n} broken")
            handled.append(n)

        yield self.consume(bus, "work", handler)
        sent = [self.envelope("session.updated", n) for n in range(3)]
        for envelope in sent:
            yield bus.publish("session.updated", envelope)
        yield self.wait_dead(bus, "work", 3)
        broken = {1}
        replay = yield bus.replay_dead_letters("work", wait=1.0)
        self._case.assertEqual(replay.count, 3)
        self._case.assertEqual(replay.failed_again, (sent[1].id,))
        self._case.assertEqual(sorted(handled), [0, 2])
        self.flush_handler_errors()

    test_replay_reports_letters_that_failed_again.timeout = 20  # type: ignore[attr-defined]
