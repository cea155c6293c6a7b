"""
Payment providers: where a wallet top-up's money comes from.

A provider is an edge like the bus and the store: one small interface, a
real implementation per payment service (none ships yet) and the built-in
``TestPaymentProvider``, which approves everything and is what demos and the
test suite use. No provider is the default (``[billing] payment_provider =
none``): a default must never credit money, so self-service top-up is off
until an operator chooses one, and ``test`` is only ever an explicit choice,
warned about at every start (``ocppd.service``).

Providers are asked with an idempotency key and must answer a repeated key
with the same payment, as real providers' APIs do, so a top-up retried after
a lost answer is charged once.
"""

from __future__ import annotations

import uuid

import attrs
from twisted.internet.defer import Deferred, succeed
from zope.interface import Interface, implementer


@attrs.frozen
class Payment:
    """A provider's answer: approved or not, with its reference."""

    approved: bool
    reference: str
    reason: str | None = None


class IPaymentProvider(Interface):
    def charge(user_id: int, amount: int, currency: str, idempotency_key: str) -> Deferred[Payment]:
        """
        Take ``amount`` minor units of ``currency`` from the user's payment
        method; fires with a ``Payment`` (declined payments are not errors).
        """


@implementer(IPaymentProvider)
class TestPaymentProvider:
    """Approves every payment, at once; the reference names the key, so repeats agree."""

    def charge(
        self, user_id: int, amount: int, currency: str, idempotency_key: str
    ) -> Deferred[Payment]:
        reference = uuid.uuid5(uuid.NAMESPACE_URL, f"ocppd-test-payment:{idempotency_key}")
        return succeed(Payment(True, f"test-{reference.hex}"))


def make_payment_provider(name: str) -> IPaymentProvider | None:
    """The provider ``[billing] payment_provider`` names; None for ``none`` (no top-ups)."""
    if name == "none":
        return None
    if name == "test":
        return TestPaymentProvider()
    raise ValueError(f"unknown payment provider {name!r}")
