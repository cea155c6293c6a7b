"""
The embedded bus: an in-process implementation of ``IBus``.

It gives a single-node ocppd the same delivery semantics as RabbitMQ with the
ocppd topology (see ``tests/bus/contract.py``), without a broker:

- ``publish`` routes with the topology and fires once the message sits in every
  bound queue. The envelope is encoded once, at publish: the journal keeps
  those bytes, and a payload that is not JSON fails there as it would with
  AMQP. Consumers are handed the published ``Envelope`` itself, not a copy
  decoded from the bytes (what a broker must do; here it cost as much as the
  rest of a delivery): an envelope and its payload are read-only once
  published (``IBus.publish``). Only a message restored from the journal is
  decoded.
- An ephemeral queue's consumer may say when it wants messages at all
  (``consume(wanted=...)``: the notifier, while a browser on the node
  subscribes): while it does not, ``publish`` passes the queue by, as RabbitMQ
  routes nothing to a notifier queue that nobody consumes. A message that no
  queue would take at all is settled by ``pass_by`` without its envelope
  (``EventPublisher.announce``: the processor's ``session.updated``).
- Each queue delivers to at most one handler at a time, in queue order;
  deliveries always go through ``reactor.callLater(0, ...)``, never from inside
  ``publish``, so a publisher is never re-entered by a consumer.
- A failed handler's message is redelivered after the next back-off delay. As
  with RabbitMQ retry queues (a message waiting for its retry lives in another
  queue), a waiting retry does not block the queue: later messages are
  delivered meanwhile and the retried message rejoins at the tail. After
  ``max_attempts`` failures the message becomes a dead letter.
- Queues are bounded: ``max_queue_length`` counts every message a queue holds
  (ready, in flight, waiting for a retry and dead letters, since all of them
  take memory). When a queue is full, ``publish`` fails with ``BusError`` and
  nothing is dropped: the publisher (for OCPP: the charger) retries later.
- Flow control: a publish that asks for it (``publish(flow=True)``: the
  chargers' messages whose answer waits for the bus, ``TrafficPublisher``)
  fires, after its journal write, only once no durable queue it was routed to
  has more than ``flow_limit`` messages ready (not yet handed to the queue's
  consumer; what a consumer holds does not count), and after every flowed
  publish before it: a charger waits for its answer before its next call, so
  chargers slow down to what the consumers take instead of filling the queue
  up to ``max_queue_length``. The message is in its queues meanwhile; a
  publisher that stops waiting (the answer's timeout cancels it) loses
  nothing. A queue without a consumer, or a bus that does not deliver (a
  stop), holds nobody back. Publishes without ``flow`` (consumers' own,
  which could otherwise wait for their own queue) never wait.
- ``stopService`` refuses new publishes and drains what consumers can still
  take, so a clean shutdown loses nothing it accepted, within ``drain_timeout``.

- Durability comes from a ``Journal`` (``ocppd.bus.journal``): a message for a
  durable queue is written to it before ``publish`` fires (group-committed),
  leaves it once every such queue has acknowledged it, and is marked there
  while it is a dead letter. At the first ``startService`` the bus loads what
  is left and delivers it again, in publication order, before anything new:
  a crash loses nothing ``publish`` confirmed (consumers dedup on the envelope
  id, so the redelivery of a message settled just before the crash is
  harmless). Ephemeral queues (pushes) are not journaled. The daemon journals
  to its store (``ocppd.store.journal``); the default, ``InMemoryJournal``,
  keeps nothing beyond the process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol, cast

import attrs
from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.python.failure import Failure
from zope.interface import implementer

from ocppd import jsoncodec
from ocppd.bus.envelope import Envelope, new_id
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
from ocppd.bus.journal import (
    DeadMark,
    GroupCommit,
    InMemoryJournal,
    Journal,
    JournalRecord,
    JournalSettler,
    SettlingJournal,
)
from ocppd.bus.outcome import Sink
from ocppd.bus.retry import RetryPolicy
from ocppd.bus.stats import BusStats
from ocppd.bus.topology import EPHEMERAL_MAX_LENGTH, QueueSpec, Topology
from ocppd.logs import Logger
from ocppd.ratelog import RepeatLog
from ocppd.timeutil import format_iso, from_timestamp

#: Routing keys whose queues ``MemoryBus`` remembers (a node publishes a few dozen).
_ROUTES_KEPT = 1024


class _DelayedCall(Protocol):
    def active(self) -> bool: ...
    def cancel(self) -> None: ...


class _Clock(Protocol):
    """
    The part of ``IReactorTime`` used here. Spelled as a Protocol because
    mypy, without the mypy-zope plugin, misreads calls through zope interface
    types (it takes their first parameter for ``self``).
    """

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> _DelayedCall: ...


@attrs.define
class _Message:
    """
    A message in a queue: the envelope, serialised and as published, and its delivery count.

    Never changed once made (a retry is a new one, ``attrs.evolve``), but not
    frozen: attrs' frozen ``__init__`` sets each field through
    ``object.__setattr__``, twice the cost of a plain one, and a publish makes
    one per queue it reaches (equality is the same; nothing hashes it).
    """

    id: str
    routing_key: str
    body: bytes
    #: The attempt its next delivery will be (1 for a fresh message).
    attempt: int = 1
    #: Its journal record for this queue (None in an ephemeral queue).
    seq: int | None = None
    #: The published envelope, delivered as it is; None when restored from
    #: the journal (then decoded from ``body``).
    published: Envelope | None = attrs.field(default=None, eq=False)

    def envelope(self) -> Envelope:
        if self.published is not None:
            return self.published
        return Envelope.from_bytes(self.body)


def _published_at(message: _Message) -> str | None:
    """When ``message`` was published, as its envelope says; None if it cannot be read."""
    try:
        return message.envelope().time
    except ValueError:
        return None


class _Delivering:
    """``_Queue.scheduled`` while ``_deliver`` hands out a turn's messages."""

    def active(self) -> bool:
        return True

    def cancel(self) -> None:
        # A consumer stopped, or a drain ended, during the turn: the turn's
        # loop sees it and stops.
        pass


_DELIVERING = _Delivering()

#: ``Settlement._result`` before an outcome, and once it was handed on.
_NOTHING = object()
_SETTLED = object()


class Settlement:
    """
    What a handler of the embedded bus may return in place of a Deferred:
    its delivery's outcome to come, given once with ``callback`` (the
    handler succeeded) or ``errback`` (a ``Failure``: it failed). The bus
    binds its bookkeeping to it at once; what it saves is a Deferred per
    delivery (its callback list and its firing), which the processor's every
    message paid for (``BusConsumer`` hands the embedded bus these).
    """

    __slots__ = ("_args", "_result", "_then")

    def __init__(self) -> None:
        self._then: Callable[..., None] | None = None
        self._args: tuple[Any, ...] = ()
        #: The outcome, while given before ``bind`` (``_NOTHING``: none yet).
        self._result: object = _NOTHING

    def bind(self, then: Callable[..., None], *args: Any) -> None:
        """Call ``then(outcome, *args)`` once the outcome is given (now, if it was)."""
        if self._then is not None:
            raise RuntimeError("a Settlement is bound once")
        self._then, self._args = then, args
        if self._result is not _NOTHING:
            result, self._result = self._result, _SETTLED
            then(result, *args)

    def callback(self, result: object) -> None:
        """The handler succeeded, with ``result``."""
        if self._result is not _NOTHING:
            raise RuntimeError("a Settlement is settled once")
        then = self._then
        if then is None:
            self._result = result
            return
        self._result = _SETTLED
        then(result, *self._args)

    def errback(self, failure: Failure) -> None:
        """The handler failed."""
        self.callback(failure)


@implementer(IConsumer)
class _Consumer:
    def __init__(
        self,
        bus: MemoryBus,
        queue: str,
        handler: Handler,
        concurrency: int = 1,
        settled_by_handler: bool = False,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        #: Whether a handler's success means its journal record is gone already.
        self.settled_by_handler = settled_by_handler
        #: Whether the consumer wants what is published now (None: always).
        self.wanted = wanted
        self._bus = bus

    def stop(self) -> Deferred[None]:
        return self._bus._stop_consumer(self)

    def __repr__(self) -> str:
        return f"<MemoryBus consumer of {self.queue!r}>"


class _Queue:
    """The state of one queue."""

    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.ready: deque[_Message] = deque()
        #: Messages waiting for their retry, with the call that requeues them.
        self.retrying: dict[_DelayedCall, _Message] = {}
        #: Dead letters, with the seq of their journal record (if any).
        self.dead: list[tuple[DeadLetter, int | None]] = []
        #: Messages published but not yet durable in the journal.
        self.pending = 0
        self.consumer: _Consumer | None = None
        #: Messages whose handler runs now (up to the consumer's concurrency).
        self.in_flight: list[_Message] = []
        #: Fired when no handler is in flight any more (for IConsumer.stop).
        self.idle_waiters: list[Deferred[None]] = []
        #: The pending callLater(0) that will deliver the next message.
        self.scheduled: _DelayedCall | None = None
        #: Its consumer's ``wanted`` (an ephemeral queue's), while it has one.
        self.wanted: Callable[[], bool] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def length(self) -> int:
        return (
            len(self.ready)
            + len(self.retrying)
            + len(self.dead)
            + len(self.in_flight)
            + self.pending
        )

    def busy(self) -> bool:
        """Whether its consumer still has work that a drain waits for."""
        # A message being journaled joins `ready` once written.
        return bool(self.in_flight) or (
            self.consumer is not None and bool(self.ready or self.pending)
        )

    def has_room(self) -> bool:
        """Whether its consumer may take one more message now."""
        return self.consumer is not None and len(self.in_flight) < self.consumer.concurrency


@implementer(IBus)
class MemoryBus(Service):
    """
    The embedded, in-process bus (see the module docstring for its semantics).

    ``retry_delays[n]`` is the delay in seconds before attempt ``n + 2``; the
    last delay repeats when ``max_attempts`` asks for more retries than there
    are delays.
    """

    log = Logger()

    def __init__(
        self,
        topology: Topology,
        *,
        reactor: IReactorTime,
        retry_delays: Sequence[float] = (1, 5, 30, 120),
        max_attempts: int = 5,
        max_queue_length: int = 100_000,
        drain_timeout: float = 10.0,
        journal: Journal | None = None,
        flow_limit: int = 5_000,
    ) -> None:
        """
        ``journal`` keeps what the bus accepted (see the module docstring);
        without one, an ``InMemoryJournal``: nothing survives the process.
        ``flow_limit``: the ready messages of a durable queue above which
        flowed publishes wait (0: they never do; see the module docstring).
        """
        self._retry = RetryPolicy.of(retry_delays, max_attempts)
        if max_queue_length < 1:
            raise ValueError("max_queue_length must be at least 1")
        if flow_limit < 0:
            raise ValueError("flow_limit must not be negative")
        self._flow_limit = flow_limit
        #: Flowed publishes waiting (``_flow_wait``), in publication order: the
        #: durable queues each was routed to, and what fires for it.
        self._flow_waiters: deque[tuple[list[_Queue], Sink]] = deque()
        self.topology = topology
        self._reactor = cast(_Clock, reactor)
        self._max_queue_length = max_queue_length
        self._ephemeral_limit = min(max_queue_length, EPHEMERAL_MAX_LENGTH)
        self._drain_timeout = drain_timeout
        self._queues = {spec.name: _Queue(spec) for spec in topology.queues}
        #: False from stopService until startService: publishes are refused.
        self._accepting = True
        #: False once a stop has drained: nothing is delivered until restarted.
        self._delivering = True
        #: While a stopService drains: its timeout, and who waits for the end.
        self._drain_timer: _DelayedCall | None = None
        self._drain_waiters: list[Deferred[None]] = []
        self._repeat_log: RepeatLog | None = None
        #: What the bus counts for the metrics (``ocppd.bus.stats``).
        self.stats = BusStats()
        #: Messages of ephemeral queues dropped after their handler failed, per queue.
        self.dropped: dict[str, int] = self.stats.dropped
        self._journal = journal if journal is not None else InMemoryJournal()
        self._writes = GroupCommit(self._journal, self._reactor)
        #: How many queues have a consumer with ``wanted`` now.
        self._choosy = 0
        #: The queues each routing key reaches (``_targets``).
        self._routes: dict[str, list[_Queue]] = {}
        #: The next journal seq; set from the journal at the first start.
        self._next_seq = 1
        self._recovered = False

    # --- IBus ---------------------------------------------------------------

    def publish(
        self, routing_key: str, envelope: Envelope, *, flow: bool = False
    ) -> Deferred[None]:
        """
        ``IBus.publish``; with ``flow``, fires only once the message's durable
        queues are not above ``flow_limit`` (see the module docstring).
        """
        published: Deferred[None] = Deferred()
        self.publish_to(published, routing_key, envelope, flow=flow)
        return published

    def publish_to(
        self, sink: Sink, routing_key: str, envelope: Envelope, *, flow: bool = False
    ) -> None:
        """
        ``publish``, its outcome given to ``sink`` (a ``Deferred`` or an
        ``Outcome``: a charger's waiting answer, with no Deferred per message).
        A ``sink`` fired (cancelled) before the journal write ends changes
        nothing for the message: it is queued once written all the same.
        """
        stats = self.stats
        if not self._accepting:
            stats.publish_failed += 1
            sink.errback(Failure(BusError("the bus is stopped")))
            return
        try:
            queues = self._targets(routing_key)
        except ValueError as e:
            stats.publish_failed += 1
            sink.errback(Failure(BusError(str(e))))
            return
        try:
            body = encode_envelope(envelope)
        except BusError as e:
            stats.publish_failed += 1
            sink.errback(Failure(e))
            return
        if not queues:
            stats.publish_confirmed += 1
            # What an AMQP broker does with an unroutable message when the
            # publisher does not ask for `mandatory`: nothing, successfully.
            self.log.debug(
                "No queue bound to {routing_key}; message {message_id} dropped",
                routing_key=routing_key,
                message_id=envelope.id,
            )
            sink.callback(None)
            return
        if self._choosy:
            # A notifier without a browser to push to: passed by (after the
            # encoding, so that what is not JSON is refused all the same).
            # Queuing and delivering the processor's session.updated and each
            # MeterValues to it, to be dropped there, cost the reactor more
            # than the rest of that event's publish.
            # (Loops here, not comprehensions: each is a function made and
            # called per publish.)
            wanted = []
            for queue in queues:
                if queue.wanted is None or queue.wanted():
                    wanted.append(queue)
            if not wanted:
                stats.publish_confirmed += 1
                sink.callback(None)
                return
            queues = wanted
        # Check every target first, so a message is in all its queues or none.
        limit = self._max_queue_length
        for queue in queues:
            if not queue.spec.ephemeral and queue.length() >= limit:
                self._refuse_full(sink, queues, routing_key, envelope.id)
                return
        # The message of the ephemeral queues, made once the first needs it: a
        # MeterValues passed by the notifier goes to the processor's durable queue alone.
        message: _Message | None = None
        messages = []
        records = []
        durable = []
        for queue in queues:
            if queue.spec.ephemeral:
                if message is None:
                    message = _Message(envelope.id, routing_key, body, 1, None, envelope)
                messages.append((queue, message))
                continue
            seq, self._next_seq = self._next_seq, self._next_seq + 1
            durable.append(queue)
            # Built directly: attrs.evolve introspects the class every call.
            # Fields by position: keywords to a class cost a dict per call.
            messages.append((queue, _Message(envelope.id, routing_key, body, 1, seq, envelope)))
            records.append(JournalRecord(seq, queue.name, routing_key, envelope.id, body))
        if not records:
            self._enqueue(messages)
            stats.publish_confirmed += 1
            sink.callback(None)
            return
        for queue in queues:
            queue.pending += 1
        # The write's outcome goes to ``_written`` itself, not through
        # ``sink``: a publisher that stops waiting (an answer's deadline
        # cancels it) must not keep the message from its queues.
        self._writes.add_then(
            records, self._written, queues, messages, durable, envelope.id, flow, sink
        )

    def _refuse_full(
        self, sink: Sink, queues: list[_Queue], routing_key: str, message_id: str
    ) -> None:
        full = [
            queue.name
            for queue in queues
            if not queue.spec.ephemeral and queue.length() >= self._max_queue_length
        ]
        self._repeats.warn(
            ("full", tuple(full)),
            "Queue(s) {queues} full ({max_length} messages); refused {routing_key} "
            "message {message_id}",
            queues=full,
            max_length=self._max_queue_length,
            routing_key=routing_key,
            message_id=message_id,
        )
        self.stats.publish_failed += 1
        sink.errback(Failure(BusError(f"queue(s) {', '.join(full)} full")))

    def _written(
        self,
        result: Failure | None,
        queues: list[_Queue],
        messages: list[tuple[_Queue, _Message]],
        durable: list[_Queue],
        message_id: str,
        flow: bool,
        sink: Sink,
    ) -> None:
        """
        A publish's journal write ended: its ``messages`` are queued (in
        ``queues``, ``durable`` those journaled), and ``sink`` told.
        """
        for queue in queues:
            queue.pending -= 1
        if result is not None:
            self.stats.publish_failed += 1
            # A drain may have been waiting for it.
            self._check_drained()
            sink.errback(
                Failure(BusError(f"message {message_id} not journaled: {result.getErrorMessage()}"))
            )
            return
        self.stats.publish_confirmed += 1
        self._enqueue(messages)
        if flow and self._flow_limit:
            self._flow_wait(durable, sink)
        else:
            sink.callback(None)

    def pass_by(
        self,
        routing_key: str,
        payload: dict[str, Any],
        *,
        node: str,
        charge_point_id: str | None,
    ) -> Deferred[None] | None:
        """
        ``publish`` of an envelope of these fields that no queue would take
        now, settled without building it: None when some queue would take it
        (or when ``publish`` has more to say: the bus is stopped, the key is
        unknown or bound to no queue), and the caller then publishes it.

        That is the case of every queue the key reaches being an ephemeral
        queue whose consumer does not want messages now (``consume(wanted=)``):
        the processor's ``session.updated`` of each MeterValues while no
        browser on the node subscribes. Its id, time and envelope would be
        made only to be passed by; what ``publish`` checks still is: a
        payload that is not JSON is refused with ``BusError``, and the
        message counts as published.
        """
        if not self._choosy or not self._accepting:
            return None
        try:
            queues = self._targets(routing_key)
        except ValueError:
            return None
        if not queues:
            return None
        for queue in queues:
            if queue.wanted is None or queue.wanted():
                return None
        stats = self.stats
        try:
            if type(node) is str and (charge_point_id is None or type(charge_point_id) is str):
                # The envelope's other fields are strings (and a None), which
                # JSON always carries: ``encode_envelope`` refuses it exactly
                # when the payload is not JSON.
                jsoncodec.dumps_bytes(payload)
            else:
                # ``Envelope.to_dict`` of that envelope, its id and time
                # (strings both) left empty.
                jsoncodec.dumps_bytes(
                    {
                        "id": "",
                        "type": routing_key,
                        "time": "",
                        "node": node,
                        "chargePointId": charge_point_id,
                        "payload": payload,
                    }
                )
        except (TypeError, ValueError, RecursionError) as e:
            stats.publish_failed += 1
            return fail(BusError(f"envelope {new_id()} is not serialisable: {e}"))
        stats.publish_confirmed += 1
        return succeed(None)

    def _flow_wait(self, queues: list[_Queue], sink: Sink) -> None:
        """
        Fire ``sink``, a flowed publish to ``queues`` (durable, its message in
        them already), now or once its queues let it go.
        """
        waiters = self._flow_waiters
        ahead = bool(waiters)
        if not ahead and not self._above_limit(queues):
            sink.callback(None)
            return
        waiters.append((queues, sink))
        self.stats.flow_waited += 1
        if ahead:
            # Those ahead may have stopped waiting, or nothing may be left to
            # wait for. (Nobody ahead and held back, at saturation every
            # answer, it just waits: ``_release_flow`` would only ask
            # ``_above_limit`` again.)
            self._release_flow()

    def _above_limit(self, queues: list[_Queue]) -> bool:
        """Whether one of ``queues`` holds flowed publishes back now."""
        if not self._delivering:
            return False
        limit = self._flow_limit
        # A loop, not any() over a generator: asked once or twice per answer at saturation.
        for queue in queues:
            if queue.consumer is not None and len(queue.ready) > limit:
                return True
        return False

    def _release_flow(self) -> None:
        """Fire the waiting flowed publishes that may go now, in publication order."""
        waiters = self._flow_waiters
        while waiters:
            queues, waiter = waiters[0]
            if waiter.called:
                # Cancelled (the charger's answer timed out): its message is queued all the same.
                waiters.popleft()
                continue
            if self._above_limit(queues):
                return
            waiters.popleft()
            waiter.callback(None)

    def _targets(self, routing_key: str) -> list[_Queue]:
        """
        The queues ``routing_key`` reaches (``ValueError`` as
        ``Topology.route``), remembered per key: every publish asks. The list
        is shared: not to be changed.
        """
        queues = self._routes.get(routing_key)
        if queues is None:
            queues = [self._queues[spec.name] for spec in self.topology.route(routing_key)]
            if len(self._routes) < _ROUTES_KEPT:
                self._routes[routing_key] = queues
        return queues

    def _enqueue(self, messages: list[tuple[_Queue, _Message]]) -> None:
        for queue, message in messages:
            if queue.spec.ephemeral and queue.ready and queue.length() >= self._ephemeral_limit:
                # Worthless when stale (pushes): the oldest gives way, as with
                # RabbitMQ's drop-head, and the publisher is never refused.
                queue.ready.popleft()
                self.stats.count(self.stats.overflowed, queue.name)
            queue.ready.append(message)
            self._schedule(queue)

    def consume(
        self,
        queue: str,
        handler: Handler,
        concurrency: int = 1,
        *,
        settled_by_handler: bool = False,
        wanted: Callable[[], bool] | None = None,
    ) -> Deferred[IConsumer]:
        """
        ``IBus.consume``; with ``settled_by_handler``, a handler that succeeds
        has removed its delivery's journal record (``Delivery.journal_seq``)
        itself, in the transaction that committed its effects, with the
        remover ``journal_settler`` gave it: the bus then writes no removal
        of its own (see ``journal_settler``).

        ``wanted``, for an ephemeral queue only: asked at each publish routed
        to the queue; while it answers False, the message is not put in the
        queue (as if nothing was bound to it), so nothing the consumer would
        drop is queued and delivered. What the queue holds already is still
        delivered.
        """
        if concurrency < 1:
            return fail(ValueError("concurrency must be at least 1"))
        try:
            state = self._queue(queue)
        except ValueError as e:
            return fail(e)
        if wanted is not None and not state.spec.ephemeral:
            # A durable queue loses nothing it was routed.
            return fail(ValueError(f"queue {queue!r} is durable: it takes every message"))
        if state.consumer is not None:
            # One consumer per queue: in one process a second one could only
            # compete with the first, and would break the ordering guarantee.
            return fail(BusError(f"queue {queue!r} already has a consumer"))
        consumer = _Consumer(self, queue, handler, concurrency, settled_by_handler, wanted)
        state.consumer = consumer
        if wanted is not None:
            state.wanted = wanted
            self._choosy += 1
        self.log.debug("Consuming {queue}", queue=queue)
        self._schedule(state)
        return succeed(cast(IConsumer, consumer))

    def journal_settler(self, database: object) -> JournalSettler | None:
        """
        For a consumer whose transactions run on ``database``: the callable
        that removes journal records inside such a transaction, if this
        bus's journal lives in that database; None otherwise.

        A consumer that removes its deliveries' records in the transaction
        of their effects (and says so to ``consume``) acknowledges with its
        own commit: one commit per batch instead of its own and a journal
        write's. Every crash point keeps the bus's promise: before that
        commit, effects and removals are both rolled back and the message
        is delivered again after a restart (consumers deduplicate on the
        envelope id, as for any redelivery); after it, both stand and
        nothing is redelivered. A failed handler's record stays, for its
        retry or its dead-letter mark.
        """
        settler_for = getattr(self._journal, "settler_for", None)
        if settler_for is None:
            return None
        return cast(SettlingJournal, self._journal).settler_for(database)

    def dead_letters(self, queue: str) -> Deferred[list[DeadLetter]]:
        try:
            return succeed([letter for letter, _ in self._queue(queue).dead])
        except ValueError as e:
            return fail(e)

    def replay_dead_letters(
        self, queue: str, ids: list[str] | None = None, wait: float = 0.0
    ) -> Deferred[Replay]:
        """
        Put dead letters back at the tail of ``queue``, starting again at
        attempt 1. ``ids`` selects by ``DeadLetter.id`` (the envelope id);
        unknown ids are ignored. The letters are taken at once, so one that
        fails again comes back as a new dead letter and is not replayed again
        by this call; after ``wait`` seconds the ``Replay`` says which did.
        """
        try:
            state = self._queue(queue)
        except ValueError as e:
            return fail(e)
        if not self._accepting:
            return fail(BusError("the bus is stopped"))
        replay, keep = self._select_dead(state, ids)
        state.dead = keep
        for letter, seq in replay:
            if seq is not None:
                self._writes.mark(seq, None)
            state.ready.append(
                _Message(
                    id=letter.envelope.id,
                    routing_key=letter.routing_key,
                    body=letter.envelope.to_bytes(),
                    seq=seq,
                    published=letter.envelope,
                )
            )
        if replay:
            self.log.info(
                "Replaying {count} dead letter(s) of {queue}", count=len(replay), queue=queue
            )
            self._schedule(state)
        replayed = [letter.envelope.id for letter, _ in replay]

        def outcome() -> Replay:
            return replay_outcome(replayed, [letter for letter, _ in state.dead])

        if wait <= 0:
            return succeed(outcome())
        return deferLater(cast(IReactorTime, self._reactor), wait, outcome)

    # --- Beyond IBus ----------------------------------------------------------

    def discard_dead_letters(self, queue: str, ids: list[str] | None = None) -> Deferred[int]:
        """
        Delete dead letters (all, or those with ``ids``) for good; fires with
        the count. Dead letters count toward ``max_queue_length``, so this is
        how an operator frees a queue that poison messages filled.
        """
        try:
            state = self._queue(queue)
        except ValueError as e:
            return fail(e)
        discard, keep = self._select_dead(state, ids)
        state.dead = keep
        for letter, seq in discard:
            if seq is not None:
                self._writes.remove(seq)
            self.log.warn(
                "Discarded dead letter {message_id} ({routing_key}) of {queue}",
                message_id=letter.id,
                routing_key=letter.routing_key,
                queue=queue,
            )
        return succeed(len(discard))

    def queue_length(self, queue: str) -> int:
        """How many messages ``queue`` holds (ready, in flight, retrying, dead)."""
        return self._queue(queue).length()

    def oldest_unprocessed(self) -> dict[str, str | None]:
        """
        Per consumed queue, the publication time (ISO-8601) of its oldest
        message not yet acknowledged: in its handler or first in line (None
        when there is none). What ``ocppd.metrics`` reports as the consumer lag.
        """
        oldest: dict[str, str | None] = {}
        for name, queue in self._queues.items():
            if queue.consumer is None:
                continue
            waiting = [*queue.in_flight, queue.ready[0]] if queue.ready else queue.in_flight
            times = [_published_at(message) for message in waiting]
            # Envelope times have one format (``format_iso``): as texts they sort as times.
            oldest[name] = min((time for time in times if time is not None), default=None)
        return oldest

    def dead_letter_counts(self) -> dict[str, int]:
        """How many dead letters each durable queue holds now (for the metrics)."""
        return {name: len(q.dead) for name, q in self._queues.items() if not q.spec.ephemeral}

    # --- Service ------------------------------------------------------------

    def startService(self) -> None:
        """
        Start delivering; the first time, after loading what the journal kept
        (blocking: called at start-up before anything is served). A journal
        that cannot be read fails the start.
        """
        if not self._recovered:
            self._recover()
        super().startService()
        self._accepting = True
        self._delivering = True
        for queue in self._queues.values():
            self._schedule(queue)

    def stopService(self) -> Deferred[None]:
        """
        Refuse new publishes, then wait until every queue with a consumer has
        no ready message and no handler in flight (at most ``drain_timeout``
        seconds). Retries still waiting are not waited for: their back-off can
        be minutes. What is left is logged; deliveries then pause until
        ``startService``.
        """
        super().stopService()
        self._accepting = False
        self._repeats.flush()
        waiter: Deferred[None] = Deferred()
        self._drain_waiters.append(waiter)
        if self._drain_timer is None:
            self._drain_timer = self._reactor.callLater(self._drain_timeout, self._drain_done, True)
            self._check_drained()
        return waiter

    # --- Internals ----------------------------------------------------------

    @property
    def _repeats(self) -> RepeatLog:
        """Failures repeat per message during an outage: a line a minute per kind."""
        if self._repeat_log is None:
            self._repeat_log = RepeatLog(self.log, cast(IReactorTime, self._reactor))
        return self._repeat_log

    def _recover(self) -> None:
        records = self._journal.load()
        self._recovered = True
        restored = 0
        unknown: dict[str, int] = {}
        for record in records:
            self._next_seq = max(self._next_seq, record.seq + 1)
            queue = self._queues.get(record.queue)
            if queue is None or queue.spec.ephemeral:
                # Kept, not deleted: a configuration change (the prefix) may be undone.
                unknown[record.queue] = unknown.get(record.queue, 0) + 1
                continue
            message = _Message(
                id=record.message_id,
                routing_key=record.routing_key,
                body=record.body,
                seq=record.seq,
            )
            if record.dead is None:
                # Ahead of anything published after the start, in journal order.
                queue.ready.append(message)
            else:
                letter = DeadLetter(
                    id=record.message_id,
                    queue=queue.name,
                    routing_key=record.routing_key,
                    envelope=Envelope.from_bytes(record.body),
                    attempts=record.dead.attempts,
                    reason=record.dead.reason,
                    failed_at=record.dead.failed_at,
                )
                queue.dead.append((letter, record.seq))
            restored += 1
        if restored:
            self.log.info("MemoryBus: {count} message(s) restored from the journal", count=restored)
        if unknown:
            self.log.warn(
                "MemoryBus: journal records of queues not in the topology left aside: {queues}",
                queues=unknown,
            )

    def _queue(self, name: str) -> _Queue:
        state = self._queues.get(name)
        if state is None:
            raise ValueError(f"queue {name!r} is not declared in the topology")
        return state

    @staticmethod
    def _select_dead(
        state: _Queue, ids: list[str] | None
    ) -> tuple[list[tuple[DeadLetter, int | None]], list[tuple[DeadLetter, int | None]]]:
        if ids is None:
            return list(state.dead), []
        wanted = set(ids)
        chosen = [dead for dead in state.dead if dead[0].id in wanted]
        rest = [dead for dead in state.dead if dead[0].id not in wanted]
        return chosen, rest

    def _schedule(self, queue: _Queue) -> None:
        """Arrange the delivery of ``queue``'s next message, if it can have one now."""
        if (
            not self._delivering
            or not queue.has_room()
            or queue.scheduled is not None
            or not queue.ready
        ):
            return
        queue.scheduled = self._reactor.callLater(0, self._deliver, queue)

    def _deliver(self, queue: _Queue) -> None:
        queue.scheduled = None
        consumer = queue.consumer
        if consumer is None:
            return
        # In order, as many as the consumer has room for, up to the messages
        # ready when the turn began: a handler that finishes at once makes
        # room for the next of those in this turn. A reactor turn per message
        # (a DelayedCall, its place in the reactor's heap) cost more than the
        # notifier's handling of a MeterValues. What arrives meanwhile (a
        # retry, a handler's own publishes) waits for the next turn, so a
        # fast consumer never keeps the reactor from everything else.
        budget = len(queue.ready)
        # Settlements in this turn schedule no turn of their own: one follows.
        queue.scheduled = _DELIVERING
        try:
            while (
                budget
                and self._delivering
                and queue.consumer is consumer
                and queue.has_room()
                and queue.ready
            ):
                budget -= 1
                self._deliver_one(queue)
        finally:
            if queue.scheduled is _DELIVERING:
                queue.scheduled = None
        if self._flow_waiters:
            self._release_flow()
        self._schedule(queue)

    def _deliver_one(self, queue: _Queue) -> None:
        consumer = queue.consumer
        assert consumer is not None
        message = queue.ready[0]
        # Built before the message leaves the queue, so that nothing can fail
        # between taking it and handing it to the handler.
        delivery = Delivery(
            envelope=message.envelope(),
            routing_key=message.routing_key,
            queue=queue.name,
            attempt=message.attempt,
            journal_seq=message.seq,
        )
        queue.ready.popleft()
        queue.in_flight.append(message)
        # A handler that answers at once (the notifier) is settled at once,
        # without Deferreds: this runs for every message of every queue.
        try:
            result = consumer.handler(delivery)
        except Exception:
            result = Failure()
        settled = consumer.settled_by_handler
        if type(result) is Settlement:
            # The processor's every delivery: settled through it, no Deferred.
            result.bind(self._settle_logged, queue, message, settled)
            return
        # None (the notifier's answer) first: the Coroutine check is an ABC's.
        if result is not None and not isinstance(result, Deferred | Failure):
            if isinstance(result, Coroutine):
                result = Deferred.fromCoroutine(result)
        if isinstance(result, Deferred):
            # One callback (the processor's every delivery): the bookkeeping's
            # own failure is caught in it, not by an errback of its own.
            result.addBoth(self._settle_logged, queue, message, settled)
            return
        self._settle_logged(result, queue, message, settled)

    def _settle_logged(
        self, result: object, queue: _Queue, message: _Message, settled: bool
    ) -> None:
        """``_settle``; whatever goes wrong in it is logged."""
        try:
            self._settle(result, queue, message, settled)
        except Exception:
            self._internal_error(Failure())

    def _settle(
        self, result: object, queue: _Queue, message: _Message, settled: bool = False
    ) -> None:
        if isinstance(result, Failure):
            self._failed(result, queue, message)
        elif message.seq is not None and not settled:
            # (A consumer that settles itself removed the record in its commit.)
            self._writes.remove(message.seq)
        self._finished(queue, message)

    def _internal_error(self, failure: Failure) -> None:
        # Whatever goes wrong in the bookkeeping must not vanish.
        self.log.failure("MemoryBus internal error", failure)

    def _failed(self, failure: Failure, queue: _Queue, message: _Message) -> None:
        attempt = message.attempt
        if queue.spec.ephemeral:
            # Pushes have no retries and no dead letters: worthless later.
            self.stats.count(self.dropped, queue.name)
            self._repeats.failure(
                (queue.name, "dropped", failure.type),
                "Handler for ephemeral queue {queue} failed on {routing_key} message "
                "{message_id}; dropped ({dropped} so far)",
                failure,
                queue=queue.name,
                routing_key=message.routing_key,
                message_id=message.id,
                dropped=self.dropped[queue.name],
            )
            return
        self._repeats.failure(
            (queue.name, failure.type),
            "Handler for {queue} failed on {routing_key} message {message_id} "
            "(attempt {attempt} of {max_attempts})",
            failure,
            queue=queue.name,
            routing_key=message.routing_key,
            message_id=message.id,
            attempt=attempt,
            max_attempts=self._retry.max_attempts,
        )
        if attempt >= self._retry.max_attempts:
            kind = getattr(failure.type, "__name__", "Error")
            reason = f"{kind}: {failure.getErrorMessage()}"
            failed_at = format_iso(from_timestamp(self._reactor.seconds()))
            letter = DeadLetter(
                id=message.id,
                queue=queue.name,
                routing_key=message.routing_key,
                envelope=message.envelope(),
                attempts=attempt,
                reason=reason,
                failed_at=failed_at,
            )
            queue.dead.append((letter, message.seq))
            self.stats.count(self.stats.dead_lettered, queue.name)
            if message.seq is not None:
                self._writes.mark(message.seq, DeadMark(attempt, reason, failed_at))
            self.log.error(
                "Dead-lettered {routing_key} message {message_id} of {queue} after "
                "{attempts} attempts: {reason}",
                queue=queue.name,
                routing_key=message.routing_key,
                message_id=message.id,
                attempts=attempt,
                reason=reason,
            )
            return
        delay = self._retry.delay_after(attempt)
        retry = attrs.evolve(message, attempt=attempt + 1)
        call: _DelayedCall | None = None

        def requeue() -> None:
            assert call is not None
            del queue.retrying[call]
            queue.ready.append(retry)
            self._schedule(queue)

        call = self._reactor.callLater(delay, requeue)
        queue.retrying[call] = retry
        self.stats.count(self.stats.retried, queue.name)

    def _finished(self, queue: _Queue, message: _Message) -> None:
        queue.in_flight.remove(message)
        if not queue.in_flight:
            waiters, queue.idle_waiters = queue.idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)
        # (Both guards asked here first: the processor settles a batch of
        # hundreds in one go, and a delivery turn is scheduled by the first.)
        if queue.scheduled is None:
            self._schedule(queue)
        if self._drain_timer is not None:
            self._check_drained()

    def _stop_consumer(self, consumer: _Consumer) -> Deferred[None]:
        queue = self._queues[consumer.queue]
        if queue.consumer is not consumer:
            return succeed(None)  # already stopped
        queue.consumer = None
        if queue.wanted is not None:
            # Without a consumer the queue keeps what is published, as before.
            queue.wanted = None
            self._choosy -= 1
        if queue.scheduled is not None:
            queue.scheduled.cancel()
            queue.scheduled = None
        self.log.debug("Stopped consuming {queue}", queue=queue.name)
        # Nothing drains the queue now: nobody waits for it.
        self._release_flow()
        self._check_drained()
        if not queue.in_flight:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        queue.idle_waiters.append(waiter)
        return waiter

    def _check_drained(self) -> None:
        if self._drain_timer is None:
            return
        # Once deliveries are paused (a second stop), ready messages will not
        # move, so only handlers in flight are worth waiting for.
        if not any(
            bool(queue.in_flight) or (self._delivering and queue.busy())
            for queue in self._queues.values()
        ):
            self._drain_done(False)

    def _drain_done(self, timed_out: bool) -> None:
        timer, self._drain_timer = self._drain_timer, None
        if timer is None:
            return
        if not timed_out:
            timer.cancel()
        self._delivering = False
        left = {
            queue.name: {
                "ready": len(queue.ready),
                "in_flight": len(queue.in_flight),
                "retrying": len(queue.retrying),
                "dead": len(queue.dead),
                "journaling": queue.pending,
                "consumed": queue.consumer is not None,
            }
            for queue in self._queues.values()
            # Pushes nobody took are no loss worth a warning.
            if queue.length() and not queue.spec.ephemeral
        }
        for queue in self._queues.values():
            if queue.scheduled is not None:
                queue.scheduled.cancel()
                queue.scheduled = None
            # Pending retries are kept (ready, at the tail) for a restart in
            # the same process rather than firing while the bus is stopped.
            for call, message in list(queue.retrying.items()):
                call.cancel()
                queue.ready.append(message)
            queue.retrying.clear()
        # Nothing is delivered until a restart: flowed publishes wait no more.
        self._release_flow()
        if timed_out:
            self.log.warn(
                "MemoryBus stop: drain timed out after {timeout}s; undelivered: {left}",
                timeout=self._drain_timeout,
                left=left,
            )
        elif left:
            self.log.warn("MemoryBus stopped; undelivered: {left}", left=left)
        else:
            self.log.info("MemoryBus stopped; every message was delivered")
        self._repeats.flush()
        # Settlements reach the journal before the database may close.
        self._writes.when_idle().addBoth(self._drained)

    def _drained(self, _: object) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            waiter.callback(None)
