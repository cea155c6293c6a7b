"""
The processor's part for a charger's own StopTransaction that arrives after
the central system closed its session (``ocppd.billing.late_stop`` decides):
the session is billed again on the charger's reading, at the prices it was
billed with, and the difference debited as one correction, held for review,
or just recorded; the session keeps the charger's stop (reading, time,
reason beside the closing reason) and is announced again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from ocppd.billing.closing import DEFAULT_STOP_REASON, wallet_pays
from ocppd.billing.late_stop import ClosedBill, correct_late_stop, tariff_from_snapshot
from ocppd.billing.tariff import Tariff
from ocppd.consumers.base import FollowUp
from ocppd.consumers.policy import BillingPolicy
from ocppd.consumers.stop_billing import stopped_session
from ocppd.consumers.tariff_cache import TariffCache
from ocppd.logs import Logger
from ocppd.representations import session_json, wallet_event
from ocppd.store import transactions, wallets
from ocppd.store.records import TransactionRecord


class LateStops:
    """Applies a charger's late stop to the session the central system closed."""

    log = Logger()

    def __init__(self, policy: BillingPolicy, tariffs: TariffCache) -> None:
        self._policy = policy
        self._tariffs = tariffs

    def _tariff(self, conn: Connection, session: TransactionRecord) -> Tariff | None:
        if session.billed_tariff is not None:
            return tariff_from_snapshot(session.billed_tariff)
        # Closed before the prices were kept with it: its tariff as it is now.
        return self._tariffs.get(conn, session.tariff_id, fresh=True)

    def apply(
        self,
        conn: Connection,
        session: TransactionRecord,
        *,
        meter_stop_wh: int,
        stopped_at: datetime,
        reason: str | None,
        id_tag: str | None,
        now: datetime,
    ) -> list[FollowUp]:
        """
        Apply the charger's stop to ``session`` (closed, no late stop yet,
        its row locked by ``record_stop``); the events it makes true.
        """
        assert session.meter_stop_wh is not None and session.stopped_at is not None
        tariff = self._tariff(conn, session)
        wallet = tariff is not None and wallet_pays(
            session.user_id, tariff.currency, self._policy.wallet_currency
        )
        balance = None
        if wallet:
            assert session.user_id is not None and tariff is not None
            balance = wallets.locked_wallet(
                conn, session.user_id, currency=tariff.currency, now=now
            ).balance
        closed = ClosedBill(
            meter_stop_wh=session.meter_stop_wh,
            stopped_at=session.stopped_at,
            cost=session.cost,
            review_status=session.review_status,
            wallet=wallet,
        )
        facts = stopped_session(
            conn, session, meter_stop_wh=meter_stop_wh, stopped_at=stopped_at, now=now
        )
        correction = correct_late_stop(tariff, closed, facts, self._policy.limits, balance=balance)
        recorded = correction.cost if correction.outcome != "review" else None
        if not transactions.apply_late_stop(
            conn,
            session.id,
            meter_stop_wh=meter_stop_wh,
            stopped_at=stopped_at,
            charger_reason=reason or DEFAULT_STOP_REASON,
            stop_id_tag=id_tag,
            cost=recorded,
            currency=None if tariff is None else tariff.currency,
            now=now,
        ):
            return []
        follow_ups: list[FollowUp] = []
        if correction.outcome == "review":
            assert tariff is not None and correction.cost is not None
            transactions.review_late_stop(
                conn,
                session.id,
                computed_cost=correction.cost,
                currency=tariff.currency,
                reasons=correction.reasons,
                now=now,
            )
            # A warning: money waits for an operator (GET /api/cms/sessions?review=pending).
            self.log.warn(
                "Session {session_id} at {charge_point_id}: the charger's stop after it was"
                " closed ({closed_reason}) says {meter_stop} Wh at {stopped_at}, billed on"
                " {billed} Wh; held for review, nothing moved: {reasons} (computed {cost}"
                " {currency}, billed {billed_cost})",
                session_id=session.id,
                charge_point_id=session.charge_point_id,
                closed_reason=session.stop_reason,
                meter_stop=meter_stop_wh,
                stopped_at=stopped_at,
                billed=session.meter_stop_wh,
                reasons=", ".join(correction.reasons) or "under review",
                cost=correction.cost,
                currency=tariff.currency,
                billed_cost=session.cost,
            )
        elif correction.outcome == "debit":
            assert session.user_id is not None and tariff is not None
            posted, new = wallets.correct_session(
                conn,
                session.user_id,
                session.id,
                amount=-correction.difference,
                currency=tariff.currency,
                now=now,
            )
            if new:
                follow_ups.append(
                    FollowUp("wallet.transaction", wallet_event(session.user_id, posted))
                )
        self.log.info(
            "Session {session_id} at {charge_point_id} closed ({closed_reason}) on {billed} Wh;"
            " the charger's own stop ({reason}) at {meter_stop} Wh: {outcome}"
            " (cost {cost}, difference {difference})",
            session_id=session.id,
            charge_point_id=session.charge_point_id,
            closed_reason=session.stop_reason,
            billed=session.meter_stop_wh,
            reason=reason or DEFAULT_STOP_REASON,
            meter_stop=meter_stop_wh,
            outcome=correction.outcome,
            cost=correction.cost,
            difference=correction.difference,
        )
        after = transactions.get_transaction(conn, session.id)
        assert after is not None
        stopped = FollowUp(
            "session.stopped", {"session": session_json(after)}, session.charge_point_id
        )
        return [stopped, *follow_ups]
