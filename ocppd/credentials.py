"""
Hashing of secrets kept at rest: charger authorization keys and user passwords.

User passwords are chosen by people, so they have little entropy: they use
Argon2id, slow and memory-hard, which is what makes guessing a leaked hash
expensive.

Charger keys are different. They are secrets an operator provisions into a
machine, at least :data:`MIN_CHARGER_KEY_LENGTH` characters long (a random
one of that length has ~95 bits of entropy), and every (re)connection of every
charger checks one. A slow KDF multiplies the cost of a guess by a constant:
against a search space of 2**95 that buys nothing, while it cost ~20 ms of CPU
per connection (a reconnect storm of 10,000 chargers: over 3 minutes of CPU;
a stranger's wrong keys: both cores). So a charger key is stored as a salted
HMAC-SHA256: the random per-key salt makes precomputed tables useless and
every hash a separate search, the digest reveals nothing short of that search,
and a check costs a few microseconds, cheap enough to run on the reactor thread.

Hashes of the former scheme (PBKDF2-SHA256, 60,000 rounds) are still verified,
in a thread, and replaced by the caller after the charger's next successful
login (:func:`is_legacy_key_hash`); a key shorter than the minimum keeps
working until an operator rotates it. docs/ocpp.md has the operator's view.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

#: The shortest authorization key ocppd sets (CLI, CMS, pending registration,
#: ChangeConfiguration AuthorizationKey).
MIN_CHARGER_KEY_LENGTH = 16

KEY_HASH_SCHEME = "hmac_sha256"
_SALT_BYTES = 16

#: The former scheme, verified (in a thread) until the next successful login.
LEGACY_KEY_HASH_SCHEME = "pbkdf2_sha256"
LEGACY_KEY_HASH_ITERATIONS = 60_000
#: A stored work factor above this is refused rather than run (a corrupted or
#: planted hash must not make one check cost minutes).
_MAX_LEGACY_ITERATIONS = 1_000_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def charger_key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a charger's authorization key, or None if it can."""
    if len(key) < MIN_CHARGER_KEY_LENGTH:
        return f"an authorization key needs at least {MIN_CHARGER_KEY_LENGTH} characters"
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        return "an authorization key must be Unicode text (no lone surrogates)"
    return None


def _digest(key: str, salt: bytes) -> bytes:
    return hmac.digest(salt, key.encode("utf-8"), "sha256")


def hash_charger_key(key: str) -> str:
    """Hash a charger's authorization key (the exact string the charger sends)."""
    salt = secrets.token_bytes(_SALT_BYTES)
    return f"{KEY_HASH_SCHEME}${_b64(salt)}${_b64(_digest(key, salt))}"


def legacy_key_hash(key: str, *, iterations: int = LEGACY_KEY_HASH_ITERATIONS) -> str:
    """
    A hash in the former PBKDF2 scheme. ocppd no longer stores these; tests and
    ``bench/`` make them to exercise the verification and the upgrade.
    """
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), salt, iterations)
    return f"{LEGACY_KEY_HASH_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def is_legacy_key_hash(key_hash: str) -> bool:
    """Whether ``key_hash`` is of the former, slow scheme (verify it off the reactor)."""
    return key_hash.startswith(LEGACY_KEY_HASH_SCHEME + "$")


def verify_charger_key(key: str, key_hash: str) -> bool:
    """
    Whether ``key`` matches ``key_hash`` (either scheme); constant-time, False
    on a malformed hash. A legacy hash costs ~20 ms: see :func:`is_legacy_key_hash`.
    """
    parts = key_hash.split("$")
    try:
        if parts[0] == KEY_HASH_SCHEME and len(parts) == 3:
            salt, expected = _unb64(parts[1]), _unb64(parts[2])
            return hmac.compare_digest(_digest(key, salt), expected)
        if parts[0] == LEGACY_KEY_HASH_SCHEME and len(parts) == 4:
            iterations = int(parts[1])
            salt, expected = _unb64(parts[2]), _unb64(parts[3])
            if not 0 < iterations <= _MAX_LEGACY_ITERATIONS:
                return False
            digest = hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), salt, iterations)
            return hmac.compare_digest(digest, expected)
    except ValueError:  # binascii.Error is a ValueError
        return False
    return False


def hash_password(password: str) -> str:
    """Hash a user's password with Argon2id (memory-hard)."""
    return PasswordHasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches ``password_hash``; False on a malformed hash."""
    try:
        return PasswordHasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
