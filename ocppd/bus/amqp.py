"""
The RabbitMQ bus: ``IBus`` over pika's Twisted adapter.

Every pika import of ocppd lives in this module: pika's Twisted adapter is
deprecated on pika's main branch (2.0), so ocppd pins ``pika>=1.4,<2`` and
keeps the blast radius of a future replacement to this one file.

What goes where on the broker (names from :class:`~ocppd.bus.topology.Topology`):

- The topology's exchanges (durable topic exchanges) and work queues (durable;
  quorum queues with ``quorum_queues=True``) with their bindings.
- Per work queue, one *retry queue* per distinct retry delay
  (``<prefix>.<queue>.retry.<ms>ms``) with ``x-message-ttl`` = the delay and
  the default exchange as dead-letter exchange, routing back to the work queue.
  One queue per delay because TTL-expired messages leave a classic queue only
  from its head.
- Ephemeral queues (a node's notifier) are declared and bound by their
  consumer, on its channel, each time it starts (``_declare_ephemeral``), not
  with the rest on connecting: auto-delete, such a queue exists only while
  consumed, and nothing is routed to it otherwise (docs/bus.md).
- Per work queue, a *dead-letter queue* (``<prefix>.<queue>.dead``). It is
  always a classic queue: reading it (``dead_letters``) takes the messages with
  ``basic.get`` and gives them back, which counts as a delivery; a quorum
  queue's delivery limit would eventually drop them.

Message headers (``x-ocppd-*``) carry what the broker would otherwise lose on
the way through retry and dead-letter queues, which are reached through the
default exchange with the queue name as routing key:

- ``x-ocppd-routing-key``: the key the message was first published with, so
  ``Delivery.routing_key`` is the original key on every attempt;
- ``x-ocppd-attempt``: the attempt the next delivery is (absent = 1);
- ``x-ocppd-reason``, ``x-ocppd-attempts``, ``x-ocppd-failed-at``: on dead
  letters, why, after how many attempts, and when.

Delivery guarantees: ``publish`` fires only on the broker's publisher confirm
of a persistent message; it fails with ``BusError`` on a nack, on a lost
connection before the confirm, and at once while there is no connection (the
OCPP layer then answers InternalError and the charger retries; nothing waits in
an unbounded buffer). Consumers ack after the handler succeeded; a failed
message is first republished (to a retry queue, or the dead-letter queue) with
a confirm and only then acked, so a crash in between duplicates rather than
loses it. Consumers must therefore be idempotent on the envelope id, as they
also must be for redeliveries after a reconnection.

Connections: two, as RabbitMQ advises, one that publishes and one that
consumes (see ``_Link``): a resource alarm blocks the first, and while it
does ``publish`` fails at once, so consumers never wait on it and keep
draining the queues. Each has a ``ClientService`` that reconnects with
exponential back-off and jitter; every new connection redoes all
declarations, then the publisher's channel and confirms, or the consumers'
channels, QoS and consumers. Heartbeats are pika's
connection parameters, set in the URL (``?heartbeat=30``); by default the
broker's proposal (60 s on RabbitMQ) is accepted.

Per message, the bus works on pika's own ``pika.channel.Channel`` (see
``open_raw_channel``): publishes awaiting a confirm are kept by delivery tag
(``Confirms``), and deliveries come from pika's ``on_message_callback``
straight to the handler; the adapter's ``TwistedChannel`` made a Deferred per
message on both sides. Declarations and the dead letters keep the wrapper.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable, Generator, Sequence
from functools import partial
from types import CoroutineType
from typing import Any, NamedTuple, cast

import pika
import pika.exceptions
import pika.frame
from pika.adapters.twisted_connection import TwistedProtocolConnection
from pika.spec import Basic
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet import protocol
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    DeferredLock,
    FirstError,
    fail,
    gatherResults,
    inlineCallbacks,
    maybeDeferred,
    succeed,
)
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IAddress,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.task import deferLater
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

from ocppd.bus.envelope import Envelope, EnvelopeError
from ocppd.bus.interface import (
    BusError,
    DeadLetter,
    Delivery,
    Handler,
    IBus,
    IConsumer,
    Replay,
    encode_envelope,
    replay_outcome,
)
from ocppd.bus.retry import RetryPolicy
from ocppd.bus.stats import BusStats
from ocppd.bus.topology import EPHEMERAL_MAX_LENGTH, QueueSpec, Topology
from ocppd.logs import Logger
from ocppd.ratelog import RepeatLog
from ocppd.timeutil import format_iso, from_timestamp

H_ROUTING_KEY = "x-ocppd-routing-key"
H_ATTEMPT = "x-ocppd-attempt"
H_REASON = "x-ocppd-reason"
H_ATTEMPTS = "x-ocppd-attempts"
H_FAILED_AT = "x-ocppd-failed-at"

#: The default exchange: routes a message to the queue named by its routing key.
DEFAULT_EXCHANGE = ""

_log = Logger()


def _describe(failure: Failure | BaseException | None) -> str:
    """A short text for a pika/Twisted error, for logs and BusError messages."""
    if failure is None:
        return "unknown reason"
    error = failure.value if isinstance(failure, Failure) else failure
    text = str(error) or repr(error)
    return f"{type(error).__name__}: {text}"


#: The most bytes handed to pika's frame parser at once (``NoDelayConnection.dataReceived``).
_READ_SLICE = 8192


class NoDelayConnection(TwistedProtocolConnection):
    """
    pika's protocol over TCP without Nagle's algorithm, for every AMQP
    connection of ocppd (the bus's and the command transport's).
    """

    def unwrap(self) -> NoDelayConnection:
        """This protocol itself, also when called through ClientService's proxy."""
        return self

    def dataReceived(self, data: bytes) -> None:
        # pika appends what arrives to its frame buffer and cuts each frame
        # off the front, copying the rest: a 64 KiB read (a burst of
        # deliveries, most of what a busy consumer reads) copied ~5 MiB.
        # Handed over in slices of 8 KiB, the copies stay small.
        if len(data) <= _READ_SLICE:
            super().dataReceived(data)
            return
        view = memoryview(data)
        for start in range(0, len(data), _READ_SLICE):
            super().dataReceived(bytes(view[start : start + _READ_SLICE]))

    def connectionMade(self) -> None:
        # AMQP frames are small and often alone (a confirm, one delivery, a
        # command's reply): with Nagle's algorithm meeting delayed ACKs each
        # waited ~40 ms.
        set_no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if set_no_delay is not None:
            set_no_delay(True)
        super().connectionMade()


def hold_loss_notice(proxy: Any) -> Callable[[], None]:
    """
    Keep ``ClientService`` from hearing of the loss of a connection it has
    not counted as made yet; the returned callable gives the notice back once
    ``prepareConnection`` succeeded (and fails it if the connection was lost
    meanwhile).

    Twisted's ``ClientService`` (26.10) relays every loss of a connection it
    started to its state machine, which only expects one once the connection
    counts as made: a loss during ``prepareConnection`` (the broker cut during
    the AMQP handshake), or after a failed preparation dropped it, raised
    ``NoTransition`` in the reactor. A failed preparation already tells it
    (``_connectionFailed``), so nothing is lost by holding the notice.
    """
    notify = getattr(proxy, "_lostNotification", None)
    if notify is None:  # not ClientService's proxy (a test's protocol)
        return lambda: None
    lost: list[Failure] = []
    proxy._lostNotification = lost.append

    def release() -> None:
        if lost:
            raise ConnectionLost("lost while it was being prepared")
        proxy._lostNotification = notify

    return release


@inlineCallbacks
def close_channel(channel: Any, reactor: IReactorTime) -> Generator[Deferred[Any], Any, None]:
    """
    Close a pika ``channel`` and wait for the broker's close-ok, at most 5 s
    (a broker that is gone never sends it); never fails.
    """
    if channel is None or not channel.is_open:
        return
    closed = channel.on_closed
    try:
        channel.close()
    except Exception:
        return  # closing already, or its connection is gone: nothing to wait for
    closed.addTimeout(5, reactor)
    try:
        yield closed
    except Exception:
        pass  # the timeout, or the connection lost meanwhile: the channel is gone either way


def open_raw_channel(proto: Any) -> Deferred[Any]:
    """
    A ``pika.channel.Channel`` on ``proto`` (pika's Twisted protocol), once
    open; fails if it closes first.

    The bus publishes and consumes on pika's own channels rather than the
    Twisted adapter's ``TwistedChannel`` wrapper, which makes a Deferred per
    delivered message (its ``ClosableDeferredQueue``) and per published one
    (its confirm): its per-message work was a third of the reactor's under
    load (bench/RESULTS.md). Setup calls still go through ``call_raw``.
    """
    return _answer_unless_closed(lambda answer: proto._impl.channel(on_open_callback=answer))


def call_raw(channel: Any, method: str, **kwargs: Any) -> Deferred[Any]:
    """
    Call ``method`` of a ``pika.channel.Channel`` that answers through its
    ``callback`` argument (``basic_qos``, ``basic_consume``,
    ``confirm_delivery``, ...); the Deferred fires with the broker's answer
    frame, or fails with the reason if the channel closes first (pika then
    never calls back), or with what the call raised.
    """

    def start(answer: Callable[[Any], None]) -> Any:
        getattr(channel, method)(callback=answer, **kwargs)
        return channel

    return _answer_unless_closed(start)


def _answer_unless_closed(start: Callable[[Callable[[Any], None]], Any]) -> Deferred[Any]:
    """
    What pika calls back with once: ``start(answer)`` begins the call and
    returns the channel it is on; the Deferred fires with the first value
    given to ``answer``, or fails with the reason if that channel closes
    first (pika then never calls back), or with what ``start`` raised.
    """
    answered: Deferred[Any] = Deferred()

    def on_answer(value: Any) -> None:
        if not answered.called:
            answered.callback(value)

    def on_close(_channel: Any, reason: BaseException) -> None:
        if not answered.called:
            answered.errback(reason)

    try:
        channel = start(on_answer)
    except Exception:
        return fail()
    channel.add_on_close_callback(on_close)
    return answered


@inlineCallbacks
def close_raw_channel(channel: Any, reactor: IReactorTime) -> Generator[Deferred[Any], Any, None]:
    """``close_channel`` for a ``pika.channel.Channel`` (waits 5 s at most, never fails)."""
    if channel is None or not channel.is_open:
        return
    closed: Deferred[None] = Deferred()

    def on_close(_channel: Any, _reason: BaseException) -> None:
        if not closed.called:
            closed.callback(None)

    channel.add_on_close_callback(on_close)
    try:
        channel.close()
    except Exception:
        return  # closing already, or its connection is gone: nothing to wait for
    closed.addTimeout(5, reactor)
    try:
        yield closed
    except Exception:
        pass  # the timeout: the channel is gone either way


class Confirms:
    """
    The publishes of one channel in confirm mode that wait for the broker's
    answer, by delivery tag: pure bookkeeping, one Deferred per publish (the
    one its caller holds).

    RabbitMQ numbers a confirm-mode channel's publishes from 1 and answers
    each with an ack or a nack, for that tag alone or (``multiple``) for it
    and every tag below it still unanswered; answers of different tags may
    come out of order. ``floor`` is the lowest tag that may still wait, so a
    ``multiple`` answer visits each tag once over the channel's life.
    """

    def __init__(self) -> None:
        self.waiting: dict[int, Deferred[None]] = {}
        #: The tag of the latest publish (0: none yet).
        self.last = 0
        #: Every tag below this one is answered.
        self.floor = 1

    def add(self) -> Deferred[None]:
        """What the next publish's caller waits on (its tag is ``last`` after this)."""
        self.last += 1
        waiter: Deferred[None] = Deferred()
        self.waiting[self.last] = waiter
        return waiter

    def answered(self, tag: int, multiple: bool) -> list[Deferred[None]]:
        """
        Take the waiters an answer for ``tag`` settles, in publication order:
        ``tag``'s alone, or with ``multiple`` every one up to ``tag``. Tags
        never published (a broker's mistake) settle nothing.
        """
        waiting = self.waiting
        if not multiple:
            waiter = waiting.pop(tag, None)
            if tag == self.floor:
                self._raise_floor()
            return [] if waiter is None else [waiter]
        top = min(tag, self.last)
        settled = [
            waiter
            for waiter in (waiting.pop(t, None) for t in range(self.floor, top + 1))
            if waiter is not None
        ]
        if top >= self.floor:
            self.floor = top + 1
            self._raise_floor()
        return settled

    def _raise_floor(self) -> None:
        while self.floor <= self.last and self.floor not in self.waiting:
            self.floor += 1

    def take_all(self) -> list[Deferred[None]]:
        """Every waiter, in publication order (the channel is gone: none will be answered)."""
        waiters = list(self.waiting.values())
        self.waiting.clear()
        self.floor = self.last + 1
        return waiters


#: What a handler may return besides None or a Deferred, as ``maybeDeferred`` takes it.
_UNUSUAL_RESULTS = (Failure, CoroutineType)


#: An AMQP frame's head (type, channel, payload size), a content header's
#: class, weight and body size, a timestamp property; the frame-end octet.
_FRAME_HEAD = struct.Struct(">BHI").pack
_CONTENT_HEAD = struct.Struct(">HxxQ").pack
_TIMESTAMP = struct.Struct(">Q").pack
_FRAME_END = b"\xce"
#: How pika's encoding of the template properties ends: an empty message id,
#: timestamp 0, an empty type (the three set per message).
_TEMPLATE_TAIL = b"\x00" + bytes(8) + b"\x00"


class _PublishFrames:
    """
    The frames of one ``publish`` on ``channel`` (Basic.Publish, the content
    header, the body) as the bytes pika's ``basic_publish`` writes for them,
    written at once (``send``).

    pika builds the three frames anew per message in Python (the method's
    fields, ``BasicProperties.encode`` with the headers' table, each frame
    its own ``transport.write``). Here the Basic.Publish frame and the
    properties up to the message id (content type, the routing key's
    headers, delivery mode) are pika's own bytes, made once per exchange and
    routing key; per message only the message id, timestamp, type and body
    are put in (AMQP 0-9-1's framing: short strings, a 64-bit timestamp).
    ``frames`` gives None for what it does not cover (an empty body, one
    longer than a frame, a short string over 255 bytes): pika publishes those.
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        self.number: int = channel.channel_number
        self.body_max: int = channel.connection._body_max_length
        self._routes: dict[tuple[str, str], tuple[bytes, bytes]] = {}

    def _route(
        self, exchange: str, routing_key: str, properties: Any, headers: dict[str, Any]
    ) -> tuple[bytes, bytes]:
        method = pika.frame.Method(
            self.number, Basic.Publish(exchange=exchange, routing_key=routing_key)
        ).marshal()
        template = pika.BasicProperties(
            content_type=properties.content_type,
            delivery_mode=properties.delivery_mode,
            headers=headers,
            message_id="",
            timestamp=0,
            type="",
        )
        encoded = b"".join(template.encode())
        assert encoded.endswith(_TEMPLATE_TAIL)
        route = (method, encoded[: -len(_TEMPLATE_TAIL)])
        if len(self._routes) < 10_000:  # as AmqpBus._routes: a few dozen keys
            self._routes[(exchange, routing_key)] = route
        return route

    def frames(
        self,
        exchange: str,
        routing_key: str,
        properties: Any,
        headers: dict[str, Any],
        message_id: str,
        timestamp: int,
        type_: str,
        body: bytes,
    ) -> bytes | None:
        """The publish's frames, or None for pika's ``basic_publish`` (see the class)."""
        route = self._routes.get((exchange, routing_key))
        if route is None:
            route = self._route(exchange, routing_key, properties, headers)
        method, head = route
        message = message_id.encode()
        kind = type_.encode()
        if not body or len(body) > self.body_max or len(message) > 255 or len(kind) > 255:
            return None
        header = b"".join(
            (
                _CONTENT_HEAD(pika.BasicProperties.INDEX, len(body)),
                head,
                len(message).to_bytes(1, "big"),
                message,
                _TIMESTAMP(timestamp),
                len(kind).to_bytes(1, "big"),
                kind,
            )
        )
        number = self.number
        return b"".join(
            (
                method,
                _FRAME_HEAD(2, number, len(header)),
                header,
                _FRAME_END,
                _FRAME_HEAD(3, number, len(body)),
                body,
                _FRAME_END,
            )
        )

    def send(self, frames: bytes) -> None:
        """Write ``frames`` as pika writes its own (counting its bytes), if the channel is open."""
        channel = self.channel
        if not channel.is_open:
            raise pika.exceptions.ChannelWrongStateError("Channel is closed.")
        channel.connection._output_marshaled_frames((frames,))


class _Message(NamedTuple):
    """A delivery whose handling failed, for its move to a retry or dead-letter queue."""

    method: Any
    properties: Any
    body: bytes


class _Connection(NoDelayConnection):
    """pika's protocol, telling the bus when the TCP connection ends."""

    def __init__(self, parameters: Any, bus: AmqpBus, link: _Link) -> None:
        super().__init__(parameters, custom_reactor=bus._reactor)
        self._bus = bus
        self._link = link

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        super().connectionLost(reason)
        self._bus._connection_lost(self._link, self, reason)


class _Factory(protocol.Factory):
    def __init__(self, bus: AmqpBus, link: _Link) -> None:
        self._bus = bus
        self._link = link

    def buildProtocol(self, addr: IAddress | None) -> protocol.Protocol | None:
        return cast(protocol.Protocol, _Connection(self._link.parameters, self._bus, self._link))


class _Link:
    """
    One of the bus's two AMQP connections, kept up by its own ClientService:
    ``publish`` (every publish, retry and dead-letter moves, replays) and
    ``consume`` (deliveries and their acks). RabbitMQ blocks a connection
    that publishes during a resource alarm; one that only consumes and acks
    keeps draining the queues, which is what clears the alarm.
    """

    def __init__(self, role: str, url: str, connection_name: str) -> None:
        self.role = role
        self.parameters = pika.URLParameters(url)
        self.parameters.client_properties = {"connection_name": f"{connection_name} {role}"}
        self.protocol: Any = None
        self.client: ClientService | None = None
        self.lost_waiters: list[Deferred[None]] = []


@implementer(IStreamClientEndpoint)
class _LoggingEndpoint:
    """Wraps the broker endpoint to log every connection attempt and its failure."""

    def __init__(
        self, endpoint: IStreamClientEndpoint, where: str, role: str, repeats: RepeatLog
    ) -> None:
        self._endpoint = endpoint
        self._where = where
        self._role = role
        self._repeats = repeats

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        _log.debug("Connecting to RabbitMQ at {where} ({role})", where=self._where, role=self._role)
        d = self._endpoint.connect(factory)

        def failed(failure: Failure) -> Failure:
            # Once per attempt, back-off apart: through the RepeatLog all the
            # same, so a long outage costs a line or two a minute.
            self._repeats.warn(
                ("connect-failed", self._role),
                "RabbitMQ connection to {where} ({role}) failed: {reason}",
                where=self._where,
                role=self._role,
                reason=_describe(failure),
                state="failed",
            )
            return failure

        d.addErrback(failed)
        return d


class _Acks:
    """
    The acks of one consumer's channel, sent once per reactor turn: the tags
    below every delivery still unsettled in one ``basic_ack(multiple=True)``,
    the others one by one. Under load a turn settles a whole batch (the
    processor's commit), which thus costs one frame instead of one per
    message, for pika to build and for the broker to process.
    """

    def __init__(self, channel: Any) -> None:
        self.channel = channel
        #: Tags handed to the handler and neither acked nor nacked yet.
        self.unsettled: set[int] = set()
        #: Tags settled with an ack this turn, not sent yet.
        self.ready: list[int] = []
        self.call: Any = None

    def take(self) -> list[tuple[int, bool]]:
        """What to send now: (delivery tag, multiple) pairs."""
        self.call = None
        ready, self.ready = self.ready, []
        self.unsettled.difference_update(ready)
        # Every tag below the lowest unsettled one was handed out and settled
        # (acked, or nacked and no longer the broker's concern); tags the
        # handler has not been given yet (waiting in pika's queue) are higher.
        floor = min(self.unsettled) if self.unsettled else None
        below = [tag for tag in ready if floor is None or tag < floor]
        sends = [(max(below), True)] if below else []
        sends += [(tag, False) for tag in ready if floor is not None and tag > floor]
        return sends


@implementer(IConsumer)
class _Consumer:
    """A registered consumer of one queue; survives reconnections until stopped."""

    def __init__(self, bus: AmqpBus, queue: str, handler: Handler, concurrency: int = 1) -> None:
        self.queue = queue
        self.handler = handler
        #: Deliveries handled at once (never more than the channel's prefetch).
        self.concurrency = min(concurrency, bus._prefetch)
        self._bus = bus
        #: The channel it currently consumes on (one channel per consumer, so
        #: QoS, acks and the requeue on close concern this queue only).
        self.channel: Any = None
        self.starting = False
        #: The acks of ``channel``.
        self.acks: _Acks | None = None
        #: Handlers running now.
        self.active = 0
        #: The publication time of each message handed to the handler and not
        #: yet settled, in delivery order (for the consumer lag, ``oldest_unprocessed``).
        self.working: dict[int, str] = {}
        #: Deliveries waiting for a handler (``concurrency`` of them are
        #: handled already): channel, method, properties, body.
        self.backlog: deque[tuple[Any, Any, Any, bytes]] = deque()
        #: Whether the bus is taking deliveries off ``backlog`` now.
        self.taking = False
        self.idle_waiters: list[Deferred[None]] = []

    def stop(self) -> Deferred[None]:
        return self._bus._stop_consumer(self)

    def __repr__(self) -> str:
        return f"<AmqpBus consumer of {self.queue!r}>"


@implementer(IBus)
class AmqpBus(Service):
    """
    ``IBus`` on RabbitMQ (see the module docstring for the broker layout and
    guarantees).

    ``retry_delays[n]`` is the delay in seconds before attempt ``n + 2``; the
    last one repeats. ``prefetch`` is the QoS of each consumer: how many
    messages RabbitMQ sends ahead; handlers still run one at a time per queue.
    ``connection_name`` shows in the management UI and in the
    ``client_properties`` column of ``rabbitmqctl list_connections`` (which
    lets tests close exactly this bus's connection).
    """

    log = _log

    def __init__(
        self,
        topology: Topology,
        *,
        url: str,
        reactor: Any,
        retry_delays: Sequence[float],
        max_attempts: int,
        prefetch: int = 200,
        quorum_queues: bool = False,
        connection_name: str = "ocppd",
        drain_timeout: float = 10.0,
        connect_timeout: float = 10.0,
    ) -> None:
        self._retry = RetryPolicy.of(retry_delays, max_attempts)
        if prefetch < 1:
            raise ValueError("prefetch must be at least 1")
        self.topology = topology
        self._reactor = reactor
        self._prefetch = prefetch
        self._quorum = quorum_queues
        self._drain_timeout = drain_timeout
        self._publishing = _Link("publish", url, connection_name)
        self._consuming = _Link("consume", url, connection_name)
        self._connection_name = connection_name
        parameters = self._publishing.parameters
        host, port = parameters.host, parameters.port
        self._where = f"{host}:{port}"
        endpoint: IStreamClientEndpoint = HostnameEndpoint(
            reactor, host, port, timeout=connect_timeout
        )
        if parameters.ssl_options is not None:
            from twisted.internet.endpoints import wrapClientTLS
            from twisted.internet.ssl import optionsForClientTLS

            endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
        policy = backoffPolicy(initialDelay=0.5, factor=2, maxDelay=30)

        #: Failures that repeat per message during an outage: a line a minute per kind.
        self._repeats = RepeatLog(self.log, reactor)
        for link in (self._publishing, self._consuming):
            link.client = ClientService(
                _LoggingEndpoint(endpoint, self._where, link.role, self._repeats),
                _Factory(self, link),
                retryPolicy=self._retry_policy(policy, link),
                clock=reactor,
                prepareConnection=partial(self._prepare, link),
            )
        #: The publishing connection's ``pika.channel.Channel``, in confirm mode.
        self._publish_channel: Any = None
        #: The publishes on ``_publish_channel`` awaiting the broker's confirm.
        self._confirms = Confirms()
        #: Why RabbitMQ blocks the publishing connection now (a resource alarm), or None.
        self._blocked: str | None = None
        self._consumers: dict[str, _Consumer] = {}
        #: The exchange and headers of each routing key published (a few dozen
        #: distinct keys); the headers are only read (encoded by pika).
        self._routes: dict[str, tuple[str, dict[str, Any]]] = {}
        #: The properties of every ``publish``: persistent JSON; the rest is
        #: set per message.
        self._properties = pika.BasicProperties(delivery_mode=2, content_type="application/json")
        #: The frames of publishes on ``_publish_channel`` (made anew for each channel).
        self._frames: _PublishFrames | None = None
        self._admin_lock = DeferredLock()
        self._accepting = False
        #: What the bus counts for the metrics (``ocppd.bus.stats``).
        self.stats = BusStats()
        #: Messages of ephemeral queues dropped after their handler failed, per queue.
        self.dropped: dict[str, int] = self.stats.dropped

    def _retry_policy(self, policy: Callable[[int], float], link: _Link) -> Callable[[int], float]:
        def retry_policy(attempt: int) -> float:
            # ClientService counts failures from 1; start the back-off at
            # initialDelay (plus up to 1 s of jitter) rather than twice that.
            delay = float(policy(attempt - 1))
            if self.running:
                self._repeats.emit(
                    ("reconnect", link.role),
                    LogLevel.info,
                    "Reconnecting to RabbitMQ at {where} ({role}) in {delay:.1f}s "
                    "(attempt {attempt})",
                    where=self._where,
                    role=link.role,
                    delay=delay,
                    attempt=attempt + 1,
                    state="waiting",
                )
            return delay

        return retry_policy

    @property
    def _protocol(self) -> Any:
        """The publishing connection (publishes, topology administration, dead letters)."""
        return self._publishing.protocol

    # --- IBus ---------------------------------------------------------------

    def publish(self, routing_key: str, envelope: Envelope) -> Deferred[None]:
        """
        Publish persistently on the exchange of ``routing_key``; fires on the
        broker's confirm. Fails fast with ``BusError`` while not connected.
        """
        if not self._accepting:
            self.stats.publish_failed += 1
            return fail(BusError("the bus is stopped"))
        route = self._routes.get(routing_key)
        if route is None:
            try:
                exchange = self.topology.exchange_for(routing_key)
            except ValueError as e:
                self.stats.publish_failed += 1
                return fail(BusError(str(e)))
            route = (exchange, {H_ROUTING_KEY: routing_key})
            if len(self._routes) < 10_000:  # keys come from our code, but bound it anyway
                self._routes[routing_key] = route
        try:
            body = encode_envelope(envelope)
        except BusError as e:
            self.stats.publish_failed += 1
            return fail(e)
        timestamp = int(self._reactor.seconds())
        channel = self._publish_channel
        if channel is not None:
            try:
                frames = self._frames
                if frames is None or frames.channel is not channel:
                    frames = self._frames = _PublishFrames(channel)
                data = frames.frames(
                    route[0],
                    routing_key,
                    self._properties,
                    route[1],
                    envelope.id,
                    timestamp,
                    envelope.type,
                    body,
                )
            except Exception:
                data = None  # pika's basic_publish says what is wrong
            if data is not None:
                return self._publish_raw(route[0], routing_key, body, None, data)
        # Filled in anew for each publish: pika encodes them before
        # basic_publish returns, and keeps nothing of them.
        properties = self._properties
        properties.message_id = envelope.id
        properties.timestamp = timestamp
        properties.type = envelope.type
        properties.headers = route[1]
        return self._publish_raw(route[0], routing_key, body, properties)

    def consume(self, queue: str, handler: Handler, concurrency: int = 1) -> Deferred[IConsumer]:
        """
        Register a consumer of ``queue``. It starts at once when connected,
        otherwise on the next connection, and is resumed after every reconnection.
        At most ``concurrency`` handlers run at once (and at most ``prefetch``).
        """
        if concurrency < 1:
            return fail(ValueError("concurrency must be at least 1"))
        try:
            self.topology.queue(queue)
        except ValueError as e:
            return fail(e)
        if queue in self._consumers:
            return fail(BusError(f"queue {queue!r} already has a consumer"))
        consumer = _Consumer(self, queue, handler, concurrency)
        self._consumers[queue] = consumer
        proto = self._consuming.protocol
        if proto is None or not self.running:
            return succeed(cast(IConsumer, consumer))

        def started(_: object) -> IConsumer:
            return cast(IConsumer, consumer)

        return self._start_consumer(consumer, proto).addCallback(started)

    def dead_letters(self, queue: str) -> Deferred[list[DeadLetter]]:
        """
        The dead letters of ``queue``, oldest first.

        Read with ``basic.get`` (no auto-ack) on a channel of its own until the
        queue is empty, then the channel is closed, which puts every message
        back at its place (classic queue). While a read is in progress another
        reader (e.g. ``ocppctl`` next to the daemon) sees the queue partly
        empty; reads within this bus are serialised.
        """
        return self._with_dead_letters(queue, None, replay=False)

    def replay_dead_letters(
        self, queue: str, ids: list[str] | None = None, wait: float = 0.0
    ) -> Deferred[Replay]:
        """
        Republish dead letters (all, or those whose envelope id is in ``ids``)
        to the work queue at attempt 1, with their message and envelope ids.

        At most as many letters as the dead-letter queue held when the replay
        started are taken (a letter that fails again at once comes back
        behind them and is not replayed again). Each letter is republished and
        acknowledged in one AMQP transaction (``tx.select``): a replay killed
        at any point leaves each letter either still dead or on the work
        queue, never both. After ``wait`` more seconds, the dead letters are
        read again to report which replayed letters failed again.
        """
        if not self._accepting:
            return fail(BusError("the bus is stopped"))
        return self._replay(queue, ids, wait)

    @inlineCallbacks
    def _replay(
        self, queue: str, ids: list[str] | None, wait: float
    ) -> Generator[Deferred[Any], Any, Replay]:
        letters = yield self._with_dead_letters(queue, ids, replay=True)
        if wait > 0:
            yield deferLater(self._reactor, wait, lambda: None)
        dead_now = yield self.dead_letters(queue)
        return replay_outcome([letter.id for letter in letters], dead_now)

    # --- Beyond IBus ----------------------------------------------------------

    def oldest_unprocessed(self) -> dict[str, str | None]:
        """
        Per consumed queue, the publication time (ISO-8601) of the oldest
        message its handler holds and has not settled (None when it holds
        none). RabbitMQ hands over the queue's head first, up to the prefetch,
        so while a backlog waits this is its oldest message.
        """
        return {
            name: min(consumer.working.values(), default=None)
            for name, consumer in self._consumers.items()
        }

    def when_connected(self, failAfterFailures: int | None = None) -> Deferred[None]:
        """Fires once connected with the topology declared and consumers resumed."""
        both = [
            link.client.whenConnected(failAfterFailures=failAfterFailures)
            for link in (self._publishing, self._consuming)
            if link.client is not None
        ]
        d: Deferred[Any] = gatherResults(both, consumeErrors=True)

        def first_error(failure: Failure) -> Failure:
            error = failure.value
            return error.subFailure if isinstance(error, FirstError) else failure

        d.addErrback(first_error)
        return d.addCallback(lambda _: None)

    @property
    def connected(self) -> bool:
        """Whether both connections are up (the publishing one with its channel)."""
        return self._publish_channel is not None and self._consuming.protocol is not None

    @property
    def blocked(self) -> str | None:
        """Why RabbitMQ blocks publishing now (``connection.blocked``), or None."""
        return self._blocked

    def broker_queue_names(self) -> list[str]:
        """Every queue this bus declares on the broker (work, retry, dead-letter)."""
        names: list[str] = []
        for spec in self.topology.queues:
            names.append(self.topology.queue_full_name(spec.name))
            if spec.ephemeral:
                continue
            names.extend(
                self.topology.retry_queue_full_name(spec.name, delay)
                for delay in self._used_delays()
            )
            names.append(self.topology.dead_letter_queue_full_name(spec.name))
        return names

    @inlineCallbacks
    def delete_topology(self) -> Generator[Deferred[Any], Any, None]:
        """
        Delete every queue and exchange of the topology from the broker,
        messages included. For tests and for decommissioning a deployment;
        never called by the daemon.
        """
        if self._protocol is None:
            yield self.when_connected()
        channel = yield maybeDeferred(self._protocol.channel)
        try:
            for name in self.broker_queue_names():
                yield channel.queue_delete(queue=name)
            for exchange in self.topology.exchanges:
                yield channel.exchange_delete(exchange=exchange.name)
        finally:
            yield self._close_channel(channel)

    # --- Service ------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._accepting = True
        self.log.info(
            "Starting the RabbitMQ bus ({where}, connection {name})",
            where=self._where,
            name=self._connection_name,
            state="starting",
        )
        for link in (self._publishing, self._consuming):
            assert link.client is not None
            link.client.startService()

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        """
        Refuse new publishes; let in-flight handlers finish and ack (up to
        ``drain_timeout``); wait for outstanding publisher confirms; close the
        consumer channels (RabbitMQ requeues what was prefetched but not
        handled), then the connection, cleanly. Messages still in queues stay
        on the broker for the next start. Consumers stay registered and resume
        on ``startService``.
        """
        super().stopService()
        self._accepting = False
        self._repeats.flush()
        self.log.info("Stopping the RabbitMQ bus", state="stopping")
        detaching = [self._detach(consumer) for consumer in list(self._consumers.values())]
        pending = [waiter for waiter in self._confirms.waiting.values() if not waiter.called]
        waiting: Deferred[Any] = DeferredList([*detaching, *pending], consumeErrors=True)
        waiting.addTimeout(self._drain_timeout, self._reactor)
        try:
            yield waiting
        except Exception:
            self.log.warn(
                "RabbitMQ bus stop: handlers or confirms still pending after {timeout}s",
                timeout=self._drain_timeout,
            )
        for link in (self._publishing, self._consuming):
            yield self._close_link(link)
        # Out of the connectionLost call stack: ClientService's state machine
        # refuses to be re-entered.
        yield deferLater(self._reactor, 0, lambda: None)
        for link in (self._publishing, self._consuming):
            assert link.client is not None
            yield link.client.stopService()
        self._repeats.flush()
        self.log.info("RabbitMQ bus stopped", state="stopped")

    @inlineCallbacks
    def _close_link(self, link: _Link) -> Generator[Deferred[Any], Any, None]:
        """
        A clean AMQP close (Connection.Close / Close-Ok) of ``link``, then wait
        for the TCP connection to end (bounded).
        """
        proto = link.protocol
        if proto is None or not proto.is_open:
            return
        lost: Deferred[None] = Deferred()
        link.lost_waiters.append(lost)
        try:
            proto.close()
            lost.addTimeout(5, self._reactor)
            yield lost
        except Exception:
            self.log.failure("Closing the RabbitMQ {role} connection failed", role=link.role)

    # --- Connection ---------------------------------------------------------

    @inlineCallbacks
    def _prepare(self, link: _Link, proto: Any) -> Generator[Deferred[Any], Any, None]:
        """
        Run by ``link``'s ``ClientService`` on every new connection, before it
        counts as connected: AMQP handshake and every declaration (on both
        connections: either may come up first), then on the publishing one a
        channel in confirm mode, on the consuming one the consumers. A failure
        here drops the connection and ``ClientService`` retries with back-off.
        """
        # ClientService hands us a proxy; keep the protocol itself, which is
        # what reports connectionLost.
        release = hold_loss_notice(proto)
        proto = proto.unwrap()
        channel = None
        confirms = Confirms()
        try:
            yield proto.ready
            setup = yield maybeDeferred(proto.channel)
            yield self._declare(setup)
            yield self._close_channel(setup)
            if link is self._publishing:
                channel = yield open_raw_channel(proto)
                yield call_raw(
                    channel,
                    "confirm_delivery",
                    ack_nack_callback=partial(self._on_confirm, channel, confirms),
                )
        except Exception as e:
            self.log.warn(
                "RabbitMQ {role} connection setup failed: {reason}",
                role=link.role,
                reason=_describe(e),
                state="setup-failed",
            )
            transport = getattr(proto, "transport", None)
            if transport is not None:
                transport.loseConnection()
            raise
        link.protocol = proto
        if channel is not None:
            self._blocked = None
            self._publish_channel = channel
            self._confirms = confirms
            channel.add_on_close_callback(partial(self._publish_channel_closed, proto, confirms))
            impl = proto._impl
            impl.add_on_connection_blocked_callback(lambda _, frame: self._on_blocked(proto, frame))
            impl.add_on_connection_unblocked_callback(lambda _, frame: self._on_unblocked(proto))
        self.log.info(
            "Connected to RabbitMQ at {where} ({role}); topology {prefix} declared",
            where=self._where,
            role=link.role,
            prefix=self.topology.prefix,
            state="connected",
        )
        if link is self._consuming and self.running:
            starting = [
                self._start_consumer(consumer, proto)
                for consumer in list(self._consumers.values())
                if consumer.channel is None and not consumer.starting
            ]
            yield DeferredList(starting, consumeErrors=True)
        release()

    def _on_blocked(self, proto: Any, frame: Any) -> None:
        """
        RabbitMQ blocks our publishing connection (a memory or disk alarm):
        publishes fail at once until it unblocks, and those awaiting a confirm
        fail now (the broker may still take them: as for a lost connection,
        callers retry and consumers deduplicate). Nothing waits on a blocked
        connection, so a consumer whose ack follows its publishes keeps
        acking, and the backlog that raised the alarm drains.
        """
        if proto is not self._publishing.protocol:
            return
        reason = _text(getattr(frame.method, "reason", None)) or "resource alarm"
        self._blocked = reason
        self.log.warn(
            "RabbitMQ blocks publishing ({reason}); publishes are refused until it unblocks",
            reason=reason,
            state="blocked",
        )
        for waiter in list(self._confirms.waiting.values()):
            if not waiter.called:
                waiter.errback(BusError(f"RabbitMQ blocks publishing: {reason}"))

    def _on_unblocked(self, proto: Any) -> None:
        if proto is not self._publishing.protocol or self._blocked is None:
            return
        self._blocked = None
        self.log.info("RabbitMQ unblocked publishing", state="unblocked")

    def _connection_lost(self, link: _Link, proto: Any, reason: Failure) -> None:
        waiters, link.lost_waiters = link.lost_waiters, []
        for waiter in waiters:
            self._reactor.callLater(0, waiter.callback, None)
        if proto is not link.protocol:
            return
        link.protocol = None
        if link is self._publishing:
            self._publish_channel = None
            self._blocked = None
        else:
            for consumer in self._consumers.values():
                consumer.channel = None
                consumer.backlog.clear()
        clean = reason.check(ConnectionDone) is not None and not self.running
        if clean:
            self.log.info("RabbitMQ {role} connection closed", role=link.role, state="closed")
        else:
            self.log.warn(
                "RabbitMQ {role} connection lost: {reason}",
                role=link.role,
                reason=_describe(reason),
                state="lost",
            )

    def _publish_channel_closed(
        self, proto: Any, confirms: Confirms, channel: Any, reason: BaseException
    ) -> None:
        if self._publish_channel is channel:
            self._publish_channel = None
            if proto.is_open:
                # A channel error (e.g. an exchange deleted under us): start over
                # with a fresh connection, which redeclares everything.
                self.log.error(
                    "RabbitMQ publish channel closed ({reason}); reconnecting",
                    reason=_describe(reason),
                    state="channel-closed",
                )
                proto.transport.loseConnection()
        # No confirm will come for what waits: each fails (the broker may
        # still have taken it; the caller retries, consumers deduplicate).
        # After the channel is forgotten, so that a caller publishing again
        # from its errback is told at once that the bus is not connected.
        error = BusError(f"no confirm from RabbitMQ: {_describe(reason)}")
        for waiter in confirms.take_all():
            self.stats.publish_failed += 1
            if not waiter.called:
                waiter.errback(error)

    def _on_confirm(self, channel: Any, confirms: Confirms, frame: Any) -> None:
        """
        The broker's ack or nack (``frame.method``) of one or (``multiple``)
        several publishes on ``channel``: their callers' Deferreds fire, in
        publication order; a nack fails them with ``BusError``.
        """
        method = frame.method
        settled = confirms.answered(method.delivery_tag, method.multiple)
        stats = self.stats
        if isinstance(method, Basic.Nack):
            stats.publish_failed += len(settled)
            for waiter in settled:
                if not waiter.called:
                    waiter.errback(BusError("RabbitMQ refused the message (nack)"))
            return
        stats.publish_confirmed += len(settled)
        for waiter in settled:
            if not waiter.called:
                waiter.callback(None)

    def _queue_arguments(self) -> dict[str, Any] | None:
        return {"x-queue-type": "quorum"} if self._quorum else None

    def _used_delays(self) -> list[float]:
        """The distinct retry delays that ``max_attempts`` can reach, in order."""
        delays: list[float] = []
        for attempt in range(1, self._retry.max_attempts):
            delay = self._retry.delay_after(attempt)
            if delay not in delays:
                delays.append(delay)
        return delays

    @inlineCallbacks
    def _declare(self, channel: Any) -> Generator[Deferred[Any], Any, None]:
        for exchange in self.topology.exchanges:
            yield channel.exchange_declare(
                exchange=exchange.name, exchange_type=exchange.type, durable=True
            )
        for spec in self.topology.queues:
            if spec.ephemeral:
                continue  # declared by its consumer (``_declare_ephemeral``)
            work = self.topology.queue_full_name(spec.name)
            yield channel.queue_declare(
                queue=work, durable=spec.durable, arguments=self._queue_arguments()
            )
            for binding in spec.bindings:
                yield channel.queue_bind(
                    queue=work, exchange=binding.exchange, routing_key=binding.pattern
                )
            for delay in self._used_delays():
                arguments: dict[str, Any] = {
                    "x-message-ttl": round(delay * 1000),
                    "x-dead-letter-exchange": DEFAULT_EXCHANGE,
                    "x-dead-letter-routing-key": work,
                }
                if self._quorum:
                    # Quorum queues dead-letter at most once unless asked.
                    arguments.update(
                        {
                            "x-queue-type": "quorum",
                            "x-dead-letter-strategy": "at-least-once",
                            "x-overflow": "reject-publish",
                        }
                    )
                yield channel.queue_declare(
                    queue=self.topology.retry_queue_full_name(spec.name, delay),
                    durable=True,
                    arguments=arguments,
                )
            yield channel.queue_declare(
                queue=self.topology.dead_letter_queue_full_name(spec.name), durable=True
            )

    @inlineCallbacks
    def _declare_ephemeral(
        self, channel: Any, spec: QueueSpec
    ) -> Generator[Deferred[Any], Any, None]:
        """
        Declare and bind an ephemeral queue (a node's notifier) just before
        consuming it, on every (re)start of its consumer: it exists only
        while consumed. Auto-delete, it is gone with its last consumer (a
        cancel, or the connection's loss), and from then on the broker routes
        nothing to it; while it exists, a backlog never blocks publishers:
        the oldest message gives way. Not durable, so no broker restart or
        ocppd upgrade finds an old declaration to conflict with.
        """
        work = self.topology.queue_full_name(spec.name)
        yield call_raw(
            channel,
            "queue_declare",
            queue=work,
            durable=False,
            auto_delete=True,
            arguments={"x-max-length": EPHEMERAL_MAX_LENGTH, "x-overflow": "drop-head"},
        )
        for binding in spec.bindings:
            yield call_raw(
                channel,
                "queue_bind",
                queue=work,
                exchange=binding.exchange,
                routing_key=binding.pattern,
            )

    def _close_channel(self, channel: Any) -> Deferred[None]:
        return close_channel(channel, self._reactor)

    def _close_raw_channel(self, channel: Any) -> Deferred[None]:
        return close_raw_channel(channel, self._reactor)

    # --- Publishing ---------------------------------------------------------

    def _publish_raw(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        properties: Any,
        frames: bytes | None = None,
    ) -> Any:
        """
        Publish on the publish channel (``frames``: as ``_PublishFrames``
        made them, written as they are); what its caller waits on.
        """
        channel = self._publish_channel
        stats = self.stats
        if channel is None:
            stats.publish_failed += 1
            return fail(BusError(f"not connected to RabbitMQ at {self._where}"))
        if self._blocked is not None:
            stats.publish_failed += 1
            return fail(BusError(f"RabbitMQ blocks publishing: {self._blocked}"))
        try:
            if frames is None:
                channel.basic_publish(
                    exchange=exchange, routing_key=routing_key, body=body, properties=properties
                )
            else:
                self._frames.send(frames)  # type: ignore[union-attr]
        except Exception as e:
            stats.publish_failed += 1
            return fail(BusError(f"publish failed: {_describe(e)}"))
        # What the caller waits on: the confirm (``_on_confirm``), unless a
        # block or the channel's loss fails it first.
        return self._confirms.add()

    # --- Consuming ----------------------------------------------------------

    @inlineCallbacks
    def _start_consumer(
        self, consumer: _Consumer, proto: Any
    ) -> Generator[Deferred[Any], Any, None]:
        consumer.starting = True
        channel = None
        try:
            channel = yield open_raw_channel(proto)
            spec = self.topology.queue(consumer.queue)
            if spec.ephemeral:
                yield self._declare_ephemeral(channel, spec)
            yield call_raw(channel, "basic_qos", prefetch_count=self._prefetch)
            consume_ok = yield call_raw(
                channel,
                "basic_consume",
                queue=self.topology.queue_full_name(consumer.queue),
                on_message_callback=partial(self._on_delivery, consumer, channel),
            )
        except Exception as e:
            self.log.error(
                "Could not start consuming {queue}: {reason}",
                queue=consumer.queue,
                reason=_describe(e),
            )
            if channel is not None:
                yield self._close_raw_channel(channel)
            return
        finally:
            consumer.starting = False
        # RabbitMQ sends the consume-ok before any delivery, and this runs
        # when pika reads it: no delivery came before ``consumer.channel`` is set.
        if (
            self._consumers.get(consumer.queue) is not consumer
            or proto is not self._consuming.protocol
        ):
            # Stopped (or the connection changed) while we were starting.
            yield self._close_raw_channel(channel)
            return
        consumer.channel = channel
        consumer.acks = _Acks(channel)
        consumer.backlog.clear()
        self.log.debug(
            "Consuming {queue} (tag {tag})",
            queue=consumer.queue,
            tag=consume_ok.method.consumer_tag,
        )

    def _on_delivery(
        self,
        consumer: _Consumer,
        channel: Any,
        _channel: Any,
        method: Any,
        properties: Any,
        body: bytes,
    ) -> None:
        """
        pika's ``on_message_callback`` for ``consumer`` on ``channel``: the
        delivery is handled at once if fewer than ``consumer.concurrency``
        are, otherwise when one finishes, in delivery order.
        """
        if consumer.channel is not channel:
            return  # stopped meanwhile: left unacked, requeued when the channel closes
        if consumer.backlog or consumer.active >= consumer.concurrency:
            consumer.backlog.append((channel, method, properties, body))
            return
        self._take(consumer, channel, method, properties, body)

    def _take(
        self, consumer: _Consumer, channel: Any, method: Any, properties: Any, body: bytes
    ) -> None:
        acks = consumer.acks
        if acks is not None and acks.channel is channel:
            acks.unsettled.add(method.delivery_tag)
        consumer.active += 1
        try:
            self._handle(consumer, channel, method, properties, body)
        except Exception:
            self.log.failure("AmqpBus handling on {queue}", queue=consumer.queue)
            self._finished(consumer)

    def _finished(self, consumer: _Consumer) -> None:
        """A handling (and its ack, retry or dead letter) is over: the next may start."""
        consumer.active -= 1
        if consumer.backlog and not consumer.taking:
            # A loop, not recursion: handlers that finish at once (the
            # notifier's) would otherwise nest one call per waiting delivery.
            consumer.taking = True
            try:
                backlog = consumer.backlog
                while backlog and consumer.active < consumer.concurrency:
                    channel, method, properties, body = backlog.popleft()
                    if consumer.channel is channel:
                        self._take(consumer, channel, method, properties, body)
            finally:
                consumer.taking = False
        if consumer.active == 0:
            waiters, consumer.idle_waiters = consumer.idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def _handle(
        self, consumer: _Consumer, channel: Any, method: Any, properties: Any, body: bytes
    ) -> None:
        """
        Hand one delivery to the handler; ``_finished`` once it is settled.

        Callbacks rather than a generator, and the handler's Deferred (if it
        returns one) the only one made per message: under load the processor
        and the notifier each take every message this way.
        """
        headers = properties.headers or {}
        routing_key = _text(headers.get(H_ROUTING_KEY)) or method.routing_key
        attempt = int(headers.get(H_ATTEMPT) or 1)
        try:
            envelope = Envelope.from_bytes(body)
        except EnvelopeError as e:
            # Nothing a retry can fix: straight to the dead letters.
            self.log.error(
                "Malformed message on {queue}: {reason}", queue=consumer.queue, reason=str(e)
            )
            message = _Message(method, properties, body)
            reason = f"EnvelopeError: {e}"
            self._after(
                consumer,
                self._reroute(consumer, channel, message, routing_key, attempt, reason, dead=True),
            )
            return
        delivery = Delivery(
            envelope=envelope, routing_key=routing_key, queue=consumer.queue, attempt=attempt
        )
        working = consumer.working
        key = id(delivery)
        working[key] = envelope.time
        try:
            result = consumer.handler(delivery)
        except Exception:
            working.pop(key, None)
            self._handler_failed(
                Failure(),
                consumer,
                channel,
                _Message(method, properties, body),
                routing_key,
                attempt,
                envelope.id,
            )
            return
        if isinstance(result, _UNUSUAL_RESULTS):
            result = maybeDeferred(lambda: result)
        if isinstance(result, Deferred):
            result.addCallbacks(
                self._handler_done,
                self._handler_failed_later,
                callbackArgs=(consumer, channel, method.delivery_tag, key),
                errbackArgs=(
                    consumer,
                    channel,
                    method,
                    properties,
                    body,
                    routing_key,
                    attempt,
                    envelope.id,
                    key,
                ),
            ).addErrback(
                lambda f: self.log.failure("AmqpBus handling on {queue}", f, queue=consumer.queue)
            )
            return
        working.pop(key, None)
        self._ack(consumer, channel, method.delivery_tag)
        self._finished(consumer)

    def _handler_done(
        self, _: object, consumer: _Consumer, channel: Any, tag: int, key: int
    ) -> None:
        consumer.working.pop(key, None)
        try:
            self._ack(consumer, channel, tag)
        finally:
            self._finished(consumer)

    def _handler_failed_later(
        self,
        failure: Failure,
        consumer: _Consumer,
        channel: Any,
        method: Any,
        properties: Any,
        body: bytes,
        routing_key: str,
        attempt: int,
        envelope_id: str,
        key: int,
    ) -> None:
        consumer.working.pop(key, None)
        message = _Message(method, properties, body)
        self._handler_failed(failure, consumer, channel, message, routing_key, attempt, envelope_id)

    def _handler_failed(
        self,
        failure: Failure,
        consumer: _Consumer,
        channel: Any,
        message: _Message,
        routing_key: str,
        attempt: int,
        envelope_id: str | None,
    ) -> None:
        """The handler raised (or its Deferred failed): retry, dead letter, or drop."""
        if self.topology.queue(consumer.queue).ephemeral:
            try:
                self._drop(consumer, channel, message, routing_key, failure)
            finally:
                self._finished(consumer)
            return
        self._repeats.failure(
            (consumer.queue, failure.type),
            "Handler for {queue} failed on {routing_key} message {message_id} "
            "(attempt {attempt} of {max_attempts})",
            failure,
            queue=consumer.queue,
            routing_key=routing_key,
            message_id=envelope_id,
            attempt=attempt,
            max_attempts=self._retry.max_attempts,
        )
        kind = getattr(failure.type, "__name__", "Error")
        reason = f"{kind}: {failure.getErrorMessage()}"
        self._after(
            consumer, self._reroute(consumer, channel, message, routing_key, attempt, reason)
        )

    def _after(self, consumer: _Consumer, settling: Deferred[Any]) -> None:
        """``_finished`` once ``settling`` (a retry or dead letter's move) is done."""

        def finished(result: object) -> object:
            self._finished(consumer)
            return result

        settling.addBoth(finished).addErrback(
            lambda f: self.log.failure("AmqpBus handling on {queue}", f, queue=consumer.queue)
        )

    def _drop(
        self, consumer: _Consumer, channel: Any, message: Any, routing_key: str, failure: Failure
    ) -> None:
        """
        An ephemeral queue (pushes) has no retry or dead-letter queues, and a
        push is worthless later: the failed message is acked, counted and
        logged (rate-limited), not sent to queues that do not exist.
        """
        self.stats.count(self.dropped, consumer.queue)
        self._repeats.failure(
            (consumer.queue, "dropped", failure.type),
            "Handler for ephemeral queue {queue} failed on {routing_key} message "
            "{message_id}; dropped ({dropped} so far)",
            failure,
            queue=consumer.queue,
            routing_key=routing_key,
            message_id=message.properties.message_id,
            dropped=self.dropped[consumer.queue],
        )
        self._ack(consumer, channel, message.method.delivery_tag)

    def _ack(self, consumer: _Consumer, channel: Any, tag: int) -> None:
        """Ack ``tag`` with the others of this reactor turn (``_Acks``)."""
        acks = consumer.acks
        if acks is None or acks.channel is not channel or consumer.channel is not channel:
            # A stopping consumer, or a channel gone: at once, as it is.
            self._send_ack(consumer, channel, tag, False)
            return
        acks.ready.append(tag)
        if acks.call is None:
            acks.call = self._reactor.callLater(0, self._flush_acks, consumer, acks)

    def _flush_acks(self, consumer: _Consumer, acks: _Acks) -> None:
        if acks.call is not None and acks.call.active():
            acks.call.cancel()
        for tag, multiple in acks.take():
            self._send_ack(consumer, acks.channel, tag, multiple)

    def _unsettled(self, consumer: _Consumer, channel: Any, tag: int) -> None:
        """``tag`` goes back to the broker unacked (a nack): no longer ours to settle."""
        if consumer.acks is not None and consumer.acks.channel is channel:
            consumer.acks.unsettled.discard(tag)

    def _send_ack(self, consumer: _Consumer, channel: Any, tag: int, multiple: bool) -> None:
        try:
            channel.basic_ack(delivery_tag=tag, multiple=multiple)
        except Exception as e:
            # The channel is gone (connection lost): RabbitMQ redelivers the
            # message, which idempotent consumers absorb.
            self._repeats.warn(
                (consumer.queue, "ack"),
                "Could not ack a message of {queue} ({reason}); it will be redelivered",
                queue=consumer.queue,
                reason=_describe(e),
            )

    @inlineCallbacks
    def _reroute(
        self,
        consumer: _Consumer,
        channel: Any,
        message: Any,
        routing_key: str,
        attempt: int,
        reason: str,
        *,
        dead: bool = False,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        Publish a failed message to its retry or dead-letter queue (``dead``:
        straight there, whatever the attempt), THEN ack it.
        """
        headers = dict(message.properties.headers or {})
        headers[H_ROUTING_KEY] = routing_key
        headers[H_REASON] = reason[:1000]
        headers.pop("x-death", None)
        message_id = message.properties.message_id
        dead = dead or attempt >= self._retry.max_attempts
        if dead:
            target = self.topology.dead_letter_queue_full_name(consumer.queue)
            headers[H_ATTEMPTS] = attempt
            headers[H_FAILED_AT] = format_iso(from_timestamp(self._reactor.seconds()))
            headers.pop(H_ATTEMPT, None)
            delay = self._retry.delays[-1]
        else:
            delay = self._retry.delay_after(attempt)
            target = self.topology.retry_queue_full_name(consumer.queue, delay)
            headers[H_ATTEMPT] = attempt + 1
        properties = pika.BasicProperties(
            delivery_mode=2,
            message_id=message_id,
            content_type=message.properties.content_type,
            timestamp=message.properties.timestamp,
            type=message.properties.type,
            headers=headers,
        )
        try:
            yield self._publish_raw(DEFAULT_EXCHANGE, target, message.body, properties)
        except BusError as e:
            # Not acked: back to the queue after a pause (no hot loop), or
            # redelivered anyway when the channel is gone.
            self._repeats.warn(
                (consumer.queue, "reroute"),
                "Could not move message {message_id} of {queue} to {target} ({reason}); "
                "requeueing it",
                message_id=message_id,
                queue=consumer.queue,
                target=target,
                reason=str(e),
            )
            yield deferLater(self._reactor, delay, lambda: None)
            self._unsettled(consumer, channel, message.method.delivery_tag)
            try:
                channel.basic_nack(delivery_tag=message.method.delivery_tag, requeue=True)
            except Exception:
                pass
            return
        self.stats.count(self.stats.dead_lettered if dead else self.stats.retried, consumer.queue)
        if dead:
            self.log.error(
                "Dead-lettered {routing_key} message {message_id} of {queue} after "
                "{attempts} attempts: {reason}",
                routing_key=routing_key,
                message_id=message_id,
                queue=consumer.queue,
                attempts=attempt,
                reason=reason,
            )
        self._ack(consumer, channel, message.method.delivery_tag)

    def _stop_consumer(self, consumer: _Consumer) -> Deferred[None]:
        if self._consumers.get(consumer.queue) is consumer:
            del self._consumers[consumer.queue]
            self.log.debug("Stopped consuming {queue}", queue=consumer.queue)
        return self._detach(consumer)

    @inlineCallbacks
    def _detach(self, consumer: _Consumer) -> Generator[Deferred[Any], Any, None]:
        """Stop deliveries to ``consumer``, wait for its handler, close its channel."""
        channel, consumer.channel = consumer.channel, None
        # Left unacked: requeued when the channel closes.
        consumer.backlog.clear()
        if channel is not None and channel.is_open:
            for tag in list(channel.consumer_tags):
                try:
                    yield call_raw(channel, "basic_cancel", consumer_tag=tag)
                except Exception:
                    pass
        if consumer.active:
            waiter: Deferred[None] = Deferred()
            consumer.idle_waiters.append(waiter)
            yield waiter
        acks, consumer.acks = consumer.acks, None
        if acks is not None and acks.ready:
            # Acks of the last turn, before the channel closes (which would requeue them).
            self._flush_acks(consumer, acks)
        if channel is not None:
            yield self._close_raw_channel(channel)

    # --- Dead letters -------------------------------------------------------

    def _with_dead_letters(
        self, queue: str, ids: list[str] | None, *, replay: bool
    ) -> Deferred[list[DeadLetter]]:
        try:
            spec = self.topology.queue(queue)
        except ValueError as e:
            return fail(e)
        if spec.ephemeral:
            return succeed([])  # no dead-letter queue: failed pushes are dropped
        if (self._protocol if replay else self._consuming.protocol) is None:
            return fail(BusError(f"not connected to RabbitMQ at {self._where}"))
        return self._admin_lock.run(self._read_dead_letters, queue, ids, replay)

    @inlineCallbacks
    def _read_dead_letters(
        self, queue: str, ids: list[str] | None, replay: bool
    ) -> Generator[Deferred[Any], Any, list[DeadLetter]]:
        proto = self._admin_protocol(replay)
        dead_queue = self.topology.dead_letter_queue_full_name(queue)
        work_queue = self.topology.queue_full_name(queue)
        wanted = None if ids is None else set(ids)
        try:
            channel = yield maybeDeferred(proto.channel)
        except Exception as e:
            raise BusError(f"no channel to RabbitMQ: {_describe(e)}") from e
        letters: list[DeadLetter] = []
        try:
            # Bounded by what the queue holds now: letters dead-lettered
            # meanwhile (replayed ones failing again, say) are not taken.
            declared = yield channel.queue_declare(queue=dead_queue, passive=True)
            count = declared.method.message_count
            if replay:
                yield channel.tx_select()
            for _ in range(count):
                message = yield channel.basic_get(queue=dead_queue, auto_ack=False)
                if message is None:
                    break
                letter = self._dead_letter(queue, message)
                if not replay:
                    letters.append(letter)
                    continue
                if wanted is not None and letter.id not in wanted:
                    continue
                properties = pika.BasicProperties(
                    delivery_mode=2,
                    message_id=message.properties.message_id,
                    content_type=message.properties.content_type,
                    timestamp=message.properties.timestamp,
                    type=message.properties.type,
                    headers={H_ROUTING_KEY: letter.routing_key},
                )
                # Publish and ack take effect together at the commit, or not at all.
                channel.basic_publish(
                    exchange=DEFAULT_EXCHANGE,
                    routing_key=work_queue,
                    body=message.body,
                    properties=properties,
                )
                channel.basic_ack(delivery_tag=message.method.delivery_tag)
                yield self._commit_replay(channel)
                letters.append(letter)
        finally:
            # Closing the channel requeues every message we did not ack, in
            # place, and discards an uncommitted transaction.
            yield self._close_channel(channel)
        if replay and letters:
            self.log.info(
                "Replayed {count} dead letter(s) of {queue}", count=len(letters), queue=queue
            )
        return letters

    def _commit_replay(self, channel: Any) -> Deferred[Any]:
        """Commit one replayed letter's publish and ack (a seam for the kill test)."""
        return cast(Deferred[Any], channel.tx_commit())

    def _admin_protocol(self, replay: bool) -> Any:
        """
        A replay publishes, so it runs on the publishing connection; a listing
        only reads, on the consuming one, which a resource alarm never blocks.
        """
        proto = self._protocol if replay else self._consuming.protocol
        if proto is None:
            raise BusError(f"not connected to RabbitMQ at {self._where}")
        return proto

    def _dead_letter(self, queue: str, message: Any) -> DeadLetter:
        properties = message.properties
        headers = properties.headers or {}
        routing_key = _text(headers.get(H_ROUTING_KEY)) or ""
        failed_at = _text(headers.get(H_FAILED_AT)) or format_iso(
            from_timestamp(properties.timestamp or 0)
        )
        try:
            envelope = Envelope.from_bytes(message.body)
        except EnvelopeError:
            # Keep a malformed message visible (and replayable) rather than
            # failing the whole listing.
            envelope = Envelope(
                id=properties.message_id or "",
                type=routing_key,
                time=failed_at,
                node="",
                charge_point_id=None,
                payload={"raw": message.body[:2048].decode("utf-8", "replace")},
            )
        return DeadLetter(
            id=envelope.id or (properties.message_id or ""),
            queue=queue,
            routing_key=routing_key,
            envelope=envelope,
            attempts=int(headers.get(H_ATTEMPTS) or 0),
            reason=_text(headers.get(H_REASON)) or "",
            failed_at=failed_at,
        )


def _text(value: Any) -> str | None:
    """A header value as text (pika may give bytes for long strings)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


__all__ = ["AmqpBus"]
