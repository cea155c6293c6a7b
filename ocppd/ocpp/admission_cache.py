"""
A short-lived memory of successful charger logins, so that a charger
reconnecting within seconds (a site's router restarted, a proxy dropped its
sockets) is let in without a store lookup on the database thread.

An entry is the charger id, a digest of the key it logged in with and when the
entry expires. The digest is an HMAC-SHA256 under a random key made at start
and kept only in this process's memory: the cache never holds a key, and what
it holds is useless outside the process (no offline guessing against it). A
login hits only with the same id and the same key, before the entry expires;
anything else is a miss and goes the whole way (store, key hash, throttles).

How long a stale positive can last (docs/security.md "Admission cache"):

- a change made on this node (an operator sets or removes the key, rejects
  or deletes the charger, the charger accepts a new key) forgets the entry at
  once (:meth:`AdmissionCache.forget`, called by whoever made the change);
- a change made elsewhere (another node, ``ocppctl``) is not heard of here:
  the entry lives until its ``ttl`` (30 s by default, at most 300), which is
  therefore the longest an old key or a rejected charger can still reconnect
  to a node where it logged in just before. A socket already open is not
  affected by a key change at all, cache or not.

Only logins with a key of an Accepted charger are remembered. Bounded: at most
``max_entries`` (the oldest go first), expired ones are dropped as new ones
come. No I/O; the clock is injected.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict

from twisted.internet.interfaces import IReactorTime

#: Bytes of the HMAC kept per entry: 128 bits, a collision is no concern.
_DIGEST_BYTES = 16


class AdmissionCache:
    """Charger id -> (key digest, expiry) of recent successful logins."""

    def __init__(
        self, clock: IReactorTime, *, ttl: float = 30.0, max_entries: int = 100_000
    ) -> None:
        self._clock = clock
        self.ttl = ttl
        self._max_entries = max_entries
        self._secret = secrets.token_bytes(32)
        # Insertion order is expiry order (one ttl for all; a renewal re-inserts).
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        #: Counts :meth:`forget` calls: a login whose store lookup began before
        #: one is not remembered (it may have read what was just changed).
        self.generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _digest(self, key: str) -> bytes:
        return hmac.digest(self._secret, key.encode("utf-8"), "sha256")[:_DIGEST_BYTES]

    def admits(self, charge_point_id: str, key: str) -> bool:
        """Whether ``charge_point_id`` logged in with ``key`` less than ``ttl`` ago."""
        entry = self._entries.get(charge_point_id)
        if entry is None:
            return False
        digest, expires = entry
        if expires <= self._clock.seconds():
            del self._entries[charge_point_id]
            return False
        return hmac.compare_digest(digest, self._digest(key))

    def remember(self, charge_point_id: str, key: str, *, since: int) -> None:
        """
        ``charge_point_id`` logged in with ``key`` just now (and is Accepted),
        checked against what the store said after ``since`` (a ``generation``);
        not remembered if anything was forgotten meanwhile.
        """
        if self.ttl <= 0 or since != self.generation:
            return
        now = self._clock.seconds()
        entries = self._entries
        entries[charge_point_id] = (self._digest(key), now + self.ttl)
        entries.move_to_end(charge_point_id)
        while entries:
            _digest, expires = next(iter(entries.values()))
            if expires > now and len(entries) <= self._max_entries:
                break
            entries.popitem(last=False)

    def forget(self, charge_point_id: str) -> None:
        """The charger's key, status or existence changed: its next login goes the whole way."""
        self.generation += 1
        self._entries.pop(charge_point_id, None)
