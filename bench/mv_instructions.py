"""
Instructions per MeterValues applied by the processor (SQLite or PostgreSQL), for callgrind.

    valgrind --tool=callgrind python bench/mv_instructions.py --batches 0
    valgrind --tool=callgrind python bench/mv_instructions.py --batches 10

The difference of the two totals over 10 x 100 is the cost per message
(building the envelopes included, the same on both sides of a change).
Three batches warm up first. ``--chargers 100``: every MeterValues of a
batch names another session (as 100 chargers with one call each send
them), rather than each of 20 sessions five times. ``--postgres URL``: the
same on PostgreSQL, in a scratch schema dropped at the end (the client's
instructions only: the server is another process).
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import processor_batch
from processor_batch import envelopes, setup
from scratch import scratch_database
from twisted.internet.task import Clock

from ocppd.consumers.processor import OcppProcessor
from ocppd.store.database import Database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument(
        "--chargers",
        type=int,
        default=processor_batch.CHARGERS,
        help="sessions the MeterValues go round (100: each once in a batch of 100)",
    )
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: a new SQLite file)")
    args = parser.parse_args()
    processor_batch.CHARGERS = args.chargers
    with scratch_database(args.postgres or "sqlite") as (engine, _):
        database = Database(engine)
        sessions = setup(database)
        processor = OcppProcessor(None, database, clock=Clock())  # type: ignore[arg-type]
        for _ in range(3 + args.batches):
            database.run_sync(processor.apply_batch, envelopes("MeterValues", args.batch, sessions))
        database.stop()


if __name__ == "__main__":
    main()
