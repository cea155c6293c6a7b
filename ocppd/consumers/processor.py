"""
The OCPP message processor: persists what chargers said, off the bus.

Each envelope is applied in one database transaction that first claims its id
(``processed_messages``), so at-least-once delivery stores everything exactly
once. Content-level rules in the store make a charger's own resends and
out-of-order arrivals harmless (see ``ocppd.store.transactions``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from twisted.internet.interfaces import IReactorTime

from ocppd.billing import (
    Limits,
    Settlement,
    StoppedSession,
    Tariff,
    live_estimate,
    settle,
    should_stop,
)
from ocppd.bounds import INT64_MAX
from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import IBus
from ocppd.bus.outbox import Outbox
from ocppd.bus.publisher import EventPublisher
from ocppd.config import BillingConfig
from ocppd.consumers.base import BusConsumer, DeferredWrites, FollowUp, FollowUpHook
from ocppd.measurands import samples_from
from ocppd.representations import session_json, wallet_event
from ocppd.store import chargers, messages, tariffs, transactions, wallets
from ocppd.store.database import Database
from ocppd.store.records import TransactionRecord
from ocppd.timeutil import format_iso, from_timestamp, parse_iso

CONSUMER = "processor"

Applier = Callable[[Connection, str, Envelope, dict[str, Any]], None]

#: Seconds a busy processor waits for a fuller batch (see ``BusConsumer.batch_wait``).
BATCH_WAIT = 0.05
#: Seconds ``last_seen_at`` may lag: a charger's every message need not rewrite its row.
LAST_SEEN_RESOLUTION = 30.0
#: How stale a tariff a live cost estimate may use (the bill always reads it fresh).
TARIFF_CACHE_SECONDS = 10.0


def billing_limits(billing: BillingConfig) -> Limits:
    """The plausibility limits of ``[billing]`` (beyond them, a session waits for review)."""
    return Limits(
        max_duration_seconds=billing.max_session_seconds,
        max_energy_wh=billing.max_session_wh,
        max_cost=billing.max_session_cost,
        clock_tolerance_seconds=billing.clock_tolerance,
        wallet_floor=billing.wallet_floor,
    )


DEFAULT_LIMITS = billing_limits(BillingConfig())


def _at(envelope: Envelope, field: str) -> Any:
    return parse_iso(envelope.payload.get(field) or envelope.time)


def _fence(envelope: Envelope) -> int | None:
    """
    The presence fence of a connect or disconnect event; None when absent (an
    event from before presence) or not a fence (it then orders by time).
    """
    fence = envelope.payload.get("fence")
    if type(fence) is not int or not 0 < fence <= INT64_MAX:
        return None
    return fence


def _boot(
    conn: Connection, charge_point_id: str, envelope: Envelope, request: dict[str, Any]
) -> None:
    chargers.record_boot(
        conn,
        charge_point_id,
        vendor=request["chargePointVendor"],
        model=request["chargePointModel"],
        serial_number=request.get("chargePointSerialNumber"),
        charge_box_serial_number=request.get("chargeBoxSerialNumber"),
        firmware_version=request.get("firmwareVersion"),
        iccid=request.get("iccid"),
        imsi=request.get("imsi"),
        meter_type=request.get("meterType"),
        meter_serial_number=request.get("meterSerialNumber"),
        at=_at(envelope, "receivedAt"),
    )


def _status(
    conn: Connection, charge_point_id: str, envelope: Envelope, request: dict[str, Any]
) -> None:
    chargers.set_connector_status(
        conn,
        charge_point_id,
        request["connectorId"],
        status=request["status"],
        error_code=request["errorCode"],
        info=request.get("info"),
        vendor_error_code=request.get("vendorErrorCode"),
        at=parse_iso(request["timestamp"])
        if "timestamp" in request
        else _at(envelope, "receivedAt"),
    )


def _session_of(
    conn: Connection, charge_point_id: str, transaction_id: int | None, *, lock: bool = False
) -> TransactionRecord | None:
    """
    The session ``transaction_id`` of this charger (another charger's id
    names nothing); with ``lock``, its row locked until the commit.
    """
    if transaction_id is None:
        return None
    get = transactions.lock_transaction if lock else transactions.get_transaction
    session = get(conn, transaction_id)
    return session if session is not None and session.charge_point_id == charge_point_id else None


#: Effects of inbound CALLs beyond the message log that need no configuration.
INBOUND_EFFECTS: dict[str, Applier] = {
    "BootNotification": _boot,
    "StatusNotification": _status,
}
#: Inbound CALLs whose effects execute statements (see ``OcppProcessor.writes_directly``).
DIRECT_EFFECTS = frozenset(INBOUND_EFFECTS) | {"StartTransaction", "MeterValues", "StopTransaction"}


class OcppProcessor(BusConsumer):
    """
    Consumes ``topology.PROCESSOR_QUEUE`` and writes to the store: sessions,
    meter values, pricing at stop, the wallet debit, and the funds guard of
    app-started sessions. Returns the domain events of docs/events.md.
    """

    name = CONSUMER
    # Group commit (see BusConsumer): under load, one transaction per batch.
    concurrency = 100
    batch_wait = BATCH_WAIT
    # A live estimate, superseded by the next MeterValues: not worth a row
    # in the outbox per reading (docs/events.md).
    direct_events = frozenset({"session.updated"})

    def __init__(
        self,
        bus: IBus,
        database: Database,
        *,
        events: EventPublisher | None = None,
        on_follow_up: FollowUpHook | None = None,
        wallet_currency: str = "EUR",
        stop_margin: int = 0,
        limits: Limits = DEFAULT_LIMITS,
        log_heartbeats: bool = False,
        clock: IReactorTime,
        outbox: Outbox | None = None,
    ) -> None:
        super().__init__(
            bus, database, events=events, on_follow_up=on_follow_up, clock=clock, outbox=outbox
        )
        self.wallet_currency = wallet_currency
        self.stop_margin = stop_margin
        #: What a stopped session must stay within to be billed without review.
        self.limits = limits
        #: Whether Heartbeat frames go to the message log ([ocpp] log_heartbeats).
        self.log_heartbeats = log_heartbeats
        # Written from database threads; single dict operations are atomic.
        self._tariffs: dict[int, tuple[float, Tariff | None]] = {}
        # The last_seen_at this processor last wrote for each charger.
        self._seen_written: dict[str, datetime] = {}

    def writes_directly(self, envelope: Envelope) -> bool:
        """
        Inbound CALLs with effects beyond the message log, and charger events,
        write directly; the rest (Heartbeat, answers to commands, ...) only
        append to the log and ``last_seen_at``, which ``_apply_ocpp`` defers.
        """
        kind, _, rest = envelope.type.partition(".")
        if kind != "ocpp":
            return True
        direction, _, action = rest.partition(".")
        return direction == "in" and action in DIRECT_EFFECTS

    def effects(
        self, conn: Connection, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp] | None:
        charge_point_id = envelope.charge_point_id
        if charge_point_id is None:
            # Every type this queue carries is about a charger; a message
            # without one is a publisher's bug, not worth retrying.
            self.log.error(
                "Processor ignores {type} {id} without a charge point id",
                type=envelope.type,
                id=envelope.id,
            )
            return None
        kind = envelope.type.partition(".")[0]
        if kind == "ocpp":
            return self._apply_ocpp(conn, charge_point_id, envelope, writes)
        elif envelope.type == topology.CHARGER_CONNECTED:
            chargers.set_connected(
                conn,
                charge_point_id,
                connection_id=envelope.payload["connectionId"],
                node=envelope.payload["node"],
                at=_at(envelope, "at"),
                fence=_fence(envelope),
                # Its liveness counts from now: a connect stored late must not
                # be swept before its node had a chance to renew it.
                alive_at=from_timestamp(self._get_clock().seconds()),
            )
        elif envelope.type == topology.CHARGER_DISCONNECTED:
            chargers.set_disconnected(
                conn,
                charge_point_id,
                connection_id=envelope.payload["connectionId"],
                at=_at(envelope, "at"),
                fence=_fence(envelope),
            )
        return None

    def _apply_ocpp(
        self, conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp] | None:
        payload = envelope.payload
        direction, _, action = envelope.type[len("ocpp.") :].partition(".")

        def log(suffix: str, direction: str, message_type: str, body: Any, at_field: str) -> None:
            row = messages.log_row(
                message_id=f"{envelope.id}:{suffix}",
                charge_point_id=charge_point_id,
                direction=direction,
                message_type=message_type,
                action=payload.get("action"),
                unique_id=payload.get("uniqueId"),
                payload=body,
                at=_at(envelope, at_field),
            )
            writes.defer(messages.append_log, row)

        def log_answer(suffix: str, direction: str, at_field: str) -> None:
            if "error" in payload:
                log(suffix, direction, "CALLERROR", payload["error"], at_field)
            else:
                log(suffix, direction, "CALLRESULT", payload.get("response"), at_field)

        if direction == "in":
            if action != "Heartbeat" or self.log_heartbeats:
                log("call", "in", "CALL", payload["request"], "receivedAt")
                log_answer("answer", "out", "receivedAt")
            received = _at(envelope, "receivedAt")
            written = self._seen_written.get(charge_point_id)
            if written is None or (received - written).total_seconds() >= LAST_SEEN_RESOLUTION:
                writes.defer(self._touch_last_seen, (charge_point_id, received))
            effect = INBOUND_EFFECTS.get(action)
            if effect is not None:
                effect(conn, charge_point_id, envelope, payload["request"])
            elif action == "StartTransaction":
                return self._started(conn, charge_point_id, envelope)
            elif action == "MeterValues":
                return self._meter_values(conn, charge_point_id, envelope, writes)
            elif action == "StopTransaction":
                return self._stopped(conn, charge_point_id, envelope)
        elif direction == "out":
            log("call", "out", "CALL", payload["request"], "sentAt")
        elif direction == "reply":
            log_answer("reply", "in", "receivedAt")
        elif direction == "rejected":
            log("call", "in", "CALL", {"raw": payload["raw"]}, "receivedAt")
            log_answer("answer", "out", "receivedAt")
        else:
            self.log.warn("Processor ignores unknown envelope type {type}", type=envelope.type)
        return None

    def _touch_last_seen(self, conn: Connection, seen: list[tuple[str, datetime]]) -> None:
        chargers.touch_last_seen_many(conn, seen)
        # Noted before the commit: a rollback leaves last_seen_at up to one
        # more resolution behind, never ahead.
        for charge_point_id, at in seen:
            written = self._seen_written.get(charge_point_id)
            if written is None or written < at:
                self._seen_written[charge_point_id] = at

    # -- sessions ------------------------------------------------------------------

    def _started(
        self, conn: Connection, charge_point_id: str, envelope: Envelope
    ) -> list[FollowUp]:
        """
        The session row was written in the request path, when its id was
        allocated; here it is confirmed (the bus had the start: if the node
        stopped before its handler confirmed it, this does), announced, and
        linked to the app request that asked for it, if any.
        """
        transaction_id = (envelope.payload.get("response") or {}).get("transactionId")
        if (
            isinstance(transaction_id, int)
            and 0 < transaction_id <= transactions.MAX_TRANSACTION_ID
        ):
            transactions.confirm_transaction(conn, transaction_id)
        # Locked: with several nodes the charger's MeterValues may be processed
        # by another node at the same time as this start (the processor queue
        # is shared), so either its meter is seen here or this claim is seen
        # there, and the funds guard runs on one side or the other.
        session = _session_of(conn, charge_point_id, transaction_id, lock=True)
        if session is None:
            return []
        started = FollowUp("session.started", {"session": session_json(session)}, charge_point_id)
        follow_ups = [started]
        if session.user_id is not None and session.status == "active":
            request = wallets.claim_request_for_session(
                conn,
                session_id=session.id,
                user_id=session.user_id,
                charge_point_id=charge_point_id,
                connector_id=session.connector_id,
                id_tag=session.id_tag,
                now=_at(envelope, "receivedAt"),
            )
            if request is not None:
                follow_ups.append(
                    FollowUp(
                        "charging.started",
                        {
                            "userId": session.user_id,
                            "chargePointId": charge_point_id,
                            "connectorId": session.connector_id,
                            "sessionId": session.id,
                            "commandId": request.command_id,
                        },
                        charge_point_id,
                    )
                )
                follow_ups.extend(self._funds_guard_at_start(conn, session))
        return follow_ups

    def _funds_guard_at_start(self, conn: Connection, session: TransactionRecord) -> list[FollowUp]:
        """
        The funds guard for readings processed before the start that claims
        the request (out of order across nodes): they found no request to
        guard, so the start checks what they brought.
        """
        if session.last_meter_wh is None or session.last_meter_at is None:
            return []
        tariff = self._tariff(conn, session)
        if tariff is None:
            return []
        estimate = live_estimate(
            tariff,
            meter_start_wh=session.meter_start_wh,
            last_meter_wh=session.last_meter_wh,
            started_at=session.started_at,
            now=session.last_meter_at,
        )
        return self._funds_guard(conn, session, tariff, estimate.energy_wh, session.last_meter_at)

    def _meter_values(
        self, conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp]:
        request = envelope.payload["request"]
        samples = samples_from(request["meterValue"])
        transaction_id = request.get("transactionId")
        received = _at(envelope, "receivedAt")
        readings = transactions.meter_readings(
            charge_point_id=charge_point_id,
            connector_id=request["connectorId"],
            transaction_id=transaction_id,
            samples=samples,
            now=received,
        )
        # Nothing in the transaction reads the samples back: written with the batch.
        for row in readings.rows:
            writes.defer(transactions.append_meter_values, row)
        transactions.advance_session_meter(conn, readings, now=received)
        session = _session_of(conn, charge_point_id, transaction_id)
        if session is None:
            return []
        if session.status != "active":
            # A late reading after the stop changes nothing, so announces nothing.
            return []
        tariff = self._tariff(conn, session)
        now = session.last_meter_at or _at(envelope, "receivedAt")
        live: dict[str, Any] = {
            "energyWh": session.energy_wh or 0,
            "powerW": readings.newest.power_w,
            "cost": None,
            "currency": None,
            "at": format_iso(now),
        }
        follow_ups = []
        if tariff is not None:
            estimate = live_estimate(
                tariff,
                meter_start_wh=session.meter_start_wh,
                last_meter_wh=session.last_meter_wh,
                started_at=session.started_at,
                now=now,
            )
            live.update(cost=estimate.total, currency=tariff.currency)
            if session.user_id is not None:
                # Only app-started sessions hold funds, and they always have a user.
                follow_ups.extend(self._funds_guard(conn, session, tariff, estimate.energy_wh, now))
        follow_ups.insert(
            0,
            FollowUp(
                "session.updated", {"session": session_json(session), "live": live}, charge_point_id
            ),
        )
        return follow_ups

    def _funds_guard(
        self,
        conn: Connection,
        session: TransactionRecord,
        tariff: Tariff,
        energy_wh: int,
        now: datetime,
    ) -> list[FollowUp]:
        """Ask for a remote stop, once, when the running cost reaches the funds held."""
        request = wallets.request_for_session(conn, session.id)
        if request is None or request.status != "started" or request.stop_requested is not None:
            return []
        if tariff.currency != self.wallet_currency:
            return []
        budget = request.hold - self.stop_margin
        duration = max(0, int((now - session.started_at).total_seconds()))
        if not should_stop(tariff, balance=budget, energy_wh=energy_wh, duration_seconds=duration):
            return []
        if not wallets.mark_stop_requested(conn, request.id, "funds", now=now):
            return []
        self.log.info(
            "Session {session_id} of user {user_id} reached its funds; asking for a stop",
            session_id=session.id,
            user_id=request.user_id,
        )
        return [
            FollowUp(
                "charging.stop.requested",
                {
                    "userId": request.user_id,
                    "sessionId": session.id,
                    "chargePointId": session.charge_point_id,
                    "transactionId": session.id,
                    "reason": "funds",
                },
                session.charge_point_id,
            )
        ]

    def _stopped(
        self, conn: Connection, charge_point_id: str, envelope: Envelope
    ) -> list[FollowUp]:
        request = envelope.payload["request"]
        received_at = _at(envelope, "receivedAt")
        outcome = transactions.record_stop(
            conn,
            charge_point_id=charge_point_id,
            transaction_id=request["transactionId"],
            meter_stop_wh=request["meterStop"],
            stopped_at=parse_iso(request["timestamp"]),
            reason=request.get("reason"),
            id_tag=request.get("idTag"),
            now=received_at,
        )
        record = transactions.get_transaction(conn, request["transactionId"])
        if outcome != "unknown" and record is not None and request.get("transactionData"):
            transactions.add_meter_values(
                conn,
                charge_point_id=charge_point_id,
                connector_id=record.connector_id,
                transaction_id=request["transactionId"],
                samples=samples_from(request["transactionData"]),
                now=received_at,
            )
        if outcome != "stopped" or record is None:
            return []
        follow_ups = self._bill(conn, record, received_at)
        session = transactions.get_transaction(conn, record.id)
        assert session is not None
        stopped = FollowUp("session.stopped", {"session": session_json(session)}, charge_point_id)
        follow_ups.insert(0, stopped)
        return follow_ups

    def _tariff(
        self, conn: Connection, session: TransactionRecord, *, fresh: bool = False
    ) -> Tariff | None:
        """
        The session's tariff. Live estimates (every MeterValues) may use one
        read up to ``TARIFF_CACHE_SECONDS`` ago; the bill at stop reads it
        ``fresh``.
        """
        if session.tariff_id is None:
            return None
        now = time.monotonic()
        cached = self._tariffs.get(session.tariff_id)
        if not fresh and cached is not None and now - cached[0] < TARIFF_CACHE_SECONDS:
            return cached[1]
        record = tariffs.get_tariff(conn, session.tariff_id)
        tariff = None if record is None else Tariff.from_record(record)
        self._tariffs[session.tariff_id] = (now, tariff)
        return tariff

    def _bill(self, conn: Connection, session: TransactionRecord, now: datetime) -> list[FollowUp]:
        """
        Settle a session that just stopped (``ocppd.billing.settlement``): price
        it with the tariff it started under (a tariff changed mid-session does
        not reprice it), from its start and stop readings alone, then debit its
        user's wallet once, charge nothing (a start not Accepted), or hold it
        for an operator's review (implausible, or below the wallet floor);
        release the funds its app request held. A session on a charger
        without a tariff stays unpriced.
        """
        follow_ups: list[FollowUp] = []
        request = wallets.request_for_session(conn, session.id)
        if request is not None:
            wallets.set_request_status(conn, request.id, "completed", now=now)
        tariff = self._tariff(conn, session, fresh=True)
        cost = None
        if (
            tariff is not None
            and session.meter_stop_wh is not None
            and session.stopped_at is not None
        ):
            settlement = self._settle(conn, session, tariff, session.stopped_at, now)
            if settlement.outcome == "review":
                self._hold_for_review(conn, session, settlement, now)
            else:
                cost = settlement.cost
                priced = transactions.set_cost(
                    conn, session.id, cost=cost, currency=tariff.currency
                )
                if priced and session.user_id is not None and cost > 0:
                    follow_ups.extend(self._debit(conn, session, cost, tariff.currency, now))
        if session.user_id is not None:
            follow_ups.append(
                FollowUp(
                    "charging.stopped",
                    {
                        "userId": session.user_id,
                        "sessionId": session.id,
                        "chargePointId": session.charge_point_id,
                        "reason": (request.stop_requested if request is not None else None)
                        or session.stop_reason
                        or "Local",
                        "cost": cost,
                        "currency": None if tariff is None else tariff.currency,
                    },
                    session.charge_point_id,
                )
            )
        return follow_ups

    def _settle(
        self,
        conn: Connection,
        session: TransactionRecord,
        tariff: Tariff,
        stopped_at: datetime,
        now: datetime,
    ) -> Settlement:
        """The settlement's facts, read in this transaction (the wallet's row locked)."""
        assert session.meter_stop_wh is not None
        balance = None
        if session.user_id is not None and tariff.currency == self.wallet_currency:
            balance = wallets.locked_wallet(
                conn, session.user_id, currency=tariff.currency, now=now
            ).balance
        charger = chargers.get_charge_point(conn, session.charge_point_id)
        facts = StoppedSession(
            id_tag_status=session.id_tag_status,
            meter_start_wh=session.meter_start_wh,
            meter_stop_wh=session.meter_stop_wh,
            started_at=session.started_at,
            stopped_at=stopped_at,
            start_received_at=session.created_at,
            stop_received_at=now,
            # Sessions reference their charger, so it exists.
            charger_registered_at=charger.created_at if charger is not None else session.created_at,
        )
        return settle(tariff, facts, self.limits, balance=balance)

    def _hold_for_review(
        self, conn: Connection, session: TransactionRecord, settlement: Settlement, now: datetime
    ) -> None:
        if not transactions.hold_for_review(
            conn,
            session.id,
            computed_cost=settlement.cost,
            currency=settlement.currency,
            reasons=settlement.reasons,
            now=now,
        ):
            return
        # A warning: money waits for an operator (GET /api/cms/sessions?review=pending).
        self.log.warn(
            "Session {session_id} at {charge_point_id} held for review, not billed: "
            "{reasons} (computed {cost} {currency})",
            session_id=session.id,
            charge_point_id=session.charge_point_id,
            reasons=", ".join(settlement.reasons),
            cost=settlement.cost,
            currency=settlement.currency,
        )

    def _debit(
        self, conn: Connection, session: TransactionRecord, cost: int, currency: str, now: datetime
    ) -> list[FollowUp]:
        assert session.user_id is not None
        if currency != self.wallet_currency:
            self.log.warn(
                "Session {session_id} cost {cost} {currency}; wallets are in {wallet_currency}, "
                "so it is not debited",
                session_id=session.id,
                cost=cost,
                currency=currency,
                wallet_currency=self.wallet_currency,
            )
            return []
        posted, new = wallets.debit_session(
            conn, session.user_id, session.id, cost=cost, currency=currency, now=now
        )
        if not new:
            return []
        return [FollowUp("wallet.transaction", wallet_event(session.user_id, posted))]
