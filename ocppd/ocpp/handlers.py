"""
The central system's answers to every charger-initiated OCPP 1.6 action.

Each answer is computed in the request path (idTag status from the cache,
transaction ids from the store) and the CALL is published on the bus with it.
Transaction messages are answered only once the bus has accepted them, so
nothing the charger saw acknowledged can be lost; the processor does the
rest of the persistence off the bus.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import CancelledError, Deferred, fail, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from ocppd.bus.outcome import Outcome, deferred_of
from ocppd.logs import Logger
from ocppd.ocpp import actions, errors
from ocppd.ocpp.charger_lookup import ChargerLookup
from ocppd.ocpp.connection import BuiltAnswer
from ocppd.ocpp.deadlines import Deadline, Deadlines
from ocppd.ocpp.errors import AnswerTimedOut, OcppError
from ocppd.ocpp.frames import Call
from ocppd.ocpp.tagcache import IdTagCache
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.store import transactions
from ocppd.store.database import Database
from ocppd.timeutil import IsoNow, from_timestamp, parse_iso

if TYPE_CHECKING:
    from ocppd.ocpp.connection import ChargerConnection

Response = dict[str, Any]

#: Actions answered only once the bus has them, besides the transaction
#: messages: answered while the bus is down they would be lost (a connector
#: shown Available after it reported Faulted), while refused with
#: InternalError the charger sends them again (docs/bus.md).
REFUSED_WITHOUT_BUS = frozenset({"BootNotification", "StatusNotification"})


class CentralSystemHandlers:
    """Implements ``connection.CallHandler`` for OCPP 1.6 Core, Firmware and Diagnostics."""

    log = Logger()

    def __init__(
        self,
        *,
        database: Database,
        tags: IdTagCache,
        traffic: TrafficPublisher,
        clock: IReactorTime,
        heartbeat_interval: int,
        answer_timeout: float = 10.0,
    ) -> None:
        self._database = database
        self._chargers = ChargerLookup(database)
        self._tags = tags
        self._traffic = traffic
        self._clock = clock
        self._heartbeat_interval = heartbeat_interval
        self._answer_timeout = answer_timeout
        self._deadlines = Deadlines(clock, answer_timeout)
        self._now_iso = IsoNow(clock)
        self._handlers: dict[str, Callable[[ChargerConnection, dict[str, Any]], Any]] = {
            "Authorize": self.authorize,
            "BootNotification": self.boot_notification,
            "DataTransfer": self.data_transfer,
            "DiagnosticsStatusNotification": self.empty_answer,
            "FirmwareStatusNotification": self.empty_answer,
            "Heartbeat": self.heartbeat,
            "MeterValues": self.empty_answer,
            "StartTransaction": self.start_transaction,
            "StatusNotification": self.empty_answer,
            "StopTransaction": self.stop_transaction,
        }
        assert set(self._handlers) == actions.CHARGER_INITIATED

    def handle(
        self, connection: ChargerConnection, call: Call
    ) -> Response | Deferred[Response] | Outcome:
        """
        The answer to ``call``: a plain value when it is ready at once
        (Heartbeat, DataTransfer, ...), an ``Outcome`` when it is ready but
        waits for the bus (MeterValues, StatusNotification), a Deferred when it
        waits on the store first; either fails with AnswerTimedOut after
        ``answer_timeout``; a failed Deferred for an error. Heartbeat never
        waits on either: it answers with our clock alone.
        """
        # No inlineCallbacks and no Deferred for a ready answer: a generator
        # and Deferreds per message were a measurable part of the request
        # path (bench/RESULTS.md).
        try:
            if connection.registration_status != "Accepted" and call.action != "BootNotification":
                # OCPP 1.6 4.2.1: until accepted, a charger may only boot.
                raise OcppError(
                    errors.SECURITY_ERROR,
                    f"charge point is {connection.registration_status}; "
                    "only BootNotification is served",
                )
            answered = self._handlers[call.action](connection, call.payload)
            if isinstance(answered, Deferred):
                return self._bounded(answered.addCallback(self._publish, connection, call), call)
            if call.action == "StartTransaction":
                started = self._publish(answered, connection, call)
                return self._bounded(started, call) if isinstance(started, Deferred) else started
            # A ready answer (MeterValues, StatusNotification, ...): its
            # publish's outcome is bounded and answered with it, no Deferred.
            waiting = self._inbound(answered, connection, call)
            if waiting is None:
                return answered
            return self._bounded_ready(waiting, call, answered)
        except Exception:
            return fail()

    def _bounded_ready(self, published: Outcome, call: Call, response: Response) -> Outcome:
        """
        ``response`` once ``published`` succeeded, as ``_bounded`` bounds an
        answer (``AnswerTimedOut`` after ``answer_timeout``), without a
        Deferred: every transaction message waits here.
        """
        answer = Outcome()
        deadline = self._deadlines.watch(published)
        published.bind(self._ready_settled, deadline, call, response, answer)
        return answer

    def _ready_settled(
        self,
        result: object,
        deadline: Deadline,
        call: Call,
        response: Response,
        answer: Outcome,
    ) -> None:
        result = self._settle(result, deadline, call)
        if isinstance(result, Failure):
            answer.errback(result)
        else:
            answer.callback(response)

    def _bounded(self, answer: Deferred[Any], call: Call) -> Deferred[Response]:
        """
        ``answer``, or AnswerTimedOut after ``answer_timeout`` seconds: a frozen
        database or broker must not leave the charger waiting for the whole
        stall. The work is cancelled: a database call still queued never
        runs, one in progress is left to finish and its result dropped, an
        unconfirmed publish is forgotten. Whatever did commit is found again
        by the charger's resend (a StartTransaction's id is keyed on its
        fingerprint), so an error answer never leaves a duplicate.

        ``Deferred.addTimeout`` with one callback instead of its two and three
        closures, and one timer for every waiting answer (``Deadlines``)
        instead of a ``DelayedCall`` each.
        """
        return answer.addBoth(self._settle, self._deadlines.watch(answer), call)

    def _settle(self, result: Any, deadline: Deadline, call: Call) -> Any:
        """
        The result of an answer ``deadline`` watched, which has come: as it
        came, or ``AnswerTimedOut`` if the deadline cut (cancelled) it.
        """
        if (
            not self._deadlines.settle(deadline)
            and isinstance(result, Failure)
            and result.check(CancelledError)
        ):
            return Failure(AnswerTimedOut(call.action, self._answer_timeout))
        return result

    def _inbound(
        self, response: Response, connection: ChargerConnection, call: Call
    ) -> Outcome | None:
        """The CALL and ``response`` published; what to wait for before answering, if anything."""
        wait = call.action in actions.TRANSACTION_ACTIONS or call.action in REFUSED_WITHOUT_BUS
        return self._traffic.inbound(connection.charge_point_id, call, response, wait=wait)

    def _publish(
        self, response: Response, connection: ChargerConnection, call: Call
    ) -> Response | Deferred[Response]:
        waiting = self._inbound(response, connection, call)
        if waiting is None:
            return response
        published = deferred_of(waiting)
        if call.action == "StartTransaction":
            return published.addCallback(self._confirm_start, response)
        return published.addCallback(lambda _: response)

    def _confirm_start(self, _: object, response: Response) -> Deferred[Response]:
        """
        The bus has the StartTransaction: its session becomes visible. If this
        fails the answer still goes out, since the processor confirms it too
        when it applies the start.
        """
        transaction_id = response["transactionId"]

        def failed(failure: Failure) -> Response:
            self.log.warn(
                "Could not confirm session {transaction_id} (the processor will): {error}",
                transaction_id=transaction_id,
                error=failure.getErrorMessage(),
            )
            return response

        confirming = self._database.run(transactions.confirm_transaction, transaction_id)
        return confirming.addCallbacks(lambda _: response, failed)

    @inlineCallbacks
    def authorize(
        self, connection: ChargerConnection, payload: dict[str, Any]
    ) -> Generator[Deferred[Any], Any, Response]:
        info = yield self._tags.authorize(payload["idTag"])
        return {"idTagInfo": info.to_ocpp()}

    @inlineCallbacks
    def boot_notification(
        self, connection: ChargerConnection, payload: dict[str, Any]
    ) -> Generator[Deferred[Any], Any, Response]:
        # The operator may have accepted (or rejected) a pending charger since
        # it connected: the current status is read. A node's restart brings
        # every charger's boot at once, so the reads go in batches.
        record = yield self._chargers.get(connection.charge_point_id)
        status = record.registration_status if record is not None else "Rejected"
        connection.registration_status = status
        interval = (
            self._heartbeat_interval if status == "Accepted" else min(self._heartbeat_interval, 60)
        )
        return {"status": status, "currentTime": self._now_iso(), "interval": interval}

    # The three answers below hold nothing but constants and our clock: built
    # answers, sent without a second check against their schema.

    def heartbeat(self, connection: ChargerConnection, payload: dict[str, Any]) -> Response:
        return BuiltAnswer(currentTime=self._now_iso())

    def data_transfer(self, connection: ChargerConnection, payload: dict[str, Any]) -> Response:
        # No vendor extensions are known to this central system (OCPP 1.6 4.3).
        return BuiltAnswer(status="UnknownVendorId")

    def empty_answer(self, connection: ChargerConnection, payload: dict[str, Any]) -> Response:
        return BuiltAnswer()

    @inlineCallbacks
    def start_transaction(
        self, connection: ChargerConnection, payload: dict[str, Any]
    ) -> Generator[Deferred[Any], Any, Response]:
        info = yield self._tags.authorize(payload["idTag"])
        # The id must be unique across nodes and the same for a resent
        # StartTransaction, so it comes from the store, keyed on the start's
        # fingerprint. An offline start with a refused tag is still recorded.
        allocation = yield self._database.run(
            transactions.allocate_transaction,
            charge_point_id=connection.charge_point_id,
            connector_id=payload["connectorId"],
            id_tag=payload["idTag"],
            id_tag_status=info.status,
            meter_start_wh=payload["meterStart"],
            started_at=parse_iso(payload["timestamp"]),
            reservation_id=payload.get("reservationId"),
            now=from_timestamp(self._clock.seconds()),
            # Invisible until the bus has the start (``_confirm_start``): a
            # start refused with InternalError must leave no active session.
            confirmed=False,
        )
        id_tag_info = info.to_ocpp()
        if allocation.concurrent and info.status == "Accepted":
            id_tag_info["status"] = "ConcurrentTx"
        return {"transactionId": allocation.transaction_id, "idTagInfo": id_tag_info}

    @inlineCallbacks
    def stop_transaction(
        self, connection: ChargerConnection, payload: dict[str, Any]
    ) -> Generator[Deferred[Any], Any, Response]:
        # Always answered, also for an unknown transactionId: an error here
        # would make the charger resend the stop forever.
        if "idTag" not in payload:
            return {}
        info = yield self._tags.authorize(payload["idTag"])
        return {"idTagInfo": info.to_ocpp()}
