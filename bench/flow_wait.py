"""
Instructions per flowed publish that flow control holds back, for callgrind.

    valgrind --tool=callgrind --instr-atstart=no python bench/flow_wait.py --callgrind LIB --limit 5
    valgrind --tool=callgrind --instr-atstart=no python bench/flow_wait.py --callgrind LIB --limit 0

A ``MemoryBus`` on a ``Clock`` (its journal in memory) whose durable queue's
consumer holds 100 deliveries and has ``--limit`` more ready: each round
publishes one message with ``flow=True`` (a charger's answer waits for it),
settles the oldest delivery and runs the delivery turn, so the backlog stays
at the limit and, with ``--limit 5``, every publish waits and is released by
the next turn (what every answer goes through while the processor is behind,
``[bus] flow_limit``); ``--limit 0`` is flow control off. The difference of
the two totals over ``--rounds`` is the cost of a wait. ``LIB``: see
``bench/request_path.py``. ``OCPPD_BENCH_SOURCE`` names another tree's ``ocppd``.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

sys.path.insert(0, os.environ.get("OCPPD_BENCH_SOURCE", os.path.dirname(sys.path[0])))

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery
from ocppd.bus.memory import MemoryBus

CONCURRENCY = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callgrind", metavar="LIB", required=True)
    parser.add_argument("--limit", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2000)
    args = parser.parse_args()
    callgrind = ctypes.CDLL(args.callgrind)
    clock = Clock()
    bus = MemoryBus(
        topology.default_topology(),
        reactor=clock,
        flow_limit=args.limit,
        max_queue_length=1_000_000,
    )
    bus.startService()
    held: list[Deferred[None]] = []

    def handler(delivery: Delivery) -> Deferred[None]:
        held.append(Deferred())
        return held[-1]

    bus.consume(topology.PROCESSOR_QUEUE, handler, concurrency=CONCURRENCY)
    key = topology.ocpp_in("MeterValues")

    def envelope(i: int) -> Envelope:
        return Envelope.create(key, {"n": i, "request": {"a": 1}}, node="n", charge_point_id="CP1")

    # The consumer's hands full and ``--limit`` ready (5 without flow control).
    for i in range(CONCURRENCY + max(args.limit, 5)):
        bus.publish(key, envelope(i))
    clock.advance(0)
    answered: list[None] = []
    envelopes = [envelope(i) for i in range(args.rounds)]
    callgrind.cg_start()
    for i in range(args.rounds):
        bus.publish(key, envelopes[i], flow=True).addCallback(answered.append)
        clock.advance(0)  # the journal's write: the answer waits, or not
        held.pop(0).callback(None)  # the consumer settles one: room for a delivery
        clock.advance(0)  # the delivery turn releases the waiting answer
    callgrind.cg_stop()
    assert len(answered) == args.rounds
    print(f"rounds {args.rounds}, answers held back {bus.stats.flow_waited}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
