"""
Stripe as a payment provider, through its REST API with treq (no SDK).

A top-up is a Checkout Session (Stripe's hosted payment page): ``charge``
creates one for the amount, sending our idempotency key as Stripe's
``Idempotency-Key`` (a retried request gets the same session), and answers
*pending* with the page's URL. The customer pays there; Stripe then calls our
webhook, whose signature ``webhook`` verifies (``ocppd.payments.signature``)
before reading the event:

- ``checkout.session.completed`` / ``checkout.session.async_payment_succeeded``
  with ``payment_status = paid``: the session is paid (``PAID``), naming its
  PaymentIntent, which later refunds name;
- ``charge.refunded``: the PaymentIntent's charge has ``amount_refunded``
  refunded in all (``REFUNDED``);
- anything else is ``IGNORED`` (answered 200, so Stripe stops sending it).

Stripe's own words (error messages, declines) are logged, never shown: the
customer reads ocppd's sentences.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import treq
from treq.client import HTTPClient
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.http_headers import Headers
from zope.interface import implementer

from ocppd.bounds import INT64_MAX
from ocppd.logs import Logger
from ocppd.payments import (
    DECLINED,
    IGNORED,
    PAID,
    PENDING,
    REFUNDED,
    AmountNotPayable,
    IPaymentProvider,
    Payment,
    PaymentEvent,
    ProviderUnavailable,
    WebhookRejected,
)
from ocppd.payments.signature import SignatureError, verify

if TYPE_CHECKING:
    from ocppd.config import BillingConfig

#: Seconds a call to Stripe's API may take before the top-up fails (retryable).
TIMEOUT = 20.0
#: Bytes of an API answer read at most (a Checkout Session is a few KB).
MAX_ANSWER = 256 * 1024
#: Longest id of Stripe's we store (their ids are far shorter).
MAX_ID = 128
PAID_EVENTS = ("checkout.session.completed", "checkout.session.async_payment_succeeded")
REFUND_EVENTS = ("charge.refunded",)
#: Stripe's error codes for an amount it takes no payment of (its minimum is about 0.50).
AMOUNT_ERRORS = ("amount_too_small", "amount_too_large")
#: What the customer reads when Stripe declines (its own reason goes to the log).
DECLINE_REASON = "the payment was declined"


class _TooLarge(Exception):
    pass


def _collect(response: Any, limit: int) -> Deferred[bytes]:
    """The body of ``response``, failing once it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = [0]

    def collect(data: bytes) -> None:
        size[0] += len(data)
        if size[0] > limit:
            raise _TooLarge(size[0])
        chunks.append(data)

    return treq.collect(response, collect).addCallback(lambda _: b"".join(chunks))


def _stripe_id(value: Any, prefix: str) -> str | None:
    if (
        isinstance(value, str)
        and value.startswith(prefix)
        and len(value) <= MAX_ID
        and value.isascii()
        and value.isprintable()
    ):
        return value
    return None


def _amount(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX:
        return value
    return None


def _currency(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.upper()
    return None


@implementer(IPaymentProvider)
class StripeProvider:
    name = "stripe"
    log = Logger()

    def __init__(
        self,
        *,
        http: HTTPClient,
        pool: HTTPConnectionPool | None = None,
        secret_key: str,
        webhook_secret: str,
        return_url: str,
        api_url: str = "https://api.stripe.com",
        tolerance: int = 300,
        timeout: float = TIMEOUT,
    ) -> None:
        self._http = http
        self._pool = pool
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self._return_url = return_url
        self._api_url = api_url.rstrip("/")
        self._tolerance = tolerance
        self._timeout = timeout

    @classmethod
    def from_config(cls, billing: BillingConfig, reactor: Any = None) -> StripeProvider:
        if reactor is None:
            from twisted.internet import reactor
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = 4
        return cls(
            http=HTTPClient(Agent(reactor, pool=pool)),
            pool=pool,
            secret_key=billing.stripe_secret_key,
            webhook_secret=billing.stripe_webhook_secret,
            return_url=billing.checkout_return_url,
            api_url=billing.stripe_api_url,
            tolerance=billing.stripe_webhook_tolerance,
        )

    def close(self) -> Deferred[None] | None:
        return self._pool.closeCachedConnections() if self._pool is not None else None

    # -- charging ---------------------------------------------------------------

    @inlineCallbacks
    def charge(
        self, user_id: int, amount: int, currency: str, idempotency_key: str
    ) -> Generator[Deferred[Any], Any, Payment]:
        form = [
            ("mode", "payment"),
            ("success_url", self._return_url),
            ("cancel_url", self._return_url),
            ("client_reference_id", str(user_id)),
            ("line_items[0][quantity]", "1"),
            ("line_items[0][price_data][currency]", currency.lower()),
            ("line_items[0][price_data][unit_amount]", str(amount)),
            ("line_items[0][price_data][product_data][name]", "Charging wallet top-up"),
            ("metadata[ocppd_user_id]", str(user_id)),
            ("payment_intent_data[metadata][ocppd_user_id]", str(user_id)),
        ]
        answer = yield self._post("/v1/checkout/sessions", form, idempotency_key)
        if answer is None:
            return Payment(DECLINED, "", reason=DECLINE_REASON)
        session_id = _stripe_id(answer.get("id"), "cs_")
        url = answer.get("url")
        if (
            session_id is None
            or not isinstance(url, str)
            or not url.startswith(("https://", "http://"))
            or len(url) > 4096
            or _amount(answer.get("amount_total")) != amount
        ):
            self.log.error("Stripe answered a Checkout Session without a usable id, url or amount")
            raise ProviderUnavailable("an unusable Checkout Session")
        return Payment(PENDING, session_id, redirect_url=url)

    @inlineCallbacks
    def _post(
        self, path: str, form: list[tuple[str, str]], idempotency_key: str
    ) -> Generator[Deferred[Any], Any, dict[str, Any] | None]:
        """Stripe's JSON answer; None for a card decline; ProviderUnavailable for the rest."""
        try:
            response = yield self._http.post(
                self._api_url + path,
                data=form,
                headers=Headers(
                    {
                        "Authorization": [f"Bearer {self._secret_key}"],
                        "Idempotency-Key": [idempotency_key],
                    }
                ),
                timeout=self._timeout,
            )
            raw = yield _collect(response, MAX_ANSWER)
        except Exception as e:
            self.log.warn(
                "Stripe could not be reached: {error}", error=f"{e.__class__.__name__}: {e}"
            )
            raise ProviderUnavailable("unreachable") from None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.log.error("Stripe answered HTTP {code} without a JSON object", code=response.code)
            raise ProviderUnavailable("not JSON")
        if 200 <= response.code < 300:
            return body
        found = body.get("error")
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        self.log.warn(
            "Stripe refused {path} with HTTP {code}: {type} {stripe_code} {message}",
            path=path,
            code=response.code,
            type=str(error.get("type")),
            stripe_code=str(error.get("code")),
            message=str(error.get("message")),
        )
        if error.get("type") == "card_error":
            return None
        if error.get("code") in AMOUNT_ERRORS:
            raise AmountNotPayable(str(error.get("code")))
        raise ProviderUnavailable(f"HTTP {response.code}")

    # -- webhooks ---------------------------------------------------------------

    def webhook(self, signature: str | None, body: bytes, now: float) -> PaymentEvent:
        try:
            verify(signature, body, self._webhook_secret, now=now, tolerance=self._tolerance)
        except SignatureError as e:
            raise WebhookRejected(str(e)) from None
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookRejected("a signed body that is not JSON") from None
        if not isinstance(event, dict):
            raise WebhookRejected("a signed body that is not an event")
        event_id = _stripe_id(event.get("id"), "evt_")
        data = event.get("data")
        thing = data.get("object") if isinstance(data, dict) else None
        kind = event.get("type")
        if event_id is None or not isinstance(thing, dict) or not isinstance(kind, str):
            raise WebhookRejected("a signed event without id, type or object")
        if kind in PAID_EVENTS:
            if thing.get("payment_status") != "paid":
                # Paid later (a bank transfer): async_payment_succeeded follows.
                return PaymentEvent(event_id, IGNORED)
            return self._event(
                event_id,
                PAID,
                reference=_stripe_id(thing.get("id"), "cs_"),
                settlement=_stripe_id(thing.get("payment_intent"), "pi_"),
                amount=_amount(thing.get("amount_total")),
                currency=_currency(thing.get("currency")),
            )
        if kind in REFUND_EVENTS:
            settlement = _stripe_id(thing.get("payment_intent"), "pi_")
            return self._event(
                event_id,
                REFUNDED,
                reference=None,
                settlement=settlement,
                amount=_amount(thing.get("amount_refunded")),
                currency=_currency(thing.get("currency")),
                needs_settlement=True,
            )
        return PaymentEvent(event_id, IGNORED)

    @staticmethod
    def _event(
        event_id: str,
        kind: str,
        *,
        reference: str | None,
        settlement: str | None,
        amount: int | None,
        currency: str | None,
        needs_settlement: bool = False,
    ) -> PaymentEvent:
        if amount is None or currency is None:
            raise WebhookRejected(f"a signed {kind} event without amount or currency")
        if (reference is None and not needs_settlement) or (needs_settlement and not settlement):
            raise WebhookRejected(f"a signed {kind} event without the payment's id")
        return PaymentEvent(
            event_id,
            kind,
            reference=reference,
            settlement=settlement,
            amount=amount,
            currency=currency,
        )
