"""Tests for ocppd.ocpp.admission: who may open an OCPP connection, and how often."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import gatherResults, inlineCallbacks
from twisted.internet.task import Clock
from twisted.logger import LogLevel
from twisted.trial.unittest import TestCase

from ocppd.credentials import KEY_HASH_SCHEME, hash_charger_key, legacy_key_hash
from ocppd.ocpp import admission as admission_module
from ocppd.ocpp.admission import ADDRESS_FAILURES, KEY_FAILURES, ChargerAdmission, address_key
from ocppd.ocpp.handshake import HandshakeError
from ocppd.store import chargers
from tests.integration.clients import basic_auth
from tests.store.fixtures import make_sqlite_database

NOW = datetime(2026, 11, 29, tzinfo=UTC)
KEY = "k1-0123456789abcdef"
OTHER_KEY = "k2-0123456789abcdef"
ADDRESS = "192.0.2.10"


class AdmissionTestCase(TestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.database = make_sqlite_database(self)
        self.database.run_sync(chargers.add_charge_point, "CP1", hash_charger_key(KEY), now=NOW)
        # Every key verification, and every one that went to a thread.
        self.verified: list[str] = []
        self.threaded: list[str] = []
        real_verify = admission_module.verify_charger_key
        real_thread = admission_module.deferToThread

        def verify(key: str, key_hash: str) -> bool:
            self.verified.append(key)
            return real_verify(key, key_hash)

        def thread(f: Any, *args: Any) -> Any:
            self.threaded.append(args[0])
            return real_thread(f, *args)

        self.patch(admission_module, "verify_charger_key", verify)
        self.patch(admission_module, "deferToThread", thread)

    def admission(self, **kwargs: Any) -> ChargerAdmission:
        return ChargerAdmission(self.database, self.clock, **kwargs)

    def admit(
        self, admission: ChargerAdmission, cp: str, key: str | None, address: str = ADDRESS
    ) -> Any:
        auth = None if key is None else basic_auth(cp, key)
        return admission.admit(f"/ocpp/{cp}", auth, address=address)

    @inlineCallbacks
    def refused(
        self, admission: ChargerAdmission, cp: str, key: str | None, address: str = ADDRESS
    ) -> Any:
        try:
            yield self.admit(admission, cp, key, address)
        except HandshakeError as e:
            return e
        self.fail(f"{cp} was admitted")

    def record_lookups(self) -> list[list[str]]:
        """The ids of each batch of charger lookups the admissions make from now on."""
        batches: list[list[str]] = []
        real_run = self.database.run

        def run(f: Any, *args: Any, **kwargs: Any) -> Any:
            if f is chargers.get_charge_points:
                batches.append(list(args[0]))
            return real_run(f, *args, **kwargs)

        self.patch(self.database, "run", run)
        return batches

    def record(self, cp: str = "CP1") -> Any:
        return self.database.run_sync(chargers.get_charge_point, cp)


class DecisionTests(AdmissionTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.database.run_sync(chargers.add_charge_point, "OPEN", None, now=NOW)
        self.database.run_sync(
            chargers.add_charge_point,
            "BAD",
            hash_charger_key(KEY),
            registration_status="Rejected",
            now=NOW,
        )

    @inlineCallbacks
    def test_decisions(self) -> Any:
        """Right key in; wrong/missing/mismatched 401; unknown 404; rejected 403; keyless in."""
        admission = self.admission()
        admitted = yield self.admit(admission, "CP1", KEY)
        self.assertEqual(
            (admitted.charge_point_id, admitted.registration_status), ("CP1", "Accepted")
        )
        wrong = yield self.refused(admission, "CP1", OTHER_KEY)
        self.assertEqual((wrong.status, wrong.charge_point_id), (401, "CP1"))
        self.assertEqual(wrong.level, LogLevel.warn)
        self.assertEqual((yield self.refused(admission, "CP1", None)).status, 401)
        try:
            yield admission.admit("/ocpp/CP1", basic_auth("CP9", KEY), address=ADDRESS)
        except HandshakeError as e:
            self.assertEqual(e.status, 401)
        else:
            self.fail("a mismatched username was admitted")
        self.assertEqual((yield self.refused(admission, "NOPE", KEY)).status, 404)
        self.assertEqual((yield self.refused(admission, "BAD", KEY)).status, 403)
        admitted = yield self.admit(admission, "OPEN", None)
        self.assertEqual(admitted.charge_point_id, "OPEN")

    @inlineCallbacks
    def test_checks_are_cheap_and_on_the_reactor(self) -> Any:
        """
        A key check of the current scheme runs no thread: without the cache,
        every connection verifies (a microsecond), right or wrong.
        """
        admission = self.admission(cache_ttl=0)
        for _ in range(2):
            yield self.admit(admission, "CP1", KEY)
        yield self.refused(admission, "CP1", OTHER_KEY)
        self.assertEqual(self.verified, [KEY, KEY, OTHER_KEY])
        self.assertEqual(self.threaded, [])


class LegacyHashTests(AdmissionTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.legacy = legacy_key_hash(KEY, iterations=1000)
        self.database.run_sync(chargers.set_charge_point_key, "CP1", self.legacy)

    @inlineCallbacks
    def test_upgraded_at_the_first_login(self) -> Any:
        """A PBKDF2 hash is verified once, in a thread, then stored in the current scheme."""
        admission = self.admission()
        yield self.admit(admission, "CP1", KEY)
        self.assertEqual(self.threaded, [KEY])
        key_hash = self.record().key_hash
        self.assertTrue(key_hash.startswith(KEY_HASH_SCHEME + "$"), key_hash)
        self.assertNotIn(KEY, key_hash)
        yield self.admit(admission, "CP1", KEY)
        self.assertEqual(self.threaded, [KEY], "the second login hashed on the reactor")

    @inlineCallbacks
    def test_wrong_key_does_not_upgrade(self) -> Any:
        """A wrong key against a legacy hash is refused and the hash left alone."""
        yield self.refused(self.admission(), "CP1", OTHER_KEY)
        self.assertEqual(self.record().key_hash, self.legacy)

    @inlineCallbacks
    def test_parallel_wrong_keys_hash_only_the_free_ones(self) -> Any:
        """
        Attempts count before their outcome: of many simultaneous wrong keys
        (the ~20 ms PBKDF2 ones), only the free few are hashed, the rest get 429.
        """
        admission = self.admission()
        outcomes = yield gatherResults(
            [self.refused(admission, "CP1", f"wrong-key-{i:010d}") for i in range(20)]
        )
        statuses = sorted(e.status for e in outcomes)
        self.assertEqual(statuses.count(401), KEY_FAILURES.free)
        self.assertEqual(statuses.count(429), 20 - KEY_FAILURES.free)
        self.assertEqual(len(self.threaded), KEY_FAILURES.free)


class ThrottleTests(AdmissionTestCase):
    @inlineCallbacks
    def fail_times(self, admission: ChargerAdmission, n: int, **kwargs: Any) -> Any:
        for _ in range(n):
            self.assertEqual(
                (yield self.refused(admission, "CP1", OTHER_KEY, **kwargs)).status, 401
            )

    @inlineCallbacks
    def test_wrong_keys_slowed_down_per_charger_and_address(self) -> Any:
        """
        After the free failures, an attempt from that address for that charger
        is refused with 429 and Retry-After before any hashing, even with the
        right key (else a guesser would learn which guess is right). Another
        address is not held up; once the wait is over the right key gets in
        and the failures are forgiven.
        """
        admission = self.admission()
        yield self.fail_times(admission, KEY_FAILURES.free)
        self.verified.clear()
        refused = yield self.refused(admission, "CP1", KEY)
        self.assertEqual(refused.status, 429)
        self.assertEqual(dict(refused.headers), {"Retry-After": "1"})
        self.assertEqual(self.verified, [])
        admitted = yield self.admit(admission, "CP1", KEY, address="198.51.100.7")
        self.assertEqual(admitted.charge_point_id, "CP1")
        self.clock.advance(1)
        yield self.admit(admission, "CP1", KEY)
        self.assertIsNone((yield admission.key_failures.retry_after(f"CP1@{ADDRESS}")))

    @inlineCallbacks
    def test_delay_grows_with_each_failure(self) -> Any:
        """Each failure past the free ones doubles the wait (progressive delay)."""
        admission = self.admission()
        yield self.fail_times(admission, KEY_FAILURES.free)
        waits = []
        for _ in range(3):
            refused = yield self.refused(admission, "CP1", OTHER_KEY)
            waits.append(int(dict(refused.headers)["Retry-After"]))
            self.clock.advance(waits[-1])
            self.assertEqual((yield self.refused(admission, "CP1", OTHER_KEY)).status, 401)
        self.assertEqual(waits, [1, 2, 4])

    @inlineCallbacks
    def test_one_address_over_many_charger_ids(self) -> Any:
        """An address failing on many charger ids is slowed down for every id."""
        for i in range(ADDRESS_FAILURES.free):
            self.database.run_sync(
                chargers.add_charge_point, f"CP-{i}", hash_charger_key(KEY), now=NOW
            )
        admission = self.admission()
        for i in range(ADDRESS_FAILURES.free):
            self.assertEqual((yield self.refused(admission, f"CP-{i}", OTHER_KEY)).status, 401)
        self.assertEqual((yield self.refused(admission, "CP1", KEY)).status, 429)
        yield self.admit(admission, "CP1", KEY, address="198.51.100.7")

    def test_ipv6_counted_per_64(self) -> None:
        """IPv6 addresses of one /64 count as one; IPv4 (also mapped) as itself."""
        self.assertEqual(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:2:ffff::9"))
        self.assertNotEqual(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"))
        self.assertEqual(address_key("::ffff:192.0.2.1"), "192.0.2.1")
        self.assertEqual(address_key("192.0.2.1"), "192.0.2.1")
        self.assertEqual(address_key(""), "")


class PendingTests(AdmissionTestCase):
    @inlineCallbacks
    def test_pending_policy(self) -> Any:
        """With unknown_chargers=pending an unknown id is registered Pending with its key hashed."""
        admission = self.admission(unknown_chargers="pending")
        admitted = yield self.admit(admission, "NEW", KEY)
        self.assertEqual(admitted.registration_status, "Pending")
        record = self.record("NEW")
        self.assertEqual(record.registration_status, "Pending")
        self.assertNotIn(KEY, record.key_hash)
        # Its next connection must present the same key.
        self.assertEqual((yield self.refused(admission, "NEW", OTHER_KEY)).status, 401)

    @inlineCallbacks
    def test_short_key_not_registered(self) -> Any:
        """A first connection with a key under 16 characters is refused, nothing stored."""
        admission = self.admission(unknown_chargers="pending")
        refused = yield self.refused(admission, "NEW", "k" * 15)
        self.assertEqual(refused.status, 401)
        self.assertIsNone(self.record("NEW"))

    @inlineCallbacks
    def test_registrations_capped(self) -> Any:
        """Beyond max_pending_chargers unknown chargers are refused (404, warned)."""
        admission = self.admission(unknown_chargers="pending", max_pending_chargers=2)
        for i, address in enumerate(["192.0.2.1", "192.0.2.2"]):
            yield self.admit(admission, f"NEW{i}", KEY, address=address)
        refused = yield self.refused(admission, "NEW9", KEY, address="192.0.2.3")
        self.assertEqual((refused.status, refused.level), (404, LogLevel.warn))
        self.assertIsNone(self.record("NEW9"))
        # Accepting one makes room.
        self.database.run_sync(chargers.set_registration_status, "NEW0", "Accepted")
        yield self.admit(admission, "NEW9", KEY, address="192.0.2.3")

    @inlineCallbacks
    def test_registrations_throttled_per_address(self) -> Any:
        """One address registers a few chargers, then waits; other addresses do not."""
        admission = self.admission(unknown_chargers="pending")
        free = admission_module.REGISTRATIONS.free
        for i in range(free):
            yield self.admit(admission, f"NEW{i}", KEY)
        refused = yield self.refused(admission, "NEWX", KEY)
        self.assertEqual(refused.status, 429)
        self.assertIsNone(self.record("NEWX"))
        yield self.admit(admission, "NEWX", KEY, address="198.51.100.7")


class KeyRotationTests(AdmissionTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.new_hash = hash_charger_key(OTHER_KEY)
        self.database.run_sync(chargers.set_pending_key, "CP1", self.new_hash)

    @inlineCallbacks
    def test_old_key_admits_while_new_one_pending(self) -> Any:
        """Until the charger uses the new key, the old one still admits it; both stay."""
        yield self.admit(self.admission(), "CP1", KEY)
        self.assertEqual(self.record().pending_key_hash, self.new_hash)

    @inlineCallbacks
    def test_new_key_becomes_the_only_one(self) -> Any:
        """A login with the pending key makes it the key; the old one is refused after."""
        admission = self.admission()
        yield self.admit(admission, "CP1", OTHER_KEY)
        record = self.record()
        self.assertEqual((record.key_hash, record.pending_key_hash), (self.new_hash, None))
        self.assertEqual((yield self.refused(admission, "CP1", KEY)).status, 401)

    @inlineCallbacks
    def test_keyless_charger_given_a_key(self) -> Any:
        """A charger without a key that logs in with the key sent to it needs it from then on."""
        self.database.run_sync(chargers.add_charge_point, "OPEN", None, now=NOW)
        self.database.run_sync(chargers.set_pending_key, "OPEN", self.new_hash)
        admission = self.admission()
        yield self.admit(admission, "OPEN", None)
        self.assertIsNone(self.record("OPEN").key_hash)
        yield self.admit(admission, "OPEN", OTHER_KEY)
        self.assertEqual(self.record("OPEN").key_hash, self.new_hash)
        self.assertEqual((yield self.refused(admission, "OPEN", None)).status, 401)


class CacheTests(AdmissionTestCase):
    """A successful login is remembered for ``cache_ttl`` seconds (ocpp.admission_cache)."""

    def setUp(self) -> None:
        super().setUp()
        self.batches = self.record_lookups()

    @property
    def lookups(self) -> list[str]:
        return [cp for batch in self.batches for cp in batch]

    @inlineCallbacks
    def test_hit_needs_no_store_and_no_key_check(self) -> Any:
        admission = self.admission(cache_ttl=30)
        for _ in range(3):
            admitted = yield self.admit(admission, "CP1", KEY)
            self.assertEqual(admitted.registration_status, "Accepted")
        self.assertEqual(self.lookups, ["CP1"])
        self.assertEqual(self.verified, [KEY])

    @inlineCallbacks
    def test_other_key_misses_and_is_refused(self) -> Any:
        admission = self.admission(cache_ttl=30)
        yield self.admit(admission, "CP1", KEY)
        self.assertEqual((yield self.refused(admission, "CP1", OTHER_KEY)).status, 401)
        self.assertEqual(self.lookups, ["CP1", "CP1"])

    @inlineCallbacks
    def test_expires(self) -> Any:
        admission = self.admission(cache_ttl=30)
        yield self.admit(admission, "CP1", KEY)
        self.clock.advance(29)
        yield self.admit(admission, "CP1", KEY)
        self.assertEqual(self.lookups, ["CP1"])
        self.clock.advance(1)
        yield self.admit(admission, "CP1", KEY)
        self.assertEqual(self.lookups, ["CP1", "CP1"])

    @inlineCallbacks
    def test_key_changed_here_is_forgotten_at_once(self) -> Any:
        admission = self.admission(cache_ttl=30)
        yield self.admit(admission, "CP1", KEY)
        self.database.run_sync(chargers.set_charge_point_key, "CP1", hash_charger_key(OTHER_KEY))
        admission.forget("CP1")
        self.assertEqual((yield self.refused(admission, "CP1", KEY)).status, 401)
        yield self.admit(admission, "CP1", OTHER_KEY)

    @inlineCallbacks
    def test_blocked_or_removed_here_is_forgotten_at_once(self) -> Any:
        admission = self.admission(cache_ttl=30)
        yield self.admit(admission, "CP1", KEY)
        self.database.run_sync(chargers.set_registration_status, "CP1", "Rejected")
        admission.forget("CP1")
        self.assertEqual((yield self.refused(admission, "CP1", KEY)).status, 403)
        self.database.run_sync(chargers.set_registration_status, "CP1", "Accepted")
        yield self.admit(admission, "CP1", KEY)
        self.database.run_sync(chargers.delete_charge_point, "CP1")
        admission.forget("CP1")
        self.assertEqual((yield self.refused(admission, "CP1", KEY)).status, 404)

    @inlineCallbacks
    def test_change_elsewhere_stale_at_most_the_ttl(self) -> Any:
        """Another node (or ocppctl) changed the key: this node learns it when the entry expires."""
        admission = self.admission(cache_ttl=30)
        yield self.admit(admission, "CP1", KEY)
        self.database.run_sync(chargers.set_charge_point_key, "CP1", hash_charger_key(OTHER_KEY))
        yield self.admit(admission, "CP1", KEY)  # the documented stale positive
        self.clock.advance(30)
        self.assertEqual((yield self.refused(admission, "CP1", KEY)).status, 401)

    @inlineCallbacks
    def test_key_rotated_in_replaces_the_old_one(self) -> Any:
        """A login with the pending key confirms it: the old key's entry no longer admits."""
        admission = self.admission(cache_ttl=30)
        yield self.admit(admission, "CP1", KEY)
        self.database.run_sync(chargers.set_pending_key, "CP1", hash_charger_key(OTHER_KEY))
        yield self.admit(admission, "CP1", OTHER_KEY)
        self.assertEqual((yield self.refused(admission, "CP1", KEY)).status, 401)

    @inlineCallbacks
    def test_only_accepted_chargers(self) -> Any:
        self.database.run_sync(chargers.set_registration_status, "CP1", "Pending")
        admission = self.admission(cache_ttl=30)
        for _ in range(2):
            admitted = yield self.admit(admission, "CP1", KEY)
            self.assertEqual(admitted.registration_status, "Pending")
        self.assertEqual(self.lookups, ["CP1", "CP1"])

    @inlineCallbacks
    def test_hit_still_refused_while_the_address_waits(self) -> Any:
        """A cached key is no way around the throttle (its 429 must not depend on the key)."""
        admission = self.admission(cache_ttl=30)
        yield self.admit(admission, "CP1", KEY)
        for _ in range(ADDRESS_FAILURES.free + 1):
            yield admission.address_failures.begin(address_key(ADDRESS))
        self.assertEqual((yield self.refused(admission, "CP1", KEY)).status, 429)


class StormTests(AdmissionTestCase):
    """Many chargers behind one address reconnecting at once (a site's NAT, a restart)."""

    CHARGERS = 10_000

    def setUp(self) -> None:
        super().setUp()
        key_hash = hash_charger_key(KEY)

        def add_all(conn: Any) -> None:
            for i in range(self.CHARGERS):
                chargers.add_charge_point(conn, f"S{i}", key_hash, now=NOW)

        self.database.run_sync(add_all)
        self.batches = self.record_lookups()

    @inlineCallbacks
    def test_good_logins_from_one_address_are_not_throttled(self) -> Any:
        admission = self.admission()
        admitted = yield gatherResults(
            [self.admit(admission, f"S{i}", KEY, "127.0.0.1") for i in range(self.CHARGERS)]
        )
        self.assertEqual(len(admitted), self.CHARGERS)
        self.assertEqual({a.registration_status for a in admitted}, {"Accepted"})
        # Read in batches: the first alone, the rest together while one ran.
        self.assertEqual(sum(len(batch) for batch in self.batches), self.CHARGERS)
        self.assertLess(len(self.batches), self.CHARGERS // 100)
