"""
Tests for ocppd.api.accounts: the sign-in limits, with password checks held
on Deferreds so that attempts are really in flight at once.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from ocppd.api.accounts import ATTEMPTS_PER_ADDRESS, Accounts
from ocppd.api.errors import ApiError
from tests.api.inline import InlineNode

OWNER = ("ops@example.com", "correct horse battery")
OWNER_ADDRESS = "192.0.2.10"
STRANGER = "198.51.100.66"


class HeldChecks:
    """A password check whose answers the test gives, one Deferred per attempt."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, Deferred[bool]]] = []

    def __call__(self, password: str, stored: str) -> Deferred[bool]:
        d: Deferred[bool] = Deferred()
        self.pending.append((password, d))
        return d

    def answer_all(self) -> None:
        pending, self.pending = self.pending, []
        for password, d in pending:
            d.callback(password == OWNER[1])


class SignInLimitTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.inline = InlineNode(self)
        self.clock = self.inline.clock
        self.inline.add_user(OWNER[0], OWNER[1], "admin")
        self.checks = HeldChecks()
        self.accounts = Accounts(
            self.inline.node.database, self.clock, token_ttl=3600, verify=self.checks
        )

    def attempt(self, password: str, address: str, email: str = OWNER[0]) -> Deferred[Any]:
        return self.accounts.login(email, password, address)

    def outcome(self, d: Deferred[Any]) -> Any:
        """200 (a token), or the ApiError's status, of a finished attempt."""
        results: list[Any] = []
        d.addBoth(results.append)
        [result] = results
        if isinstance(result, tuple):
            return 200
        error = result.value
        self.assertIsInstance(error, ApiError)
        return error.status

    def test_parallel_attempts_counted_before_their_outcome(self) -> None:
        """
        24 wrong passwords and then the right one, all in flight at once:
        only the free three reach the password check, the rest (the right
        one too) get 429 with Retry-After at once.
        """
        attempts = [self.attempt(f"guess {n}", STRANGER) for n in range(24)]
        right = self.attempt(OWNER[1], STRANGER)
        self.assertEqual(len(self.checks.pending), 3)
        refused = [d for d in [*attempts, right] if d.called]
        self.assertEqual(len(refused), 22)
        errors: list[Any] = []
        right.addErrback(errors.append)
        [failure] = errors
        self.assertEqual((failure.value.status, failure.value.headers), (429, {"Retry-After": "1"}))
        self.checks.answer_all()
        self.assertEqual([self.outcome(d) for d in attempts[:3]], [401, 401, 401])
        for d in attempts[3:]:
            self.assertEqual(self.outcome(d), 429)

    def test_progressive_delay_not_lockout(self) -> None:
        """After the free failures each retry waits twice as long; the right password then works."""
        for n in range(3):
            d = self.attempt(f"guess {n}", STRANGER)
            self.checks.answer_all()
            self.assertEqual(self.outcome(d), 401)
        waits = []
        for n in range(4):
            refused = self.attempt("again", STRANGER)
            error: list[Any] = []
            refused.addErrback(error.append)
            waits.append(int(error[0].value.headers["Retry-After"]))
            self.clock.advance(waits[-1])
            d = self.attempt(f"guess {n}", STRANGER)
            self.checks.answer_all()
            self.assertEqual(self.outcome(d), 401)
        self.assertEqual(waits, [1, 2, 4, 8])
        self.clock.advance(16)
        d = self.attempt(OWNER[1], STRANGER)
        self.checks.answer_all()
        self.assertEqual(self.outcome(d), 200)
        # ... and the success forgave: the next failure is free again.
        d = self.attempt("typo", STRANGER)
        self.checks.answer_all()
        self.assertEqual(self.outcome(d), 401)
        self.assertFalse(self.attempt("typo", STRANGER).called)

    def test_strangers_failures_do_not_delay_the_owner(self) -> None:
        """However often a stranger fails, the account's owner signs in from elsewhere at once."""
        for n in range(40):
            d = self.attempt(f"guess {n}", STRANGER)
            self.checks.answer_all()
            d.addErrback(lambda _: None)
            self.clock.advance(30)
        d = self.attempt(OWNER[1], OWNER_ADDRESS)
        self.assertEqual(len(self.checks.pending), 1, "the owner's attempt is checked at once")
        self.checks.answer_all()
        self.assertEqual(self.outcome(d), 200)

    def test_one_address_spraying_many_accounts(self) -> None:
        """An address trying a password on many accounts is refused past the per-address limit."""
        for n in range(ATTEMPTS_PER_ADDRESS):
            d = self.attempt("Summer2027!", STRANGER, email=f"user{n}@example.com")
            self.checks.answer_all()
            self.assertEqual(self.outcome(d), 401)
        d = self.attempt("Summer2027!", STRANGER, email="another@example.com")
        self.assertEqual(self.outcome(d), 429)
        self.assertEqual(self.checks.pending, [], "no password check for a refused attempt")
        # Other addresses are not affected.
        d = self.attempt(OWNER[1], OWNER_ADDRESS)
        self.checks.answer_all()
        self.assertEqual(self.outcome(d), 200)

    def test_unprintable_tokens_name_no_one(self) -> None:
        """A token with a lone surrogate, NUL or non-ASCII finds no user, without a query."""
        for token in ("\ud800", "abc\x00", "caf\u00e9"):
            results: list[Any] = []
            self.accounts.user_for_token(token).addBoth(results.append)
            self.assertEqual(results, [None], repr(token))
