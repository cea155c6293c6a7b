"""
The embedded bus's journal: what it accepted and not yet settled, kept durable.

``MemoryBus`` holds its queues in memory; the journal is what survives a
crash. Each message routed to a durable (not ephemeral) queue gets a record
per queue, written before ``publish`` fires; the record goes when that queue
settles the message (ack), or is marked dead when it is dead-lettered (so dead
letters survive a restart too). At start the bus loads what is left and
delivers it again, in publication order, before anything new.

Two implementations of ``Journal``: ``InMemoryJournal`` (nothing survives the
process: tests, and a bus that needs no durability) and
``ocppd.store.journal.StoreJournal`` (the daemon's: a SQLite file of its own
beside a SQLite store, or the PostgreSQL store).

``GroupCommit`` batches the writes: while one write is in the database, every
change that arrives meanwhile waits, and goes in the next write, in one
transaction. A lone publish on an idle bus is written at once.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from ocppd.bus.outcome import fire_deferred
from ocppd.logs import Logger


@attrs.frozen
class DeadMark:
    """Why a record's message was dead-lettered (a ``DeadLetter``'s own fields)."""

    attempts: int
    reason: str
    #: ISO-8601 UTC.
    failed_at: str


@attrs.define
class JournalRecord:
    """
    One message for one queue, as journaled. Never changed once made, but
    not frozen: attrs' frozen ``__init__`` sets each field through
    ``object.__setattr__``, and every publish makes one per durable queue.
    """

    #: The bus's own numbering, increasing in publication order (the replay order).
    seq: int
    queue: str
    routing_key: str
    message_id: str
    body: bytes
    #: Set while the message is a dead letter of ``queue``.
    dead: DeadMark | None = None


@attrs.define
class JournalBatch:
    """The changes one write applies, in one transaction."""

    added: list[JournalRecord] = attrs.Factory(list)
    #: The dead-letter state each record ends with (None: live again, replayed).
    marked: dict[int, DeadMark | None] = attrs.Factory(dict)
    #: Records settled (acknowledged, or dead letters discarded).
    removed: set[int] = attrs.Factory(set)

    def __bool__(self) -> bool:
        return bool(self.added or self.marked or self.removed)


#: Removes journal records (by seq) inside a database transaction of the
#: caller's, ``(connection, seqs)``: a consumer's acknowledgement committed
#: with its effects (``MemoryBus.journal_settler``).
JournalSettler = Callable[[Any, Collection[int]], None]


class SettlingJournal(Protocol):
    """A ``Journal`` whose records a consumer on the same database may remove itself."""

    def settler_for(self, database: object) -> JournalSettler | None:
        """The remover to run in ``database``'s transactions; None if the journal is elsewhere."""


class Journal(Protocol):
    """Where the embedded bus keeps what it accepted."""

    def load(self) -> list[JournalRecord]:
        """
        Every record left, by ``seq``. Called once, at start-up, before
        anything is served (it blocks, as the migrations do).
        """

    def write(self, batch: JournalBatch) -> Deferred[None]:
        """Apply ``batch`` in one transaction; fires once it is durable."""


class InMemoryJournal:
    """A ``Journal`` in this process's memory: writes succeed at once, nothing survives it."""

    def __init__(self) -> None:
        self.records: dict[int, JournalRecord] = {}
        #: How many writes were made (tests check the group commit with it).
        self.writes = 0

    def load(self) -> list[JournalRecord]:
        return [self.records[seq] for seq in sorted(self.records)]

    def write(self, batch: JournalBatch) -> Deferred[None]:
        apply_batch(self.records, batch)
        self.writes += 1
        return succeed(None)


def apply_batch(records: dict[int, JournalRecord], batch: JournalBatch) -> None:
    """``batch`` applied to ``records`` (by seq), as a store applies it."""
    for record in batch.added:
        records[record.seq] = record
    for seq, mark in batch.marked.items():
        if seq in records:
            records[seq] = attrs.evolve(records[seq], dead=mark)
    for seq in batch.removed:
        records.pop(seq, None)


#: Who waits for records to be durable: ``(then, args)``, called ``then(result, *args)``.
_Waiter = tuple[Callable[..., object], tuple[Any, ...]]


class _Call(Protocol):
    def active(self) -> bool: ...


class _Clock(Protocol):
    """The part of ``IReactorTime`` used here."""

    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any) -> _Call: ...


class GroupCommit:
    """
    Writes journal changes in batches: at most one write in flight; what
    arrives meanwhile goes in the next one.

    ``add`` returns a Deferred that fires once its records are durable (or
    fails with the write's failure); ``add_then`` calls a function then, with
    no Deferred (the bus's publish: one per message). Marks and removals are not waited for: losing
    one in a crash only redelivers a settled message, which consumers
    recognise by its id; a failed write keeps them for the next.
    """

    log = Logger()

    def __init__(self, journal: Journal, clock: _Clock | None = None) -> None:
        """
        With a ``clock``, settlements (marks, removals) wait for the end of the
        reactor turn: the acks of a consumer's batch arrive in one turn, and go
        in one write rather than a first write of one removal and a second of
        the rest. Without, each change starts a write at once if none is in flight.
        """
        self._journal = journal
        self._clock = clock
        self._settling: _Call | None = None
        self._pending = JournalBatch()
        #: Who waits for the pending records: ``(then, args)``, called ``then(result, *args)``.
        self._waiters: list[_Waiter] = []
        self._in_flight = False
        self._idle_waiters: list[Deferred[None]] = []

    @property
    def busy(self) -> bool:
        return self._in_flight or bool(self._pending)

    def add(self, records: list[JournalRecord]) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        self.add_then(records, fire_deferred, waiter)
        return waiter

    def add_then(
        self, records: list[JournalRecord], then: Callable[..., object], *args: Any
    ) -> None:
        """
        ``then(None, *args)`` once ``records`` are durable, ``then(failure,
        *args)`` if their write failed (what ``then`` raises is logged).
        """
        self._pending.added.extend(records)
        self._waiters.append((then, args))
        self._flush()

    def mark(self, seq: int, mark: DeadMark | None) -> None:
        self._pending.marked[seq] = mark
        self._settle()

    def remove(self, seq: int) -> None:
        pending = self._pending
        if pending.marked:
            pending.marked.pop(seq, None)
        pending.removed.add(seq)
        if self._settling is None:
            # (Asked here first: a consumer's batch settles hundreds in one turn.)
            self._settle()

    def _settle(self) -> None:
        if self._clock is None:
            self._flush()
        elif self._settling is None and not self._in_flight:
            # (A write in flight takes what is pending when it ends.)
            self._settling = self._clock.callLater(0, self._settled)

    def _settled(self) -> None:
        self._settling = None
        self._flush()

    def when_idle(self) -> Deferred[None]:
        """Fires once nothing is pending or being written (a stop waits for it)."""
        if not self.busy:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._idle_waiters.append(waiter)
        self._flush()
        return waiter

    def _flush(self) -> None:
        if self._in_flight or not self._pending:
            if not self.busy:
                idle, self._idle_waiters = self._idle_waiters, []
                for waiter in idle:
                    waiter.callback(None)
            return
        batch, self._pending = self._pending, JournalBatch()
        waiters, self._waiters = self._waiters, []
        self._in_flight = True
        try:
            d = self._journal.write(batch)
        except Exception:
            d = Deferred()
            d.errback(Failure())
        d.addCallbacks(
            self._written, self._failed, callbackArgs=(waiters,), errbackArgs=(batch, waiters)
        )

    def _written(self, _: None, waiters: list[_Waiter]) -> None:
        self._in_flight = False
        _hand_on(waiters, None)
        self._flush()

    def _failed(
        self,
        failure: Failure,
        batch: JournalBatch,
        waiters: list[_Waiter],
    ) -> None:
        self._in_flight = False
        self.log.failure(
            "Bus journal write failed ({added} new, {settled} settled); publishes refused",
            failure,
            added=len(batch.added),
            settled=len(batch.removed),
        )
        # Settlements are kept for the next write (what came since wins).
        # Not retried at once: with the database down that would spin; the
        # next change (or a stop's when_idle) writes them.
        for seq, mark in batch.marked.items():
            if seq not in self._pending.removed:
                self._pending.marked.setdefault(seq, mark)
        for seq in batch.removed:
            if seq not in self._pending.marked:
                self._pending.removed.add(seq)
        _hand_on(waiters, failure)
        if self._waiters:
            # Publishes that came meanwhile get their own try.
            self._flush()
            return
        # A stop waiting for the journal is not kept waiting by a database
        # that is gone: what is left is only redelivered after a restart.
        idle, self._idle_waiters = self._idle_waiters, []
        for waiter in idle:
            waiter.callback(None)


def _hand_on(waiters: list[_Waiter], result: Failure | None) -> None:
    """Each waiter's ``then(result, *args)``; one that raises does not keep the rest waiting."""
    for then, args in waiters:
        try:
            then(result, *args)
        except Exception:
            GroupCommit.log.failure("A journal write's waiter failed ({then})", then=then)
