"""
The funds guard's stop: a session whose running cost reached the funds it
holds is stopped remotely, wherever its charger is connected.

The processor decides (``charging.stop.requested`` with reason ``funds``,
once per session); this consumer of the shared ``funds_stop`` queue (any
node takes each message) has the stop sent through the command router, on
the customer's behalf and audited as such. When the charger cannot be
reached (not connected anywhere, no answer, routing down) it tries again
after ``retry_delays`` (the last repeats) up to ``max_attempts`` sends,
while the session is still active. Idempotent on the envelope id: a message
handled before (claimed in ``processed_messages`` once done) is skipped; a
crash before the claim sends the stop again, which a stopped session
refuses harmlessly.

The stop itself is a ``StopSession`` callable the daemon wires in (the API's
command service, which audits it), so that consumers never import the API.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Generator, Sequence
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater

from ocppd.bounds import INT32_MAX
from ocppd.bus.interface import Delivery, IBus, IConsumer
from ocppd.logs import Logger
from ocppd.ocpp.handshake import CHARGE_POINT_ID
from ocppd.store import processed, transactions
from ocppd.store.database import Database
from ocppd.timeutil import from_timestamp

CONSUMER = "funds_stop"


class StopOutcome(enum.Enum):
    #: The charger answered (Accepted, or Rejected: it will not stop for us).
    ANSWERED = "answered"
    #: The charger could not be reached now (409, 503, 504): worth another try.
    UNREACHABLE = "unreachable"
    #: Nothing another try can change (no such customer, a CALLERROR).
    FAILED = "failed"


#: Sends RemoteStopTransaction for (user id, charge point id, session id), audited.
StopSession = Callable[[int, str, int], Deferred[StopOutcome]]


def _stop_request(payload: dict[str, Any]) -> tuple[int, str, int] | None:
    """(user id, charge point id, session id) of a funds stop, or None for anything else."""
    if payload.get("reason") != "funds":
        return None
    user_id = _id(payload.get("userId"))
    session_id = _id(payload.get("sessionId"))
    charge_point_id = payload.get("chargePointId")
    if user_id is None or session_id is None:
        return None
    if not isinstance(charge_point_id, str) or not CHARGE_POINT_ID.fullmatch(charge_point_id):
        return None
    return user_id, charge_point_id, session_id


def _id(value: Any) -> int | None:
    """A row id from a message, or None for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= INT32_MAX:
        return value
    return None


class FundsStopConsumer:
    log = Logger()
    #: Stops handled at once: each may wait minutes for an unreachable charger.
    concurrency = 20

    def __init__(
        self,
        bus: IBus,
        database: Database,
        stop_session: StopSession,
        *,
        clock: IReactorTime,
        retry_delays: Sequence[float] = (5, 15, 30, 60),
        max_attempts: int = 6,
    ) -> None:
        if max_attempts < 1 or not retry_delays:
            raise ValueError("at least one attempt and one retry delay")
        self._bus = bus
        self._database = database
        self._stop_session = stop_session
        self._clock = clock
        self._delays = tuple(retry_delays)
        self._max_attempts = max_attempts
        self._consumer: IConsumer | None = None
        #: The back-offs waiting now, cancelled by ``stop``.
        self._waits: set[Deferred[None]] = set()

    @inlineCallbacks
    def start(self, queue: str) -> Generator[Deferred[Any], Any, None]:
        self._consumer = yield self._bus.consume(queue, self.handle, self.concurrency)

    def stop(self) -> Deferred[None] | None:
        """
        Stop taking stops; a stop waiting for its next try fails (CancelledError),
        so the bus gives its message to another node (or this one after a restart).
        """
        consumer, self._consumer = self._consumer, None
        for wait in list(self._waits):
            wait.cancel()
        return None if consumer is None else consumer.stop()

    @inlineCallbacks
    def handle(self, delivery: Delivery) -> Generator[Deferred[Any], Any, None]:
        request = _stop_request(delivery.envelope.payload)
        if request is None:
            return  # a customer's own stop (sent by the API), or not ours to act on
        message_id = delivery.envelope.id
        done = yield self._database.run(processed.is_processed, CONSUMER, message_id)
        if done:
            return
        user_id, charge_point_id, session_id = request
        for attempt in range(1, self._max_attempts + 1):
            session = yield self._database.run(transactions.get_transaction, session_id)
            if session is None or session.status != "active":
                break  # stopped meanwhile (by the charger, the customer, or an earlier stop)
            outcome = yield self._stop_session(user_id, charge_point_id, session_id)
            if outcome is not StopOutcome.UNREACHABLE:
                break
            if attempt == self._max_attempts:
                self.log.error(
                    "Gave up stopping session {session_id} at {charge_point_id} for funds "
                    "after {attempts} attempts: the charger could not be reached",
                    session_id=session_id,
                    charge_point_id=charge_point_id,
                    attempts=attempt,
                )
                break
            delay = self._delays[min(attempt, len(self._delays)) - 1]
            self.log.info(
                "Session {session_id} at {charge_point_id}: charger unreachable, "
                "stopping again in {delay}s (attempt {attempt} of {max_attempts})",
                session_id=session_id,
                charge_point_id=charge_point_id,
                delay=delay,
                attempt=attempt,
                max_attempts=self._max_attempts,
            )
            wait = deferLater(self._clock, delay, lambda: None)
            self._waits.add(wait)
            try:
                yield wait
            finally:
                self._waits.discard(wait)
        now = from_timestamp(self._clock.seconds())
        yield self._database.run(processed.claim_message, CONSUMER, message_id, now=now)
