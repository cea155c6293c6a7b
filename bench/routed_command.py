"""
A routed command's round trip against a local one, in the same run.

    .venv/bin/python bench/routed_command.py [--samples 2000] [--url amqp://...]

Two nodes' command routers in this process: node B holds the charger's
connection (a real ``CommandQueue`` whose charger answers Reset on the next
reactor turn, so only ocppd's own path is measured); each sample is one
``CommandRouter.call`` of Reset, closed loop, one at a time:

- **local**: router B, charger on B (through the ``ConnectionRegistry``);
- **routed, in-process**: router A, charger on B, the in-process transport
  (the path's own cost: encode, decode, validate);
- **routed, RabbitMQ**: router A, charger on B, each node its own
  connection to RabbitMQ (``OCPPD_BENCH_AMQP_URL``, default the local
  broker): publish with confirm to B's command queue, B runs it and
  publishes the reply to A's reply queue.

Prints p50/p99 in milliseconds and the ratios to the local call.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from typing import Any, cast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from twisted.internet import defer, reactor  # noqa: E402

from ocppd.ocpp.commands import CommandQueue  # noqa: E402
from ocppd.ocpp.frames import Call, CallResult  # noqa: E402
from ocppd.ocpp.registry import ConnectionRegistry  # noqa: E402
from ocppd.ocpp.schemas import SchemaRegistry  # noqa: E402
from ocppd.routing.amqp import AmqpCommandTransport  # noqa: E402
from ocppd.routing.executor import CommandExecutor  # noqa: E402
from ocppd.routing.local import LocalCommandTransport  # noqa: E402
from ocppd.routing.router import CommandRouter  # noqa: E402

AMQP_URL = os.environ.get("OCPPD_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
SCHEMAS = SchemaRegistry.load()


class AnsweringCharger:
    """A charger connection that answers every CALL on the next reactor turn."""

    def __init__(self, charge_point_id: str) -> None:
        self.charge_point_id = charge_point_id
        self.commands = CommandQueue(
            charge_point_id, send=self._sent, schemas=SCHEMAS, clock=reactor, timeout=30
        )

    def _sent(self, call: Call) -> None:
        reply = CallResult(call.unique_id, {"status": "Accepted"})
        reactor.callLater(0, self.commands.reply_received, reply)

    def call(self, action: str, payload: dict[str, Any], *, timeout: float | None = None) -> Any:
        return self.commands.call(action, payload, timeout=timeout)

    def connection_lost(self, reason: str) -> None:
        self.commands.connection_lost(reason)

    def close(self, code: int, reason: str) -> None:
        self.connection_lost(reason)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


@defer.inlineCallbacks
def measure(router: CommandRouter, samples: int) -> Any:
    for _ in range(max(50, samples // 10)):  # warm up
        yield router.call("CP-1", "Reset", {"type": "Soft"}, timeout=10)
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        yield router.call("CP-1", "Reset", {"type": "Soft"}, timeout=10)
        times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 0.5), percentile(times, 0.99)


def routers(transport_a: Any, transport_b: Any, registry_b: ConnectionRegistry) -> Any:
    owners = {"CP-1": "node-b"}

    def owner_of(charge_point_id: str) -> Any:
        return defer.succeed(owners.get(charge_point_id))

    def router(node: str, transport: Any, registry: ConnectionRegistry) -> CommandRouter:
        return CommandRouter(
            node_id=node,
            registry=registry,
            owner_of=owner_of,
            transport=transport,
            schemas=SCHEMAS,
            clock=reactor,
        )

    return (
        router("node-a", transport_a, ConnectionRegistry()),
        router("node-b", transport_b, registry_b),
    )


@defer.inlineCallbacks
def main(args: argparse.Namespace) -> Any:
    registry_b = ConnectionRegistry()
    registry_b.register(cast(Any, AnsweringCharger("CP-1")))
    executor = CommandExecutor(registry_b, max_timeout=30)
    rows = []

    local = LocalCommandTransport(reactor)
    yield local.serve("node-b", executor.handle)
    router_a, router_b = routers(local, local, registry_b)
    rows.append(("local (charger on this node)", (yield measure(router_b, args.samples))))
    rows.append(("routed, in-process transport", (yield measure(router_a, args.samples))))

    prefix = "bench" + uuid.uuid4().hex[:6]
    amqp = []
    for node in ("node-a", "node-b"):
        transport = AmqpCommandTransport(
            url=args.url,
            reactor=reactor,
            prefix=prefix,
            connection_name=f"bench {node}",
            queue_expiry=5,
        )
        transport.startService()
        yield transport.when_connected(failAfterFailures=3)
        amqp.append(transport)
    yield amqp[1].serve("node-b", executor.handle)
    router_a, _ = routers(amqp[0], amqp[1], registry_b)
    rows.append(("routed, RabbitMQ (A -> B -> A)", (yield measure(router_a, args.samples))))
    for transport in amqp:
        yield transport.stopService()

    base = rows[0][1][0]
    print(f"Reset round trips, {args.samples} samples each, closed loop, milliseconds\n")
    print("| path | p50 | p99 | p50 / local |")
    print("| --- | ---: | ---: | ---: |")
    for name, (p50, p99) in rows:
        print(f"| {name} | {p50:.3f} | {p99:.3f} | {p50 / base:.1f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--url", default=AMQP_URL)
    arguments = parser.parse_args()

    def run() -> None:
        d = main(arguments)
        d.addErrback(lambda f: (f.printTraceback(), None))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(run)
    reactor.run()
