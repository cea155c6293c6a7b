"""
CSMS-to-charger calls over one connection.

OCPP-J allows one outstanding CALL per direction: commands wait in a queue
behind the one in flight, are correlated with the answer by unique id, and fail
with a clear error on timeout, on a CALLERROR, or when the charger goes away.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ocppd.logs import Logger
from ocppd.metrics.ocpp import CALLRESULT, CANCELLED, DISCONNECTED, TIMEOUT, OcppMetrics
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.frames import Call, CallError, CallResult
from ocppd.ocpp.schemas import SchemaRegistry


class CommandError(Exception):
    """A command could not be carried out; subclasses say why."""


class ChargerNotConnected(CommandError):
    """The charger has no open connection (on this node)."""


class ChargerDisconnected(CommandError):
    """The connection closed before the charger answered."""


class CommandTimeout(CommandError):
    """The charger did not answer within the timeout."""


class InvalidCommand(CommandError):
    """The command's payload does not satisfy its OCPP schema; never sent."""

    def __init__(self, error: OcppError) -> None:
        super().__init__(f"{error.code}: {error.description}")
        self.error = error


class CallErrorReceived(CommandError):
    """The charger answered with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any]) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details


class InvalidReply(CommandError):
    """The charger's CALLRESULT does not satisfy the response schema."""

    def __init__(self, error: OcppError, payload: dict[str, Any]) -> None:
        super().__init__(f"{error.code}: {error.description}")
        self.error = error
        self.payload = payload


@attrs.define
class _Pending:
    call: Call
    deferred: Deferred[dict[str, Any]]
    timeout: IDelayedCall | None = None
    #: When it was sent to the charger (the clock's seconds); None while queued.
    sent_at: float | None = None


class CommandQueue:
    """
    The outbound half of one charger connection.

    ``send`` writes a frame on the socket; ``on_sent`` and ``on_reply`` let the
    caller publish the traffic (for the OCPP message log).
    """

    __slots__ = (
        "_charge_point_id",
        "_clock",
        "_closed",
        "_in_flight",
        "_metrics",
        "_on_reply",
        "_on_sent",
        "_queue",
        "_schemas",
        "_send",
        "_timeout",
    )

    log = Logger()

    def __init__(
        self,
        charge_point_id: str,
        *,
        send: Callable[[Call], None],
        schemas: SchemaRegistry,
        clock: IReactorTime,
        timeout: float,
        on_sent: Callable[[Call], None] = lambda call: None,
        on_reply: Callable[[Call, CallResult | CallError], None] = lambda call, reply: None,
        metrics: OcppMetrics | None = None,
    ) -> None:
        self._charge_point_id = charge_point_id
        self._send = send
        self._schemas = schemas
        self._clock = clock
        self._timeout = timeout
        self._on_sent = on_sent
        self._on_reply = on_reply
        self._metrics = metrics
        # A short list: commands to one charger are few (and a deque is 760 bytes).
        self._queue: list[_Pending] = []
        self._in_flight: _Pending | None = None
        self._closed: Exception | None = None

    @property
    def pending(self) -> int:
        """Commands queued or in flight."""
        return len(self._queue) + (self._in_flight is not None)

    def call(
        self, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Deferred[dict[str, Any]]:
        """
        Send ``action`` to the charger; fire with its CALLRESULT payload.

        The timeout runs from now, queueing included: it is the caller's
        deadline, not the charger's.
        """
        if self._closed is not None:
            raise ChargerDisconnected(str(self._closed))
        try:
            self._schemas.validate_request(action, payload)
        except OcppError as e:
            raise InvalidCommand(e) from None
        pending = _Pending(Call(uuid.uuid4().hex, action, payload), Deferred(self._cancel))
        pending.timeout = self._clock.callLater(
            self._timeout if timeout is None else timeout, self._expire, pending
        )
        self._queue.append(pending)
        self._send_next()
        return pending.deferred

    def reply_received(self, reply: CallResult | CallError) -> None:
        """A CALLRESULT or CALLERROR arrived from the charger."""
        pending = self._in_flight
        if pending is None or pending.call.unique_id != reply.unique_id:
            self.log.warn(
                "Dropping a reply from {charge_point_id} that matches no outstanding call "
                "(unique id {unique_id}; it may have timed out)",
                charge_point_id=self._charge_point_id,
                unique_id=reply.unique_id,
            )
            return
        self._in_flight = None
        self._on_reply(pending.call, reply)
        if self._metrics is not None and pending.sent_at is not None:
            outcome = CALLRESULT if isinstance(reply, CallResult) else reply.code
            round_trip = self._clock.seconds() - pending.sent_at
            self._metrics.command_settled(pending.call.action, outcome, round_trip)
        self._settle(pending, self._outcome(pending.call, reply))
        self._send_next()

    def connection_lost(self, reason: str = "connection closed") -> None:
        """Fail everything queued or in flight: the charger cannot answer any more."""
        self._closed = ChargerDisconnected(reason)
        everything = ([self._in_flight] if self._in_flight else []) + list(self._queue)
        self._in_flight = None
        self._queue.clear()
        for pending in everything:
            if self._metrics is not None and not pending.deferred.called:
                self._metrics.command_settled(pending.call.action, DISCONNECTED, None)
            self._settle(pending, ChargerDisconnected(reason))

    def _outcome(self, call: Call, reply: CallResult | CallError) -> dict[str, Any] | Exception:
        if isinstance(reply, CallError):
            return CallErrorReceived(reply.code, reply.description, dict(reply.details))
        try:
            self._schemas.validate_response(call.action, reply.payload)
        except OcppError as e:
            return InvalidReply(e, reply.payload)
        return reply.payload

    def _send_next(self) -> None:
        if self._in_flight is not None or not self._queue:
            return
        pending = self._queue.pop(0)
        self._in_flight = pending
        if self._metrics is not None:
            pending.sent_at = self._clock.seconds()
        self._send(pending.call)
        self._on_sent(pending.call)

    def _expire(self, pending: _Pending) -> None:
        pending.timeout = None
        if self._in_flight is pending:
            # The charger may still answer; reply_received then drops it.
            self._in_flight = None
        else:
            self._queue.remove(pending)
        if self._metrics is not None:
            self._metrics.command_settled(pending.call.action, TIMEOUT, None)
        self._settle(pending, CommandTimeout(f"{pending.call.action} timed out"))
        self._send_next()

    def _cancel(self, deferred: Deferred[dict[str, Any]]) -> None:
        for pending in [self._in_flight, *self._queue]:
            if pending is not None and pending.deferred is deferred:
                if pending is self._in_flight:
                    self._in_flight = None
                else:
                    self._queue.remove(pending)
                if pending.timeout is not None and pending.timeout.active():
                    pending.timeout.cancel()
                if self._metrics is not None:
                    self._metrics.command_settled(pending.call.action, CANCELLED, None)
                self._send_next()
                return

    @staticmethod
    def _settle(pending: _Pending, outcome: dict[str, Any] | Exception) -> None:
        if pending.timeout is not None and pending.timeout.active():
            pending.timeout.cancel()
        pending.timeout = None
        if pending.deferred.called:
            return
        if isinstance(outcome, Exception):
            pending.deferred.errback(outcome)
        else:
            pending.deferred.callback(outcome)


__all__ = [
    "CallErrorReceived",
    "ChargerDisconnected",
    "ChargerNotConnected",
    "CommandError",
    "CommandQueue",
    "CommandTimeout",
    "InvalidCommand",
    "InvalidReply",
]
