"""
Sign-in: password check, bearer tokens, and limits on guessing.

Two limits, neither of which lets a stranger lock an account:

- Per account *and* client address, a progressive delay
  (``ocppd.throttle``): three failures are free, then each attempt waits
  1, 2, 4 ... up to 300 s after the latest failure; a success forgives. A
  stranger's failures slow down only that stranger's address for that
  account: the owner, from anywhere else, signs in at once.
- Per client address, at most ``ATTEMPTS_PER_ADDRESS`` attempts in
  ``ADDRESS_WINDOW`` seconds whatever the account (against one address
  trying a few passwords on many accounts). Generous, as offices and
  carrier NAT put many people behind one address.

Both count an attempt when it begins, before its password is checked:
parallel attempts cannot all pass the check while the first ones are still
being verified. Refused attempts (429) cost nothing and count nothing.

The counts live in ``ocppd.shared``: this process's memory on one node, Redis
(seen by every node) when ``[presence] backend = redis``; while Redis is
unreachable sign-ins answer 503 (the limits fail closed). Behind a reverse
proxy every client has the proxy's address until ``[web] trusted_proxies``
exists.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread

from ocppd.api.errors import UNAUTHORIZED, ApiError
from ocppd.credentials import hash_password, verify_password
from ocppd.logs import Logger
from ocppd.shared.interface import ISharedState, SharedStateUnavailable
from ocppd.shared.memory import MemorySharedState
from ocppd.store import tokens, users
from ocppd.store.database import Database
from ocppd.store.records import UserRecord
from ocppd.throttle import ThrottlePolicy
from ocppd.timeutil import from_timestamp

#: Checked against when the email is unknown, so a miss takes as long as a hit.
_DUMMY_HASH = hash_password("not a real password, only spends the time")

#: Per account and address: 3 free failures, then 1, 2, 4 ... 300 s; forgotten
#: after 15 quiet minutes.
SIGN_IN_POLICY = ThrottlePolicy(free=3, base=1.0, cap=300.0, forget=900.0)
ATTEMPTS_PER_ADDRESS = 100
ADDRESS_WINDOW = 15 * 60.0

#: Checks a password against a stored hash, off the reactor thread: Argon2 is slow on purpose.
PasswordCheck = Callable[[str, str], "Deferred[bool]"]


def _verify_in_thread(password: str, stored: str) -> Deferred[bool]:
    return deferToThread(verify_password, password, stored)


class Accounts:
    log = Logger()

    def __init__(
        self,
        database: Database,
        clock: IReactorTime,
        *,
        token_ttl: float,
        verify: PasswordCheck = _verify_in_thread,
        shared: ISharedState | None = None,
    ) -> None:
        self._database = database
        self._clock = clock
        self._token_ttl = timedelta(seconds=token_ttl)
        self._verify = verify
        # Where every node sees them (ocppd.shared; docs/security.md).
        shared = shared if shared is not None else MemorySharedState(clock)
        self._throttle = shared.failures("sign-in", SIGN_IN_POLICY)
        self._attempts = shared.window(
            "sign-in-address", limit=ATTEMPTS_PER_ADDRESS, window=ADDRESS_WINDOW
        )
        #: Called with each token that logout revokes (the push channel ends its sessions).
        self.revoked: list[Callable[[str], object]] = []

    def _now(self) -> Any:
        return from_timestamp(self._clock.seconds())

    @staticmethod
    def _too_many(wait: float) -> ApiError:
        seconds = max(1, math.ceil(wait))
        return ApiError(
            429,
            "too_many_attempts",
            f"too many sign-in attempts; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )

    @inlineCallbacks
    def login(
        self, email: str, password: str, address: str
    ) -> Generator[Deferred[Any], Any, tuple[str, UserRecord]]:
        """A new token for the user, or 401 / 429 / 503 (see the module docstring)."""
        account = users.normalize_email(email)
        key = f"{address} {account}"
        try:
            wait = yield self._attempts.retry_after(address)
            if wait is not None:
                raise self._too_many(wait)
            # Counted as a failure from here until it succeeds.
            wait = yield self._throttle.begin(key)
            if wait is not None:
                raise self._too_many(wait)
            yield self._attempts.record(address)
        except SharedStateUnavailable as e:
            raise ApiError(
                503, "unavailable", "sign-in is unavailable for a moment; try again shortly"
            ) from e
        user = yield self._database.run(users.get_user_by_email, account)
        stored = user.password_hash if user is not None else _DUMMY_HASH
        ok = yield self._verify(password, stored)
        if user is None or not ok:
            self.log.info(
                "Failed sign-in for {email} from {address}", email=account, address=address
            )
            raise ApiError(401, "invalid_credentials", "wrong email or password")
        if user.blocked_at is not None:
            # Said only to whoever knows the password: the owner, who can ask why.
            raise ApiError(403, "account_blocked", "this account is blocked; ask the operator")
        try:
            yield self._throttle.succeeded(key)
        except SharedStateUnavailable:
            # Signed in all the same (the password was right); the count expires.
            self.log.warn("Could not forgive the failed sign-ins of {email}", email=account)
        token = secrets.token_urlsafe(32)
        now = self._now()
        yield self._database.run(
            tokens.add_token, token, user.id, now=now, expires_at=now + self._token_ttl
        )
        return token, user

    def authenticate(self, authorization: str | None) -> Deferred[UserRecord]:
        """The user of an ``Authorization: Bearer`` header, or 401."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UNAUTHORIZED

        def found(user: UserRecord | None) -> UserRecord:
            if user is None:
                raise UNAUTHORIZED
            return user

        return self.user_for_token(token.strip()).addCallback(found)

    def user_for_token(self, token: str) -> Deferred[UserRecord | None]:
        """The user of a bare, live token (the push channel's WAMP ticket), or None."""
        if not (token.isascii() and token.isprintable()):
            # Tokens are URL-safe base64: other text names none, and a lone
            # surrogate (a WAMP ticket is JSON) cannot even go into a query.
            return succeed(None)
        return self._database.run(tokens.user_for_token, token, now=self._now())

    def logout(self, authorization: str | None) -> Deferred[bool]:
        token = (authorization or "").partition(" ")[2].strip()

        def tell(revoked: bool) -> bool:
            for listener in self.revoked:
                try:
                    listener(token)
                except Exception:
                    self.log.failure("A listener of token revocation failed")
            return revoked

        return self._database.run(tokens.revoke_token, token, now=self._now()).addCallback(tell)
