"""
Hashing of secrets kept at rest: charger authorization keys and user passwords.

Charger keys are checked on every (re)connection, so a reconnect storm of a
whole site must not cost seconds of CPU: they use salted PBKDF2-HMAC-SHA256,
with the work factor recorded in the hash, and callers run the check off the
reactor thread. User passwords (typed by people, low entropy) use Argon2id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_HASH_SCHEME = "pbkdf2_sha256"
KEY_HASH_ITERATIONS = 60_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def hash_charger_key(key: str, *, iterations: int = KEY_HASH_ITERATIONS) -> str:
    """Hash a charger's authorization key (the exact string the charger sends)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), salt, iterations)
    return f"{KEY_HASH_SCHEME}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_charger_key(key: str, key_hash: str) -> bool:
    """Whether ``key`` matches ``key_hash``; constant-time, False on a malformed hash."""
    try:
        scheme, iterations_text, salt_text, digest_text = key_hash.split("$")
        iterations = int(iterations_text)
        salt, expected = _unb64(salt_text), _unb64(digest_text)
    except ValueError:
        return False
    if scheme != KEY_HASH_SCHEME or not 0 < iterations <= 10_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", key.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(digest, expected)


def hash_password(password: str) -> str:
    """Hash a user's password with Argon2id (memory-hard)."""
    return PasswordHasher().hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Whether ``password`` matches ``password_hash``; False on a malformed hash."""
    try:
        return PasswordHasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
