"""
Shared state on Redis (txredisapi), for several nodes; keys under ``[presence] prefix``:

- ``{prefix}:fail:{scope}:{sha1(key)}``: a hash (count, latest ms), expiring
  ``forget`` seconds after the latest failure;
- ``{prefix}:win:{scope}:{sha1(key)}``: a sorted set of event times, at most
  ``limit`` members, expiring ``window`` seconds after the latest event;
- channel ``{prefix}:revoked``: the digest of each revoked token.

Every key expires, so Redis holds only the keys active within ``forget`` /
``window`` (an attacker cycling names costs at most one small key per attempt
for that long, like the in-process ``max_keys`` bound). Check-and-count is one
Lua script: parallel attempts on several nodes cannot all pass the check. Times
are the calling node's clock (the nodes run NTP; the tests drive a Clock).

While Redis is unreachable every call fails at once with
``SharedStateUnavailable`` (sign-ins and charger logins then answer 503: the
limits fail closed). The connections are the node's Redis link
(``ocppd.redis.link``), shared with presence; it reconnects by itself.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ocppd.logs import Logger
from ocppd.redis.link import RedisLink
from ocppd.redis.scripts import ScriptRunner
from ocppd.shared.interface import (
    IFailures,
    ISharedState,
    IWindow,
    RevokedCallback,
    SharedStateUnavailable,
)
from ocppd.shared.memory import tell_revoked
from ocppd.throttle import ThrottlePolicy

# KEYS: the failures hash. ARGV: now ms, free, base ms, cap ms, forget ms, "begin"|"check".
# Returns nil (may go ahead; counted if "begin") or the wait in ms, as text.
FAILURES = """
local now = tonumber(ARGV[1])
local free, base = tonumber(ARGV[2]), tonumber(ARGV[3])
local cap, forget = tonumber(ARGV[4]), tonumber(ARGV[5])
local v = redis.call('HMGET', KEYS[1], 'c', 'l')
local count = 0
if v[1] then
  count = tonumber(v[1])
  if now - tonumber(v[2]) >= forget then count = 0 end
end
if count > 0 then
  local delay = 0
  if count >= free then delay = math.min(cap, base * 2 ^ math.min(count - free, 64)) end
  local wait = delay - (now - tonumber(v[2]))
  if wait > 0 then return tostring(wait) end
end
if ARGV[6] == 'begin' then
  redis.call('HSET', KEYS[1], 'c', count + 1)
  redis.call('HSET', KEYS[1], 'l', now)
  redis.call('PEXPIRE', KEYS[1], forget)
end
return false
"""

# KEYS: the window's sorted set. ARGV: now ms, limit, window ms, member or "".
# Returns nil (may act; recorded if a member is given) or the wait in ms, as text.
WINDOW = """
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(limit + 1))
  redis.call('PEXPIRE', KEYS[1], math.ceil(window))
  return false
end
if redis.call('ZCARD', KEYS[1]) < limit then return false end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(math.max(0, tonumber(oldest[2]) + window - now))
"""

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _seconds(reply: Any) -> float | None:
    if reply is None:
        return None
    text = reply.decode() if isinstance(reply, bytes) else str(reply)
    return float(text) / 1000.0


@implementer(IFailures)
class _RedisFailures:
    def __init__(self, state: RedisSharedState, scope: str, policy: ThrottlePolicy) -> None:
        self._state = state
        self._prefix = f"{state.prefix}:fail:{scope}:"
        self._policy = policy

    def _run(self, key: str, mode: str) -> Deferred[float | None]:
        p = self._policy
        ms = [round(x * 1000) for x in (p.base, p.cap, p.forget)]
        args = [self._state.now_ms(), p.free, *ms, mode]
        return self._state.eval(FAILURES, [self._prefix + _hashed(key)], args).addCallback(_seconds)

    def retry_after(self, key: str) -> Deferred[float | None]:
        return self._run(key, "check")

    def begin(self, key: str) -> Deferred[float | None]:
        return self._run(key, "begin")

    def succeeded(self, key: str) -> Deferred[None]:
        script = "redis.call('DEL', KEYS[1]) return false"
        return self._state.eval(script, [self._prefix + _hashed(key)], []).addCallback(
            lambda _: None
        )


@implementer(IWindow)
class _RedisWindow:
    def __init__(self, state: RedisSharedState, scope: str, limit: int, window: float) -> None:
        self._state = state
        self._prefix = f"{state.prefix}:win:{scope}:"
        self._limit = limit
        self._window_ms = round(window * 1000)

    def _run(self, key: str, member: str) -> Deferred[Any]:
        args = [self._state.now_ms(), self._limit, self._window_ms, member]
        return self._state.eval(WINDOW, [self._prefix + _hashed(key)], args)

    def retry_after(self, key: str) -> Deferred[float | None]:
        return self._run(key, "").addCallback(_seconds)

    def record(self, key: str) -> Deferred[None]:
        member = f"{self._state.now_ms()}:{uuid.uuid4().hex[:12]}"
        return self._run(key, member).addCallback(lambda _: None)


def _hashed(key: str) -> str:
    # Fixed length whatever the caller's key (an email, an address, a charger id).
    return hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()


@implementer(ISharedState)
class RedisSharedState:
    log = Logger()

    def __init__(self, *, clock: IReactorTime, link: RedisLink, prefix: str = "ocppd"):
        self.link = link
        self.address = link.address
        self._clock = clock
        self.prefix = prefix
        self.channel = f"{prefix}:revoked"
        self._revoked: list[RevokedCallback] = []
        self._scripts = ScriptRunner(
            self.log,
            link,
            service="Shared state",
            while_unreachable="sign-ins and charger logins answer 503",
            while_refusing="sign-ins and charger logins answer 503",
            unavailable=SharedStateUnavailable,
        )
        link.subscribe(
            self.channel,
            self._message,
            while_unsubscribed="tokens revoked on other nodes end their push sessions here"
            " only when their tickets are next checked",
        )

    def now_ms(self) -> int:
        return round(self._clock.seconds() * 1000)

    def start(self) -> None:
        """Nothing to open: the node's service tree starts the link, before this."""

    def stop(self) -> Deferred[None]:
        """Nothing to close: the link is stopped after this."""
        return succeed(None)

    def connected(self) -> bool:
        return self.link.connected()

    def eval(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]:
        return self._scripts.eval(script, keys, args)

    def failures(self, scope: str, policy: ThrottlePolicy) -> _RedisFailures:
        return _RedisFailures(self, scope, policy)

    def window(self, scope: str, *, limit: int, window: float) -> _RedisWindow:
        return _RedisWindow(self, scope, limit, window)

    def publish_revoked(self, digest: str) -> Deferred[None]:
        # This node ends its own sessions at once: the message may come late.
        tell_revoked(self._revoked, digest, self.log)
        script = "redis.call('PUBLISH', KEYS[1], ARGV[1]) return false"
        return self.eval(script, [self.channel], [digest]).addCallback(lambda _: None)

    def on_revoked(self, callback: RevokedCallback) -> None:
        self._revoked.append(callback)

    def _message(self, message: Any) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        if not _DIGEST.match(text):
            self.log.warn(
                "Shared state: ignoring a malformed revocation {message!r}", message=text[:100]
            )
            return
        tell_revoked(self._revoked, text, self.log)
