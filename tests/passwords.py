"""
Users' password hashes for tests: real Argon2id hashes, at the cheapest cost.

ocppd hashes passwords with argon2-cffi's default cost (``hash_password``:
64 MiB, 3 passes, 4 lanes: ~0.2 s of CPU a hash and a check, on purpose),
and a check reads the cost from the stored hash. A test that puts a user
straight into the store with one of these hashes still signs in through the
product's own ``verify_password`` (a wrong password is still refused), only
without spending 0.2 s of CPU per sign-in: the tests sign in hundreds of
times. That ``hash_password`` and ``ocppctl user add`` store full-cost hashes
is tested in tests/test_cli.py.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher

#: Argon2's minimums: 8 KiB, one pass, one lane.
_CHEAPEST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@functools.cache
def password_hash(password: str) -> str:
    """An Argon2id hash of ``password`` that ``ocppd.credentials.verify_password`` accepts."""
    return _CHEAPEST.hash(password)
