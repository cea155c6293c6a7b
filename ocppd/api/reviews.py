"""
Operators' decisions on sessions held for billing review (admin):
``POST /api/cms/sessions/{id}/review``.

The processor holds a stopped session for review instead of debiting it
when its facts are implausible or its debit would cross the wallet floor
(``ocppd.billing.settlement``). An operator then decides, once:

- ``bill_computed``: bill what the tariff computed (status ``billed``);
- ``bill_amount``: bill ``amount`` minor units instead (``adjusted``);
- ``waive``: bill nothing (``waived``).

The decision, the session's cost and its wallet debit are one database
transaction. A session billed before it was held (a closed session whose
charger's own stop came late, ``ocppd.billing.late_stop``) is debited or
credited the difference between the decided cost and what it was billed,
as its one correction (``wallets.correction_key``). The debit's idempotency key is the session's own
(``wallets.debit_key``), the one the processor would have used: a session
is debited once, whoever bills it and however often. Two operators deciding
at once: one wins, the other gets 409. The same decision sent again (a
retry after a lost answer) answers 200 and changes nothing.

After the commit: ``session.reviewed`` (pages update), ``wallet.transaction``
(the customer's wallet page) and ``audit.session.reviewed`` (the audit log:
who decided what, with the note) are published.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.api.errors import ApiError, bad_request
from ocppd.api.http import int_field, no_other_fields
from ocppd.bus.outbox import Event, Outbox
from ocppd.representations import session_json, wallet_event, wallet_transaction_json
from ocppd.store import transactions, wallets
from ocppd.store.database import Database
from ocppd.store.records import TransactionRecord, UserRecord, WalletTransactionRecord

#: Decision in the request -> the review status it leaves.
DECISIONS = {"bill_computed": "billed", "bill_amount": "adjusted", "waive": "waived"}
MAX_NOTE = 500


@attrs.frozen
class Decision:
    """A validated request body."""

    decision: str
    amount: int | None
    note: str | None

    @property
    def status(self) -> str:
        return DECISIONS[self.decision]


def parse_decision(body: dict[str, Any]) -> Decision:
    """The body as a Decision, or 400 naming the field."""
    no_other_fields(body, {"decision", "amount", "note"})
    decision = body.get("decision")
    if not isinstance(decision, str) or decision not in DECISIONS:
        raise bad_request(f"one of {', '.join(DECISIONS)}", field="decision")
    amount = None
    if decision == "bill_amount":
        amount = int_field(body, "amount", minimum=1, maximum=transactions.MAX_COST)
    elif "amount" in body:
        raise bad_request("only with bill_amount", field="amount")
    note = body.get("note")
    if note is not None:
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise bad_request(f"a string of at most {MAX_NOTE} characters or null", field="note")
        try:
            note.encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request("not valid text", field="note") from None
    return Decision(decision, amount, note or None)


@attrs.frozen
class Decided:
    """What a decision did: the session after it, and the debit it posted (if any now)."""

    session: TransactionRecord
    debit: WalletTransactionRecord | None
    changed: bool


def _billed(session: TransactionRecord, decision: Decision) -> int:
    if decision.decision == "waive":
        return 0
    if decision.decision == "bill_amount":
        assert decision.amount is not None
        return decision.amount
    computed = session.review_cost
    if computed is None or computed > transactions.MAX_COST:
        raise ApiError(
            409,
            "cost_out_of_range",
            "the computed cost is beyond what can be billed; bill an amount or waive",
        )
    return computed


def _same(session: TransactionRecord, decision: Decision) -> bool:
    """Whether ``session`` was already decided exactly so (a retried request)."""
    if session.review_status != decision.status:
        return False
    return decision.amount is None or session.cost == decision.amount


def decide_tx(
    conn: Connection,
    session_id: int,
    decision: Decision,
    actor: UserRecord,
    *,
    wallet_currency: str,
    now: datetime,
) -> Decided:
    """Apply ``decision`` to a session held for review, in one transaction."""
    session = transactions.get_transaction(conn, session_id)
    if session is None:
        raise ApiError(404, "not_found", f"no session {session_id}")
    if session.review_status != "pending":
        if session.review_status is not None and _same(session, decision):
            return Decided(session, None, changed=False)
        raise ApiError(
            409,
            "not_under_review",
            f"session {session_id} is not waiting for review"
            + ("" if session.review_status is None else f" (it was {session.review_status})"),
        )
    cost = _billed(session, decision)
    if not transactions.decide_review(
        conn,
        session_id,
        decision=decision.status,
        cost=cost,
        by=actor.id,
        note=decision.note,
        now=now,
    ):
        # Another operator's decision committed between our read and write.
        raise ApiError(409, "not_under_review", f"session {session_id} was decided meanwhile")
    debit = None
    debitable = session.user_id is not None and session.currency == wallet_currency
    if debitable:
        assert session.user_id is not None and session.currency is not None
        debited = wallets.session_debited(conn, session_id)
        if debited is None and cost > 0:
            posted, new = wallets.debit_session(
                conn, session.user_id, session_id, cost=cost, currency=session.currency, now=now
            )
            debit = posted if new else None
        elif debited is not None and debited != cost:
            # Billed at its close, then held for the charger's late stop
            # (ocppd.billing.late_stop): the decision moves the difference,
            # back to the customer too, since an operator decided it.
            posted, new = wallets.correct_session(
                conn,
                session.user_id,
                session_id,
                amount=debited - cost,
                currency=session.currency,
                now=now,
            )
            debit = posted if new else None
    after = transactions.get_transaction(conn, session_id)
    assert after is not None
    return Decided(after, debit, changed=True)


class SessionReviews:
    """The review decision: one store transaction plus its events."""

    def __init__(self, *, database: Database, outbox: Outbox, wallet_currency: str) -> None:
        self._database = database
        self._outbox = outbox
        self._wallet_currency = wallet_currency

    @inlineCallbacks
    def decide(
        self, session_id: int, body: dict[str, Any], actor: UserRecord
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        decision = parse_decision(body)

        def events(decided: Decided) -> list[Event]:
            # Staged with the decision: the debit is never without its news.
            if not decided.changed:
                return []
            charge_point_id = decided.session.charge_point_id
            staged: list[Event] = [
                ("session.reviewed", {"session": session_json(decided.session)}, charge_point_id)
            ]
            if decided.debit is not None:
                assert decided.session.user_id is not None
                staged.append(
                    (
                        "wallet.transaction",
                        wallet_event(decided.session.user_id, decided.debit),
                        None,
                    )
                )
            audit = {
                "by": {"userId": actor.id, "email": actor.email},
                "sessionId": session_id,
                "decision": decision.decision,
                "amount": decided.session.cost,
                "currency": decided.session.currency,
                "note": decision.note,
                "reasons": decided.session.review_reason_list,
                "computedCost": decided.session.review_cost,
            }
            staged.append(("audit.session.reviewed", audit, charge_point_id))
            return staged

        decided = yield self._outbox.run(
            self._database,
            decide_tx,
            events,
            session_id,
            decision,
            actor,
            wallet_currency=self._wallet_currency,
            now=self._outbox.now(),
        )
        session = session_json(decided.session)
        return {
            "session": session,
            "transaction": None
            if decided.debit is None
            else wallet_transaction_json(decided.debit),
        }
