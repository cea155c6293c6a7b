"""
One charger's OCPP-J conversation, independent of the WebSocket library.

The Autobahn protocol (``protocol.py``) only moves text frames in and out of a
``ChargerConnection``; framing, validation, dispatch to the handlers and the
outbound command queue live here, so they are tested with plain objects.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from ocppd.bus.interface import BusError
from ocppd.bus.outcome import Outcome
from ocppd.logs import Logger
from ocppd.metrics.ocpp import CALLRESULT, OcppMetrics
from ocppd.ocpp import actions, errors
from ocppd.ocpp.commands import CommandQueue
from ocppd.ocpp.errors import AnswerTimedOut, OcppError
from ocppd.ocpp.frames import (
    Call,
    CallError,
    CallResult,
    FrameError,
    marshal_result,
    parse_frame,
)
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.ratelog import RepeatLog

#: A charger must wait for our answer before its next CALL (OCPP-J 4.1.1); we
#: queue a few rather than fail a slightly impatient one, but not without bound.
MAX_QUEUED_CALLS = 16


class MessageTransport(Protocol):
    """What a connection needs from the socket."""

    def send_text(self, text: str) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class BuiltAnswer(dict[str, Any]):
    """
    An answer our own code built only from constants and our own clock
    (``IsoNow``), so valid against its response schema by construction: it is
    sent without being checked again (``tests/ocpp/test_handlers.py`` checks
    each kind against the schema). An answer holding anything from outside
    the handler (the store, the tag cache, an operator's setting) is a plain
    ``dict`` and is checked before it is sent.
    """

    __slots__ = ()


class CallHandler(Protocol):
    """Answers a charger's CALL; see ``ocppd.ocpp.handlers``."""

    def handle(
        self, connection: ChargerConnection, call: Call
    ) -> dict[str, Any] | Deferred[dict[str, Any]] | Outcome:
        """
        The answer, as a plain value when it is ready at once (most calls),
        an ``Outcome`` of it when it waits for the bus alone.
        """
        ...


class ChargerConnection:
    """
    The state of one open charger socket.

    A node holds thousands of these for days, mostly idle: slots, no
    per-connection closures, and the outbound command queue made only when a
    command is first sent (most sockets never get one between reconnects).
    """

    __slots__ = (
        "_call_timeout",
        "_clock",
        "_commands",
        "_failures",
        "_handler",
        "_handling",
        "_inbound",
        "_lost",
        "_metrics",
        "_schemas",
        "_traffic",
        "_transport",
        "charge_point_id",
        "connection_id",
        "open",
        "registration_status",
    )

    log = Logger()

    def __init__(
        self,
        charge_point_id: str,
        *,
        connection_id: str,
        registration_status: str,
        transport: MessageTransport,
        handler: CallHandler,
        schemas: SchemaRegistry,
        traffic: TrafficPublisher,
        clock: IReactorTime,
        call_timeout: float,
        failures: RepeatLog | None = None,
        metrics: OcppMetrics | None = None,
    ) -> None:
        self.charge_point_id = charge_point_id
        #: The node's OCPP counts while metrics are on (``[metrics] listen``).
        self._metrics = metrics
        # Shared by every connection of a node (the factory's): an outage
        # fails every charger's calls at once, and one line a minute with a
        # count says so better than a line (or a traceback) per call.
        self._failures = failures if failures is not None else RepeatLog(self.log, clock)
        self.connection_id = connection_id
        #: "Accepted", "Pending" or "Rejected"; a BootNotification may change it.
        self.registration_status = registration_status
        self._transport = transport
        self._handler = handler
        self._schemas = schemas
        self._traffic = traffic
        self._clock = clock
        self._call_timeout = call_timeout
        # A list, not a deque: at most MAX_QUEUED_CALLS, and an empty deque
        # costs 760 bytes against a list's 56, on every idle connection.
        self._inbound: list[Call] = []
        self._handling = False
        self.open = True
        self._commands: CommandQueue | None = None
        #: Why the connection was lost (a command queue made afterwards fails at once).
        self._lost: str | None = None

    @property
    def commands(self) -> CommandQueue:
        """The outbound command queue, made at its first use."""
        if self._commands is None:
            self._commands = CommandQueue(
                self.charge_point_id,
                send=self._send_call,
                schemas=self._schemas,
                clock=self._clock,
                timeout=self._call_timeout,
                on_sent=self._command_sent,
                on_reply=self._command_reply,
                metrics=self._metrics,
            )
            if self._lost is not None:
                self._commands.connection_lost(self._lost)
        return self._commands

    def _send_call(self, call: Call) -> None:
        self._send(call.marshal())

    def _command_sent(self, call: Call) -> None:
        self._traffic.command_sent(self.charge_point_id, call)

    def _command_reply(self, call: Call, reply: CallResult | CallError) -> None:
        self._traffic.command_reply(self.charge_point_id, call, reply)

    def text_received(self, text: str) -> None:
        """A text frame arrived from the charger."""
        try:
            frame = parse_frame(text)
        except FrameError as e:
            answer = CallError(e.unique_id, e.code, e.description, e.details)
            if e.message_type_id in (CallResult.MESSAGE_TYPE, CallError.MESSAGE_TYPE):
                # OCPP-J answers only CALLs: a broken reply fails our own command.
                self.log.warn(
                    "Malformed reply from {charge_point_id}: {code} {description}",
                    charge_point_id=self.charge_point_id,
                    code=e.code,
                    description=e.description,
                )
                self._traffic.rejected(self.charge_point_id, text, answer)
                if e.unique_id != "-1":
                    self.commands.reply_received(answer)
                return
            self._reject(text, answer)
            return
        if isinstance(frame, Call):
            self._call_received(text, frame)
        else:
            self.commands.reply_received(frame)

    def connection_lost(self, reason: str = "connection closed") -> None:
        self.open = False
        self._inbound.clear()
        self._lost = reason
        if self._commands is not None:
            self._commands.connection_lost(reason)

    def call(
        self, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> Deferred[dict[str, Any]]:
        """Send a command to this charger (see ``CommandQueue.call``)."""
        return self.commands.call(action, payload, timeout=timeout)

    def close(self, code: int, reason: str) -> None:
        self._transport.close(code, reason)

    def _call_received(self, text: str, call: Call) -> None:
        refusal = actions.classify_inbound(call.action)
        if refusal is not None:
            description = (
                f"{call.action} is not an OCPP 1.6 action"
                if refusal == errors.NOT_IMPLEMENTED
                else f"{call.action} is not handled by a central system"
            )
            self._reject(text, CallError(call.unique_id, refusal, description), call.action)
            return
        try:
            self._schemas.validate_request(call.action, call.payload)
        except OcppError as e:
            self._reject(
                text, CallError(call.unique_id, e.code, e.description, e.details), call.action
            )
            return
        if len(self._inbound) >= MAX_QUEUED_CALLS:
            self._reject(
                text,
                CallError(call.unique_id, errors.GENERIC_ERROR, "too many outstanding calls"),
                call.action,
            )
            return
        self._inbound.append(call)
        self._handle_next()

    def _handle_next(self) -> None:
        # One CALL at a time, in arrival order: a MeterValues must not overtake
        # the StartTransaction before it. An answer ready at once is sent at
        # once, with no Deferred to carry it (most calls: the request path).
        metrics = self._metrics
        while not self._handling and self._inbound:
            call = self._inbound.pop(0)
            # The answer's latency runs from here: a charger waits for each
            # answer before its next CALL (OCPP-J 4.1.1), so this is its arrival.
            started = self._clock.seconds() if metrics is not None else 0.0
            try:
                answered = self._handler.handle(self, call)
            except Exception:
                outcome = self._failed(Failure(), call)
            else:
                if type(answered) is Outcome:
                    # Ready, waiting for the bus (every transaction message).
                    self._handling = True
                    answered.bind(self._settled, call, started)
                    return
                if isinstance(answered, Deferred):
                    self._handling = True
                    # One callback for both outcomes: a Deferred per waiting call
                    # (every transaction message) is run on the reactor anyway.
                    answered.addBoth(self._settled, call, started)
                    return
                outcome = self._answer_logged(cast(dict[str, Any], answered), call)
            if metrics is not None:
                metrics.answered(call.action, outcome, self._clock.seconds() - started)

    def _settled(self, result: dict[str, Any] | Failure, call: Call, started: float) -> None:
        if isinstance(result, Failure):
            outcome = self._failed(result, call)
        else:
            outcome = self._answer_logged(result, call)
        if self._metrics is not None:
            self._metrics.answered(call.action, outcome, self._clock.seconds() - started)
        self._handling = False
        self._handle_next()

    def _answer_logged(self, response: dict[str, Any], call: Call) -> str:
        """Answer ``call``; the outcome (``CALLRESULT``, or the CALLERROR's code)."""
        try:
            return self._answer(response, call)
        except Exception:
            self.log.failure(
                "Answering {action} from {charge_point_id} failed",
                action=call.action,
                charge_point_id=self.charge_point_id,
            )
            return errors.INTERNAL_ERROR

    def _answer(self, response: dict[str, Any], call: Call) -> str:
        try:
            if type(response) is not BuiltAnswer:
                self._schemas.validate_response(call.action, response)
        except OcppError as e:
            # Our own bug; the charger still deserves an answer.
            self.log.error(
                "Our {action} response failed its schema: {error}",
                action=call.action,
                error=e.description,
            )
            self._send(
                CallError(call.unique_id, errors.INTERNAL_ERROR, "invalid response").marshal()
            )
            return errors.INTERNAL_ERROR
        # CallResult(call.unique_id, response).marshal(), without attrs checking
        # again a uniqueId parse_frame has checked.
        self._send(marshal_result(call.unique_id, response))
        return CALLRESULT

    def _failed(self, failure: Failure, call: Call) -> str:
        """Answer ``call`` with the CALLERROR ``failure`` calls for; its code."""
        if isinstance(failure.value, OcppError):
            error = failure.value
            self._send(
                CallError(call.unique_id, error.code, error.description, error.details).marshal()
            )
            return error.code
        if isinstance(failure.value, AnswerTimedOut):
            # The store or the broker is stalled: an error the charger
            # resends (a late result of the abandoned work is dropped).
            self._failures.warn(
                ("timed out", call.action),
                "Refused {action} from {charge_point_id}: {error}",
                action=call.action,
                charge_point_id=self.charge_point_id,
                error=failure.getErrorMessage(),
            )
            self._send(CallError(call.unique_id, errors.INTERNAL_ERROR, "try again").marshal())
            return errors.INTERNAL_ERROR
        if isinstance(failure.value, BusError):
            # Expected while the broker is away; the charger retries as OCPP intends.
            self._failures.warn(
                ("refused", call.action),
                "Refused {action} from {charge_point_id}: the bus did not accept it ({error})",
                action=call.action,
                charge_point_id=self.charge_point_id,
                error=failure.getErrorMessage(),
            )
            self._send(CallError(call.unique_id, errors.INTERNAL_ERROR, "try again").marshal())
            return errors.INTERNAL_ERROR
        # Unexpected, or the store is down: the first of a kind with its
        # traceback, then a count a minute.
        self._failures.failure(
            ("failed", call.action, type(failure.value)),
            "Handling {action} from {charge_point_id} failed",
            failure,
            action=call.action,
            charge_point_id=self.charge_point_id,
        )
        # No answer the charger could take as success: it retries later.
        self._send(CallError(call.unique_id, errors.INTERNAL_ERROR, "internal error").marshal())
        return errors.INTERNAL_ERROR

    def _reject(self, raw: str, answer: CallError, action: str | None = None) -> None:
        self.log.info(
            "Rejected a frame from {charge_point_id}: {code} {description}",
            charge_point_id=self.charge_point_id,
            code=answer.code,
            description=answer.description,
        )
        self._send(answer.marshal())
        if self._metrics is not None:
            self._metrics.rejected(action, answer.code)
        self._traffic.rejected(self.charge_point_id, raw, answer, action)

    def _send(self, text: str) -> None:
        if self.open:
            self._transport.send_text(text)
