"""What every consumer of the bus shares: start/stop, and applying each message once."""

from __future__ import annotations

from collections.abc import Callable, Generator, Hashable
from typing import Any, NamedTuple

from sqlalchemy.engine import Connection
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    gatherResults,
    inlineCallbacks,
    maybeDeferred,
)
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery, IBus, IConsumer
from ocppd.bus.journal import JournalSettler
from ocppd.bus.memory import MemoryBus, Settlement
from ocppd.bus.outbox import Outbox
from ocppd.bus.publisher import EventPublisher
from ocppd.logs import Logger
from ocppd.ratelog import RepeatLog
from ocppd.store import processed
from ocppd.store.database import Database
from ocppd.timeutil import parse_iso


class FollowUp(NamedTuple):
    """
    A domain event that applying a message made true (``docs/events.md``).
    A named tuple, not an attrs class: every MeterValues makes one.
    """

    routing_key: str
    payload: dict[str, Any]
    charge_point_id: str | None = None


#: Called with each follow-up once it is committed (and published, if it could be).
FollowUpHook = Callable[[FollowUp], Any]

#: Writes a transaction's deferred items in as few statements as it can.
Writer = Callable[[Connection, list[Any]], Any]

#: What applying one envelope came to: (applied, follow-ups), or why it failed.
Outcome = tuple[bool, list[FollowUp]]


class DeferredWrites:
    """
    Appends that the messages of one transaction leave to its end, where each
    writer gets all its items at once (one executemany instead of a statement
    per message). Only for writes nothing in the same transaction reads back,
    such as the message log.
    """

    def __init__(self) -> None:
        self._items: dict[Writer, list[Any]] = {}

    def defer(self, writer: Writer, item: Any) -> None:
        self._items.setdefault(writer, []).append(item)

    def defer_all(self, writer: Writer, items: list[Any]) -> None:
        """``defer`` of each of ``items``, in order (a message's meter samples at once)."""
        if items:  # none: no writer either, as with no ``defer``
            self._items.setdefault(writer, []).extend(items)

    def extend(self, other: DeferredWrites) -> None:
        for writer, items in other._items.items():
            self._items.setdefault(writer, []).extend(items)

    def write(self, conn: Connection) -> None:
        for writer, items in self._items.items():
            writer(conn, items)
        self._items.clear()


#: What a delivery's handling returns: a Settlement on the embedded bus.
Done = Deferred[bool] | Settlement


def _acknowledge(_: object, done: Done, applied: bool) -> None:
    done.callback(applied)


class BusConsumer:
    """
    Consumes one queue into the store, each message's effects exactly once
    under at-least-once delivery. Subclasses name themselves (``name``, the
    key of their claims) and implement ``effects``, which may return the
    domain events the change made true and may defer idempotent appends to
    the end of the transaction (``DeferredWrites``).

    A message whose effects would change something if applied again
    (``needs_claim``) first claims its id in ``processed_messages``, in the
    same transaction: a redelivery finds the claim and does nothing. A
    message whose effects are all idempotent (deferred keyed appends, times
    and meters that only move forward, follow-ups that every consumer takes
    twice to no effect) needs no claim: applying it again changes nothing.

    With an ``outbox``, those follow-ups are staged in the same transaction
    (``ocppd.bus.outbox``) and published by the relay once it commits: no
    event announces a change that was rolled back, and none is lost when the
    bus refuses it. Keys in ``direct_events`` (live updates that the next one
    supersedes) are published after the commit instead, best effort: a
    failed publish is logged and the message is still acknowledged. Without
    an outbox (tests, tools) every follow-up is published that way.

    Group commit (docs/bus.md): the consumer takes up to ``concurrency``
    deliveries at once from the bus; those that arrive while a batch is in
    the database are applied together in the next one, in arrival order, in
    one transaction, claimed in one statement. A message that fails rolls
    the batch back, which is then applied again one message per
    transaction, so only it is retried. A busy consumer thus commits once
    per batch instead of once per message; an idle one applies a message on
    the next reactor turn. A busy one may also wait ``batch_wait`` seconds
    after a commit for a fuller next batch: a message then costs several
    times less (``bench/processor_batch.py``), which leaves the CPU to the
    chargers' requests that share it.

    On the embedded bus journaling to this consumer's database (PostgreSQL),
    a batch's transaction also removes its deliveries' journal records
    (``MemoryBus.journal_settler``): the acknowledgement commits, or rolls
    back, with the effects. Beside a SQLite store the journal has a file of
    its own: the bus removes them after the commit, and a crash in between
    replays messages the claims recognise (docs/bus.md, "Durability").
    """

    name = ""
    log = Logger()
    #: Deliveries taken from the bus at once (the RabbitMQ prefetch bounds it too).
    concurrency = 1
    #: Most messages applied in one database transaction.
    max_batch = 100
    #: Seconds a busy consumer waits after a commit while its next batch is not full.
    batch_wait = 0.0
    #: Follow-ups published after the commit rather than staged in the outbox.
    direct_events: frozenset[str] = frozenset()

    def __init__(
        self,
        bus: IBus,
        database: Database,
        *,
        events: EventPublisher | None = None,
        on_follow_up: FollowUpHook | None = None,
        clock: IReactorTime,
        outbox: Outbox | None = None,
    ) -> None:
        self._bus = bus
        self._outbox = outbox
        self._clock = clock
        self._database = database
        self._events = events
        self._on_follow_up = on_follow_up
        self._consumer: IConsumer | None = None
        #: Deliveries waiting for a batch: envelope, journal record, acknowledgement.
        self._pending: list[tuple[Envelope, int | None, Done]] = []
        #: Whether ``handle`` returns a ``Settlement`` (consuming the embedded bus).
        self._settles = False
        #: On the embedded bus journaling to this consumer's database: what
        #: removes a batch's journal records in the batch's own transaction.
        self._settler: JournalSettler | None = None
        self._flushing = False
        self._filling: Deferred[None] | None = None
        self._filling_timer: IDelayedCall | None = None
        self._repeats: RepeatLog | None = None

    def start(self, queue: str) -> Deferred[IConsumer]:
        def started(consumer: IConsumer) -> IConsumer:
            self._consumer = consumer
            return consumer

        bus = self._bus
        if isinstance(bus, MemoryBus):
            # Acknowledged with the batch's own commit where the journal
            # shares the database (MemoryBus.journal_settler).
            self._settler = bus.journal_settler(self._database)
            # A Settlement per delivery rather than a Deferred: cheaper, and
            # the embedded bus takes either.
            self._settles = True
            consuming = bus.consume(
                queue,
                self.handle,
                concurrency=self.concurrency,
                settled_by_handler=self._settler is not None,
            )
        else:
            consuming = bus.consume(queue, self.handle, concurrency=self.concurrency)
        return consuming.addCallback(started)

    def stop(self) -> Deferred[None] | None:
        consumer, self._consumer = self._consumer, None
        if self._repeats is not None:
            self._repeats.flush()
        return consumer.stop() if consumer is not None else None

    def handle(self, delivery: Delivery) -> Done:
        """
        Fires (True if applied, False if seen before) once its batch has
        committed: a ``Settlement`` when consuming the embedded bus, a
        Deferred otherwise.
        """
        done: Done = Settlement() if self._settles else Deferred()
        self._pending.append((delivery.envelope, delivery.journal_seq, done))
        if self._filling is not None and len(self._pending) >= self._batch_room():
            self._batch_filled()
        if not self._flushing:
            # On the next turn, so that what the bus delivers in this one
            # (a backlog, say) makes one batch rather than a first batch of one.
            self._flushing = True
            self._get_clock().callLater(0, self._start_flush)
        return done

    def _start_flush(self) -> None:
        self._flush().addErrback(self._loop_failed)

    def _fuller_batch(self) -> Deferred[None]:
        """Fires when the next batch is full, or after ``batch_wait`` seconds."""
        self._filling = Deferred()
        self._filling_timer = self._get_clock().callLater(self.batch_wait, self._batch_filled)
        return self._filling

    def _batch_filled(self) -> None:
        filling, self._filling = self._filling, None
        if self._filling_timer is not None and self._filling_timer.active():
            self._filling_timer.cancel()
        self._filling_timer = None
        if filling is not None:
            filling.callback(None)

    def _batch_room(self) -> int:
        """How many deliveries the next batch could hold: more may still arrive below it."""
        granted = self._consumer.concurrency if self._consumer is not None else self.concurrency
        return min(self.max_batch, granted)

    def _get_clock(self) -> IReactorTime:
        return self._clock

    def _loop_failed(self, failure: Failure) -> None:
        self.log.failure("{consumer} batch loop failed", failure, consumer=self.name)

    @inlineCallbacks
    def _flush(self) -> Generator[Deferred[Any], Any, None]:
        self._flushing = True
        try:
            busy = False
            while self._pending:
                if busy and self.batch_wait > 0 and len(self._pending) < self._batch_room():
                    yield self._fuller_batch()
                busy = True
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                envelopes = [envelope for envelope, _, _ in batch]
                seqs = [seq for _, seq, _ in batch]
                try:
                    outcomes = yield self._run_batch(envelopes, seqs)
                except Exception:
                    outcomes = yield self._apply_each(envelopes, seqs, Failure())
                # The batch's events are published at once (on RabbitMQ a
                # confirm each takes a round trip), and each message is
                # acknowledged when its own events are out.
                announced = []
                staged = False
                # ``_staged``, asked of every follow-up of the batch: read once.
                outbox, direct_events = self._outbox, self.direct_events
                for (_, _, done), outcome in zip(batch, outcomes, strict=True):
                    if isinstance(outcome, Failure):
                        done.errback(outcome)
                        continue
                    applied, follow_ups = outcome
                    if outbox is None:
                        direct = follow_ups  # every one published here (no copy)
                    else:
                        direct = []
                        for follow_up in follow_ups:
                            if follow_up.routing_key not in direct_events:
                                staged = True
                                self._act_on(follow_up)
                            else:
                                direct.append(follow_up)
                    # Those the bus took at once (the embedded bus, for the
                    # live session.updated of every MeterValues) are not
                    # waited on: no Deferreds gathered per message.
                    waits = []
                    for follow_up in direct:
                        out = self._announce(follow_up)
                        if out is not None:
                            waits.append(out)
                    if not waits:
                        done.callback(applied)
                        continue
                    # One to wait for (on RabbitMQ, the confirm of a MeterValues'
                    # live session.updated) is chained to, not gathered: a
                    # DeferredList per message cost more than the rest of this loop.
                    published = waits[0] if len(waits) == 1 else gatherResults(waits)
                    announced.append(published.addCallback(_acknowledge, done, applied))
                if staged and self._outbox is not None:
                    # Not awaited: the events are committed, the relay publishes them.
                    self._outbox.flush()
                if announced:
                    yield DeferredList(announced)
        finally:
            self._flushing = False

    def _run_batch(self, envelopes: list[Envelope], seqs: list[int | None]) -> Deferred[Any]:
        """``apply_batch`` in one transaction, with the batch's journal records removed in it."""
        if self._settler is None:
            return self._database.run(self.apply_batch, envelopes)
        return self._database.run(self._apply_settling, envelopes, seqs)

    def _apply_settling(
        self, conn: Connection, envelopes: list[Envelope], seqs: list[int | None]
    ) -> list[Outcome]:
        outcomes = self.apply_batch(conn, envelopes)
        # Every delivery of the batch, applied now or seen before: its
        # acknowledgement commits with the batch, or rolls back with it.
        assert self._settler is not None
        self._settler(conn, [seq for seq in seqs if seq is not None])
        return outcomes

    @inlineCallbacks
    def _apply_each(
        self, envelopes: list[Envelope], seqs: list[int | None], failure: Failure
    ) -> Generator[Deferred[Any], Any, list[Outcome | Failure]]:
        """
        After a batch's transaction failed (a message's effects raised, or a
        deferred write of one broke a constraint at the batch's end): each
        message alone, so that only the culprit is retried. If the database
        went away, each fails quickly too.
        """
        if len(envelopes) == 1:
            return [failure]
        # While the database is away every batch fails alike: a line a minute.
        if self._repeats is None:
            self._repeats = RepeatLog(self.log, self._get_clock())
        self._repeats.warn(
            ("batch", failure.type),
            "{consumer}: a batch of {count} failed ({error}); applying each alone",
            consumer=self.name,
            count=len(envelopes),
            error=failure.getErrorMessage(),
        )
        outcomes: list[Outcome | Failure] = []
        for envelope, seq in zip(envelopes, seqs, strict=True):
            try:
                alone = yield self._run_batch([envelope], [seq])
            except Exception:
                outcomes.append(Failure())
            else:
                outcomes.append(alone[0])
        return outcomes

    def _announce(self, follow_up: FollowUp) -> Deferred[None] | None:
        """
        Publish ``follow_up`` (never fails), then act on it: None once both
        are done, else what fires when they are.
        """
        if self._events is None:
            self._act_on(follow_up)
            return None
        # Unpacked: a named tuple's fields are slower to read by name.
        routing_key, payload, charge_point_id = follow_up
        announced = self._events.announce(routing_key, payload, charge_point_id=charge_point_id)
        if announced.called and not announced.paused:
            # Out already, all its callbacks run (the embedded bus): acted on
            # now, as the callback would.
            if self._on_follow_up is not None:
                self._act_on(follow_up)
            return None
        return announced.addCallback(lambda _: self._act_on(follow_up))

    def _staged(self, follow_up: FollowUp) -> bool:
        """Whether ``follow_up`` goes through the outbox (``apply_batch`` staged it)."""
        return self._outbox is not None and follow_up.routing_key not in self.direct_events

    def _act_on(self, follow_up: FollowUp) -> None:
        if self._on_follow_up is not None:
            # Not awaited: acting on an event (say, a remote stop that waits
            # for the charger) must not hold up the next message.
            maybeDeferred(self._on_follow_up, follow_up).addErrback(
                lambda failure: self.log.failure(
                    "{consumer} failed to act on {routing_key}",
                    failure,
                    consumer=self.name,
                    routing_key=follow_up.routing_key,
                )
            )

    def apply(self, conn: Connection, envelope: Envelope) -> bool:
        """Apply one envelope inside ``conn``'s transaction; False if seen before."""
        return self.apply_collecting(conn, envelope)[0]

    def apply_collecting(self, conn: Connection, envelope: Envelope) -> Outcome:
        """``apply``, and the follow-ups to announce once ``conn`` commits. Raises on failure."""
        return self.apply_batch(conn, [envelope])[0]

    def apply_batch(self, conn: Connection, envelopes: list[Envelope]) -> list[Outcome]:
        """
        Apply ``envelopes`` in arrival order inside ``conn``'s transaction: an
        outcome each. The first failure raises, which rolls the whole
        transaction back: the consumer then applies each envelope alone
        (``_apply_each``), so that only the culprit fails. No savepoint per
        message: on PostgreSQL its two statements were two round trips each,
        as many as the message's own, for a failure that is rare (a bug, a
        row deleted meanwhile) and that the fallback isolates anyway.
        """
        claiming = [self.needs_claim(envelope) for envelope in envelopes]
        claims = [
            (envelope.id, parse_iso(envelope.time))
            for envelope, needs_claim in zip(envelopes, claiming, strict=True)
            if needs_claim
        ]
        claimed = processed.claim_messages(conn, self.name, claims) if claims else set()
        seen: set[str] = set()
        writes = DeferredWrites()
        outcomes: list[Outcome] = []
        #: The envelopes to apply, by their place in ``outcomes``.
        applying: list[tuple[int, Envelope]] = []
        for envelope, needs_claim in zip(envelopes, claiming, strict=True):
            # Claimed before, or the same id earlier in this batch: applied once.
            if envelope.id in seen or (needs_claim and envelope.id not in claimed):
                outcomes.append((False, []))
                continue
            seen.add(envelope.id)
            outcomes.append((True, []))
            applying.append((len(outcomes) - 1, envelope))
        for run in self._runs(applying):
            if len(run) == 1:
                effects = [self.effects(conn, run[0][1], writes)]
            else:
                effects = self.effects_together(conn, [envelope for _, envelope in run], writes)
            for (place, _), follow_ups in zip(run, effects, strict=True):
                outcomes[place] = (True, list(follow_ups or ()))
        writes.write(conn)
        if self._outbox is not None:
            self._outbox.stage_many(
                conn,
                [
                    (f.routing_key, f.payload, f.charge_point_id)
                    for _, follow_ups in outcomes
                    for f in follow_ups
                    if self._staged(f)
                ],
            )
        return outcomes

    def _runs(
        self, applying: list[tuple[int, Envelope]]
    ) -> Generator[list[tuple[int, Envelope]], None, None]:
        """``applying`` in runs of neighbours that ``together`` gives the same key, or alone."""
        run: list[tuple[int, Envelope]] = []
        key: Hashable | None = None
        for item in applying:
            item_key = self.together(item[1])
            if run and (item_key is None or item_key != key):
                yield run
                run = []
            run.append(item)
            key = item_key
        if run:
            yield run

    def together(self, envelope: Envelope) -> Hashable | None:
        """
        A key for applying ``envelope`` with its neighbours of the same key
        in one call (``effects_together``); None to apply it alone.
        """
        return None

    def effects_together(
        self, conn: Connection, envelopes: list[Envelope], writes: DeferredWrites
    ) -> list[list[FollowUp] | None]:
        """
        ``effects`` of consecutive envelopes that ``together`` keyed alike, in
        one call (say, their statements sent at once): the result must be as
        if each was applied in turn.
        """
        return [self.effects(conn, envelope, writes) for envelope in envelopes]

    def needs_claim(self, envelope: Envelope) -> bool:
        """
        Whether ``envelope``'s id is claimed in the batch's transaction, so
        that a redelivery does nothing. Not when its effects are idempotent:
        only deferred writes (keyed appends, a time moved forward), or
        statements that change nothing the second time (a meter moved only
        to a newer reading, a flag set once) with follow-ups that each of
        their consumers takes twice to no effect. Such an envelope is applied
        again on a redelivery (and reported applied), to no effect.
        """
        return True

    def effects(
        self, conn: Connection, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp] | None:
        raise NotImplementedError
