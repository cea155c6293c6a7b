"""
The processor's part for charging sessions: StartTransaction, MeterValues and
StopTransaction as the bus carries them (the session row itself is allocated
in the request path, ``ocppd.ocpp.handlers``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ocppd.bus.envelope import Envelope
from ocppd.consumers.base import DeferredWrites, FollowUp
from ocppd.consumers.closing import Closings
from ocppd.consumers.funds_guard import FundsGuard
from ocppd.consumers.late_stop import LateStops
from ocppd.consumers.policy import BillingPolicy
from ocppd.consumers.stop_billing import StopBilling
from ocppd.consumers.tariff_cache import TariffCache
from ocppd.consumers.traffic import received_at
from ocppd.logs import Logger
from ocppd.measurands import read_samples, samples_from
from ocppd.representations import live_json, moved_session_json, session_json
from ocppd.store import transactions, wallets
from ocppd.store.records import SessionMeter, TransactionRecord
from ocppd.timeutil import parse_iso


def session_of(
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


class Sessions:
    """Sessions confirmed, metered (live cost, funds guard) and stopped (billed)."""

    log = Logger()

    def __init__(self, policy: BillingPolicy) -> None:
        self._tariffs = TariffCache()
        self._funds_guard = FundsGuard(policy, self._tariffs)
        self._billing = StopBilling(policy, self._tariffs)
        #: Sessions that cannot end: a boot, an Available, a newer start closes them.
        self.closings = Closings(self._billing)
        #: The charger's own stop of a session closed that way, when it comes after all.
        self._late_stops = LateStops(policy, self._tariffs)

    def started(
        self, conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
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
        session = session_of(conn, charge_point_id, transaction_id, lock=True)
        if session is None:
            return []
        # Announced first: the session it supersedes ended before it began.
        follow_ups = self.closings.superseded(conn, session, envelope)
        started = FollowUp("session.started", {"session": session_json(session)}, charge_point_id)
        follow_ups.append(started)
        if session.user_id is not None and session.status == "active":
            request = wallets.claim_request_for_session(
                conn,
                session_id=session.id,
                user_id=session.user_id,
                charge_point_id=charge_point_id,
                connector_id=session.connector_id,
                id_tag=session.id_tag,
                now=received_at(envelope),
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
                follow_ups.extend(self._funds_guard.at_start(conn, session))
        return follow_ups

    def meter_values(
        self, conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp]:
        """Samples stored; the session's meter advanced, its live estimate announced, guarded."""
        return self.metered(conn, [self.read_meter(charge_point_id, envelope, writes)])[0]

    def read_meter(
        self, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> tuple[transactions.MeterReadings, datetime]:
        """
        A MeterValues' first half, without statements: its samples deferred
        to the batch's end (nothing in the transaction reads them back); its
        readings, and when they arrived, for ``metered``.
        """
        request = envelope.payload["request"]
        received = received_at(envelope)
        readings = transactions.readings_of(
            charge_point_id=charge_point_id,
            connector_id=request["connectorId"],
            transaction_id=request.get("transactionId"),
            samples=read_samples(request["meterValue"]),
            now=received,
        )
        writes.defer_all(transactions.append_meter_values, readings.rows)
        return readings, received

    def metered(
        self, conn: Connection, read: list[tuple[transactions.MeterReadings, datetime]]
    ) -> list[list[FollowUp]]:
        """
        The second half of consecutive MeterValues (``read_meter``'s, in
        order): each session's meter advanced (on PostgreSQL all in one round
        trip), then each live estimate announced and guarded. Their meters
        move before any guard runs: the guard reads and marks the wallet's
        request, which no meter's statement touches, so the order changes
        nothing but the round trips.
        """
        meters = transactions.session_meters(conn, read)
        shown: dict[int, tuple[TransactionRecord, dict[str, Any]]] = {}
        return [
            self._live(conn, meter, readings, received, shown)
            for meter, (readings, received) in zip(meters, read, strict=True)
        ]

    def _live(
        self,
        conn: Connection,
        meter: SessionMeter | None,
        readings: transactions.MeterReadings,
        received: datetime,
        shown: dict[int, tuple[TransactionRecord, dict[str, Any]]],
    ) -> list[FollowUp]:
        """
        A MeterValues' ``session.updated`` (and the funds guard's stop). Its
        session as ``session_json`` shows it is made once per record read
        (``shown``: by session id), for each message a copy with its meter's
        energy (``moved_session_json``).
        """
        if meter is None:
            return []
        session = meter.session
        if session.status != "active":
            # A late reading after the stop changes nothing, so announces nothing.
            return []
        tariff = self._tariffs.get(conn, session.tariff_id)
        now = meter.last_meter_at or received
        # ``Newest.power_w`` and ``soc_percent``, unpacked: a named tuple's
        # fields are slower to read by name (a descriptor call each on 3.11).
        charge_point_id, _, _, (_, power, soc) = readings
        live, estimate = live_json(
            meter,
            tariff,
            power_w=None if power is None else power[1],
            soc_percent=None if soc is None else soc[1],
            at=now,
        )
        known = shown.get(session.id)
        if known is None or known[0] is not session:
            known = shown[session.id] = (session, session_json(session))
        updated = FollowUp(
            "session.updated",
            {"session": moved_session_json(known[1], meter.energy_wh), "live": live},
            charge_point_id,
        )
        if tariff is None or estimate is None or session.user_id is None:
            return [updated]
        # Only app-started sessions hold funds, and they always have a user.
        guarded = self._funds_guard.check(conn, meter.record(), tariff, estimate.energy_wh, now)
        return [updated, *guarded]

    def stopped(
        self, conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp]:
        """The stop recorded (with its transactionData), the session billed and announced."""
        request = envelope.payload["request"]
        received = received_at(envelope)
        outcome = transactions.record_stop(
            conn,
            charge_point_id=charge_point_id,
            transaction_id=request["transactionId"],
            meter_stop_wh=request["meterStop"],
            stopped_at=parse_iso(request["timestamp"]),
            reason=request.get("reason"),
            id_tag=request.get("idTag"),
            now=received,
        )
        record = transactions.get_transaction(conn, request["transactionId"])
        if outcome != "unknown" and record is not None and request.get("transactionData"):
            transactions.add_meter_values(
                conn,
                charge_point_id=charge_point_id,
                connector_id=record.connector_id,
                transaction_id=request["transactionId"],
                samples=samples_from(request["transactionData"]),
                now=received,
            )
        if outcome == "late" and record is not None:
            # Closed by the central system on its last reading: billed again
            # on the charger's own, the difference as one correction.
            return self._late_stops.apply(
                conn,
                record,
                meter_stop_wh=request["meterStop"],
                stopped_at=parse_iso(request["timestamp"]),
                reason=request.get("reason"),
                id_tag=request.get("idTag"),
                now=received,
            )
        if outcome != "stopped" or record is None:
            return []
        follow_ups = self._billing.bill(conn, record, received)
        session = transactions.get_transaction(conn, record.id)
        assert session is not None
        stopped = FollowUp("session.stopped", {"session": session_json(session)}, charge_point_id)
        follow_ups.insert(0, stopped)
        return follow_ups
