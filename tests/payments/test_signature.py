"""Stripe's webhook signature scheme, verified by ``ocppd.payments.signature``."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.payments.signature import SignatureError, compute, header, verify

SECRET = "whsec_test_secret"
BODY = b'{"id": "evt_1", "type": "checkout.session.completed"}'
T = 1_800_000_000


class VerifyTests(SynchronousTestCase):
    def check(self, value: str | None, body: bytes = BODY, now: float = T) -> int:
        return verify(value, body, SECRET, now=now, tolerance=300)

    def test_known_digest(self) -> None:
        """HMAC-SHA256 of "t.body" keyed with the secret, in hex (a vector computed by hand)."""
        import hashlib
        import hmac

        expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
        self.assertEqual(compute(SECRET, T, BODY), expected)
        self.assertEqual(header(SECRET, T, BODY), f"t={T},v1={expected}")

    def test_genuine(self) -> None:
        """A genuine signature verifies, within the window either side of our clock."""
        self.assertEqual(self.check(header(SECRET, T, BODY)), T)
        self.assertEqual(self.check(header(SECRET, T, BODY), now=T + 300), T)
        self.assertEqual(self.check(header(SECRET, T, BODY), now=T - 300), T)

    def test_rolled_secret_and_other_schemes(self) -> None:
        """One matching v1 among several suffices; v0 and unknown items are ignored."""
        good = compute(SECRET, T, BODY)
        self.check(f"t={T},v0={'0' * 64},v1={'a' * 64},v1={good},x=y")

    def test_rejected(self) -> None:
        """Another secret, another body, outside the window, malformed: each refused."""
        cases = {
            "missing": None,
            "empty": "",
            "other secret": header("whsec_other", T, BODY),
            "other body": header(SECRET, T, BODY + b" "),
            "too old": header(SECRET, T - 301, BODY),
            "from the future": header(SECRET, T + 301, BODY),
            "no timestamp": f"v1={compute(SECRET, T, BODY)}",
            "no digest": f"t={T}",
            "timestamp not a number": f"t=12a,v1={compute(SECRET, T, BODY)}",
            "huge timestamp": f"t={'9' * 40},v1={compute(SECRET, T, BODY)}",
            "non-ASCII digest": f"t={T},v1=é",
            "too long": f"t={T}," + "v1=00," * 1000,
            "timestamp swapped": header(SECRET, T, BODY).replace(f"t={T}", f"t={T + 1}"),
        }
        for name, value in cases.items():
            with self.subTest(name):
                self.assertRaises(SignatureError, self.check, value)

    def test_no_secret(self) -> None:
        """Without a configured secret nothing verifies (not even an HMAC keyed with '')."""
        self.assertRaises(
            SignatureError, verify, header("", T, BODY), BODY, "", now=T, tolerance=300
        )
