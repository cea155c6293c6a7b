"""
The payment provider's webhook: the only way a paid-for top-up reaches a wallet.

A delivery is acted on only when its signature verifies (the provider checks
it: ``IPaymentProvider.webhook``), and then exactly once:

- the provider's event id is stored with the change it made, in one
  database transaction: a replayed delivery finds it and changes nothing;
- the wallet transaction's key names the payment (``paid:<provider>:<id>``),
  so two different events for one payment (Stripe sends ``completed`` and,
  for some methods, ``async_payment_succeeded``) credit it once;
- a refund's key names the refunded total (``refund:<provider>:<id>:<total>``),
  and what it debits is that total less what refunds debited before, so
  partial refunds, repeats and reordered deliveries add up to the truth.

What is credited is what the customer asked for (``payments.amount``); an
event whose amount or currency differ is logged and credits nothing.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime

from ocppd.api.errors import ApiError
from ocppd.bus.outbox import Event, Outbox
from ocppd.logs import Logger
from ocppd.payments import IGNORED, PAID, REFUNDED, IPaymentProvider, PaymentEvent, WebhookRejected
from ocppd.representations import wallet_event
from ocppd.store import payments, wallets
from ocppd.store.database import Database
from ocppd.store.records import PaymentRecord, WalletTransactionRecord

NOT_SIGNED = ApiError(400, "bad_signature", "this delivery is not signed by the payment provider")
NO_WEBHOOK = ApiError(404, "not_found", "no payment provider here takes webhooks")


class PaymentWebhooks:
    log = Logger()

    def __init__(
        self,
        *,
        database: Database,
        outbox: Outbox,
        provider: IPaymentProvider | None,
        clock: IReactorTime,
    ) -> None:
        self._database = database
        self._outbox = outbox
        self._provider = provider
        self._clock = clock

    @inlineCallbacks
    def receive(
        self, name: str, signature: str | None, body: bytes, client: str
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        provider = self._provider
        if provider is None or provider.name != name:
            raise NO_WEBHOOK
        try:
            event = provider.webhook(signature, body, self._clock.seconds())
        except WebhookRejected as e:
            self.log.warn(
                "Rejected a {provider} webhook delivery from {client}: {reason}",
                provider=name,
                client=client,
                reason=str(e),
            )
            raise NOT_SIGNED from None
        if event.kind == IGNORED:
            return {"received": True, "acted": False}
        posted = yield self._outbox.run(self._database, self._apply, self._events, name, event)
        return {"received": True, "acted": posted is not None}

    @staticmethod
    def _events(
        posted: tuple[int, WalletTransactionRecord] | None,
    ) -> list[Event]:
        if posted is None:
            return []
        user_id, record = posted
        return [("wallet.transaction", wallet_event(user_id, record), None)]

    def _apply(
        self, conn: Connection, name: str, event: PaymentEvent
    ) -> tuple[int, WalletTransactionRecord] | None:
        """The wallet transaction the event posted, or None (a replay, not ours, nothing to do)."""
        now = self._outbox.now()
        if event.kind == PAID:
            assert event.reference is not None
            payment = payments.by_reference(conn, name, event.reference)
        else:
            assert event.settlement is not None
            payment = payments.by_settlement(conn, name, event.settlement)
        if payment is None:
            # Another application's payment on the same account, or a refund
            # of a payment whose own event has not come yet (logged to reconcile).
            self.log.warn(
                "A {provider} {kind} event {event_id} names no payment of ours",
                provider=name,
                kind=event.kind,
                event_id=event.event_id,
            )
            return None
        if not payments.record_event(
            conn, name, event.event_id, kind=event.kind, payment_id=payment.id, now=now
        ):
            self.log.info(
                "{provider} event {event_id} was acted on before",
                provider=name,
                event_id=event.event_id,
            )
            return None
        if event.currency != payment.currency:
            self.log.error(
                "{provider} event {event_id} is in {currency}; payment {payment_id} was in "
                "{expected}: nothing posted",
                provider=name,
                event_id=event.event_id,
                currency=event.currency,
                expected=payment.currency,
                payment_id=payment.id,
            )
            return None
        if event.kind == PAID:
            return self._credit(conn, name, payment, event)
        if event.kind == REFUNDED:
            return self._refund(conn, name, payment, event)
        return None

    def _credit(
        self, conn: Connection, name: str, payment: PaymentRecord, event: PaymentEvent
    ) -> tuple[int, WalletTransactionRecord] | None:
        if event.amount != payment.amount:
            self.log.error(
                "{provider} says payment {payment_id} paid {amount}, not the {expected} "
                "asked for: nothing credited",
                provider=name,
                payment_id=payment.id,
                amount=event.amount,
                expected=payment.amount,
            )
            return None
        now = self._outbox.now()
        payments.mark_paid(conn, payment.id, event.settlement, now=now)
        record, posted = wallets.post_transaction(
            conn,
            payment.user_id,
            kind="top_up",
            amount=payment.amount,
            currency=payment.currency,
            idempotency_key=f"paid:{name}:{payment.reference}",
            reference=payment.reference,
            now=now,
        )
        return (payment.user_id, record) if posted else None

    def _refund(
        self, conn: Connection, name: str, payment: PaymentRecord, event: PaymentEvent
    ) -> tuple[int, WalletTransactionRecord] | None:
        total = min(event.amount, payment.amount)
        if payment.status != "paid" or total <= payment.refunded:
            return None
        now = self._outbox.now()
        payments.set_refunded(conn, payment.id, total, now=now)
        record, posted = wallets.post_transaction(
            conn,
            payment.user_id,
            kind="refund",
            amount=-(total - payment.refunded),
            currency=payment.currency,
            idempotency_key=f"refund:{name}:{payment.reference}:{total}",
            reference=event.settlement or payment.reference,
            now=now,
        )
        if posted and record.balance_after < 0:
            self.log.warn(
                "A refund of payment {payment_id} took the wallet of user {user_id} to "
                "{balance}: it had been spent",
                payment_id=payment.id,
                user_id=payment.user_id,
                balance=record.balance_after,
            )
        return (payment.user_id, record) if posted else None
