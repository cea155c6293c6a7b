"""
Stripe's webhook signature, verified by hand (no SDK): pure, no I/O.

A delivery carries ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``
where each ``v1`` is HMAC-SHA256, keyed with the endpoint's signing secret,
of ``"<t>.<raw body>"``. It is Stripe's when one ``v1`` matches (compared in
constant time) and ``t`` is within ``tolerance`` seconds of our clock: an
old delivery replayed by someone who recorded it fails the window, and a
replay inside the window is caught by the event id (``ocppd.api.payments``).
Several ``v1`` appear while a secret is being rolled; other schemes (``v0``,
test-mode signatures) are ignored.
"""

from __future__ import annotations

import hashlib
import hmac

#: A header longer than this is no Stripe signature (a handful of digests).
MAX_HEADER = 2048
#: Digests considered at most; Stripe sends one, two while rolling a secret.
MAX_SIGNATURES = 8


class SignatureError(ValueError):
    """The delivery's signature does not verify; the message is for the log."""


def compute(secret: str, timestamp: int, body: bytes) -> str:
    """The hex ``v1`` digest of ``body`` signed at ``timestamp``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def header(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Stripe-Signature`` value Stripe would send (for tests and fakes)."""
    return f"t={timestamp},v1={compute(secret, timestamp, body)}"


def _parse(value: str) -> tuple[int, list[str]]:
    if len(value) > MAX_HEADER:
        raise SignatureError("the signature header is too long")
    timestamp: int | None = None
    digests: list[str] = []
    for item in value.split(","):
        key, sep, text = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            if not (text.isascii() and text.isdigit() and len(text) <= 12):
                raise SignatureError("the signature's timestamp is not a number")
            timestamp = int(text)
        elif key == "v1" and text.isascii() and len(digests) < MAX_SIGNATURES:
            digests.append(text)
    if timestamp is None:
        raise SignatureError("the signature has no timestamp")
    if not digests:
        raise SignatureError("the signature has no v1 digest")
    return timestamp, digests


def verify(value: str | None, body: bytes, secret: str, *, now: float, tolerance: int) -> int:
    """
    The signed timestamp if ``value`` signs ``body`` with ``secret`` within
    ``tolerance`` seconds of ``now``; else ``SignatureError``.
    """
    if not value:
        raise SignatureError("no Stripe-Signature header")
    if not secret:
        raise SignatureError("no webhook secret is configured")
    timestamp, digests = _parse(value)
    expected = compute(secret, timestamp, body)
    # Every digest is compared, so the time taken does not tell which matched.
    matched = False
    for digest in digests:
        matched |= hmac.compare_digest(expected, digest)
    if not matched:
        raise SignatureError("no v1 digest matches the body")
    if abs(now - timestamp) > tolerance:
        raise SignatureError(f"signed {int(now - timestamp)} s from now, outside the tolerance")
    return timestamp
