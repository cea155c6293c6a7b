"""
What asking presence who is online costs for one page of the API (issue 15,
item 5: presence is the truth for ``online``): ``IPresence.owners`` for a page
of chargers, in-process (``MemoryPresence``) and on Redis (``RedisPresence``:
one script run, one round trip), against references measured in the same
run: a Redis PING round trip, and the same page asked one charger at a time
(``owner`` per charger, awaited in turn, and all sent at once).

    .venv/bin/python bench/online_lookup.py [--url redis://127.0.0.1:6379/0] [--page 50]

Prints a markdown table of microseconds per page (p50, p99) and each ratio to
the PING round trip. Half the page's chargers are claimed. Keys live under a
fresh prefix, deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Generator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import txredisapi  # noqa: E402
from twisted.internet import defer, task  # noqa: E402

from ocppd.presence.memory import MemoryPresence  # noqa: E402
from ocppd.presence.redis import RedisPresence  # noqa: E402
from ocppd.redis.address import parse_redis_url  # noqa: E402
from ocppd.redis.link import RedisLink  # noqa: E402

ROUNDS = 300


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@defer.inlineCallbacks
def timed(
    call: Callable[[], Any], rounds: int = ROUNDS
) -> Generator[Any, Any, tuple[list[float], float]]:
    """Wall µs of each call, and this process's CPU µs per call (steadier on a loaded machine)."""
    samples = []
    cpu = time.process_time()
    for _ in range(rounds):
        start = time.perf_counter()
        yield defer.maybeDeferred(call)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples, (time.process_time() - cpu) * 1e6 / rounds


@defer.inlineCallbacks
def main(reactor: Any, url: str, size: int) -> Generator[Any, Any, None]:
    prefix = "bench" + uuid.uuid4().hex[:8]
    ids = [f"CP{n:05d}" for n in range(size)]
    memory = MemoryPresence(node_id="bench", clock=reactor, lease=3600)
    link = RedisLink(reactor=reactor, url=url)
    redis = RedisPresence(node_id="bench", clock=reactor, lease=3600, link=link, prefix=prefix)
    link.start()
    address = parse_redis_url(url)
    ping = yield txredisapi.Connection(address.host, address.port, dbid=address.db)
    if not (yield link.when_connected(10)):
        raise SystemExit(f"Redis at {url} is not reachable")
    try:
        for charge_point_id in ids[::2]:
            memory.claim(charge_point_id)
            yield redis.claim(charge_point_id)

        @defer.inlineCallbacks
        def one_by_one() -> Generator[Any, Any, None]:
            for charge_point_id in ids:
                yield redis.owner(charge_point_id)

        def all_at_once() -> Any:
            return defer.gatherResults([redis.owner(cp) for cp in ids])

        rows = [
            ("Redis PING round trip (reference)", (yield timed(ping.ping))),
            ("`MemoryPresence.owners` (in-process)", (yield timed(lambda: memory.owners(ids)))),
            ("`RedisPresence.owners` (one script run)", (yield timed(lambda: redis.owners(ids)))),
            (f"`RedisPresence.owner` x {size}, all sent at once", (yield timed(all_at_once))),
            (f"`RedisPresence.owner` x {size}, one after the other", (yield timed(one_by_one, 50))),
        ]
        found = yield redis.owners(ids)
        assert sum(owner is not None for owner in found.values()) == len(ids[::2])
    finally:
        yield redis.stop()
        keys = yield ping.keys(f"{prefix}:*")
        if keys:
            yield ping.delete(*keys)
        yield ping.disconnect()
        yield link.stop()
    reference = quantiles(rows[0][1][0])[0]
    cpu_reference = rows[0][1][1]
    print(
        f"| online states of a page of {size} chargers | p50 µs | p99 µs | p50 / PING"
        " | ocppd CPU µs | CPU / PING |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (samples, cpu) in rows:
        p50, p99 = quantiles(samples)
        print(
            f"| {name} | {p50:.1f} | {p99:.1f} | {p50 / reference:.2f} | {cpu:.0f}"
            f" | {cpu / cpu_reference:.2f} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--page", type=int, default=50)
    options = parser.parse_args()
    task.react(main, [options.url, options.page])
