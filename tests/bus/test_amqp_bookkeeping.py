"""
The RabbitMQ bus's own bookkeeping of publisher confirms and deliveries
(``ocppd.bus.amqp``), without a broker: pika's channel is replaced by a fake
that records what the bus sends, and the broker's answers are handed to the
bus as pika would hand them.
"""

from __future__ import annotations

from typing import Any

import pika
from pika.spec import Basic
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus.amqp import H_ROUTING_KEY, AmqpBus, Confirms, _Acks, _Consumer
from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import BusError, Delivery
from ocppd.bus.topology import make_topology


class FakeChannel:
    """What the bus calls on a ``pika.channel.Channel``, recorded."""

    is_open = True
    consumer_tags: list[str] = []

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []
        #: Each publish's properties as pika encoded them then.
        self.encoded: list[bytes] = []
        self.acks: list[tuple[int, bool]] = []
        self.on_close: list[Any] = []

    def add_on_close_callback(self, callback: Any) -> None:
        self.on_close.append(callback)

    def close(self) -> None:
        self.is_open = False
        for callback in self.on_close:
            callback(self, pika.exceptions.ChannelClosedByClient(200, "Normal shutdown"))

    def basic_publish(self, exchange: str, routing_key: str, body: bytes, properties: Any) -> None:
        self.published.append((exchange, routing_key))
        self.encoded.append(b"".join(properties.encode()))

    def basic_ack(self, delivery_tag: int, multiple: bool = False) -> None:
        self.acks.append((delivery_tag, multiple))


class FakeProtocol:
    is_open = False


def answer(kind: type[Any], tag: int, multiple: bool = False) -> Any:
    """A Basic.Ack or Basic.Nack frame as pika hands it to the confirm callback."""
    return pika.frame.Method(1, kind(delivery_tag=tag, multiple=multiple))


def envelope(n: int) -> Envelope:
    return Envelope.create("session.updated", {"n": n}, node="node-1", charge_point_id="CP-1")


class BusWithFakeChannel:
    def make_bus(self) -> AmqpBus:
        self.clock = Clock()
        bus = AmqpBus(
            make_topology([("work", ["session.#"])], prefix="tbook"),
            url="amqp://guest:guest@127.0.0.1:1/%2F",
            reactor=self.clock,
            retry_delays=(1.0,),
            max_attempts=3,
            prefetch=2000,
        )
        # Connected, as ``_prepare`` leaves it: a publishing channel in confirm mode.
        self.channel = FakeChannel()
        bus._accepting = True
        bus._publish_channel = self.channel
        bus._confirms = Confirms()
        return bus


class ConfirmsTests(SynchronousTestCase):
    """``Confirms``: which waiting publishes an ack or nack of a tag settles."""

    def test_single_and_multiple(self) -> None:
        confirms = Confirms()
        waiters = [confirms.add() for _ in range(5)]
        self.assertEqual(confirms.answered(2, False), [waiters[1]])
        self.assertEqual(confirms.answered(4, True), [waiters[0], waiters[2], waiters[3]])
        self.assertEqual(confirms.floor, 5)
        self.assertEqual(confirms.answered(5, False), [waiters[4]])
        self.assertEqual(confirms.waiting, {})

    def test_answers_out_of_order_raise_the_floor(self) -> None:
        confirms = Confirms()
        waiters = [confirms.add() for _ in range(4)]
        self.assertEqual(confirms.answered(3, False), [waiters[2]])
        self.assertEqual(confirms.floor, 1)
        self.assertEqual(confirms.answered(1, False), [waiters[0]])
        self.assertEqual(confirms.answered(2, False), [waiters[1]])
        # 1 to 3 answered: the next multiple answer starts at 4.
        self.assertEqual(confirms.floor, 4)
        self.assertEqual(confirms.answered(4, True), [waiters[3]])

    def test_tags_never_published_settle_nothing(self) -> None:
        confirms = Confirms()
        waiters = [confirms.add() for _ in range(2)]
        self.assertEqual(confirms.answered(7, False), [])
        self.assertEqual(confirms.answered(1, True), [waiters[0]])
        self.assertEqual(confirms.answered(1, True), [])
        # A multiple answer far beyond the last publish stops there.
        self.assertEqual(confirms.answered(10**6, True), [waiters[1]])
        self.assertEqual(confirms.floor, 3)
        later = confirms.add()
        self.assertEqual(confirms.answered(3, False), [later])

    def test_take_all(self) -> None:
        confirms = Confirms()
        waiters = [confirms.add() for _ in range(3)]
        confirms.answered(2, False)
        self.assertEqual(confirms.take_all(), [waiters[0], waiters[2]])
        self.assertEqual(confirms.answered(3, True), [])


class PublisherConfirmTests(BusWithFakeChannel, SynchronousTestCase):
    """``publish`` fires on the broker's confirm of its own message, as it always did."""

    def publish(self, bus: AmqpBus, count: int) -> list[Deferred[None]]:
        return [bus.publish("session.updated", envelope(n)) for n in range(count)]

    def test_each_publish_carries_its_own_properties(self) -> None:
        """Persistent JSON with the envelope's id and type and the original key, every time."""
        bus = self.make_bus()
        sent = [
            Envelope.create(key, {}, node="node-1", charge_point_id=None)
            for key in ("session.updated", "charger.connected", "session.updated")
        ]
        self.clock.advance(1_800_000_000)
        for message in sent:
            bus.publish(message.type, message)
        decoded = []
        for raw in self.channel.encoded:
            properties = pika.BasicProperties()
            properties.decode(raw)
            decoded.append(properties)
        for properties, message in zip(decoded, sent, strict=True):
            self.assertEqual(
                (
                    properties.delivery_mode,
                    properties.content_type,
                    properties.message_id,
                    properties.type,
                    properties.timestamp,
                    properties.headers,
                ),
                (
                    2,
                    "application/json",
                    message.id,
                    message.type,
                    1_800_000_000,
                    {H_ROUTING_KEY: message.type},
                ),
            )

    def test_multiple_ack_fires_every_publish_up_to_its_tag(self) -> None:
        bus = self.make_bus()
        published = self.publish(bus, 4)
        self.assertEqual(len(self.channel.published), 4)
        bus._on_confirm(self.channel, bus._confirms, answer(Basic.Ack, 3, multiple=True))
        for d in published[:3]:
            self.assertIsNone(self.successResultOf(d))
        self.assertNoResult(published[3])
        bus._on_confirm(self.channel, bus._confirms, answer(Basic.Ack, 4))
        self.assertIsNone(self.successResultOf(published[3]))
        self.assertEqual((bus.stats.publish_confirmed, bus.stats.publish_failed), (4, 0))

    def test_single_ack_fires_that_publish_only(self) -> None:
        bus = self.make_bus()
        published = self.publish(bus, 3)
        bus._on_confirm(self.channel, bus._confirms, answer(Basic.Ack, 2))
        self.assertNoResult(published[0])
        self.successResultOf(published[1])
        self.assertNoResult(published[2])

    def test_nack_fails_with_bus_error(self) -> None:
        bus = self.make_bus()
        published = self.publish(bus, 3)
        bus._on_confirm(self.channel, bus._confirms, answer(Basic.Nack, 2, multiple=True))
        for d in published[:2]:
            self.assertIn("nack", str(self.failureResultOf(d, BusError).value))
        self.assertNoResult(published[2])
        bus._on_confirm(self.channel, bus._confirms, answer(Basic.Ack, 3))
        self.successResultOf(published[2])
        self.assertEqual((bus.stats.publish_confirmed, bus.stats.publish_failed), (1, 2))

    def test_channel_closed_fails_the_waiting_publishes(self) -> None:
        bus = self.make_bus()
        published = self.publish(bus, 3)
        confirms = bus._confirms
        # A caller that publishes again at once is told the bus is not connected.
        again: list[Deferred[None]] = []

        def publish_again(failure: Any) -> Any:
            again.append(bus.publish("session.updated", envelope(8)))
            return failure

        published[1].addErrback(publish_again)
        bus._on_confirm(self.channel, confirms, answer(Basic.Ack, 1))
        bus._publish_channel_closed(
            FakeProtocol(), confirms, self.channel, pika.exceptions.StreamLostError("gone")
        )
        self.successResultOf(published[0])
        for d in published[1:]:
            error = self.failureResultOf(d, BusError).value
            self.assertIn("no confirm from RabbitMQ", str(error))
            self.assertIn("StreamLostError", str(error))
        self.assertIsNone(bus._publish_channel)
        self.assertIn("not connected", str(self.failureResultOf(again[0], BusError).value))
        self.assertEqual(len(self.channel.published), 3)
        self.assertEqual((bus.stats.publish_confirmed, bus.stats.publish_failed), (1, 3))

    def test_blocked_fails_the_waiting_publishes_once(self) -> None:
        """A block fails what waits; their confirms, when they come, are only counted."""
        bus = self.make_bus()
        proto = object()
        bus._publishing.protocol = proto
        published = self.publish(bus, 2)
        bus._on_blocked(proto, pika.frame.Method(0, pika.spec.Connection.Blocked("low memory")))
        for d in published:
            self.assertIn("blocks publishing", str(self.failureResultOf(d, BusError).value))
        bus._on_confirm(self.channel, bus._confirms, answer(Basic.Ack, 2, multiple=True))
        self.assertEqual(bus.stats.publish_confirmed, 2)
        self.assertEqual(bus._confirms.waiting, {})

    def test_a_publish_made_while_confirms_fire_gets_the_next_tag(self) -> None:
        """A caller that publishes again from its confirm (a charger's next message)."""
        bus = self.make_bus()
        again: list[Deferred[None]] = []
        first = bus.publish("session.updated", envelope(0))
        first.addCallback(lambda _: again.append(bus.publish("session.updated", envelope(1))))
        bus._on_confirm(self.channel, bus._confirms, answer(Basic.Ack, 1))
        self.assertEqual(len(again), 1)
        self.assertNoResult(again[0])
        bus._on_confirm(self.channel, bus._confirms, answer(Basic.Ack, 2))
        self.successResultOf(again[0])


class DeliveryTests(BusWithFakeChannel, SynchronousTestCase):
    """Deliveries as pika hands them over: at most ``concurrency`` handled, in order."""

    def consumer(self, bus: AmqpBus, handler: Any, concurrency: int) -> _Consumer:
        consumer = _Consumer(bus, "work", handler, concurrency)
        bus._consumers["work"] = consumer
        consumer.channel = self.channel
        consumer.acks = _Acks(self.channel)
        return consumer

    def deliver(self, bus: AmqpBus, consumer: _Consumer, tags: range) -> None:
        for tag in tags:
            method = Basic.Deliver(
                consumer_tag="ctag",
                delivery_tag=tag,
                exchange="tbook.events",
                routing_key="session.updated",
            )
            message = envelope(tag)
            properties = pika.BasicProperties(
                message_id=message.id, headers={H_ROUTING_KEY: "session.updated"}
            )
            bus._on_delivery(
                consumer, self.channel, self.channel, method, properties, message.to_bytes()
            )

    def test_waiting_deliveries_start_in_order_as_handlers_finish(self) -> None:
        bus = self.make_bus()
        started: list[int] = []
        running: list[Deferred[None]] = []

        def handler(delivery: Delivery) -> Deferred[None]:
            started.append(delivery.envelope.payload["n"])
            running.append(Deferred())
            return running[-1]

        consumer = self.consumer(bus, handler, concurrency=2)
        self.deliver(bus, consumer, range(1, 6))
        self.assertEqual(started, [1, 2])
        running[1].callback(None)
        self.assertEqual(started, [1, 2, 3])
        running[0].callback(None)
        running[2].callback(None)
        self.assertEqual(started, [1, 2, 3, 4, 5])
        for d in running[3:]:
            d.callback(None)
        self.clock.advance(0)
        self.assertEqual(self.channel.acks, [(5, True)])
        self.assertEqual(consumer.active, 0)

    def test_a_long_backlog_of_quick_handlers(self) -> None:
        """
        Deliveries waiting behind a slow one are handled in a loop once it
        finishes, however many (no call nested per delivery: no RecursionError).
        """
        bus = self.make_bus()
        seen: list[int] = []
        first: Deferred[None] = Deferred()

        def handler(delivery: Delivery) -> Deferred[None] | None:
            seen.append(delivery.envelope.payload["n"])
            return first if delivery.envelope.payload["n"] == 1 else None

        consumer = self.consumer(bus, handler, concurrency=1)
        self.deliver(bus, consumer, range(1, 3001))
        self.assertEqual(seen, [1])
        first.callback(None)
        self.assertEqual(seen, list(range(1, 3001)))
        self.clock.advance(0)
        self.assertEqual(self.channel.acks, [(3000, True)])

    def test_deliveries_of_a_stopped_consumer_are_left(self) -> None:
        """What waits when the consumer's channel goes is left unacked (requeued at close)."""
        bus = self.make_bus()
        started: list[int] = []
        running: list[Deferred[None]] = []

        def handler(delivery: Delivery) -> Deferred[None]:
            started.append(delivery.envelope.payload["n"])
            running.append(Deferred())
            return running[-1]

        consumer = self.consumer(bus, handler, concurrency=1)
        self.deliver(bus, consumer, range(1, 4))
        detached = bus._detach(consumer)
        self.assertNoResult(detached)
        running[0].callback(None)
        self.successResultOf(detached)
        self.assertEqual(started, [1])
        self.deliver(bus, consumer, range(4, 5))
        self.assertEqual(started, [1])
        # The one that finished is acked at once, then the channel closed.
        self.assertEqual(self.channel.acks, [(1, False)])
        self.assertFalse(self.channel.is_open)


class FramesConnection:
    """What ``_PublishFrames`` uses of pika's connection: the largest body, the output."""

    _body_max_length = 1000

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def _output_marshaled_frames(self, frames: Any) -> None:
        self.written.extend(frames)


class FramesChannel(FakeChannel):
    """A channel whose publishes ``_PublishFrames`` writes itself."""

    channel_number = 3

    def __init__(self) -> None:
        super().__init__()
        self.connection = FramesConnection()


def pika_frames(channel: int, exchange: str, routing_key: str, body: bytes, props: Any) -> bytes:
    """The frames pika's ``basic_publish`` writes for one message."""
    return b"".join(
        [
            pika.frame.Method(
                channel, Basic.Publish(exchange=exchange, routing_key=routing_key)
            ).marshal(),
            pika.frame.Header(channel, len(body), props).marshal(),
            pika.frame.Body(channel, body).marshal(),
        ]
    )


class PublishFramesTests(BusWithFakeChannel, SynchronousTestCase):
    """``publish`` writes the frames pika would write (``_PublishFrames``)."""

    def test_the_bytes_of_pikas_publish(self) -> None:
        """
        Method, content header and body frames byte for byte as pika makes
        them, for several messages of two keys (the cached parts per key,
        the id, time, type and body per message), none through ``basic_publish``.
        """
        bus = self.make_bus()
        channel = FramesChannel()
        bus._publish_channel = channel
        sent = []
        for n, (key, when) in enumerate(
            [("session.updated", 0), ("session.started", 10**10), ("session.updated", 17)]
        ):
            self.clock.advance(when)
            message = Envelope.create(key, {"n": n, "é": "ü" * n}, node="node-1")
            waiting = bus.publish(key, message)
            self.assertFalse(waiting.called)
            props = pika.BasicProperties(
                delivery_mode=2,
                content_type="application/json",
                headers={H_ROUTING_KEY: key},
                message_id=message.id,
                timestamp=int(self.clock.seconds()),
                type=message.type,
            )
            sent.append(pika_frames(3, "tbook.events", key, message.to_bytes(), props))
        self.assertEqual(channel.connection.written, sent)
        self.assertEqual(channel.published, [])
        bus._on_confirm(channel, bus._confirms, answer(Basic.Ack, 3, multiple=True))
        self.assertEqual(bus.stats.publish_confirmed, 3)

    def test_what_pika_publishes_itself(self) -> None:
        """A body longer than a frame takes pika's ``basic_publish`` (which splits it)."""
        bus = self.make_bus()
        channel = FramesChannel()
        bus._publish_channel = channel
        bus.publish(
            "session.updated", Envelope.create("session.updated", {"x": "y" * 2000}, node="n")
        )
        self.assertEqual(channel.connection.written, [])
        self.assertEqual(channel.published, [("tbook.events", "session.updated")])

    def test_closed_channel_fails_the_publish(self) -> None:
        """As pika's own publish on a closed channel: a ``BusError`` at once, nothing written."""
        bus = self.make_bus()
        channel = FramesChannel()
        bus._publish_channel = channel
        channel.is_open = False
        failure = self.failureResultOf(bus.publish("session.updated", envelope(1)), BusError)
        self.assertIn("Channel is closed", str(failure.value))
        self.assertEqual(channel.connection.written, [])
