"""
Instructions per MeterValues applied by the processor (SQLite), for callgrind.

    valgrind --tool=callgrind python bench/mv_instructions.py --batches 0
    valgrind --tool=callgrind python bench/mv_instructions.py --batches 10

The difference of the two totals over 10 x 100 is the cost per message
(building the envelopes included, the same on both sides of a change).
Three batches warm up first.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from processor_batch import envelopes, setup
from scratch import scratch_database
from twisted.internet.task import Clock

from ocppd.consumers.processor import OcppProcessor
from ocppd.store.database import Database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    with scratch_database("sqlite") as (engine, _):
        database = Database(engine)
        sessions = setup(database)
        processor = OcppProcessor(None, database, clock=Clock())  # type: ignore[arg-type]
        for _ in range(3 + args.batches):
            database.run_sync(processor.apply_batch, envelopes("MeterValues", args.batch, sessions))
        database.stop()


if __name__ == "__main__":
    main()
