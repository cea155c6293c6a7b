"""
A routed command through the REST API against a local one, in the same run.

    .venv/bin/python bench/routed_rest.py [--samples 500]

Two whole ocppd nodes in this process (``OcppdService`` each, as the
integration tests run them): one PostgreSQL schema, one RabbitMQ prefix and
one Redis presence prefix, all fresh and removed at the end (the services of
``tests/services.py``, ``OCPPD_TEST_*_URL``). Charger CP-1 is connected to
node B over a real WebSocket and answers every ClearCache at once. Each
sample is one ``POST /api/charger/clear-cache`` (operator token, persistent
HTTP connection), closed loop, alternating:

- **local**: the REST request on node B, which holds the charger;
- **routed**: the REST request on node A: presence lookup on Redis, the
  request over RabbitMQ to B, B's CALL to the charger, the reply back.

Everything (client, charger, both nodes) shares one reactor and one CPU, so
the absolute numbers are inflated; the ratio is the point. Prints p50/p99 in
milliseconds and the ratios to the local request.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import treq  # noqa: E402
from twisted.internet import defer, reactor  # noqa: E402
from twisted.web.client import HTTPConnectionPool  # noqa: E402
from twisted.web.http_headers import Headers  # noqa: E402

from ocppd.store import tokens, users  # noqa: E402
from ocppd.timeutil import from_timestamp  # noqa: E402

# The integration tests' helpers start the nodes and clean up after them.
# Imported by name: mypy checks bench/, not the test helpers behind it.
_inline = importlib.import_module("tests.api.inline")
_clients = importlib.import_module("tests.integration.clients")
_daemon = importlib.import_module("tests.integration.daemon")
_redis = importlib.import_module("tests.presence.test_redis")

KEY = "bench-key-0123456789"


class Run:
    """What ``tests.integration.daemon`` asks of a test case: temp dirs and cleanups."""

    def __init__(self) -> None:
        self._cleanups: list[tuple[Any, tuple[Any, ...]]] = []
        self._dir = tempfile.mkdtemp(prefix="routed-rest-")
        self._count = 0

    def addCleanup(self, func: Any, *args: Any) -> None:
        self._cleanups.append((func, args))

    def mktemp(self) -> str:
        self._count += 1
        return os.path.join(self._dir, str(self._count))

    @defer.inlineCallbacks
    def cleanup(self) -> Any:
        while self._cleanups:
            func, args = self._cleanups.pop()
            try:
                yield defer.maybeDeferred(func, *args)
            except Exception as e:  # a cleanup that fails must not stop the others
                print(f"cleanup {func!r} failed: {e}", file=sys.stderr)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def answer_forever(charger: Any) -> None:
    """Answer every CALL Accepted, at once."""

    def answered(text: str) -> None:
        frame = json.loads(text)
        if frame[0] == 2:
            charger.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
        charger.messages.get().addCallback(answered)

    charger.messages.get().addCallback(answered)


@defer.inlineCallbacks
def command(pool: HTTPConnectionPool, node: Any, token: str) -> Any:
    response = yield treq.post(
        f"http://127.0.0.1:{node.web_port}/api/charger/clear-cache",
        json={"chargePointId": "CP-1"},
        headers=Headers({"Authorization": [f"Bearer {token}"]}),
        pool=pool,
    )
    body = yield response.json()
    if response.code != 200:
        raise RuntimeError(f"{response.code}: {body}")


@defer.inlineCallbacks
def main(args: argparse.Namespace, run: Run) -> Any:
    redis_url = _redis.require_redis()
    prefix = "bench" + uuid.uuid4().hex[:8]
    run.addCleanup(_redis.delete_prefix, prefix)
    shared = [
        *_daemon.postgres_overrides(run),
        *_daemon.amqp_overrides(run),
        "presence.backend=redis",
        f"presence.url={redis_url}",
        f"presence.prefix={prefix}",
        "ocpp.call_timeout=10",
    ]
    a = yield _daemon.start_daemon(run, *shared, "ocppd.node_id=node-a")
    b = yield _daemon.start_daemon(run, *shared, "ocppd.node_id=node-b")
    a.ocppctl("charger", "add", "CP-1", stdin=KEY + "\n")
    now = from_timestamp(reactor.seconds())
    user_id = yield a.query(
        users.add_user, "ops@example.com", _inline.password_hash("pw"), "admin", now=now
    )
    token = "bench-" + uuid.uuid4().hex
    yield a.query(tokens.add_token, token, user_id, now=now, expires_at=now + timedelta(days=1))

    charger = yield _clients.connect(b.port, "CP-1", KEY)
    run.addCleanup(charger.close)
    answer_forever(charger)
    pool = HTTPConnectionPool(reactor, persistent=True)
    run.addCleanup(pool.closeCachedConnections)

    paths = {"local (REST on B, charger on B)": b, "routed (REST on A, charger on B)": a}
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(max(20, args.samples // 10)):  # warm up, both
        for node in paths.values():
            yield command(pool, node, token)
    for _ in range(args.samples):
        for name, node in paths.items():
            started = time.perf_counter()
            yield command(pool, node, token)
            times[name].append((time.perf_counter() - started) * 1000)

    rows = [(name, percentile(t, 0.5), percentile(t, 0.99)) for name, t in times.items()]
    base = rows[0][1]
    print(f"POST /api/charger/clear-cache, {args.samples} samples each, alternating, ms\n")
    print("| path | p50 | p99 | p50 / local |")
    print("| --- | ---: | ---: | ---: |")
    for name, p50, p99 in rows:
        print(f"| {name} | {p50:.2f} | {p99:.2f} | {p50 / base:.1f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=500)
    arguments = parser.parse_args()
    bench_run = Run()

    def go() -> None:
        d = main(arguments, bench_run)
        d.addErrback(lambda f: (f.printTraceback(), None))
        d.addBoth(lambda _: bench_run.cleanup())
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(go)
    reactor.run()
