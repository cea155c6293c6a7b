"""
A charger's outgoing CALLs: one at a time, and transaction messages kept.

OCPP-J allows one outstanding CALL per direction (section 4.1.1). A real
charger also keeps its transaction messages (StartTransaction,
StopTransaction, MeterValues) until the central system has answered them,
across lost connections, and resends them in order after reconnecting
(OCPP 1.6 section 4.10 "Transaction-related messages"): the billing depends
on them. Other messages (Heartbeat, StatusNotification) are worth nothing
once the connection they were meant for is gone, so they fail instead.

A payload may be built at send time rather than at queueing time: a
MeterValues queued while offline names a ``transactionId`` that only the
answer to the StartTransaction ahead of it will tell.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ocppd.logs import Logger
from ocppd.ocpp.actions import TRANSACTION_ACTIONS
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.frames import Call, CallError, CallResult
from ocppd.ocpp.schemas import SchemaRegistry

#: Builds a payload just before it is sent; ``None`` means "nothing to send
#: any more" (e.g. the session it belonged to never started).
PayloadBuilder = Callable[[], dict[str, Any] | None]


class OutboxError(Exception):
    """An outgoing CALL did not get a usable answer; subclasses say why."""


class Disconnected(OutboxError):
    """The connection closed before the answer (never raised for transaction messages)."""


class Timeout(OutboxError):
    """No answer within the timeout."""


class Refused(OutboxError):
    """The central system answered with a CALLERROR."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


class InvalidAnswer(OutboxError):
    """The CALLRESULT does not satisfy its response schema, or our request failed its own."""


@attrs.define
class _Outgoing:
    action: str
    build: PayloadBuilder
    deferred: Deferred[dict[str, Any] | None]
    transactional: bool
    attempts: int = 0


@attrs.define
class _InFlight:
    item: _Outgoing
    call: Call
    timer: IDelayedCall


class Outbox:
    """
    The outbound half of one charger's OCPP-J conversation.

    ``may_send(action)`` is asked before each send: a charger must not send
    anything but BootNotification before the central system accepted it.
    Transaction messages are retried up to ``attempts`` times after a
    timeout or a CALLERROR, ``retry_interval`` times the attempt number
    apart (the TransactionMessageAttempts/RetryInterval keys of OCPP 1.6);
    a lost connection does not count as an attempt.
    """

    log = Logger()

    def __init__(
        self,
        charge_point_id: str,
        *,
        schemas: SchemaRegistry,
        clock: IReactorTime,
        timeout: float,
        may_send: Callable[[str], bool],
        attempts: int = 3,
        retry_interval: float = 5.0,
    ) -> None:
        self._charge_point_id = charge_point_id
        self._schemas = schemas
        self._clock = clock
        self.timeout = timeout
        self._may_send = may_send
        self.attempts = attempts
        self.retry_interval = retry_interval
        self._queue: deque[_Outgoing] = deque()
        self._in_flight: _InFlight | None = None
        self._send: Callable[[str], None] | None = None
        self._retry: IDelayedCall | None = None
        #: Frames sent, for the simulator's summary.
        self.sent = 0

    @property
    def queued_actions(self) -> list[str]:
        """The actions waiting or in flight, in sending order."""
        head = [self._in_flight.item.action] if self._in_flight else []
        return head + [item.action for item in self._queue]

    def call(
        self,
        action: str,
        payload: dict[str, Any] | PayloadBuilder,
        *,
        front: bool = False,
    ) -> Deferred[dict[str, Any] | None]:
        """
        Queue a CALL; fire with the validated answer payload (``None`` if the
        builder decided there was nothing to send).

        ``front`` puts it before everything queued (but never before the
        call in flight): a BootNotification goes first after a reconnect.
        """
        build: PayloadBuilder
        if isinstance(payload, dict):
            self._check(action, payload)
            fixed = payload
            build = lambda: fixed  # noqa: E731
        else:
            build = payload
        item = _Outgoing(action, build, Deferred(), action in TRANSACTION_ACTIONS)
        if front:
            self._queue.appendleft(item)
        else:
            self._queue.append(item)
        self.pump()
        return item.deferred

    def online(self, send: Callable[[str], None]) -> None:
        """A connection opened; ``send`` writes one text frame on it."""
        self._send = send
        self.pump()

    def offline(self) -> None:
        """
        The connection is gone: keep the transaction messages (the one in
        flight back at the head), fail the others.
        """
        self._send = None
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._in_flight is not None:
            flight, self._in_flight = self._in_flight, None
            flight.timer.cancel()
            self._queue.appendleft(flight.item)
        kept: deque[_Outgoing] = deque()
        for item in self._queue:
            if item.transactional:
                kept.append(item)
            else:
                item.deferred.errback(Disconnected(f"{item.action}: connection lost"))
        self._queue = kept

    def clear(self, reason: str) -> None:
        """Fail everything, transaction messages included (the simulator stops)."""
        self.offline()
        queue, self._queue = self._queue, deque()
        for item in queue:
            item.deferred.errback(Disconnected(f"{item.action}: {reason}"))

    def reply_received(self, reply: CallResult | CallError) -> None:
        """A CALLRESULT or CALLERROR arrived."""
        flight = self._in_flight
        if flight is None or flight.call.unique_id != reply.unique_id:
            self.log.info(
                "{charge_point_id}: dropping an answer to no outstanding call ({unique_id})",
                charge_point_id=self._charge_point_id,
                unique_id=reply.unique_id,
            )
            return
        self._in_flight = None
        flight.timer.cancel()
        item = flight.item
        if isinstance(reply, CallError):
            self._failed(item, Refused(reply.code, reply.description))
        else:
            try:
                self._schemas.validate_response(item.action, reply.payload)
            except OcppError as e:
                # Resending would get the same answer: fail it whatever it is.
                item.deferred.errback(InvalidAnswer(f"{item.action}: {e.code} {e.description}"))
            else:
                item.deferred.callback(reply.payload)
        self.pump()

    def pump(self) -> None:
        """Send the next CALL if the line is free and the charger may send it."""
        while (
            self._send is not None
            and self._in_flight is None
            and self._retry is None
            and self._queue
            and self._may_send(self._queue[0].action)
        ):
            item = self._queue.popleft()
            try:
                payload = item.build()
                if payload is not None:
                    self._check(item.action, payload)
            except InvalidAnswer as e:
                item.deferred.errback(e)
                continue
            if payload is None:
                item.deferred.callback(None)
                continue
            call = Call(uuid.uuid4().hex, item.action, payload)
            timer = self._clock.callLater(self.timeout, self._expired, call.unique_id)
            self._in_flight = _InFlight(item, call, timer)
            self.sent += 1
            self._send(call.marshal())

    def _check(self, action: str, payload: dict[str, Any]) -> None:
        try:
            self._schemas.validate_request(action, payload)
        except OcppError as e:
            raise InvalidAnswer(f"our own {action} is invalid: {e.description}") from None

    def _expired(self, unique_id: str) -> None:
        flight = self._in_flight
        if flight is None or flight.call.unique_id != unique_id:
            return
        self._in_flight = None
        self._failed(flight.item, Timeout(f"{flight.item.action} got no answer in time"))
        self.pump()

    def _failed(self, item: _Outgoing, error: OutboxError) -> None:
        item.attempts += 1
        if not item.transactional or item.attempts >= self.attempts:
            item.deferred.errback(error)
            return
        self.log.info(
            "{charge_point_id}: {action} failed ({error}); attempt {attempt} follows",
            charge_point_id=self._charge_point_id,
            action=item.action,
            error=str(error),
            attempt=item.attempts + 1,
        )
        self._queue.appendleft(item)
        self._retry = self._clock.callLater(self.retry_interval * item.attempts, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self.pump()
