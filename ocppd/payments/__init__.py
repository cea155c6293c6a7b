"""
Payment providers: where a wallet top-up's money comes from.

A provider is an edge like the bus and the store: one small interface, a
real implementation per payment service (``ocppd.payments.stripe``) and the
built-in ``TestPaymentProvider``, which approves everything and is what demos
and the test suite use. No provider is the default (``[billing]
payment_provider = none``): a default must never credit money, so
self-service top-up is off until an operator chooses one, and ``test`` is
only ever an explicit choice, warned about at every start (``ocppd.service``).

Two kinds of answer to ``charge``:

- approved (the test provider): the API credits the wallet at once;
- pending (Stripe): the customer pays on the provider's page
  (``Payment.redirect_url``), and the wallet is credited only when the
  provider's signed webhook says the money arrived (``webhook``), once per
  payment; a refund there is a debit here (docs/payments.md).

Providers are asked with an idempotency key and must answer a repeated key
with the same payment, as real providers' APIs do, so a top-up retried after
a lost answer is charged once.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import attrs
from twisted.internet.defer import Deferred, succeed
from zope.interface import Attribute, Interface, implementer

if TYPE_CHECKING:
    from ocppd.config import BillingConfig

APPROVED = "approved"
DECLINED = "declined"
PENDING = "pending"


@attrs.frozen
class Payment:
    """A provider's answer to a charge, with its reference (the provider's id)."""

    status: str  # APPROVED | DECLINED | PENDING
    reference: str
    #: Why it was declined, in words fit for the customer (never the provider's text).
    reason: str | None = None
    #: Where the customer completes a pending payment (the provider's page).
    redirect_url: str | None = None

    @property
    def approved(self) -> bool:
        return self.status == APPROVED


#: What a webhook event means for a wallet.
PAID = "paid"
REFUNDED = "refunded"
IGNORED = "ignored"


@attrs.frozen
class PaymentEvent:
    """
    A verified provider event: ``paid`` (``reference`` is the payment
    ``charge`` answered with, ``amount`` what was paid) or ``refunded``
    (``amount`` is everything refunded of the payment so far, so repeated and
    reordered deliveries add up to the truth); ``ignored`` for the rest.
    """

    event_id: str
    kind: str
    reference: str | None = None
    #: The provider's second id of the payment, which refunds name (Stripe's PaymentIntent).
    settlement: str | None = None
    amount: int = 0
    currency: str = ""


class WebhookRejected(Exception):
    """A webhook delivery that is not provably from the provider (bad signature, too old)."""


class IPaymentProvider(Interface):
    name: str = Attribute("The provider's name in [billing] payment_provider.")

    def charge(user_id: int, amount: int, currency: str, idempotency_key: str) -> Deferred[Payment]:
        """
        Take ``amount`` minor units of ``currency`` from the user's payment
        method; fires with a ``Payment`` (declined payments are not errors;
        a provider that cannot be reached fails with ``ProviderUnavailable``).
        """

    def webhook(signature: str | None, body: bytes, now: float) -> PaymentEvent:
        """
        The event a webhook delivery carries, once its signature is verified
        against the body; ``WebhookRejected`` if it is not the provider's.
        """

    def close() -> Deferred[None] | None:
        """Close the provider's idle connections (the node is stopping)."""


class ProviderUnavailable(Exception):
    """The provider could not be asked or answered nonsense; its words stay in the log."""


class AmountNotPayable(Exception):
    """The provider takes no payment of this amount (below its minimum, above its maximum)."""


@implementer(IPaymentProvider)
class TestPaymentProvider:
    """Approves every payment, at once; the reference names the key, so repeats agree."""

    name = "test"

    def charge(
        self, user_id: int, amount: int, currency: str, idempotency_key: str
    ) -> Deferred[Payment]:
        reference = uuid.uuid5(uuid.NAMESPACE_URL, f"ocppd-test-payment:{idempotency_key}")
        return succeed(Payment(APPROVED, f"test-{reference.hex}"))

    def close(self) -> None:
        return None

    def webhook(self, signature: str | None, body: bytes, now: float) -> PaymentEvent:
        # It settles at once: nothing ever calls back, and no delivery is its.
        raise WebhookRejected("the test provider sends no webhooks")


def make_payment_provider(
    billing: BillingConfig, reactor: object = None
) -> IPaymentProvider | None:
    """The provider ``[billing] payment_provider`` names; None for ``none`` (no top-ups)."""
    name = billing.payment_provider
    if name == "none":
        return None
    if name == "test":
        return TestPaymentProvider()
    if name == "stripe":
        from ocppd.payments.stripe import StripeProvider

        return StripeProvider.from_config(billing, reactor)
    raise ValueError(f"unknown payment provider {name!r}")
