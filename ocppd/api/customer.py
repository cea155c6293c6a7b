"""
What customers do for themselves: their wallet (balance, top-up,
transactions) and charging from the app (start on a connector, stop their
own session).

A start holds funds: everything the wallet has available when the customer
presses Start is spoken for by that session until it stops (or the start
fails), and the processor's funds guard stops it remotely when its running
cost reaches the hold (``ocppd.consumers.processor``). A customer cannot see
or stop another customer's session: it answers 404, as for no session at
all, so session ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.api.commands import CommandService, new_command_id
from ocppd.api.errors import ApiError
from ocppd.api.http import int_field, no_other_fields, string_field
from ocppd.api.online import Online, OnlineView
from ocppd.api.pagination import decode_cursor, page
from ocppd.billing.money import format_amount
from ocppd.bounds import INT32_MAX
from ocppd.bus.outbox import Event, Outbox
from ocppd.config import BillingConfig
from ocppd.consumers.funds_stop import StopOutcome
from ocppd.logs import Logger
from ocppd.payments import (
    DECLINED,
    PENDING,
    AmountNotPayable,
    IPaymentProvider,
    ProviderUnavailable,
)
from ocppd.representations import (
    payment_json,
    wallet_event,
    wallet_json,
    wallet_transaction_json,
)
from ocppd.store import chargers, payments, tags, transactions, users, wallets
from ocppd.store.database import Database
from ocppd.store.records import PaymentRecord, UserRecord, WalletTransactionRecord

#: Connector statuses a session can start on (Preparing: a cable is plugged in).
STARTABLE = ("Available", "Preparing")
MAX_CONNECTOR_ID = 1000
MAX_IDEMPOTENCY_KEY = 100
#: Without a payment provider nothing can pay for a top-up (``[billing] payment_provider``).
#: A 4xx: the node is healthy, this installation just takes no payments.
TOP_UP_UNAVAILABLE = ApiError(
    409, "top_up_unavailable", "self-service top-up is not available; ask the operator for credit"
)
#: The provider could not be asked (its own words are in the log, never here).
#: Retryable: the same Idempotency-Key asks for the same payment.
PAYMENT_UNAVAILABLE = ApiError(
    503, "payment_unavailable", "the payment service cannot be reached; try again in a moment"
)
AMOUNT_NOT_PAYABLE = ApiError(
    400, "amount_not_payable", "the payment service takes no payment of this amount"
)
IDEMPOTENCY_CONFLICT = ApiError(
    409, "idempotency_conflict", "this Idempotency-Key was used for another amount"
)


class CustomerService:
    log = Logger()

    def __init__(
        self,
        *,
        database: Database,
        outbox: Outbox,
        commands: CommandService,
        payments: IPaymentProvider | None,
        billing: BillingConfig,
        online: OnlineView,
    ) -> None:
        self._database = database
        self._online = online
        self._outbox = outbox
        self._commands = commands
        self._payments = payments
        self._billing = billing

    def id_tag(self, user: UserRecord) -> Deferred[str]:
        """The idTag the customer's app-started sessions carry (issued on first use)."""
        return self._database.run(tags.user_id_tag, user.id, now=self._outbox.now())

    # -- wallet ----------------------------------------------------------------

    def _wallet_json(self, conn: Connection, user_id: int) -> dict[str, Any]:
        view = wallets.wallet_view(
            conn, user_id, currency=self._billing.currency, now=self._outbox.now()
        )
        return wallet_json(
            view,
            minimum_to_start=self._billing.minimum_to_start,
            top_up_available=self._payments is not None,
        )

    def wallet(self, user: UserRecord) -> Deferred[dict[str, Any]]:
        return self._database.run(self._wallet_json, user.id)

    @inlineCallbacks
    def top_up(
        self, user: UserRecord, body: dict[str, Any], idempotency_key: str | None
    ) -> Generator[Deferred[Any], Any, tuple[int, dict[str, Any]]]:
        """
        Charge the payment provider; (HTTP status, answer). An approved
        payment is credited now (201; 200 when the key was credited before);
        a pending one (Stripe) answers 202 with the page the customer pays
        on, and the provider's webhook credits it (``ocppd.api.payments``).
        """
        provider = self._payments
        if provider is None:
            raise TOP_UP_UNAVAILABLE
        no_other_fields(body, {"amount"})
        amount = int_field(body, "amount", minimum=1, maximum=self._billing.max_top_up)
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY:
            raise ApiError(
                400, "bad_request", f"Idempotency-Key: 1 to {MAX_IDEMPOTENCY_KEY} characters"
            )
        # Without a client key every request is a new payment.
        key = f"top-up:{user.id}:{idempotency_key or new_command_id()}"
        currency = self._billing.currency
        # A retried request whose payment is open: the same page, no new one.
        existing = yield self._database.run(payments.by_key, key)
        if existing is not None:
            return 202, (yield self._pending_answer(existing, amount))
        try:
            payment = yield provider.charge(user.id, amount, currency, key)
        except ProviderUnavailable:
            raise PAYMENT_UNAVAILABLE from None
        except AmountNotPayable:
            raise AMOUNT_NOT_PAYABLE from None
        if payment.status == DECLINED:
            raise ApiError(402, "payment_declined", payment.reason or "the payment was declined")
        if payment.status == PENDING:

            def store(conn: Connection) -> PaymentRecord:
                return payments.add_payment(
                    conn,
                    provider=provider.name,
                    user_id=user.id,
                    amount=amount,
                    currency=currency,
                    idempotency_key=key,
                    reference=payment.reference,
                    redirect_url=payment.redirect_url,
                    now=self._outbox.now(),
                )

            stored = yield self._database.run(store)
            return 202, (yield self._pending_answer(stored, amount))

        def credit(conn: Connection) -> tuple[bool, WalletTransactionRecord, dict[str, Any]]:
            record, posted = wallets.post_transaction(
                conn,
                user.id,
                kind="top_up",
                amount=amount,
                currency=currency,
                idempotency_key=key,
                reference=payment.reference,
                now=self._outbox.now(),
            )
            if record.amount != amount:
                raise IDEMPOTENCY_CONFLICT
            return (
                posted,
                record,
                {
                    "status": "credited",
                    "wallet": self._wallet_json(conn, user.id),
                    "transaction": wallet_transaction_json(record),
                },
            )

        def credited(result: tuple[bool, WalletTransactionRecord, Any]) -> list[Event]:
            posted, record, _ = result
            return [("wallet.transaction", wallet_event(user.id, record), None)] if posted else []

        posted, _, answer = yield self._outbox.run(self._database, credit, credited)
        return (201 if posted else 200), answer

    def _pending_answer(self, payment: PaymentRecord, amount: int) -> Deferred[dict[str, Any]]:
        """What a top-up paid on the provider's page answers (202), first time or again."""
        if payment.amount != amount:
            raise IDEMPOTENCY_CONFLICT

        def answer(conn: Connection) -> dict[str, Any]:
            return {
                "status": "paid" if payment.status == "paid" else "pending",
                "redirectUrl": payment.redirect_url if payment.status == "pending" else None,
                "payment": payment_json(payment),
                "wallet": self._wallet_json(conn, payment.user_id),
            }

        return self._database.run(answer)

    @inlineCallbacks
    def transactions(
        self, user: UserRecord, limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        before = decode_cursor(cursor, "wallet", int)
        rows = yield self._database.run(
            wallets.transactions_page, user.id, before_id=before, limit=limit + 1
        )
        return page("wallet", rows, limit, lambda r: r.id, wallet_transaction_json)

    # -- charging ----------------------------------------------------------------

    def _reserve_start(
        self,
        conn: Connection,
        user: UserRecord,
        charge_point_id: str,
        connector_id: int,
        online: Online,
    ) -> tuple[str, str, int]:
        """Check the charger, connector and funds; hold the funds. (idTag, command id, hold)."""
        now = self._outbox.now()
        charger = chargers.get_charge_point(conn, charge_point_id)
        if charger is None:
            raise ApiError(404, "not_found", f"no charger {charge_point_id!r}")
        if not online(charger):
            raise ApiError(
                409,
                "charger_offline",
                f"{charge_point_id} is offline: it cannot start charging until it reconnects.",
            )
        connector = next(
            (
                c
                for c in chargers.list_connectors(conn, charge_point_id)
                if c.connector_id == connector_id
            ),
            None,
        )
        if connector is None or connector.status not in STARTABLE:
            status = "unknown" if connector is None else connector.status
            raise ApiError(
                409,
                "connector_unavailable",
                f"Connector {connector_id} of {charge_point_id} is {status}: "
                "it cannot start charging now.",
            )
        view = wallets.wallet_view(conn, user.id, currency=self._billing.currency, now=now)
        if view.available < max(1, self._billing.minimum_to_start):
            needed = format_amount(max(1, self._billing.minimum_to_start), view.currency)
            raise ApiError(
                402,
                "insufficient_funds",
                f"Starting needs at least {needed} available in your wallet; "
                f"{format_amount(view.available, view.currency)} is.",
            )
        id_tag = tags.user_id_tag(conn, user.id, now=now)
        command_id = new_command_id()
        wallets.create_request(
            conn,
            user_id=user.id,
            charge_point_id=charge_point_id,
            connector_id=connector_id,
            id_tag=id_tag,
            command_id=command_id,
            hold=view.available,
            now=now,
        )
        return id_tag, command_id, view.available

    @inlineCallbacks
    def start(
        self, user: UserRecord, body: dict[str, Any]
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        no_other_fields(body, {"chargePointId", "connectorId"})
        charge_point_id = string_field(body, "chargePointId", max_length=48)
        connector_id = int_field(body, "connectorId", minimum=1, maximum=MAX_CONNECTOR_ID)

        def requested(reserved: tuple[str, str, int]) -> list[Event]:
            id_tag, command_id, hold = reserved
            payload = {
                "userId": user.id,
                "chargePointId": charge_point_id,
                "connectorId": connector_id,
                "idTag": id_tag,
                "commandId": command_id,
                "hold": hold,
            }
            return [("charging.start.requested", payload, charge_point_id)]

        # Early and cheap: no funds held for a charger no node holds. The
        # start itself goes through the router, which asks presence again.
        online = yield self._online.lookup([charge_point_id])
        id_tag, command_id, _ = yield self._outbox.run(
            self._database,
            self._reserve_start,
            requested,
            user,
            charge_point_id,
            connector_id,
            online,
        )
        request = {"chargePointId": charge_point_id, "connectorId": connector_id, "idTag": id_tag}
        try:
            answer = yield self._commands.run("remote-start", request, user, command_id=command_id)
        except Exception:
            yield self._release(command_id)
            raise
        if answer.get("status") != "Accepted":
            yield self._release(command_id)
            raise ApiError(
                409,
                "charger_rejected",
                f"{charge_point_id} refused to start charging ({answer.get('status')}).",
            )
        # The charger's StartTransaction usually follows its answer; the
        # session id is here if it was quicker, else charging.started tells.
        started = yield self._database.run(wallets.request_by_command, command_id)
        return {
            "commandId": command_id,
            "status": "Accepted",
            "sessionId": None if started is None else started.session_id,
        }

    def _release(self, command_id: str) -> Deferred[None]:
        """A start that failed holds nothing."""

        def release(conn: Connection) -> None:
            request = wallets.request_by_command(conn, command_id)
            if request is not None and request.status == "requested":
                wallets.set_request_status(conn, request.id, "failed", now=self._outbox.now())

        return self._database.run(release)

    @inlineCallbacks
    def stop(
        self, user: UserRecord, body: dict[str, Any]
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        no_other_fields(body, {"sessionId"})
        session_id = int_field(body, "sessionId", minimum=1, maximum=INT32_MAX)
        session = yield self._database.run(transactions.get_transaction, session_id)
        if session is None or session.user_id != user.id:
            raise ApiError(404, "not_found", f"You have no session {session_id}.")
        if session.status != "active":
            raise ApiError(409, "session_not_active", f"Session {session_id} has stopped already.")

        def note_stop(conn: Connection) -> None:
            request = wallets.request_for_session(conn, session_id)
            if request is not None:
                wallets.mark_stop_requested(conn, request.id, "user", now=self._outbox.now())

        payload = {
            "userId": user.id,
            "sessionId": session_id,
            "chargePointId": session.charge_point_id,
            "reason": "user",
        }
        yield self._outbox.run(
            self._database,
            note_stop,
            lambda _: [("charging.stop.requested", payload, session.charge_point_id)],
        )
        answer = yield self._commands.run(
            "remote-stop",
            {"chargePointId": session.charge_point_id, "transactionId": session_id},
            user,
        )
        if answer.get("status") != "Accepted":
            raise ApiError(
                409,
                "charger_rejected",
                f"{session.charge_point_id} refused to stop charging ({answer.get('status')}).",
            )
        return {"status": "Accepted", "sessionId": session_id, "commandId": answer["commandId"]}

    @inlineCallbacks
    def stop_for_funds(
        self, user_id: int, charge_point_id: str, session_id: int
    ) -> Generator[Deferred[Any], Any, StopOutcome]:
        """
        Stop a session that reached the funds it holds, on the customer's
        behalf (the audit trail shows the customer and the command), through
        the router wherever the charger is. For the funds-stop consumer
        (``ocppd/consumers/funds_stop.py``), which retries what is unreachable.
        """
        user = yield self._database.run(users.get_user, user_id)
        if user is None:
            return StopOutcome.FAILED
        try:
            answer = yield self._commands.run(
                "remote-stop",
                {"chargePointId": charge_point_id, "transactionId": session_id},
                user,
            )
        except ApiError as e:
            self.log.warn(
                "Could not stop session {session_id} at {charge_point_id} for funds: {error}",
                session_id=session_id,
                charge_point_id=charge_point_id,
                error=e.message,
                status=e.status,
            )
            return StopOutcome.UNREACHABLE if e.status in (409, 503, 504) else StopOutcome.FAILED
        self.log.info(
            "Session {session_id} stopped for funds: {charge_point_id} answered {status}",
            session_id=session_id,
            charge_point_id=charge_point_id,
            status=answer.get("status"),
        )
        return StopOutcome.ANSWERED
