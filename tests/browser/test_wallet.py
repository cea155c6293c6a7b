"""
The wallet page and money: a top-up is credited once however often it is
clicked or retried, and without a payment provider the page offers none.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks

from tests.browser.base import CUSTOMER, BrowserTestCase

TOP_UP = "**/api/user/wallet/top-up"


class TopUpTests(BrowserTestCase):
    # The test provider approves every payment; it must be chosen explicitly.
    overrides = ("billing.payment_provider=test",)

    @inlineCallbacks
    def wallet(self) -> Any:
        """The wallet page, and the Idempotency-Key of each top-up request it sends."""
        page = yield self.open(CUSTOMER, "/user/#/wallet")
        keys: list[str | None] = []

        def watch() -> None:
            page.on(
                "request",
                lambda request: (
                    keys.append(request.headers.get("idempotency-key"))
                    if request.url.endswith("/api/user/wallet/top-up")
                    else None
                ),
            )

        yield self.b(watch)
        return page, keys

    @inlineCallbacks
    def balance(self) -> Any:
        _, wallet = yield self.api("GET", "/api/user/wallet", who=CUSTOMER)
        _, page = yield self.api("GET", "/api/user/wallet/transactions", who=CUSTOMER)
        return wallet["balance"], [t["amount"] for t in page["items"]]

    @inlineCallbacks
    def test_double_click_credits_once(self) -> Any:
        """
        A double click on "+ €10.00" sends one request, with an Idempotency-Key,
        the buttons disabled while it is in flight: EUR 10 credited, once.
        """
        from playwright.sync_api import expect

        page, keys = yield self.wallet()

        def double_click() -> None:
            button = page.get_by_role("button", name="+ €10.00")
            expect(button).to_be_enabled()
            button.dblclick()
            expect(page.locator("[data-figure=balance]")).to_have_text("€10.00")
            expect(page.locator("tbody tr")).to_have_count(1)
            expect(button).to_be_enabled()

        yield self.b(double_click)
        self.assertEqual((yield self.balance()), (1000, [1000]))
        self.assertEqual(len(keys), 1, keys)
        self.assertTrue(keys[0] and len(keys[0]) >= 16, keys)

    @inlineCallbacks
    def test_retry_after_a_lost_answer_reuses_the_key(self) -> Any:
        """
        The first top-up reaches the server but its answer is lost: the page
        says so, and the customer's retry of the same amount carries the same
        key, so the server answers with the first credit instead of a second.
        A new amount afterwards is a new intent with a new key.
        """
        from playwright.sync_api import expect

        page, keys = yield self.wallet()
        # Chromium notes the answer the test drops on purpose.
        self.allow_console_error("net::ERR_FAILED")
        lost: list[int] = []

        def lose_first_answer(route: Any) -> None:
            if lost:
                route.continue_()
                return
            route.fetch()  # the server credits the wallet...
            lost.append(1)
            route.abort()  # ...and the page never hears of it

        def first_try() -> None:
            page.route(TOP_UP, lose_first_answer)
            page.get_by_role("button", name="+ €20.00").click()
            expect(page.locator(".form-error")).to_contain_text("cannot be reached")

        yield self.b(first_try)
        self.assertEqual((yield self.balance()), (2000, [2000]))

        def retry() -> None:
            page.get_by_role("button", name="+ €20.00").click()
            expect(page.locator("[data-figure=balance]")).to_have_text("€20.00")
            expect(page.locator(".form-error")).to_be_hidden()
            page.get_by_role("button", name="+ €10.00").click()
            expect(page.locator("[data-figure=balance]")).to_have_text("€30.00")

        yield self.b(retry)
        self.assertEqual((yield self.balance()), (3000, [1000, 2000]))
        self.assertEqual(len(keys), 3, keys)
        self.assertEqual(keys[0], keys[1])
        self.assertNotEqual(keys[1], keys[2])


class NoPaymentProviderTests(BrowserTestCase):
    @inlineCallbacks
    def test_top_up_shown_unavailable(self) -> Any:
        """
        With no payment provider (the default) the wallet shows its balance
        and says how to get credit: no top-up button, no request, no error.
        """
        from playwright.sync_api import expect

        page = yield self.open(CUSTOMER, "/user/#/wallet")
        posts: list[str] = []

        def check() -> None:
            page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
            expect(page.locator("[data-figure=balance]")).to_have_text("€0.00")
            expect(page.locator("[data-topup=unavailable]")).to_contain_text(
                "Ask the operator of this charging network to add credit"
            )
            expect(page.get_by_role("button", name="Top up")).to_have_count(0)
            expect(page.get_by_role("button", name="+ €10.00")).to_have_count(0)

        yield self.b(check)
        self.assertEqual(posts, [])
        yield self.screenshot(page, "user-wallet-no-provider")
        yield self.phone_screenshot(page, "user-wallet-no-provider-phone")


class StripeTopUpTests(BrowserTestCase):
    """With Stripe, a top-up opens Stripe's page once; the signed webhook credits it."""

    @inlineCallbacks
    def setUp(self) -> Any:
        from tests.payments.fake_stripe import FakeStripe

        self.stripe = yield FakeStripe().start(self)
        self.overrides = tuple(self.stripe.overrides())
        yield super().setUp()

    @inlineCallbacks
    def test_double_click_opens_one_payment_and_the_webhook_credits_it(self) -> Any:
        """
        A double click on "+ €10.00" creates one Checkout Session and lands on
        its page; nothing is credited until Stripe's signed webhook arrives,
        and then the wallet shows €10.00 once. A refund in Stripe appears on
        the open page live, as "Refund to your card".
        """
        import treq
        from playwright.sync_api import expect
        from twisted.internet import reactor
        from twisted.web.client import HTTPConnectionPool

        from tests.payments.fake_stripe import signed

        page = yield self.open(CUSTOMER, "/user/#/wallet")

        def double_click() -> None:
            button = page.get_by_role("button", name="+ €10.00")
            expect(button).to_be_enabled()
            button.dblclick()
            expect(page).to_have_title("Fake Checkout")

        yield self.b(double_click)
        self.assertEqual(len(self.stripe.requests), 1, self.stripe.requests)
        self.assertEqual((yield self.balance()), (0, []))
        [session] = self.stripe.sessions
        body, signature = signed(self.stripe.completed(session))
        response = yield treq.post(
            self.url("/api/payments/stripe/webhook"),
            data=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            pool=HTTPConnectionPool(reactor, persistent=False),
        )
        self.assertEqual(response.code, 200)
        yield response.content()

        def back() -> None:
            page.goto(self.url("/user/#/wallet"))
            expect(page.locator("[data-figure=balance]")).to_have_text("€10.00")
            expect(page.locator("tbody tr")).to_have_count(1)

        yield self.b(back)
        self.assertEqual((yield self.balance()), (1000, [1000]))
        # Refunded in Stripe's dashboard: the open page shows the debit live.
        yield self.wait_live(page)
        body, signature = signed(self.stripe.refunded(session, 1000))
        response = yield treq.post(
            self.url("/api/payments/stripe/webhook"),
            data=body,
            headers={"Stripe-Signature": signature, "Content-Type": "application/json"},
            pool=HTTPConnectionPool(reactor, persistent=False),
        )
        self.assertEqual(response.code, 200)
        yield response.content()

        def refunded() -> None:
            expect(page.locator("[data-figure=balance]")).to_have_text("€0.00")
            expect(page.locator("tbody tr").first).to_contain_text("Refund to your card")

        yield self.b(refunded)
        self.assertEqual((yield self.balance()), (0, [-1000, 1000]))

    balance = TopUpTests.balance
