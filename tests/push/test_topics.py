"""Tests for ocppd.push.topics and ocppd.push.origins: who reads what, and from where."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.push.origins import OriginPolicy
from ocppd.push.topics import Decision, Principal, authorize

ADMIN = Principal(user_id=1, email="ops@example.com", role="admin")
CUSTOMER = Principal(user_id=2, email="jo@example.com", role="customer")


class AuthorizeTests(SynchronousTestCase):
    def test_matrix(self) -> None:
        """Every topic of docs/events.md against an admin and a customer."""
        cases = (
            [
                ("ocppd.chargers.status", Decision.ALLOWED, Decision.ALLOWED),
                ("ocppd.user.2.session", Decision.NOT_AUTHORIZED, Decision.ALLOWED),
                ("ocppd.user.2.wallet", Decision.NOT_AUTHORIZED, Decision.ALLOWED),
                ("ocppd.user.1.session", Decision.ALLOWED, Decision.NOT_AUTHORIZED),
                ("ocppd.user.3.wallet", Decision.NOT_AUTHORIZED, Decision.NOT_AUTHORIZED),
            ]
            + [
                (f"ocppd.admin.{name}", Decision.ALLOWED, Decision.NOT_AUTHORIZED)
                for name in ("sessions", "meter", "ocpp", "cms", "revenue")
            ]
            + [
                # One charger's meter values and log (its point page), any valid id.
                (f"ocppd.admin.{name}.{cp}", Decision.ALLOWED, Decision.NOT_AUTHORIZED)
                for name in ("meter", "ocpp")
                for cp in ("CP1", "site.7:A-1", "x" * 48)
            ]
        )
        for topic, admin, customer in cases:
            self.assertEqual(
                (authorize(ADMIN, topic), authorize(CUSTOMER, topic)), (admin, customer), topic
            )

    def test_unknown_topics(self) -> None:
        """Near misses are not topics: no leading zeros, no other suffixes or prefixes."""
        for topic in (
            "ocppd.user.02.session",
            "ocppd.user.2.session.x",
            "ocppd.user.2.sessions",
            "ocppd.user..session",
            "ocppd.admin",
            "ocppd.admin.other",
            "ocppd.admin.meter.",
            "ocppd.admin.meter." + "x" * 49,
            "ocppd.admin.ocpp.CP 1",
            "ocppd.admin.sessions.CP1",
            "x.ocppd.chargers.status",
            "",
        ):
            self.assertEqual(authorize(ADMIN, topic), Decision.UNKNOWN, topic)


class OriginPolicyTests(SynchronousTestCase):
    def test_same_host_by_default(self) -> None:
        """Without a list, only pages of the host (and port) the browser connected to."""
        policy = OriginPolicy()
        allowed = [
            ("http://example.com", "example.com"),
            ("https://example.com", "example.com:443"),
            ("http://Example.com:8080", "example.com:8080"),
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
        ]
        refused = [
            ("http://example.com:8081", "example.com:8080"),
            ("https://evil.test", "example.com"),
            ("http://example.com", None),
            ("null", "example.com"),
            ("ftp://example.com", "example.com"),
            ("http://example.com:99999", "example.com"),
        ]
        for origin, host in allowed:
            self.assertTrue(policy.allows(origin, host), (origin, host))
        for origin, host in refused:
            self.assertFalse(policy.allows(origin, host), (origin, host))

    def test_no_origin_is_not_a_browser(self) -> None:
        """Clients without an Origin header pass; the ticket authenticates them."""
        self.assertTrue(OriginPolicy().allows(None, "example.com"))
        self.assertTrue(OriginPolicy(["https://cms.example.com"]).allows(None, None))

    def test_listed_origins(self) -> None:
        """A configured list replaces the same-host rule; * matches host-name characters."""
        policy = OriginPolicy(["https://cms.example.com", "https://*.example.org"])
        self.assertTrue(policy.allows("https://cms.example.com", "ocppd.internal"))
        self.assertTrue(policy.allows("https://a.b.example.org", "x"))
        self.assertFalse(policy.allows("http://cms.example.com", "cms.example.com"))
        self.assertFalse(policy.allows("https://evil.test/.example.org", "x"))
        self.assertFalse(policy.allows("https://example.org.evil.test", "x"))
        self.assertTrue(OriginPolicy(["*"]).allows("https://anything.test", None))
