"""
An operator closes a session by hand (admin): ``POST /api/cms/sessions/{id}/close``
with ``{"reason": "..."}``.

For a session that cannot end and that nothing the charger says will close
(``ocppd.consumers.closing`` closes most on a reboot, an ``Available`` or a
newer start): the charger is gone for good, say. It is closed as the
processor closes one (``Closings.close``): on its last reading, stop reason
``closed by operator``, billed through the same rules (review, the debit, no
fee for nothing delivered), its app request's hold released. The close, the
bill and their events (``session.stopped``, ``wallet.transaction``,
``charging.stopped``, and ``audit.session.closed`` with who and why) are one
database transaction.

Closing a session that is no longer active is 409 ``not_active``; the same
request again after a lost answer (a session this operator's close ended)
answers 200 and changes nothing.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.api.errors import ApiError, bad_request
from ocppd.api.http import no_other_fields
from ocppd.billing.closing import CLOSED_BY_OPERATOR
from ocppd.bus.outbox import Event, Outbox
from ocppd.consumers.base import FollowUp
from ocppd.consumers.closing import Closings
from ocppd.consumers.policy import BillingPolicy
from ocppd.consumers.stop_billing import StopBilling
from ocppd.consumers.tariff_cache import TariffCache
from ocppd.representations import session_json
from ocppd.store import transactions
from ocppd.store.database import Database
from ocppd.store.records import TransactionRecord, UserRecord

MAX_REASON = 500


def parse_reason(body: dict[str, Any]) -> str:
    """The body's ``reason``: 1 to ``MAX_REASON`` characters of text, or 400."""
    no_other_fields(body, {"reason"})
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise bad_request(f"a text of 1 to {MAX_REASON} characters", field="reason")
    try:
        reason.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request("not valid text", field="reason") from None
    return reason.strip()


@attrs.frozen
class Closed:
    """What a close did: the session after it, and the events of the close (none if unchanged)."""

    session: TransactionRecord
    follow_ups: list[FollowUp]
    changed: bool


def close_tx(conn: Connection, session_id: int, closings: Closings, *, now: datetime) -> Closed:
    """Close an active session by hand, in one transaction."""
    session = transactions.lock_transaction(conn, session_id)
    if session is None or not session.confirmed:
        raise ApiError(404, "not_found", f"no session {session_id}")
    if session.status == "active":
        follow_ups = closings.close(conn, session, CLOSED_BY_OPERATOR, now)
        if follow_ups is not None:
            after = transactions.get_transaction(conn, session_id)
            assert after is not None
            return Closed(after, follow_ups, changed=True)
        session = transactions.get_transaction(conn, session_id) or session
    if session.stop_reason == CLOSED_BY_OPERATOR:
        return Closed(session, [], changed=False)
    raise ApiError(409, "not_active", f"session {session_id} has ended already")


class SessionClosing:
    """The hand close: one store transaction plus its events."""

    def __init__(self, *, database: Database, outbox: Outbox, policy: BillingPolicy) -> None:
        self._database = database
        self._outbox = outbox
        self._closings = Closings(StopBilling(policy, TariffCache()))

    @inlineCallbacks
    def close(
        self, session_id: int, body: dict[str, Any], actor: UserRecord
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        reason = parse_reason(body)

        def events(closed: Closed) -> list[Event]:
            # Staged with the close: the bill is never without its news.
            if not closed.changed:
                return []
            session = closed.session
            staged: list[Event] = [
                (f.routing_key, f.payload, f.charge_point_id) for f in closed.follow_ups
            ]
            audit = {
                "by": {"userId": actor.id, "email": actor.email},
                "sessionId": session.id,
                "reason": reason,
                "connectorId": session.connector_id,
                "energyWh": session.energy_wh,
                "cost": session.cost,
                "currency": session.currency,
                "review": session.review_status,
            }
            staged.append(("audit.session.closed", audit, session.charge_point_id))
            return staged

        closed = yield self._outbox.run(
            self._database,
            close_tx,
            events,
            session_id,
            self._closings,
            now=self._outbox.now(),
        )
        return {"session": session_json(closed.session)}
