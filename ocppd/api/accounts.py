"""Sign-in: password check, bearer tokens, and limits on guessing."""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Generator
from datetime import timedelta
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ocppd.api.errors import UNAUTHORIZED, ApiError
from ocppd.api.ratelimit import RateLimiter
from ocppd.credentials import hash_password, verify_password
from ocppd.store import tokens, users
from ocppd.store.database import Database
from ocppd.store.records import UserRecord
from ocppd.timeutil import from_timestamp

#: Checked against when the email is unknown, so a miss takes as long as a hit.
_DUMMY_HASH = hash_password("not a real password, only spends the time")

FAILURES_PER_ACCOUNT = 5
ATTEMPTS_PER_ADDRESS = 30
LIMIT_WINDOW = 15 * 60.0


class Accounts:
    log = Logger()

    def __init__(self, database: Database, clock: IReactorTime, *, token_ttl: float) -> None:
        self._database = database
        self._clock = clock
        self._token_ttl = timedelta(seconds=token_ttl)
        self._failures = RateLimiter(clock, limit=FAILURES_PER_ACCOUNT, window=LIMIT_WINDOW)
        self._attempts = RateLimiter(clock, limit=ATTEMPTS_PER_ADDRESS, window=LIMIT_WINDOW)
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
        """A new token for the user, or 401 / 429."""
        account = users.normalize_email(email)
        for limiter, key in ((self._attempts, address), (self._failures, account)):
            wait = limiter.retry_after(key)
            if wait is not None:
                raise self._too_many(wait)
        self._attempts.record(address)
        user = yield self._database.run(users.get_user_by_email, account)
        stored = user.password_hash if user is not None else _DUMMY_HASH
        # Argon2 is deliberately slow: never on the reactor thread.
        ok = yield deferToThread(verify_password, password, stored)
        if user is None or not ok:
            self._failures.record(account)
            self.log.info(
                "Failed sign-in for {email} from {address}", email=account, address=address
            )
            raise ApiError(401, "invalid_credentials", "wrong email or password")
        self._failures.reset(account)
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
