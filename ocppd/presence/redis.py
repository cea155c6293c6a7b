"""
Presence on Redis (txredisapi), for several nodes. Keys, lease and fencing
are described in ``docs/presence.md``; in short, for charger X:

- ``{prefix}:fence:X``: the fencing counter, INCR on every claim, kept;
- ``{prefix}:owner:X``: ``"{fence} {node}"``, expiring after the lease;
- channel ``{prefix}:lost:{node}``: ``"{fence} X"`` when another node claims X.

Every change is a Lua script, so "is this fence still the newest" and the
write are one atomic step: a late renewal or release of an old node cannot
overwrite the newer owner. The node's Redis link (``ocppd.redis.link``)
carries all commands on one connection, in order: a release sent after a
renewal is applied after it.

While Redis is unreachable every call fails at once with
``PresenceUnavailable``; the link reconnects by itself, and presence renews
its claims each time it does.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import Any, cast

from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from ocppd.logs import Logger
from ocppd.ocpp.handshake import CHARGE_POINT_ID
from ocppd.presence.claims import PresenceClaims
from ocppd.presence.interface import NODE_ID, IPresence, Owner, PresenceUnavailable
from ocppd.redis.link import CONNECT_TIMEOUT, RedisLink
from ocppd.redis.scripts import ScriptRunner

#: Claims renewed by one script run: Redis runs nothing else meanwhile, so a
#: run stays around a millisecond; the runs of one renewal are pipelined.
RENEW_CHUNK = 1000
#: Owner keys read by one script run (Lua's unpack takes a few thousand at most).
OWNERS_CHUNK = 1000
# KEYS: fence counter, owner. ARGV: node, lease ms, lost-channel prefix, charge point id.
# The fence is the counter + 1, or Redis's clock in milliseconds if that is more:
# fences keep growing even if Redis loses its data (and they order the
# connect events in the store, where they are kept).
CLAIM = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local fence = redis.call('INCR', KEYS[1])
if fence < now then
  fence = now
  redis.call('SET', KEYS[1], fence)
end
local previous = redis.call('GET', KEYS[2])
redis.call('SET', KEYS[2], fence .. ' ' .. ARGV[1], 'PX', ARGV[2])
-- A value without a space is not one of ours: replaced, nobody to tell.
local space = previous and string.find(previous, ' ', 1, true)
if space then
  local node = string.sub(previous, space + 1)
  if node ~= ARGV[1] then
    redis.call('PUBLISH', ARGV[3] .. node, string.sub(previous, 1, space - 1) .. ' ' .. ARGV[4])
  end
end
return fence
"""

# KEYS: owner. ARGV: "{fence} {node}".
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# ARGV: owner key prefix, then the charge point ids as one string, "X Y ...".
# Returns their owner values as one string, a line each ("" for none): a reply
# of one value per charger costs txredisapi a reactor turn per value, ten times
# the CPU of this whole lookup (bench/online_lookup.py). A value with a newline
# is not one of ours: sent as "?", which reads as no owner.
OWNERS = r"""
local values = {}
for cp in string.gmatch(ARGV[2], '%S+') do
  local value = redis.call('GET', ARGV[1] .. cp) or ''
  if string.find(value, '\n', 1, true) then value = '?' end
  values[#values + 1] = value
end
return table.concat(values, '\n')
"""

# ARGV: node, lease ms, key prefix, then the claims as one string, "X 5 Y 9 ...":
# encoding 2 keys and an argument per charger cost the client ten times the CPU
# Redis spends on the whole renewal (bench/presence.py). The keys are built here,
# so presence needs one Redis (not a Redis Cluster). Returns the lost charger ids.
RENEW = """
local lost = {}
for cp, fence in string.gmatch(ARGV[4], '(%S+) (%S+)') do
  local counter = redis.call('GET', ARGV[3] .. 'fence:' .. cp)
  if counter == false then
    -- Redis lost its data: nobody claimed X since, the claim is still the newest.
    redis.call('SET', ARGV[3] .. 'fence:' .. cp, fence)
    counter = fence
  end
  if counter == fence then
    redis.call('SET', ARGV[3] .. 'owner:' .. cp, fence .. ' ' .. ARGV[1], 'PX', ARGV[2])
  else
    lost[#lost + 1] = cp
  end
end
return lost
"""


@implementer(IPresence)
class RedisPresence(PresenceClaims):
    log = Logger()

    def __init__(
        self,
        *,
        node_id: str,
        clock: IReactorTime,
        lease: float,
        link: RedisLink,
        prefix: str = "ocppd",
    ) -> None:
        super().__init__(node_id=node_id, clock=clock, lease=lease)
        self.link = link
        self.address = link.address
        self._prefix = prefix
        self.channel = f"{prefix}:lost:{node_id}"
        self._scripts = ScriptRunner(
            self.log,
            link,
            service="Presence",
            while_unreachable="charger ownership cannot be read or changed",
            while_refusing="charger ownership cannot be changed",
            unavailable=PresenceUnavailable,
        )
        link.subscribe(
            self.channel,
            self._message,
            while_unsubscribed="lost claims are found at renewal until it is back",
        )
        # Takeover messages sent while a connection was away are gone: a
        # renewal finds those claims (and restores the ones that expired).
        link.on_connected(self._reconnected)

    def connected(self) -> bool:
        return self.link.connected()

    def when_connected(self, timeout: float) -> Deferred[bool]:
        """Wait up to ``timeout`` seconds for the link's connections; whether they are up."""
        return self.link.when_connected(timeout)

    @inlineCallbacks
    def _reconnected(self) -> Generator[Deferred[Any], Any, None]:
        """
        A connection came (back): once both are up, renew at once. Claims taken
        over while the subscription was down were never told; and claims that
        expired while Redis was away come back.
        """
        if (yield self.when_connected(CONNECT_TIMEOUT)):
            yield self._renew_logged()

    # Store operations

    def _key(self, kind: str, charge_point_id: str) -> str:
        return f"{self._prefix}:{kind}:{charge_point_id}"

    def _eval(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]:
        return self._scripts.eval(script, keys, args)

    def _claim(self, charge_point_id: str) -> Deferred[int]:
        return self._eval(
            CLAIM,
            [self._key("fence", charge_point_id), self._key("owner", charge_point_id)],
            [self.node_id, self._lease_ms(), f"{self._prefix}:lost:", charge_point_id],
        ).addCallback(int)

    def _release(self, charge_point_id: str, fence: int) -> Deferred[bool]:
        return self._eval(
            RELEASE, [self._key("owner", charge_point_id)], [f"{fence} {self.node_id}"]
        ).addCallback(bool)

    def _owner(self, charge_point_id: str) -> Deferred[Owner | None]:
        # A script too: the only way through _eval's fail-fast check.
        return self._eval(
            "return redis.call('GET', KEYS[1])", [self._key("owner", charge_point_id)], []
        ).addCallback(_parse_owner)

    def _owners(self, charge_point_ids: list[str]) -> Deferred[dict[str, Owner | None]]:
        # An id no claim can have (claim refuses it) has no owner; it could
        # not travel in the packed list either (a customer's start names any).
        owners: dict[str, Owner | None] = dict.fromkeys(charge_point_ids)
        valid = [cp for cp in charge_point_ids if CHARGE_POINT_ID.fullmatch(cp)]
        runs = []
        for start in range(0, len(valid), OWNERS_CHUNK):
            chunk = valid[start : start + OWNERS_CHUNK]
            args = [f"{self._prefix}:owner:", " ".join(chunk)]
            runs.append(self._eval(OWNERS, [], args).addCallback(_owners_of, chunk))

        def merged(results: list[dict[str, Owner | None]]) -> dict[str, Owner | None]:
            for found in results:
                owners.update(found)
            return owners

        return _pipelined(runs).addCallback(merged)

    def _renew(self, claims: list[tuple[str, int]]) -> Deferred[list[tuple[str, int]]]:
        runs = []
        for start in range(0, len(claims), RENEW_CHUNK):
            chunk = dict(claims[start : start + RENEW_CHUNK])
            packed = " ".join(f"{cp} {fence}" for cp, fence in chunk.items())
            args = [self.node_id, self._lease_ms(), f"{self._prefix}:", packed]
            runs.append(self._eval(RENEW, [], args).addCallback(_lost_claims, chunk))

        def merged(results: list[list[tuple[str, int]]]) -> list[tuple[str, int]]:
            return [claim for lost in results for claim in lost]

        return _pipelined(runs).addCallback(merged)

    def _lease_ms(self) -> int:
        return max(1, round(self.lease * 1000))

    # The lost-claims channel

    def _message(self, message: Any) -> None:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
        fence, _, charge_point_id = text.partition(" ")
        if not fence.isdigit() or not charge_point_id:
            self.log.warn(
                "Presence: ignoring a malformed lost-claim message {message!r}", message=text[:200]
            )
            return
        self._lost(charge_point_id, int(fence))


def _pipelined(runs: list[Deferred[Any]]) -> Deferred[list[Any]]:
    """
    The results of script runs sent together on the command connection (one
    round trip), in order; the first failure if any failed.
    """

    def first_error(failure: Failure) -> Failure:
        return cast(Failure, failure.value.subFailure)  # type: ignore[union-attr]

    return gatherResults(runs, consumeErrors=True).addErrback(first_error)


def _owners_of(reply: Any, chunk: list[str]) -> dict[str, Owner | None]:
    """The owners of ``chunk`` from the ``OWNERS`` script's reply: a line per charger."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    values = text.split("\n")
    return {cp: _parse_owner(value or None) for cp, value in zip(chunk, values, strict=True)}


def _lost_claims(lost: Any, chunk: dict[str, int]) -> list[tuple[str, int]]:
    """The claims of ``chunk`` the renewal script found lost (it returns their ids)."""
    ids = (cp.decode() if isinstance(cp, bytes) else str(cp) for cp in lost or ())
    return [(cp, chunk[cp]) for cp in ids if cp in chunk]


#: A fence as Redis counts it: a 64-bit integer.
_FENCE = re.compile(r"[0-9]{1,19}")


def _parse_owner(value: Any) -> Owner | None:
    """
    The owner an owner key names; None for no key, and for a value ocppd did
    not write (edited by hand, another program on the prefix): nobody this
    node can reach holds the charger, and its next claim replaces the value.
    """
    if value is None:
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    fence, _, node_id = text.partition(" ")
    if not (_FENCE.fullmatch(fence) and NODE_ID.fullmatch(node_id)):
        RedisPresence.log.warn(
            "Presence: ignoring an owner value ocppd does not write: {value!r}", value=text[:200]
        )
        return None
    return Owner(node_id, int(fence))
