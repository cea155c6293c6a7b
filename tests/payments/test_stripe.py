"""
``StripeProvider`` against the fake's endpoints in memory (``StubTreq``):
what it sends Stripe, how it reads Stripe's answers, and which signed
events it turns into what.
"""

from __future__ import annotations

import json
import time
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd.payments import (
    DECLINED,
    IGNORED,
    PAID,
    PENDING,
    REFUNDED,
    AmountNotPayable,
    ProviderUnavailable,
    WebhookRejected,
)
from ocppd.payments.signature import header
from ocppd.payments.stripe import StripeProvider
from tests.payments.fake_stripe import SECRET_KEY, WEBHOOK_SECRET, FakeStripe

RETURN = "https://charge.example.com/user/#/wallet"


class StripeProviderTests(TestCase):
    def setUp(self) -> None:
        self.fake = FakeStripe()
        self.fake.base = "https://api.stripe.test"
        self.http = StubTreq(self.fake.resource())
        self.provider = StripeProvider(
            http=self.http,  # type: ignore[arg-type]
            secret_key=SECRET_KEY,
            webhook_secret=WEBHOOK_SECRET,
            return_url=RETURN,
            api_url="https://api.stripe.test",
        )

    @inlineCallbacks
    def charge(self, amount: int = 1000, key: str = "top-up:7:k1") -> Any:
        d = self.provider.charge(7, amount, "EUR", key)
        self.http.flush()
        return (yield d)

    @inlineCallbacks
    def test_checkout_session(self) -> Any:
        """One Checkout Session for the amount, with our key and the secret key; pending."""
        payment = yield self.charge(1000)
        self.assertEqual(payment.status, PENDING)
        self.assertEqual(payment.reference, "cs_test_0001")
        self.assertEqual(payment.redirect_url, "https://api.stripe.test/pay/cs_test_0001")
        [request] = self.fake.requests
        self.assertEqual(request["authorization"], f"Bearer {SECRET_KEY}")
        self.assertEqual(request["key"], "top-up:7:k1")
        self.assertEqual(request["form"]["client_reference_id"], "7")
        self.assertEqual(request["form"]["cancel_url"], RETURN)
        self.assertEqual(request["form"]["line_items[0][price_data][currency]"], "eur")
        again = yield self.charge(1000)
        self.assertEqual(again, payment)

    @inlineCallbacks
    def test_answers_that_cannot_be_used(self) -> Any:
        """Another amount than asked, no JSON, too large, a 5xx: ProviderUnavailable."""
        for fail in (
            (200, json.dumps({"id": "cs_1", "url": "https://x", "amount_total": 1}).encode()),
            (
                200,
                json.dumps(
                    {"id": "cs_1", "url": "javascript:alert(1)", "amount_total": 1000}
                ).encode(),
            ),
            (200, b"not json"),
            (200, b"[" + b" " * 300_000 + b"]"),
            (500, b'{"error": {"type": "api_error", "message": "boom"}}'),
            (400, b'{"error": {"type": "invalid_request_error", "message": "bad"}}'),
        ):
            self.fake.fail = fail
            with self.subTest(fail[1][:40]):
                yield self.assertFailure(self.charge(), ProviderUnavailable)

    @inlineCallbacks
    def test_amount_not_payable(self) -> Any:
        """Below Stripe's minimum: AmountNotPayable (the customer can change it), not a retry."""
        self.fake.fail = (
            400,
            b'{"error": {"type": "invalid_request_error", "code": "amount_too_small"}}',
        )
        yield self.assertFailure(self.charge(10), AmountNotPayable)

    @inlineCallbacks
    def test_card_declined(self) -> Any:
        """A card error is a decline in ocppd's words, not Stripe's."""
        self.fake.fail = (402, b'{"error": {"type": "card_error", "message": "Stripe says no"}}')
        payment = yield self.charge()
        self.assertEqual((payment.status, payment.reason), (DECLINED, "the payment was declined"))


class WebhookParsingTests(TestCase):
    def setUp(self) -> None:
        self.fake = FakeStripe()
        self.fake.sessions["cs_test_1"] = {
            "id": "cs_test_1",
            "amount_total": 1000,
            "currency": "eur",
        }
        self.provider = StripeProvider(
            http=None,  # type: ignore[arg-type]
            secret_key=SECRET_KEY,
            webhook_secret=WEBHOOK_SECRET,
            return_url=RETURN,
        )

    def read(self, event: Any) -> Any:
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        signature = header(WEBHOOK_SECRET, int(time.time()), body)
        return self.provider.webhook(signature, body, time.time())

    def test_paid_and_refunded(self) -> None:
        paid = self.read(self.fake.completed("cs_test_1"))
        self.assertEqual(
            (paid.kind, paid.reference, paid.settlement, paid.amount, paid.currency),
            (PAID, "cs_test_1", "pi_test_1", 1000, "EUR"),
        )
        refunded = self.read(self.fake.refunded("cs_test_1", 300))
        self.assertEqual(
            (refunded.kind, refunded.settlement, refunded.amount), (REFUNDED, "pi_test_1", 300)
        )

    def test_ignored(self) -> None:
        """Not paid yet (a bank transfer), or a type ocppd does not use."""
        unpaid = self.fake.completed("cs_test_1", payment_status="unpaid")
        self.assertEqual(self.read(unpaid).kind, IGNORED)
        other = {**self.fake.completed("cs_test_1"), "type": "invoice.paid"}
        self.assertEqual(self.read(other).kind, IGNORED)

    def test_signed_but_unusable(self) -> None:
        """Signed bodies that are no usable event are rejected, not guessed at."""
        event = self.fake.completed("cs_test_1")
        cases = {
            "not JSON": b"{nope",
            "a list": b"[]",
            "no event id": {**event, "id": "not-an-event"},
            "no object": {**event, "data": {}},
            "no amount": self.fake.completed("cs_test_1", amount_total=None),
            "a float amount": self.fake.completed("cs_test_1", amount_total=10.5),
            "a negative amount": self.fake.completed("cs_test_1", amount_total=-1),
            "a bad currency": self.fake.completed("cs_test_1", currency="euro"),
            "no session id": self.fake.completed("cs_test_1", id=None),
            "a refund without its payment": {
                **self.fake.refunded("cs_test_1", 100),
                "data": {"object": {"amount_refunded": 100, "currency": "eur"}},
            },
        }
        for name, body in cases.items():
            with self.subTest(name):
                self.assertRaises(WebhookRejected, self.read, body)
