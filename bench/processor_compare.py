"""
The processor's cost per message, before and after a change, in one run.

    .venv/bin/python bench/processor_compare.py --before /path/to/old/tree [--rounds 5]

Runs ``bench/processor_batch.py --cpu`` alternately on the ``ocppd`` of the
``--before`` tree (``OCPPD_BENCH_SOURCE``) and of this one, ``--rounds``
times each, and prints each row's best CPU time per message for both and
their ratio: alternating rounds spread a shared machine's load over both.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = os.path.join(ROOT, "bench", "processor_batch.py")


def run(source: str, batches: int) -> dict[str, float]:
    """One ``processor_batch.py --cpu`` run of ``source``: microseconds per message by row."""
    output = subprocess.run(
        [sys.executable, BATCH, "--cpu", "--batches", str(batches)],
        env={**os.environ, "OCPPD_BENCH_SOURCE": source},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = {}
    for line in output.splitlines():
        # "<label> <us/message> <messages/s>", the label possibly with spaces.
        parts = line.rsplit(None, 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            rows[parts[0].strip()] = float(parts[1])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=os.environ.get("OCPPD_BENCH_SOURCE"), required=False)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batches", type=int, default=10)
    args = parser.parse_args()
    if not args.before:
        parser.error("--before (or OCPPD_BENCH_SOURCE) names the tree to compare with")
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    for _ in range(args.rounds):
        for side, source in (("before", args.before), ("after", ROOT)):
            for label, us in run(source, args.batches).items():
                best[side][label] = min(us, best[side].get(label, float("inf")))
    print(f"CPU us per message, best of {args.rounds} alternating rounds (SQLite, batches of 100)")
    print(f"{'message':20} {'before':>8} {'after':>8} {'after/before':>13}")
    for label, before in best["before"].items():
        after = best["after"].get(label, float("nan"))
        print(f"{label:20} {before:8.0f} {after:8.0f} {after / before:13.2f}")


if __name__ == "__main__":
    main()
