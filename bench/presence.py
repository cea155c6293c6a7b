"""
What renewing a node's charger claims costs (issue 15, item 1): one
``renew()`` of 10,000 claims on the Redis presence, against references
measured in the same run: a Redis PING round trip, and the same renewal done
the naive way (one awaited command per charger).

    .venv/bin/python bench/presence.py [--url redis://127.0.0.1:6379/0] [--chargers 10000]

Prints a markdown table: wall time per renewal (median of the rounds), the
commands it sends, the round trips it waits for, and Redis's own CPU per
renewal (``INFO cpu``). Keys live under a fresh prefix, deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Generator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import txredisapi  # noqa: E402
from twisted.internet import defer, task  # noqa: E402

from ocppd.presence.memory import MemoryPresence  # noqa: E402
from ocppd.presence.redis import RENEW_CHUNK, RedisPresence  # noqa: E402
from ocppd.redis.address import parse_redis_url  # noqa: E402
from ocppd.redis.link import RedisLink  # noqa: E402

ROUNDS = 7


def redis_cpu(info: Any) -> float:
    """Redis's CPU seconds so far (user + system) from ``INFO cpu`` (txredisapi parses it)."""
    if isinstance(info, str):
        info = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


@defer.inlineCallbacks
def median_ms(
    rounds: int, run: Any, admin: Any = None
) -> Generator[defer.Deferred[Any], Any, tuple[float, float | None]]:
    """Median wall ms of ``run()``; with ``admin``, Redis CPU ms per run too."""
    times = []
    cpu_before = redis_cpu((yield admin.info("cpu"))) if admin is not None else 0.0
    for _ in range(rounds):
        started = time.perf_counter()
        yield run()
        times.append((time.perf_counter() - started) * 1000)
    cpu = None
    if admin is not None:
        cpu = (redis_cpu((yield admin.info("cpu"))) - cpu_before) * 1000 / rounds
    return statistics.median(times), cpu


@defer.inlineCallbacks
def main(reactor: Any, url: str, chargers: int) -> Generator[defer.Deferred[Any], Any, None]:
    address = parse_redis_url(url)
    admin = yield txredisapi.Connection(address.host, address.port, dbid=address.db)
    prefix = "bench" + uuid.uuid4().hex[:8]
    link = RedisLink(reactor=reactor, url=url)
    presence = RedisPresence(node_id="bench", clock=reactor, lease=30, link=link, prefix=prefix)
    link.start()
    if not (yield presence.when_connected(10)):
        raise SystemExit(f"Redis at {url} is not reachable")
    try:
        ids = [f"CP{i:06d}" for i in range(chargers)]
        for start in range(0, chargers, 500):
            yield defer.gatherResults([presence.claim(cp) for cp in ids[start : start + 500]])
        claims = list(presence.held().items())

        ping_ms, _ = yield median_ms(100, admin.ping)
        commands_sent = 0
        handler = link.commands()
        handler_eval = handler.eval

        def counting_eval(*args: Any, **kwargs: Any) -> Any:
            nonlocal commands_sent
            commands_sent += 1
            return handler_eval(*args, **kwargs)

        handler.eval = counting_eval
        renew_ms, renew_cpu = yield median_ms(ROUNDS, presence.renew, admin)
        per_renewal = commands_sent // ROUNDS
        handler.eval = handler_eval

        @defer.inlineCallbacks
        def naive() -> Generator[defer.Deferred[Any], Any, None]:
            # What a renewal without batching costs: a round trip per charger.
            for claim in claims:
                yield presence._renew([claim])

        naive_ms, naive_cpu = yield median_ms(3, naive, admin)

        memory = MemoryPresence(node_id="bench", clock=reactor, lease=30)
        for cp in ids:
            yield memory.claim(cp)
        memory_ms, _ = yield median_ms(ROUNDS, memory.renew)

        lost = yield presence.renew()
        assert lost == [], lost
    finally:
        yield presence.stop()
        yield link.stop()
        keys = yield admin.keys(f"{prefix}:*")
        for start in range(0, len(keys), 1000):
            yield admin.delete(*keys[start : start + 1000])
        yield admin.disconnect()

    print(f"Renewing {chargers:,} claims ({RENEW_CHUNK:,} per script run), Redis at {url}\n")
    print("| renewal | wall ms | commands | round trips | Redis CPU ms | x PING |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| PING (reference) | {ping_ms:.3f} | 1 | 1 | | 1 |")
    print(
        f"| `renew()`: scripts pipelined | {renew_ms:.1f} | {per_renewal} | 1 |"
        f" {renew_cpu:.1f} | {renew_ms / ping_ms:,.0f} |"
    )
    print(
        f"| one awaited script per charger (reference) | {naive_ms:.1f} | {chargers:,} |"
        f" {chargers:,} | {naive_cpu:.1f} | {naive_ms / ping_ms:,.0f} |"
    )
    print(f"| embedded (`memory`) `renew()` | {memory_ms:.1f} | | | | |")
    print(f"\nbatched / one-per-charger wall time: {renew_ms / naive_ms:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--chargers", type=int, default=10_000)
    args = parser.parse_args()
    task.react(main, [args.url, args.chargers])
