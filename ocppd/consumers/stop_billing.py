"""
The bill of a session that just stopped: the store's side of
``ocppd.billing.settlement`` and ``ocppd.billing.closing``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from ocppd.billing import Settlement, StoppedSession, Tariff, settle
from ocppd.billing.closing import debit_of, settle_closed, stop_reason, wallet_pays
from ocppd.billing.late_stop import tariff_snapshot
from ocppd.consumers.base import FollowUp
from ocppd.consumers.policy import BillingPolicy
from ocppd.consumers.tariff_cache import TariffCache
from ocppd.logs import Logger
from ocppd.representations import wallet_event
from ocppd.store import chargers, transactions, wallets
from ocppd.store.records import TransactionRecord


def stopped_session(
    conn: Connection,
    session: TransactionRecord,
    *,
    meter_stop_wh: int,
    stopped_at: datetime,
    now: datetime,
) -> StoppedSession:
    """The facts ``settle`` judges: ``session`` stopped on this reading, received at ``now``."""
    charger = chargers.get_charge_point(conn, session.charge_point_id)
    return StoppedSession(
        id_tag_status=session.id_tag_status,
        meter_start_wh=session.meter_start_wh,
        meter_stop_wh=meter_stop_wh,
        started_at=session.started_at,
        stopped_at=stopped_at,
        start_received_at=session.created_at,
        stop_received_at=now,
        # Sessions reference their charger, so it exists.
        charger_registered_at=charger.created_at if charger is not None else session.created_at,
    )


class StopBilling:
    """
    Settles stopped sessions: prices each with the tariff it started under (a
    tariff changed mid-session does not reprice it), from its start and stop
    readings alone, then debits its user's wallet once, charges nothing (a
    start not Accepted), or holds it for an operator's review (implausible,
    or below the wallet floor); releases the funds its app request held. A
    session on a charger without a tariff stays unpriced.
    """

    log = Logger()

    def __init__(self, policy: BillingPolicy, tariffs: TariffCache) -> None:
        self._policy = policy
        self._tariffs = tariffs

    def bill(
        self, conn: Connection, session: TransactionRecord, now: datetime, *, closed: bool = False
    ) -> list[FollowUp]:
        """
        Settle ``session``, stopped and received at ``now``; the events it
        makes true. ``closed``: the central system closed it, the charger
        never stopped it (``ocppd.billing.closing.settle_closed``).
        """
        follow_ups: list[FollowUp] = []
        request = wallets.request_for_session(conn, session.id)
        if request is not None:
            wallets.set_request_status(conn, request.id, "completed", now=now)
        tariff = self._tariffs.get(conn, session.tariff_id, fresh=True)
        if closed and tariff is not None:
            # The charger's own stop may come after all: billed at these prices.
            transactions.set_billed_tariff(conn, session.id, tariff_snapshot(tariff))
        cost = None
        if (
            tariff is not None
            and session.meter_stop_wh is not None
            and session.stopped_at is not None
        ):
            settlement = self._settle(conn, session, tariff, session.stopped_at, now, closed)
            if settlement.outcome == "review":
                self._hold_for_review(conn, session, settlement, now)
            else:
                cost = settlement.cost
                priced = transactions.set_cost(
                    conn, session.id, cost=cost, currency=tariff.currency
                )
                if priced:
                    follow_ups.extend(self._debit(conn, session, settlement, now))
        if session.user_id is not None:
            reason = stop_reason(
                request.stop_requested if request is not None else None, session.stop_reason
            )
            follow_ups.append(
                FollowUp(
                    "charging.stopped",
                    {
                        "userId": session.user_id,
                        "sessionId": session.id,
                        "chargePointId": session.charge_point_id,
                        "reason": reason,
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
        closed: bool = False,
    ) -> Settlement:
        """The settlement's facts, read in this transaction (the wallet's row locked)."""
        assert session.meter_stop_wh is not None
        balance = None
        if wallet_pays(session.user_id, tariff.currency, self._policy.wallet_currency):
            assert session.user_id is not None
            balance = wallets.locked_wallet(
                conn, session.user_id, currency=tariff.currency, now=now
            ).balance
        facts = stopped_session(
            conn, session, meter_stop_wh=session.meter_stop_wh, stopped_at=stopped_at, now=now
        )
        settled = settle_closed if closed else settle
        return settled(tariff, facts, self._policy.limits, balance=balance)

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
        self, conn: Connection, session: TransactionRecord, settlement: Settlement, now: datetime
    ) -> list[FollowUp]:
        debit = debit_of(settlement, session.user_id, self._policy.wallet_currency)
        if debit == "other_currency":
            self.log.warn(
                "Session {session_id} cost {cost} {currency}; wallets are in {wallet_currency}, "
                "so it is not debited",
                session_id=session.id,
                cost=settlement.cost,
                currency=settlement.currency,
                wallet_currency=self._policy.wallet_currency,
            )
        if debit != "debit":
            return []
        assert session.user_id is not None
        posted, new = wallets.debit_session(
            conn,
            session.user_id,
            session.id,
            cost=settlement.cost,
            currency=settlement.currency,
            now=now,
        )
        if not new:
            return []
        return [FollowUp("wallet.transaction", wallet_event(session.user_id, posted))]
