"""
Who may open an OCPP connection: HTTP Basic auth against the store, checked
before the WebSocket upgrade (OCPP 1.6 security profiles 1 and 2), and how
often a stranger may knock.

Wrong keys are slowed down by progressive delay (``ocppd.throttle``), counted
for a charger id from one address and for an address over all charger ids. A
waiting attempt is refused with 429 and ``Retry-After`` before the store is
asked or any key is hashed, whether its key is right or not (else the refusal
would tell a guesser when a guess is right). The charger id is counted per
address, not alone, so that nobody can keep a charger out by failing on its id
from elsewhere (the lesson of the sign-in lockout); guessing one charger from
many addresses is answered by the keys' length (``ocppd.credentials``).
Pending registrations are counted per address too, and capped in total.

The failure counts live in ``ocppd.shared``: this process's memory on one
node, Redis when ``[presence] backend = redis``, so a guesser gains nothing by
spreading guesses over nodes. While Redis is unreachable, logins that need a
count answer 503 (the limits fail closed).
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Generator, Sequence
from typing import Any, cast

import attrs
from twisted.internet.defer import Deferred, DeferredSemaphore, gatherResults, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel
from twisted.python.failure import Failure

from ocppd.credentials import (
    charger_key_problem,
    hash_charger_key,
    is_legacy_key_hash,
    verify_charger_key,
)
from ocppd.logs import Logger
from ocppd.ocpp.admission_cache import AdmissionCache
from ocppd.ocpp.charger_lookup import ChargerLookup
from ocppd.ocpp.handshake import (
    BasicCredentials,
    HandshakeError,
    charge_point_id_from_path,
    parse_basic_auth,
)
from ocppd.shared.interface import ISharedState, SharedStateUnavailable
from ocppd.shared.memory import MemorySharedState
from ocppd.store import chargers
from ocppd.store.database import Database
from ocppd.store.records import ChargePointRecord
from ocppd.throttle import ThrottlePolicy
from ocppd.timeutil import from_timestamp

WWW_AUTHENTICATE = 'Basic realm="ocppd", charset="UTF-8"'

#: Wrong keys for one charger id from one address: 3 free, then 1 s doubling to 5 min.
KEY_FAILURES = ThrottlePolicy(free=3, base=1.0, cap=300.0, forget=900.0)
#: Wrong keys from one address, any charger id. More free ones: a site's chargers
#: share a NAT address (or a TLS proxy's), and one misconfigured charger there
#: must not hold the others out; any success from the address forgives them.
ADDRESS_FAILURES = ThrottlePolicy(free=20, base=1.0, cap=300.0, forget=900.0)
#: Pending registrations from one address (never forgiven, forgotten after an hour).
REGISTRATIONS = ThrottlePolicy(free=10, base=1.0, cap=300.0, forget=3600.0)


@attrs.frozen
class Admitted:
    charge_point_id: str
    registration_status: str


def address_key(host: str) -> str:
    """
    What an address is counted as: an IPv4 address, or an IPv6 /64 (one
    subscriber's usual allocation, where a single host could pick any address).
    """
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _must_wait(seconds: float) -> HandshakeError:
    return HandshakeError(
        429, "too many failed attempts", headers=(("Retry-After", str(math.ceil(seconds))),)
    )


class ChargerAdmission:
    """
    Decide at the handshake whether a charger is let in.

    A key check costs a few microseconds (``ocppd.credentials``), on the reactor;
    what costs is the store lookup on the database thread: lookups are read in
    batches (``charger_lookup``), and a charger that logged in less than
    ``cache_ttl`` seconds ago with the same key is let in without one
    (``admission_cache``; :meth:`forget` when a charger's key, status or
    existence changes). Only hashes of the former PBKDF2 scheme cost ~20 ms:
    those run in a thread, one at a time (a storm of them leaves a core to
    everything else), and are replaced by the current scheme after the
    charger's first successful login.
    """

    log = Logger()

    def __init__(
        self,
        database: Database,
        reactor: IReactorTime,
        *,
        unknown_chargers: str = "refuse",
        max_pending_chargers: int = 100,
        shared: ISharedState | None = None,
        cache_ttl: float = 30.0,
    ) -> None:
        self._database = database
        self._lookup = ChargerLookup(database)
        self.cache = AdmissionCache(reactor, ttl=cache_ttl)
        self._reactor = reactor
        self._unknown_chargers = unknown_chargers
        self._max_pending = max_pending_chargers
        # Where every node sees them (ocppd.shared; docs/security.md).
        shared = shared if shared is not None else MemorySharedState(reactor)
        self.key_failures = shared.failures("charger-key", KEY_FAILURES)
        self.address_failures = shared.failures("charger-address", ADDRESS_FAILURES)
        self.registrations = shared.failures("charger-registration", REGISTRATIONS)
        self._legacy_checks = DeferredSemaphore(1)

    def forget(self, charge_point_id: str) -> None:
        """
        The charger's key, registration status or existence changed on this
        node: its next login is checked against the store again.
        """
        self.cache.forget(charge_point_id)

    @inlineCallbacks
    def admit(
        self, path: str, authorization: str | None, *, address: str
    ) -> Generator[Deferred[Any], Any, Admitted]:
        """
        Fire with ``Admitted`` or fail with ``HandshakeError`` (which then
        names the charge point id, if the path had a valid one). ``address``
        is the peer's IP address.
        """
        charge_point_id = charge_point_id_from_path(path)
        try:
            try:
                return (
                    yield self._admit(charge_point_id, parse_basic_auth(authorization), address)
                )
            except SharedStateUnavailable:
                # The limits fail closed: the charger retries, as after any 503.
                raise HandshakeError(503, "Service Unavailable") from None
        except HandshakeError as e:
            e.charge_point_id = charge_point_id
            raise

    @inlineCallbacks
    def _admit(
        self, charge_point_id: str, credentials: BasicCredentials | None, address: str
    ) -> Generator[Deferred[Any], Any, Admitted]:
        if credentials is not None and credentials.username != charge_point_id:
            # Security whitepaper A00.FR.204: the username is the charger's identity.
            raise HandshakeError(401, "Basic auth username does not match the charge point id")
        source = address_key(address)
        attempt = (f"{charge_point_id}@{source}", source)
        # Before the store: a waiting address costs nothing at all.
        yield self._refuse_if_waiting(attempt)
        if credentials is not None and self.cache.admits(charge_point_id, credentials.password):
            # Right a moment ago: a success like any other (it forgives), no store.
            yield self._succeeded(attempt)
            return Admitted(charge_point_id, "Accepted")
        generation = self.cache.generation
        record = yield self._lookup.get(charge_point_id)
        if record is None:
            return (yield self._admit_unknown(charge_point_id, credentials, source))
        if record.registration_status == "Rejected":
            raise HandshakeError(403, "charge point is rejected")
        if record.key_hash is None:
            # Security profile 0. A charger being given its first key that
            # logs in with it has proved it holds it: from now on it needs it.
            if credentials is not None and record.pending_key_hash is not None:
                matched = yield self._matching_hash(credentials.password, [record.pending_key_hash])
                if matched is not None:
                    yield self._key_proved(record, credentials.password, matched)
        else:
            if credentials is None:
                raise HandshakeError(401, "authorization required")
            yield self._refuse_if_waiting(attempt)  # others may have failed meanwhile
            yield gatherResults(
                [self.key_failures.begin(attempt[0]), self.address_failures.begin(attempt[1])],
                consumeErrors=True,
            ).addErrback(_first_error)
            matched = yield self._matching_hash(
                credentials.password, [record.key_hash, record.pending_key_hash]
            )
            if matched is None:
                raise HandshakeError(401, "wrong authorization key", level=LogLevel.warn)
            yield self._succeeded(attempt)
            yield self._key_proved(record, credentials.password, matched)
            if record.registration_status == "Accepted":
                self.cache.remember(charge_point_id, credentials.password, since=generation)
        return Admitted(charge_point_id, record.registration_status)

    def _succeeded(self, attempt: tuple[str, str]) -> Deferred[Any]:
        return gatherResults(
            [
                self.key_failures.succeeded(attempt[0]),
                self.address_failures.succeeded(attempt[1]),
            ],
            consumeErrors=True,
        ).addErrback(_first_error)

    @inlineCallbacks
    def _refuse_if_waiting(self, attempt: tuple[str, str]) -> Generator[Deferred[Any], Any, None]:
        found = yield gatherResults(
            [
                self.key_failures.retry_after(attempt[0]),
                self.address_failures.retry_after(attempt[1]),
            ],
            consumeErrors=True,
        ).addErrback(_first_error)
        waits = [wait for wait in found if wait is not None]
        if waits:
            raise _must_wait(max(waits))

    @inlineCallbacks
    def _matching_hash(
        self, key: str, key_hashes: Sequence[str | None]
    ) -> Generator[Deferred[Any], Any, str | None]:
        """The first of ``key_hashes`` that ``key`` matches, or None."""
        for key_hash in key_hashes:
            if key_hash is None:
                continue
            if is_legacy_key_hash(key_hash):
                ok = yield self._legacy_checks.run(deferToThread, verify_charger_key, key, key_hash)
            else:
                ok = verify_charger_key(key, key_hash)
            if ok:
                return key_hash
        return None

    @inlineCallbacks
    def _key_proved(
        self, record: ChargePointRecord, key: str, key_hash: str
    ) -> Generator[Deferred[Any], Any, None]:
        """
        The charger logged in with the key of ``key_hash``: if that is the key
        being rotated in, it becomes the only one; if it is of the former
        scheme, it is stored again in the current one. A failure to write is
        logged and the charger let in all the same: its key was right.
        """
        charge_point_id = record.charge_point_id
        try:
            if key_hash == record.pending_key_hash:
                yield self._database.run(chargers.key_confirmed, charge_point_id, key_hash)
                self.log.info(
                    "Charge point {charge_point_id} logged in with its new authorization key; "
                    "the old one no longer admits it",
                    charge_point_id=charge_point_id,
                )
            elif is_legacy_key_hash(key_hash):
                yield self._database.run(
                    chargers.upgrade_key_hash,
                    charge_point_id,
                    old=key_hash,
                    new=hash_charger_key(key),
                )
                if charger_key_problem(key) is not None:
                    self.log.warn(
                        "Charge point {charge_point_id} uses a short authorization key "
                        "(under 16 characters): give it a long random one",
                        charge_point_id=charge_point_id,
                    )
        except Exception:
            self.log.failure(
                "Could not store the key hash of {charge_point_id}",
                charge_point_id=charge_point_id,
            )

    @inlineCallbacks
    def _admit_unknown(
        self, charge_point_id: str, credentials: BasicCredentials | None, source: str
    ) -> Generator[Deferred[Any], Any, Admitted]:
        if self._unknown_chargers != "pending":
            raise HandshakeError(404, "unknown charge point")
        if credentials is not None:
            problem = charger_key_problem(credentials.password)
            if problem is not None:
                raise HandshakeError(401, problem)
        wait = yield self.registrations.begin(source)
        if wait is not None:
            raise _must_wait(wait)
        key_hash = None if credentials is None else hash_charger_key(credentials.password)
        registered = yield self._database.run(
            chargers.register_pending_charge_point,
            charge_point_id,
            key_hash,
            max_pending=self._max_pending,
            now=from_timestamp(self._reactor.seconds()),
        )
        if not registered:
            # Warned: an operator must accept or reject the pending ones (or
            # raise [ocpp] max_pending_chargers) before any new charger gets in.
            raise HandshakeError(
                404, "unknown charge point (pending registrations are full)", level=LogLevel.warn
            )
        self.log.info(
            "Unknown charge point {charge_point_id} from {address} registered as Pending",
            charge_point_id=charge_point_id,
            address=source,
        )
        record = yield self._database.run(chargers.get_charge_point, charge_point_id)
        return Admitted(charge_point_id, record.registration_status if record else "Pending")


def _first_error(failure: Failure) -> Failure:
    """The failure of the first call of a ``gatherResults`` that failed."""
    return cast(Failure, failure.value.subFailure)  # type: ignore[union-attr]
