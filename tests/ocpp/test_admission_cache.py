"""Tests for ocppd.ocpp.admission_cache: recent successful logins, bounded and short-lived."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp.admission_cache import AdmissionCache

KEY = "k1-0123456789abcdef"


class AdmissionCacheTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.cache = AdmissionCache(self.clock, ttl=30, max_entries=3)

    def remember(self, charge_point_id: str, key: str = KEY) -> None:
        self.cache.remember(charge_point_id, key, since=self.cache.generation)

    def test_hit_only_with_the_same_id_and_key(self) -> None:
        self.remember("CP1")
        self.assertTrue(self.cache.admits("CP1", KEY))
        self.assertFalse(self.cache.admits("CP1", KEY + "x"))
        self.assertFalse(self.cache.admits("CP2", KEY))

    def test_keeps_no_key(self) -> None:
        self.remember("CP1")
        self.assertNotIn(KEY.encode(), repr(vars(self.cache)).encode())

    def test_expiry(self) -> None:
        self.remember("CP1")
        self.clock.advance(29.9)
        self.assertTrue(self.cache.admits("CP1", KEY))
        self.clock.advance(0.1)
        self.assertFalse(self.cache.admits("CP1", KEY))
        self.assertEqual(len(self.cache), 0)

    def test_forget(self) -> None:
        self.remember("CP1")
        self.cache.forget("CP1")
        self.assertFalse(self.cache.admits("CP1", KEY))

    def test_lookup_older_than_a_forget_not_remembered(self) -> None:
        """A login that read the store before a change made here does not bring it back."""
        since = self.cache.generation
        self.cache.forget("CP1")
        self.cache.remember("CP1", KEY, since=since)
        self.assertFalse(self.cache.admits("CP1", KEY))

    def test_bounded_oldest_first(self) -> None:
        for cp in ("CP1", "CP2", "CP3", "CP4"):
            self.remember(cp)
            self.clock.advance(1)
        self.assertEqual(len(self.cache), 3)
        self.assertFalse(self.cache.admits("CP1", KEY))
        self.assertTrue(self.cache.admits("CP4", KEY))

    def test_expired_dropped_as_new_ones_come(self) -> None:
        self.remember("CP1")
        self.remember("CP2")
        self.clock.advance(30)
        self.remember("CP3")
        self.assertEqual(len(self.cache), 1)

    def test_renewal_moves_to_the_back(self) -> None:
        for cp in ("CP1", "CP2", "CP3", "CP1", "CP4"):
            self.remember(cp)
        self.assertTrue(self.cache.admits("CP1", KEY))
        self.assertFalse(self.cache.admits("CP2", KEY))

    def test_zero_ttl_remembers_nothing(self) -> None:
        cache = AdmissionCache(self.clock, ttl=0)
        cache.remember("CP1", KEY, since=cache.generation)
        self.assertFalse(cache.admits("CP1", KEY))
