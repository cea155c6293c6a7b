"""
The outbox relay: publishes the events staged in the ``outbox`` table
(``ocppd.bus.outbox``) and forgets each once the bus has taken it.

One per node. It reads this node's rows in id order, a bounded batch at a
time, publishes a batch at once (on RabbitMQ the confirms overlap) and
deletes the rows the bus confirmed. While the bus refuses, it backs off
(0.5 s doubling to 30 s) and logs one line when the outage starts, at most
one a minute while it lasts, and one when it ends. It runs when woken (a
service staged rows and committed), every ``poll_interval`` seconds anyway
(rows of a node gone for good, adopted after ``adopt_after`` seconds), and
at start (rows a stopped node left). Delivery is at least once: a crash
between the bus's confirm and the deletion publishes a row again, with the
same envelope id, which consumers deduplicate.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from ocppd.bus.envelope import Envelope, EnvelopeError
from ocppd.bus.interface import IBus
from ocppd.logs import Logger
from ocppd.ratelog import RepeatLog
from ocppd.store import outbox as store
from ocppd.store.database import Database
from ocppd.timeutil import from_timestamp

#: Rows read and published at once.
BATCH = 100
#: Seconds between attempts while the bus refuses; the last repeats.
RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
#: Seconds between passes when nobody wakes the relay.
POLL_INTERVAL = 10.0
#: Seconds after which another node's rows are published by this one.
ADOPT_AFTER = 300.0
#: Seconds between log lines while an outage lasts.
LOG_EVERY = 60.0


class OutboxRelay:
    log = Logger()

    def __init__(
        self,
        database: Database,
        bus: IBus,
        *,
        node: str,
        clock: IReactorTime,
        batch: int = BATCH,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        poll_interval: float = POLL_INTERVAL,
        adopt_after: float = ADOPT_AFTER,
    ) -> None:
        self._database = database
        self._bus = bus
        self._node = node
        self._clock = clock
        self.batch = batch
        self.retry_delays = retry_delays
        self.poll_interval = poll_interval
        self.adopt_after = adopt_after
        self._running = False
        self._pass: Deferred[None] | None = None
        self._token: object | None = None
        self._again = False
        self._waiters: list[Deferred[None]] = []
        self._timer: IDelayedCall | None = None
        self._backing_off = False
        self._failures = 0
        self._refused = 0
        self._outage_since: float | None = None
        self._logged_at = 0.0
        #: Events published since start (for tests and the benchmark).
        self.published = 0
        # The store away fails every pass: its traceback once, then a count a minute.
        self._store_failures = RepeatLog(self.log, clock, interval=LOG_EVERY)

    def start(self) -> None:
        """Publish what is staged now, then whenever woken and every ``poll_interval``."""
        self._running = True
        self.wake()

    def stop(self) -> Deferred[None]:
        """Stop; fires once a pass under way has ended. Unpublished rows stay for the next start."""
        self._running = False
        self._cancel_timer()
        self._release_waiters()
        return self._pass if self._pass is not None else succeed(None)

    def wake(self) -> Deferred[None]:
        """
        Publish what is staged now; fires when a pass that began after this
        call has ended, or at once while the relay backs off (the bus is down:
        nobody should wait for it) or is stopped. Never fails.
        """
        waiter: Deferred[None] = Deferred()
        if not self._running or self._backing_off:
            waiter.callback(None)
            return waiter
        self._waiters.append(waiter)
        if self._pass is not None:
            self._again = True
        else:
            self._begin()
        return waiter

    def _begin(self) -> None:
        self._cancel_timer()
        token = object()
        self._token = token
        running = self._run(token)
        if self._token is token:
            # A pass can end before returning (the database refused at once).
            self._pass = None if running.called else running

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _release_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _timer_fired(self) -> None:
        self._timer = None
        self._backing_off = False
        if self._running and self._pass is None:
            self._begin()

    @inlineCallbacks
    def _run(self, token: object) -> Generator[Deferred[Any], Any, None]:
        done_waiting: list[Deferred[None]] = []
        try:
            while self._running:
                done_waiting.extend(self._waiters)
                self._waiters = []
                self._again = False
                try:
                    done = yield self._publish_all(done_waiting)
                except Exception:
                    self._store_failures.failure(
                        "store", "Outbox relay could not read or clear the outbox", Failure()
                    )
                    done = False
                if not done:
                    self._back_off()
                    return
                if not self._again:
                    break
            if self._running:
                self._timer = self._clock.callLater(self.poll_interval, self._timer_fired)
        finally:
            if self._token is token:
                self._pass = None
            if self._backing_off or not self._running:
                done_waiting.extend(self._waiters)
                self._waiters = []
            # Last: a waiter's callbacks may wake the relay again.
            for waiter in done_waiting:
                waiter.callback(None)

    @inlineCallbacks
    def _publish_all(self, waiting: list[Deferred[None]]) -> Generator[Deferred[Any], Any, bool]:
        """
        Publish batches until none is left; False if the bus refused one.
        ``waiting`` fire after the first batch: with a backlog their rows may
        come later, but a request need not wait for the whole backlog.
        """
        while self._running:
            adopt_before = from_timestamp(self._clock.seconds()) - timedelta(
                seconds=self.adopt_after
            )
            rows = yield self._database.run(
                store.pending_events, node=self._node, adopt_before=adopt_before, limit=self.batch
            )
            if not rows:
                return True
            results = yield DeferredList([self._publish(row) for row in rows], consumeErrors=True)
            taken = [row.id for row, (ok, _) in zip(rows, results, strict=True) if ok]
            refused = [failure for ok, failure in results if not ok]
            if taken:
                yield self._database.run(store.remove_events, taken)
                self.published += len(taken)
            if refused:
                self._refused += len(refused)
                self._note_refusal(refused[0].getErrorMessage(), len(rows) - len(taken))
                return False
            self._note_recovery()
            released, waiting[:] = list(waiting), []
            for waiter in released:
                waiter.callback(None)
            if len(rows) < self.batch:
                return True
        return True

    def _publish(self, row: store.OutboxRow) -> Deferred[None]:
        try:
            envelope = Envelope.from_bytes(row.envelope.encode())
        except EnvelopeError as e:
            # Written by ``Outbox.stage``, so a bug or a hand-edited row: it
            # would block every later one, so it is taken out (and said so).
            self.log.error(
                "Outbox row {row_id} ({routing_key}) is no envelope, dropped: {error}",
                row_id=row.id,
                routing_key=row.routing_key,
                error=str(e),
            )
            return succeed(None)
        return self._bus.publish(row.routing_key, envelope)

    def _back_off(self) -> None:
        delay = self.retry_delays[min(self._failures, len(self.retry_delays) - 1)]
        self._failures += 1
        self._backing_off = True
        if self._running:
            self._timer = self._clock.callLater(delay, self._timer_fired)

    def _note_refusal(self, error: str, kept: int) -> None:
        now = self._clock.seconds()
        if self._outage_since is None:
            self._outage_since = now
            self._logged_at = now
            self.log.warn(
                "The bus refuses domain events ({error}); {kept} kept in the outbox, "
                "retried with back-off",
                error=error,
                kept=kept,
            )
        elif now - self._logged_at >= LOG_EVERY:
            self._logged_at = now
            self.log.warn(
                "The bus still refuses domain events after {seconds} s ({refused} refused "
                "publishes); the outbox keeps them ({error})",
                seconds=round(now - self._outage_since),
                refused=self._refused,
                error=error,
            )

    def _note_recovery(self) -> None:
        self._failures = 0
        if self._outage_since is not None:
            self.log.info(
                "The bus takes domain events again after {seconds} s; the outbox is draining",
                seconds=round(self._clock.seconds() - self._outage_since),
            )
            self._outage_since = None
            self._refused = 0
