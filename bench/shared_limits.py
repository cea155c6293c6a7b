"""
What a sign-in or charger-login limit check costs (issue 15, item 5): one
``begin`` of the shared failure throttle, in-process (``MemorySharedState``)
and on Redis (``RedisSharedState``, one Lua script), against references
measured in the same run: the bare in-process ``Throttle.begin`` and a Redis
PING round trip.

    .venv/bin/python bench/shared_limits.py [--url redis://127.0.0.1:6379/0] [--calls 2000]

Prints a markdown table of microseconds per call (p50, p99) and each ratio to
its reference. Keys live under a fresh prefix, deleted at the end.
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

from ocppd.redis.address import parse_redis_url  # noqa: E402
from ocppd.redis.link import RedisLink  # noqa: E402
from ocppd.shared.memory import MemorySharedState  # noqa: E402
from ocppd.shared.redis import RedisSharedState  # noqa: E402
from ocppd.throttle import Throttle, ThrottlePolicy  # noqa: E402

POLICY = ThrottlePolicy(free=3, base=1.0, cap=300.0, forget=900.0)


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@defer.inlineCallbacks
def timed(call: Callable[[int], Any], calls: int) -> Generator[Any, Any, list[float]]:
    samples = []
    for n in range(calls):
        start = time.perf_counter()
        yield defer.maybeDeferred(call, n)
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


@defer.inlineCallbacks
def main(reactor: Any, url: str, calls: int) -> Generator[Any, Any, None]:
    prefix = "bench" + uuid.uuid4().hex[:8]
    throttle = Throttle(reactor, POLICY)
    memory = MemorySharedState(reactor).failures("sign-in", POLICY)
    link = RedisLink(reactor=reactor, url=url)
    state = RedisSharedState(clock=reactor, link=link, prefix=prefix)
    link.start()
    address = parse_redis_url(url)
    ping = yield txredisapi.Connection(address.host, address.port, dbid=address.db)
    while not state.connected():
        yield task.deferLater(reactor, 0.01, lambda: None)
    shared = state.failures("sign-in", POLICY)
    try:
        rows = [
            (
                "in-process `Throttle.begin` (reference)",
                (yield timed(lambda n: throttle.begin(f"k{n}"), calls)),
            ),
            ("`MemorySharedState` begin", (yield timed(lambda n: memory.begin(f"k{n}"), calls))),
            ("Redis PING round trip (reference)", (yield timed(lambda n: ping.ping(), calls))),
            (
                "`RedisSharedState` begin (Lua)",
                (yield timed(lambda n: shared.begin(f"k{n}"), calls)),
            ),
        ]
    finally:
        keys = yield ping.keys(f"{prefix}:*")
        for start in range(0, len(keys), 500):
            yield ping.delete(*keys[start : start + 500])
        yield ping.disconnect()
        yield state.stop()
        yield link.stop()
    print(f"| check ({calls} calls, distinct keys) | p50 µs | p99 µs | ratio p50 to reference |")
    print("| --- | --- | --- | --- |")
    references = {0: quantiles(rows[0][1])[0], 1: quantiles(rows[0][1])[0]}
    references.update({2: quantiles(rows[2][1])[0], 3: quantiles(rows[2][1])[0]})
    for index, (name, samples) in enumerate(rows):
        p50, p99 = quantiles(samples)
        print(f"| {name} | {p50:.1f} | {p99:.1f} | {p50 / references[index]:.2f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--calls", type=int, default=2000)
    options = parser.parse_args()
    task.react(main, [options.url, options.calls])
