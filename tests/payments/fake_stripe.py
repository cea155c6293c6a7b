"""
A local fake of the few Stripe endpoints ocppd calls, and Stripe's signed
webhook deliveries, for tests on real sockets.

``FakeStripe`` serves ``POST /v1/checkout/sessions`` as Stripe documents it
(form-encoded parameters, ``Authorization: Bearer <secret key>``,
``Idempotency-Key`` answered with the first answer), records every request,
and can be told to fail. ``completed``/``refunded`` build the events Stripe
would send, and ``signed`` their ``Stripe-Signature``.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any
from urllib.parse import parse_qsl

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.web.resource import Resource
from twisted.web.server import Site

from ocppd.payments.signature import header
from tests.sites import listen_closing

SECRET_KEY = "sk_test_fake0123456789"
WEBHOOK_SECRET = "whsec_fake0123456789abcdef"


class _Sessions(Resource):
    isLeaf = True

    def __init__(self, fake: FakeStripe) -> None:
        super().__init__()
        self.fake = fake

    def render_POST(self, request: Any) -> bytes:
        fake = self.fake
        form = dict(parse_qsl(request.content.read().decode("ascii")))
        key = request.getHeader("idempotency-key") or ""
        fake.requests.append(
            {"form": form, "key": key, "authorization": request.getHeader("authorization")}
        )
        request.setHeader("content-type", "application/json")
        if request.getHeader("authorization") != f"Bearer {SECRET_KEY}":
            request.setResponseCode(401)
            return json.dumps(
                {
                    "error": {
                        "type": "invalid_request_error",
                        "message": "Invalid API Key provided: sk_***",
                    }
                }
            ).encode()
        if fake.fail is not None:
            code, body = fake.fail
            request.setResponseCode(code)
            return body
        if key and key in fake.by_key:
            return json.dumps(fake.by_key[key]).encode()
        n = next(fake.numbers)
        session = {
            "id": f"cs_test_{n:04d}",
            "object": "checkout.session",
            "amount_total": int(form["line_items[0][price_data][unit_amount]"]),
            "currency": form["line_items[0][price_data][currency]"],
            "client_reference_id": form.get("client_reference_id"),
            "metadata": {"ocppd_user_id": form.get("metadata[ocppd_user_id]")},
            "mode": form.get("mode"),
            "payment_intent": None,
            "payment_status": "unpaid",
            "status": "open",
            "success_url": form.get("success_url"),
            "url": f"{fake.base}/pay/cs_test_{n:04d}",
        }
        fake.sessions[session["id"]] = session
        if key:
            fake.by_key[key] = session
        return json.dumps(session).encode()


class _Pay(Resource):
    """Stripe's hosted page, reduced to a page a browser can land on."""

    isLeaf = True

    def render_GET(self, request: Any) -> bytes:
        request.setHeader("content-type", "text/html; charset=utf-8")
        return (
            b"<!doctype html><title>Fake Checkout</title>"
            b'<link rel=icon href="data:,"><h1>Fake Checkout</h1>'
        )


class FakeStripe:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, dict[str, Any]] = {}
        self.numbers = itertools.count(1)
        self.events = itertools.count(1)
        #: (HTTP status, body) every API call answers while set.
        self.fail: tuple[int, bytes] | None = None
        self.port: IListeningPort | None = None
        self.base = ""

    def resource(self) -> Resource:
        """The fake's endpoints, for a socket (``start``) or ``treq.testing.StubTreq``."""
        root = Resource()
        v1 = Resource()
        checkout = Resource()
        root.putChild(b"v1", v1)
        v1.putChild(b"checkout", checkout)
        checkout.putChild(b"sessions", _Sessions(self))
        root.putChild(b"pay", _Pay())
        return root

    def start(self, testcase: Any) -> Deferred[FakeStripe]:
        """Listen on loopback until ``testcase`` ends; fires with the fake."""
        self.port = listen_closing(testcase, Site(self.resource()))
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        return succeed(self)

    def overrides(self, return_url: str = "https://charge.example.com/user/#/wallet") -> list[str]:
        return [
            "billing.payment_provider=stripe",
            f"billing.stripe_api_url={self.base}",
            f"billing.stripe_secret_key={SECRET_KEY}",
            f"billing.stripe_webhook_secret={WEBHOOK_SECRET}",
            f"billing.checkout_return_url={return_url}",
        ]

    # -- events --------------------------------------------------------------

    def _event(self, kind: str, thing: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": f"evt_test_{next(self.events):04d}",
            "object": "event",
            "type": kind,
            "data": {"object": thing},
            "livemode": False,
        }

    def completed(
        self, session_id: str, *, kind: str = "checkout.session.completed", **changes: Any
    ) -> dict[str, Any]:
        """The event of ``session_id`` paid (the PaymentIntent is ``pi_`` + its number)."""
        session = self.sessions[session_id]
        session.update(
            payment_status="paid",
            status="complete",
            payment_intent="pi_" + session_id.removeprefix("cs_"),
        )
        return self._event(kind, {**session, **changes})

    def refunded(self, session_id: str, amount_refunded: int) -> dict[str, Any]:
        session = self.sessions[session_id]
        charge = {
            "id": "ch_" + session_id.removeprefix("cs_"),
            "object": "charge",
            "amount": session["amount_total"],
            "amount_refunded": amount_refunded,
            "currency": session["currency"],
            "payment_intent": session["payment_intent"],
            "refunded": amount_refunded == session["amount_total"],
        }
        return self._event("charge.refunded", charge)


def signed(
    event: dict[str, Any], *, secret: str = WEBHOOK_SECRET, at: float | None = None
) -> tuple[bytes, str]:
    """The body and ``Stripe-Signature`` of a delivery of ``event``."""
    body = json.dumps(event).encode()
    return body, header(secret, int(time.time() if at is None else at), body)
