"""
Publishing of OCPP traffic on the bus: what chargers send us, what we answer,
the commands we send and their replies. The payload formats are documented in
``docs/bus.md``; the processor (``ocppd.consumers.processor``) reads them.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from ocppd.bus import topology
from ocppd.bus.interface import BusError, IBus
from ocppd.bus.outbox import Outbox
from ocppd.bus.outcome import Outcome
from ocppd.bus.publisher import EventPublisher
from ocppd.logs import Logger
from ocppd.ocpp.authorization_key import redact
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.frames import Call, CallError, CallResult
from ocppd.ratelog import RepeatLog
from ocppd.store.database import Database

#: A rejected frame is kept in the log only up to this many characters.
RAW_LOG_LIMIT = 2048


def error_dict(error: OcppError | CallError) -> dict[str, Any]:
    return {"code": error.code, "description": error.description, "details": dict(error.details)}


class HeartbeatSink(Protocol):
    """Where a Heartbeat goes instead of the bus (``ocppd.ocpp.last_seen.LastSeenWriter``)."""

    def seen(self, charge_point_id: str) -> None: ...


class TrafficPublisher:
    """
    Builds envelopes for OCPP traffic and publishes them. With ``heartbeats``
    (the message log keeps no Heartbeats), a charger's Heartbeat is not
    published: ``heartbeats`` writes its one effect, ``last_seen_at``
    (``ocppd.ocpp.last_seen``).
    """

    log = Logger()

    def __init__(
        self,
        bus: IBus,
        *,
        node: str,
        clock: IReactorTime,
        outbox: Outbox | None = None,
        database: Database | None = None,
        heartbeats: HeartbeatSink | None = None,
    ) -> None:
        self._node = node
        self._heartbeats = heartbeats
        self._events = EventPublisher(bus, node=node, clock=clock)
        #: While the bus is away every message is refused alike: one line a minute per kind.
        self._refusals = RepeatLog(self.log, clock)
        self._outbox = outbox
        self._database = database

    def _now(self) -> str:
        return self._events.now_iso()

    def _publish(
        self, routing_key: str, charge_point_id: str, payload: dict[str, Any], flow: bool = False
    ) -> Deferred[None]:
        return self._events.publish(
            routing_key, payload, charge_point_id=charge_point_id, flow=flow
        )

    def _publish_logged(
        self, routing_key: str, charge_point_id: str, payload: dict[str, Any]
    ) -> None:
        """
        Publish without making anyone wait; a failure is logged, never
        swallowed, and rate-limited: a refusal by the bus (broker away, queue
        full) as one warning per minute with a count, anything else (a bug)
        with its traceback, once a minute per exception class.
        """

        def failed(failure: Any) -> None:
            if failure.check(BusError):
                self._refusals.warn(
                    "refused",
                    "Publishing {routing_key} for {charge_point_id} refused: {error}",
                    routing_key=routing_key,
                    charge_point_id=charge_point_id,
                    error=failure.getErrorMessage(),
                )
                return
            self._refusals.failure(
                ("failed", failure.type),
                "Publishing {routing_key} for {charge_point_id} failed",
                failure,
                routing_key=routing_key,
                charge_point_id=charge_point_id,
            )

        self._publish(routing_key, charge_point_id, payload).addErrback(failed)

    def _publish_kept(
        self, routing_key: str, charge_point_id: str, payload: dict[str, Any]
    ) -> Deferred[None]:
        """
        Publish news that nobody would send again (a charger's connection
        came or went): if the bus refuses it, it is kept in the outbox and
        published by the relay once the bus is back. Fires when it is on the
        bus or in the outbox; never fails (a failure is logged).
        """

        def refused(failure: Failure) -> Deferred[None]:
            if self._outbox is None or self._database is None:
                failure_logged(failure)
                return succeed(None)
            self.log.warn(
                "Bus refused {routing_key} for {charge_point_id} ({error}); kept in the outbox",
                routing_key=routing_key,
                charge_point_id=charge_point_id,
                error=failure.getErrorMessage(),
            )
            staged = self._outbox.run(
                self._database, _nothing, lambda _: [(routing_key, payload, charge_point_id)]
            )
            return staged.addErrback(failure_logged)

        def failure_logged(failure: Failure) -> None:
            self.log.failure(
                "Publishing {routing_key} for {charge_point_id} failed",
                failure,
                routing_key=routing_key,
                charge_point_id=charge_point_id,
            )

        return self._publish(routing_key, charge_point_id, payload).addErrback(refused)

    def inbound(
        self, charge_point_id: str, call: Call, response: dict[str, Any], *, wait: bool
    ) -> Outcome | None:
        """
        A CALL from the charger and the answer we are about to send. With
        ``wait``, the caller answers only once the bus has the message and,
        on the embedded bus, once the processor's backlog is not above
        ``[bus] flow_limit`` (flow control: the charger waits for its answer
        before its next call, so the node answers no faster than it stores).
        """
        if self._heartbeats is not None and call.action == "Heartbeat":
            self._heartbeats.seen(charge_point_id)
            return None
        now = self._now()
        payload = {
            "uniqueId": call.unique_id,
            "action": call.action,
            "request": call.payload,
            "response": response,
            "receivedAt": now,
        }
        key = topology.ocpp_in(call.action)
        if wait:
            # The envelope's time is the stamp just made (the same millisecond
            # but rarely): one stamp less per transaction message.
            return self._events.publish_flowed(
                key, payload, charge_point_id=charge_point_id, time=now
            )
        self._publish_logged(key, charge_point_id, payload)
        return None

    def rejected(
        self, charge_point_id: str, raw: str, answer: CallError, action: str | None = None
    ) -> None:
        """A frame we answered with a CALLERROR (malformed, unknown or invalid)."""
        self._publish_logged(
            topology.OCPP_REJECTED,
            charge_point_id,
            {
                "uniqueId": answer.unique_id,
                "action": action,
                "raw": raw[:RAW_LOG_LIMIT],
                "truncated": len(raw) > RAW_LOG_LIMIT,
                "error": error_dict(answer),
                "receivedAt": self._now(),
            },
        )

    # Commands and replies are redacted here, before anything keeps them: the
    # message log (processor) and the live log (notifier) read these payloads.

    def command_sent(self, charge_point_id: str, call: Call) -> None:
        self._publish_logged(
            topology.ocpp_out(call.action),
            charge_point_id,
            {
                "uniqueId": call.unique_id,
                "action": call.action,
                "request": redact(call.payload),
                "sentAt": self._now(),
            },
        )

    def command_reply(
        self, charge_point_id: str, call: Call, reply: CallResult | CallError
    ) -> None:
        payload: dict[str, Any] = {
            "uniqueId": call.unique_id,
            "action": call.action,
            "receivedAt": self._now(),
        }
        if isinstance(reply, CallResult):
            payload["response"] = redact(reply.payload)
        else:
            payload["error"] = error_dict(reply)
        self._publish_logged(topology.ocpp_reply(call.action), charge_point_id, payload)

    def connected(
        self, charge_point_id: str, *, connection_id: str, remote: str, fence: int | None = None
    ) -> Deferred[None]:
        payload: dict[str, Any] = {
            "connectionId": connection_id,
            "node": self._node,
            "remote": remote,
            "at": self._now(),
        }
        if fence is not None:
            # The presence fence: orders connections across nodes (docs/presence.md).
            payload["fence"] = fence
        return self._publish_kept(topology.CHARGER_CONNECTED, charge_point_id, payload)

    def disconnected(
        self,
        charge_point_id: str,
        *,
        connection_id: str,
        code: int | None,
        reason: str | None,
        fence: int | None = None,
        at: str | None = None,
    ) -> Deferred[None]:
        """The socket closed (``at``: now), or the liveness sweep found it dead (its last sign)."""
        payload: dict[str, Any] = {
            "connectionId": connection_id,
            "code": code,
            "reason": reason,
            "at": self._now() if at is None else at,
        }
        if fence is not None:
            payload["fence"] = fence
        return self._publish_kept(topology.CHARGER_DISCONNECTED, charge_point_id, payload)


def _nothing(conn: Any) -> None:
    """The change of an event kept for the relay alone: there is none."""
