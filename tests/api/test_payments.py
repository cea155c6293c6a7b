"""
Top-ups paid through Stripe, on a whole node over real sockets, against a
local fake of Stripe's API (``tests.payments.fake_stripe``): the wallet is
credited only by a signed webhook, once per payment, and refunds debit it.
"""

from __future__ import annotations

import time
from typing import Any

from twisted.internet.defer import gatherResults, inlineCallbacks

from ocppd.store import tables
from tests.api.test_api import CUSTOMER, ApiTestCase
from tests.integration.daemon import postgres_overrides
from tests.payments.fake_stripe import FakeStripe, signed

WEBHOOK = "/api/payments/stripe/webhook"


class StripeTestCase(ApiTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        self.stripe = yield FakeStripe().start(self)
        yield super().setUp()
        self.token = yield self.login(CUSTOMER)

    def daemon_overrides(self) -> list[str]:
        return [*super().daemon_overrides(), *self.stripe.overrides()]

    def top_up(self, amount: int, key: str | None = "key-0001") -> Any:
        headers = {"Idempotency-Key": key} if key else None
        return self.request(
            "POST", "/api/user/wallet/top-up", {"amount": amount}, token=self.token, headers=headers
        )

    def deliver(self, event: dict[str, Any], **kwargs: Any) -> Any:
        body, signature = signed(event, **kwargs)
        return self.deliver_raw(body, signature)

    def deliver_raw(self, body: bytes, signature: str | None) -> Any:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if signature is not None:
            headers["Stripe-Signature"] = signature
        return self.request("POST", WEBHOOK, data=body, headers=headers)

    @inlineCallbacks
    def wallet(self) -> Any:
        _, wallet, _ = yield self.request("GET", "/api/user/wallet", token=self.token)
        _, page, _ = yield self.request("GET", "/api/user/wallet/transactions", token=self.token)
        return wallet["balance"], [(t["kind"], t["amount"]) for t in page["items"]]

    @inlineCallbacks
    def paid_session(self, amount: int = 2000) -> Any:
        code, answer, _ = yield self.top_up(amount)
        self.assertEqual(code, 202, answer)
        session = answer["payment"]["reference"]
        code, body, _ = yield self.deliver(self.stripe.completed(session))
        self.assertEqual((code, body), (200, {"received": True, "acted": True}))
        return session


class StripeTopUpTests(StripeTestCase):
    @inlineCallbacks
    def test_top_up_is_a_checkout_page_and_credits_nothing(self) -> Any:
        """
        A top-up opens a Stripe Checkout Session for the amount (with the
        secret key, our Idempotency-Key and the return page) and answers 202
        with its page; the wallet is not credited by it, nor by asking again.
        """
        code, answer, _ = yield self.top_up(2500)
        self.assertEqual(code, 202, answer)
        self.assertEqual(answer["status"], "pending")
        self.assertEqual(answer["redirectUrl"], f"{self.stripe.base}/pay/cs_test_0001")
        self.assertEqual(answer["payment"]["amount"], 2500)
        self.assertEqual(answer["wallet"]["balance"], 0)
        [request] = self.stripe.requests
        form = request["form"]
        self.assertEqual(form["mode"], "payment")
        self.assertEqual(form["line_items[0][price_data][unit_amount]"], "2500")
        self.assertEqual(form["line_items[0][price_data][currency]"], "eur")
        self.assertEqual(form["success_url"], "https://charge.example.com/user/#/wallet")
        self.assertTrue(request["key"].endswith(":key-0001"), request)
        # The same key again (a double click, a retry): the same page, Stripe not asked.
        code, again, _ = yield self.top_up(2500)
        self.assertEqual((code, again["redirectUrl"]), (202, answer["redirectUrl"]))
        self.assertEqual(len(self.stripe.requests), 1)
        # The same key for another amount is a client's mistake.
        result = yield self.top_up(9900)
        self.assertError(result, 409, "idempotency_conflict")
        self.assertEqual((yield self.wallet()), (0, []))

    @inlineCallbacks
    def test_signed_webhook_credits_once(self) -> Any:
        """
        The signed checkout.session.completed credits the amount asked for;
        its replay, and a second event for the same payment
        (async_payment_succeeded), credit nothing more.
        """
        code, answer, _ = yield self.top_up(2000)
        session = answer["payment"]["reference"]
        event = self.stripe.completed(session)
        code, body, _ = yield self.deliver(event)
        self.assertEqual((code, body), (200, {"received": True, "acted": True}))
        self.assertEqual((yield self.wallet()), (2000, [("top_up", 2000)]))
        # The very same delivery again (Stripe retries; an attacker replays within the window).
        code, body, _ = yield self.deliver(event)
        self.assertEqual((code, body), (200, {"received": True, "acted": False}))
        other = self.stripe.completed(session, kind="checkout.session.async_payment_succeeded")
        code, body, _ = yield self.deliver(other)
        self.assertEqual((code, body), (200, {"received": True, "acted": False}))
        self.assertEqual((yield self.wallet()), (2000, [("top_up", 2000)]))
        # The customer's retried request now says it is paid, and opens nothing.
        code, again, _ = yield self.top_up(2000)
        self.assertEqual((code, again["status"], again["redirectUrl"]), (202, "paid", None))
        self.assertEqual(len(self.stripe.requests), 1)

    @inlineCallbacks
    def test_forged_and_stale_webhooks_credit_nothing(self) -> Any:
        """
        Signed with another secret, unsigned, a body changed after signing,
        signed outside the tolerance window: 400 bad_signature, nothing
        credited, and Stripe's words nowhere in the answers.
        """
        _, answer, _ = yield self.top_up(2000)
        event = self.stripe.completed(answer["payment"]["reference"])
        forged = yield self.deliver(event, secret="whsec_not_the_right_one")
        self.assertError(forged, 400, "bad_signature")
        unsigned = yield self.deliver_raw(signed(event)[0], None)
        self.assertError(unsigned, 400, "bad_signature")
        body, signature = signed(event)
        tampered = yield self.deliver_raw(body.replace(b"2000", b"9000"), signature)
        self.assertError(tampered, 400, "bad_signature")
        stale = yield self.deliver(event, at=time.time() - 3600)
        self.assertError(stale, 400, "bad_signature")
        garbage = yield self.deliver_raw(body, "t=abc,v1=zz")
        self.assertError(garbage, 400, "bad_signature")
        self.assertEqual((yield self.wallet()), (0, []))
        # The genuine delivery still counts: a rejected forgery used up nothing.
        code, body, _ = yield self.deliver(event)
        self.assertEqual((code, body["acted"]), (200, True))
        self.assertEqual((yield self.wallet()), (2000, [("top_up", 2000)]))

    @inlineCallbacks
    def test_refunds_debit(self) -> Any:
        """
        charge.refunded debits what was refunded since the last refund: a
        partial refund, its replay, then the rest; never more than was paid.
        """
        session = yield self.paid_session(2000)
        partial = self.stripe.refunded(session, 500)
        code, body, _ = yield self.deliver(partial)
        self.assertEqual((code, body["acted"]), (200, True))
        yield self.deliver(partial)
        self.assertEqual((yield self.wallet()), (1500, [("refund", -500), ("top_up", 2000)]))
        code, body, _ = yield self.deliver(self.stripe.refunded(session, 2000))
        self.assertEqual((code, body["acted"]), (200, True))
        # An older event arriving late changes nothing.
        code, body, _ = yield self.deliver(self.stripe.refunded(session, 500))
        self.assertEqual((code, body["acted"]), (200, False))
        self.assertEqual(
            (yield self.wallet()),
            (0, [("refund", -1500), ("refund", -500), ("top_up", 2000)]),
        )

    @inlineCallbacks
    def test_events_not_for_a_payment_of_ours(self) -> Any:
        """
        A paid session we never opened, an amount other than asked, a
        currency other than the wallet's, an event type we do not use: 200
        (Stripe stops resending), nothing credited.
        """
        _, answer, _ = yield self.top_up(2000)
        session = answer["payment"]["reference"]
        for event in (
            self.stripe.completed(session, id="cs_test_unknown"),
            self.stripe.completed(session, amount_total=200000),
            self.stripe.completed(session, currency="usd"),
            {**self.stripe.completed(session), "type": "customer.created"},
            self.stripe.completed(session, payment_status="unpaid"),
        ):
            code, body, _ = yield self.deliver(event)
            self.assertEqual((code, body["acted"]), (200, False), event)
        self.assertEqual((yield self.wallet()), (0, []))

    @inlineCallbacks
    def test_stripe_errors_never_reach_the_customer(self) -> Any:
        """
        Stripe down (500), an answer that is no JSON, a card decline: the
        customer reads ocppd's sentences, never Stripe's.
        """
        self.stripe.fail = (500, b'{"error": {"type": "api_error", "message": "Stripe internal"}}')
        result = yield self.top_up(2000, key="k-500")
        self.assertError(result, 503, "payment_unavailable")
        self.stripe.fail = (502, b"<html>Bad gateway</html>")
        result = yield self.top_up(2000, key="k-502")
        self.assertError(result, 503, "payment_unavailable")
        self.stripe.fail = (
            402,
            b'{"error": {"type": "card_error", "code": "card_declined", "message": "Your card '
            b'was declined by Stripe Bank."}}',
        )
        result = yield self.top_up(2000, key="k-402")
        self.assertError(result, 402, "payment_declined")
        self.assertNotIn("Stripe", result[1]["error"]["message"])
        self.stripe.fail = (
            400,
            b'{"error": {"type": "invalid_request_error", "code": "amount_too_small", '
            b'"message": "Amount must be at least 0.50 eur"}}',
        )
        result = yield self.top_up(10, key="k-small")
        self.assertError(result, 400, "amount_not_payable")
        self.assertNotIn("0.50", result[1]["error"]["message"])
        self.stripe.fail = None
        self.assertEqual((yield self.wallet()), (0, []))

    @inlineCallbacks
    def test_concurrent_requests_of_one_key_open_one_payment(self) -> Any:
        """
        Two requests of one key in flight at once (a double click that beat
        the disabled button): one payment, the same page for both, never a 5xx.
        """
        results = yield gatherResults([self.top_up(1500), self.top_up(1500)])
        codes = sorted(code for code, _, _ in results)
        self.assertEqual(codes, [202, 202], [body for _, body, _ in results])
        urls = {body["redirectUrl"] for _, body, _ in results}
        self.assertEqual(len(urls), 1, urls)
        payments = yield self.daemon.query(
            lambda conn: conn.execute(tables.payments.select()).fetchall()
        )
        self.assertEqual(len(payments), 1)

    @inlineCallbacks
    def test_concurrent_deliveries_credit_once(self) -> Any:
        """
        The same event twice at once, and the payment's other event beside
        them: one credit, the others acted on nothing.
        """
        _, answer, _ = yield self.top_up(2000)
        session = answer["payment"]["reference"]
        event = self.stripe.completed(session)
        other = self.stripe.completed(session, kind="checkout.session.async_payment_succeeded")
        results = yield gatherResults(
            [self.deliver(event), self.deliver(event), self.deliver(other)]
        )
        self.assertEqual(sorted(body["acted"] for _, body, _ in results), [False, False, True])
        self.assertEqual((yield self.wallet()), (2000, [("top_up", 2000)]))

    @inlineCallbacks
    def test_stripe_unreachable(self) -> Any:
        """Nothing listening at Stripe's address: 503 payment_unavailable, nothing stored."""
        yield self.stripe.port.stopListening()
        result = yield self.top_up(2000)
        self.assertError(result, 503, "payment_unavailable")
        payments = yield self.daemon.query(
            lambda conn: conn.execute(tables.payments.select()).fetchall()
        )
        self.assertEqual(payments, [])


class PostgresStripeTopUpTests(StripeTopUpTests):
    """The same on PostgreSQL (row locks, ON CONFLICT of concurrent requests)."""

    def daemon_overrides(self) -> list[str]:
        return [*postgres_overrides(self), *super().daemon_overrides()]


class WebhookWithoutStripeTests(ApiTestCase):
    overrides = ("billing.payment_provider=test",)

    @inlineCallbacks
    def test_no_webhook_without_stripe(self) -> Any:
        """With another provider the webhook route is 404, whatever is signed."""
        stripe = FakeStripe()
        stripe.sessions["cs_test_1"] = {"amount_total": 100, "currency": "eur"}
        body, signature = signed(stripe.completed("cs_test_1"))
        result = yield self.request(
            "POST", WEBHOOK, data=body, headers={"Stripe-Signature": signature}
        )
        self.assertError(result, 404, "not_found")
