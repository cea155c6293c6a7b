"""
The reactor's CPU per MeterValues that the RabbitMQ bus costs, with no store.

    .venv/bin/python bench/amqp_side.py [--chargers 100] [--seconds 5] [--rounds 3]

One process, one reactor, the local RabbitMQ (``OCPPD_BENCH_AMQP_URL``): an ``AmqpBus``
with the daemon's topology (the processor queue and this node's notifier queue) under
a prefix of its own. ``--chargers`` closed loops each publish an ``ocpp.in.MeterValues``
envelope and publish the next once the broker confirmed it (as a charger's answer waits
for the confirm); a ``BusConsumer`` with the processor's batching (200 at once, 50 ms
wait) applies them through a database that does nothing, announcing a
``session.updated`` per message (the processor's live estimate, published after the
commit, the message acknowledged on its confirm); the node's ``Notifier`` takes both
kinds (no browser listening, as on the bench's daemon). What is left is the bus's
work on both sides: publishes and their confirms, deliveries, acks.

Prints, per round, the messages the consumer applied per second and this thread's
CPU time per applied message (``time.thread_time()``, so neighbours on the machine
change it less than a rate), then the best round. ``OCPPD_BENCH_SOURCE`` names
another tree whose ``ocppd`` is measured (run the two interleaved to compare).

``--messages N``: instead of timed rounds, one round of N messages in all, no
warm-up, done when the consumer applied them; for callgrind, run with 0 and N
and divide the difference of the instruction counts by N:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/side-N.out \
        .venv/bin/python bench/amqp_side.py --messages 0|3000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.environ.get("OCPPD_BENCH_SOURCE", ROOT)
sys.path[:0] = [os.path.join(ROOT, "bench"), SOURCE]

from loadgen import meter_values_body  # noqa: E402
from servers import AMQP_URL  # noqa: E402
from twisted.internet import defer, reactor  # noqa: E402
from twisted.internet.task import deferLater  # noqa: E402

from ocppd.bus import topology  # noqa: E402
from ocppd.bus.amqp import AmqpBus  # noqa: E402
from ocppd.bus.envelope import Envelope  # noqa: E402
from ocppd.bus.publisher import EventPublisher  # noqa: E402
from ocppd.consumers.base import BusConsumer, FollowUp  # noqa: E402
from ocppd.consumers.notifier import Notifier  # noqa: E402


class AtOnceDatabase:
    """``Database.run`` applied in the calling thread, its result at once."""

    def run(self, func: Any, *args: Any, **kwargs: Any) -> defer.Deferred[Any]:
        return defer.succeed(func(None, *args, **kwargs))


class Processor(BusConsumer):
    """The processor's batching and its per-MeterValues live estimate, with no store."""

    name = "bench"
    concurrency = 200
    batch_wait = 0.05
    direct_events = frozenset({"session.updated"})
    applied = 0

    def apply_batch(self, conn: Any, envelopes: list[Envelope]) -> list[Any]:
        Processor.applied += len(envelopes)
        return [
            (
                True,
                [
                    FollowUp(
                        "session.updated",
                        {"transactionId": 1, "meterWh": 1000, "costMinor": 12},
                        envelope.charge_point_id,
                    )
                ],
            )
            for envelope in envelopes
        ]


class NobodyListening:
    """A push target without browsers (the notifier then drops each message at once)."""

    def listening(self) -> bool:
        return False

    def publish(self, topic: str, event: Any) -> None:
        raise AssertionError("nobody listens")


@defer.inlineCallbacks
def measure(chargers: int, seconds: float, warmup: float, messages: int | None = None) -> Any:
    prefix = f"benchside{uuid.uuid4().hex[:8]}"
    bus = AmqpBus(
        topology.default_topology(prefix, "bench"),
        url=AMQP_URL,
        reactor=reactor,
        retry_delays=(1.0,),
        max_attempts=3,
        connection_name=f"ocppd-{prefix}",
    )
    bus.startService()
    yield bus.when_connected(failAfterFailures=3)
    events = EventPublisher(bus, node="bench", clock=reactor)
    processor = Processor(bus, AtOnceDatabase(), events=events, clock=reactor)  # type: ignore[arg-type]
    yield processor.start(topology.PROCESSOR_QUEUE)
    notifier = Notifier(bus, NobodyListening())  # type: ignore[arg-type]
    yield notifier.start(topology.notifier_queue("bench"))
    key = topology.ocpp_in("MeterValues")
    request = json.loads(meter_values_body(5))
    running = [True]
    published = [0]

    @defer.inlineCallbacks
    def charger(n: int) -> Any:
        while running[0] and (messages is None or published[0] < messages):
            published[0] += 1
            payload = {
                "uniqueId": f"{n:010d}",
                "action": "MeterValues",
                "request": request,
                "response": {},
                "receivedAt": "2026-12-07T11:00:00.000Z",
            }
            yield events.publish(key, payload, charge_point_id=f"CP{n:04d}")

    applied, cpu, wall = Processor.applied, time.thread_time(), time.monotonic()
    loops = [charger(n) for n in range(chargers)]
    if messages is None:
        yield deferLater(reactor, warmup, lambda: None)
        applied, cpu, wall = Processor.applied, time.thread_time(), time.monotonic()
        yield deferLater(reactor, seconds, lambda: None)
    else:
        yield defer.DeferredList(loops)
        while Processor.applied - applied < messages:
            yield deferLater(reactor, 0.05, lambda: None)
    applied = Processor.applied - applied
    cpu, wall = time.thread_time() - cpu, time.monotonic() - wall
    running[0] = False
    yield defer.DeferredList(loops)
    yield notifier.stop()
    yield processor.stop()
    yield bus.delete_topology()
    yield bus.stopService()
    return applied / wall, cpu * 1e6 / max(applied, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--messages", type=int, help="one round of this many messages, untimed")
    args = parser.parse_args()
    if args.messages is not None:
        args.rounds = 1
    results: list[tuple[float, float]] = []

    @defer.inlineCallbacks
    def rounds() -> Any:
        for n in range(args.rounds):
            rate, us = yield measure(args.chargers, args.seconds, args.warmup, args.messages)
            load = os.getloadavg()[0]
            print(
                f"round {n + 1}: {rate:7.0f} applied/s, {us:6.1f} us CPU/applied, load {load:.1f}"
            )
            results.append((rate, us))

    def done(outcome: Any) -> Any:
        reactor.stop()
        return outcome

    reactor.callWhenRunning(lambda: rounds().addBoth(done))
    reactor.run()
    if len(results) < args.rounds:
        return 1
    print(f"best: {min(us for _, us in results):.1f} us CPU/applied (source {SOURCE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
