"""
The funds guard of app-started sessions: a remote stop asked for, once, when
the running cost reaches the funds the session's request holds.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from ocppd.billing import Tariff, live_estimate, should_stop
from ocppd.consumers.base import FollowUp
from ocppd.consumers.policy import BillingPolicy
from ocppd.consumers.tariff_cache import TariffCache
from ocppd.logs import Logger
from ocppd.store import wallets
from ocppd.store.records import TransactionRecord


class FundsGuard:
    log = Logger()

    def __init__(self, policy: BillingPolicy, tariffs: TariffCache) -> None:
        self._policy = policy
        self._tariffs = tariffs

    def at_start(self, conn: Connection, session: TransactionRecord) -> list[FollowUp]:
        """
        The guard for readings processed before the start that claims the
        request (out of order across nodes): they found no request to guard,
        so the start checks what they brought.
        """
        if session.last_meter_wh is None or session.last_meter_at is None:
            return []
        tariff = self._tariffs.get(conn, session.tariff_id)
        if tariff is None:
            return []
        estimate = live_estimate(
            tariff,
            meter_start_wh=session.meter_start_wh,
            last_meter_wh=session.last_meter_wh,
            started_at=session.started_at,
            now=session.last_meter_at,
        )
        return self.check(conn, session, tariff, estimate.energy_wh, session.last_meter_at)

    def check(
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
        if tariff.currency != self._policy.wallet_currency:
            return []
        budget = request.hold - self._policy.stop_margin
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
