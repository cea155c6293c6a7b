"""
The reactor's share of the processor's work per message on the embedded bus.

    .venv/bin/python bench/consume_side.py [--messages 20000] [--batch 100]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        .venv/bin/python bench/consume_side.py --messages 0|20000 --part publish|consume

Publishes ``--messages`` MeterValues envelopes on a ``MemoryBus`` (the default
topology, a journal that writes nothing) while a ``BusConsumer`` takes them in
batches of ``--batch`` through a database that applies a batch at once (no
SQL): what is left is the bus's delivery and acknowledgement and the
consumer's batching, all on the reactor thread. ``--part publish`` does the
same without a consumer: the difference of the two is the consume side.
Prints this thread's CPU time per message (best of ``--rounds``); under
callgrind, run with 0 and N messages and divide the difference of the
instruction counts by N, which no neighbour on the machine changes.
``--settling``: the journal shares the consumer's database, so the consumer
removes its records in its own transactions (``MemoryBus.journal_settler``,
the daemon's case; the removal itself costs nothing here).
``OCPPD_BENCH_SOURCE`` names another tree whose ``ocppd`` is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.environ.get("OCPPD_BENCH_SOURCE", ROOT)
sys.path[:0] = [os.path.join(ROOT, "bench"), SOURCE]

from loadgen import meter_values_body  # noqa: E402
from twisted.internet.defer import Deferred, succeed  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from ocppd.bus import topology  # noqa: E402
from ocppd.bus.envelope import Envelope  # noqa: E402
from ocppd.bus.journal import JournalBatch  # noqa: E402
from ocppd.bus.memory import MemoryBus  # noqa: E402
from ocppd.consumers.base import BusConsumer  # noqa: E402


class NullJournal:
    """A journal whose writes cost nothing (the database's part is not measured here)."""

    def load(self) -> list[Any]:
        return []

    def write(self, batch: JournalBatch) -> Deferred[None]:
        return succeed(None)


class NullSettlingJournal(NullJournal):
    """``NullJournal`` shared with the consumer's database: it settles in its batches."""

    def settler_for(self, database: object) -> Any:
        return lambda conn, seqs: None


class AtOnceDatabase:
    """``Database.run`` applied in the calling thread, its result at once."""

    def run(self, func: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return succeed(func(None, *args, **kwargs))


class Consumer(BusConsumer):
    """The processor's batching (its concurrency and wait), with no store."""

    name = "bench"
    concurrency = 200
    batch_wait = 0.05

    def apply_batch(self, conn: Any, envelopes: list[Envelope]) -> list[Any]:
        return [(True, []) for _ in envelopes]


def run(messages: int, batch: int, consume: bool, settling: bool = False) -> float:
    clock = Clock()
    journal = NullSettlingJournal() if settling else NullJournal()
    bus = MemoryBus(topology.default_topology(), reactor=clock, journal=journal)
    bus.startService()
    consumer = Consumer(bus, AtOnceDatabase(), clock=clock)  # type: ignore[arg-type]
    consumer.max_batch = batch
    if consume:
        consumer.start(topology.PROCESSOR_QUEUE)
    payload = {
        "uniqueId": "0000000001",
        "action": "MeterValues",
        "request": json.loads(meter_values_body(5)),
        "response": {},
        "receivedAt": "2026-12-07T11:00:00.000Z",
    }
    key = topology.ocpp_in("MeterValues")
    envelopes = [
        Envelope.create(key, payload, node="bench", charge_point_id="CP") for _ in range(messages)
    ]
    started = time.thread_time()
    for n in range(0, messages, batch):
        # A batch's worth arrives, then the consumer's wait runs out.
        for envelope in envelopes[n : n + batch]:
            bus.publish(key, envelope)
        clock.advance(0)
        clock.advance(consumer.batch_wait)
        clock.advance(0)
    elapsed = time.thread_time() - started
    if consume:
        assert bus.queue_length(topology.PROCESSOR_QUEUE) == 0, "not all consumed"
    return elapsed / max(messages, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--part", choices=("publish", "consume", "both"), default="both")
    parser.add_argument(
        "--settling",
        action="store_true",
        help="the consumer removes journal records in its own transactions (the daemon's case)",
    )
    args = parser.parse_args()
    parts = ("publish", "consume") if args.part == "both" else (args.part,)
    for part in parts:
        best = min(
            run(args.messages, args.batch, part == "consume", args.settling)
            for _ in range(args.rounds)
        )
        print(f"{part:8} {best * 1e6:6.2f} us/message")


if __name__ == "__main__":
    main()
