"""
The processor's part for sessions that cannot end (``ocppd.billing.closing``):
a session still open on a charger that boots, on a connector that reports
``Available``, or on a connector where a newer session starts, is closed on
its last reading, billed like any stop (``StopBilling``: the review rules
apply, the app request's hold is released) and announced.

A charger whose ``boot_closes_sessions`` is off (one that sends a
BootNotification on every reconnect, its sessions running on) has nothing
closed by its boots; an ``Available`` or a newer start still close.

Only sessions whose start arrived before the message that proves them over
are closed (by arrival time, or by id for a newer start: ids grow with
arrival), so a late or redelivered boot, status or start never closes a
session that began after it. Closing is idempotent: a session closed, or
stopped by its charger, is no longer active, and nothing closes it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from ocppd.billing.closing import CHARGER_REBOOTED, CONNECTOR_AVAILABLE, SUPERSEDED
from ocppd.bus.envelope import Envelope
from ocppd.consumers.base import DeferredWrites, FollowUp
from ocppd.consumers.stop_billing import StopBilling
from ocppd.consumers.traffic import received_at
from ocppd.logs import Logger
from ocppd.representations import session_json
from ocppd.store import chargers, transactions
from ocppd.store.records import TransactionRecord


class Closings:
    """Closes the sessions a boot, an ``Available`` or a newer start proves over."""

    log = Logger()

    def __init__(self, billing: StopBilling) -> None:
        self._billing = billing

    def close(
        self, conn: Connection, session: TransactionRecord, reason: str, now: datetime
    ) -> list[FollowUp] | None:
        """
        Close ``session`` (if still active) with ``reason``, bill it: its
        events, ``session.stopped`` first; None if it was no longer active.
        """
        closed = transactions.close_session(conn, session.id, reason=reason, now=now)
        if closed is None:
            return None
        self.log.info(
            "Closed session {session_id} at {charge_point_id} connector {connector_id}"
            " ({reason}) on its last reading, {energy_wh} Wh",
            session_id=closed.id,
            charge_point_id=closed.charge_point_id,
            connector_id=closed.connector_id,
            reason=reason,
            energy_wh=closed.energy_wh,
        )
        follow_ups = self._billing.bill(conn, closed, now, closed=True)
        billed = transactions.get_transaction(conn, closed.id)
        assert billed is not None
        stopped = FollowUp(
            "session.stopped", {"session": session_json(billed)}, closed.charge_point_id
        )
        return [stopped, *follow_ups]

    def _close_all(
        self, conn: Connection, sessions: list[TransactionRecord], reason: str, now: datetime
    ) -> list[FollowUp]:
        follow_ups: list[FollowUp] = []
        for session in sessions:
            follow_ups.extend(self.close(conn, session, reason, now) or ())
        return follow_ups

    def rebooted(
        self, conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp]:
        """
        A BootNotification: every session of the charger that started before
        it is over, unless the charger is one that boots on every reconnect
        while its sessions run on (``boot_closes_sessions`` off).
        """
        now = received_at(envelope)
        found = transactions.open_sessions(conn, charge_point_id, received_before=now)
        # Asked only when there is something to close: mostly there is none.
        if not found or not chargers.boot_closes_sessions(conn, charge_point_id):
            return []
        return self._close_all(conn, found, CHARGER_REBOOTED, now)

    def available(
        self, conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp]:
        """A connector (not the charger, 0) reports ``Available``: its session is over."""
        request: dict[str, Any] = envelope.payload["request"]
        connector_id = request["connectorId"]
        if request["status"] != "Available" or connector_id == 0:
            return []
        now = received_at(envelope)
        found = transactions.open_sessions(
            conn, charge_point_id, connector_id=connector_id, received_before=now
        )
        return self._close_all(conn, found, CONNECTOR_AVAILABLE, now)

    def superseded(
        self, conn: Connection, session: TransactionRecord, envelope: Envelope
    ) -> list[FollowUp]:
        """``session`` started: older sessions still open on its connector are over."""
        found = transactions.open_sessions(
            conn, session.charge_point_id, connector_id=session.connector_id, below_id=session.id
        )
        return self._close_all(conn, found, SUPERSEDED, received_at(envelope))
