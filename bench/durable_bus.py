"""
What the embedded bus's journal costs: end-to-end throughput of the embedded
default (``twistd ocppd``, memory bus, SQLite) before and after, in one run.

    .venv/bin/python bench/durable_bus.py [--before REV|PATH] [--chargers 50]
        [--seconds 10] [--rounds 2] [--backend memory|amqp] [--store sqlite|postgres]
        [--workloads MeterValues,StartStop]

"Before" is the package at git revision ``REV`` of this repository (default
``main``; extracted with ``git archive``), or a directory holding an ``ocppd``
package (and ``twisted/plugins``), as ``OCPPD_BENCH_SOURCE`` takes it. "After"
is this working tree. Each workload (``MeterValues``, ``StartStop``) runs
``bench/e2e_bus.py`` for both, interleaved, ``--rounds`` times; the best round
of each is shown (a neighbour can only make a server slower), with the ratio
after/before. ``--backend amqp --store postgres`` measures the same through
RabbitMQ and PostgreSQL (a fresh database each run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
WORKLOADS = ("MeterValues", "StartStop")


def extract(revision: str) -> tuple[str, str]:
    """The package at ``revision`` in a temporary directory; (directory, commit)."""
    commit = subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--short", revision],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    target = tempfile.mkdtemp(prefix="ocppd-before-")
    archive = subprocess.Popen(
        ["git", "-C", ROOT, "archive", commit, "ocppd", "twisted"], stdout=subprocess.PIPE
    )
    subprocess.run(["tar", "-x", "-C", target], stdin=archive.stdout, check=True)
    archive.wait()
    return target, commit


def measure(
    source: str,
    workload: str,
    chargers: int,
    seconds: float,
    backend: str = "memory",
    store: str = "sqlite",
) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(BENCH, "e2e_bus.py"),
            f"--chargers={chargers}",
            f"--seconds={seconds}",
        ],
        env={
            **os.environ,
            "OCPPD_BENCH_BACKEND": backend,
            "OCPPD_BENCH_STORE": store,
            "OCPPD_BENCH_SOURCE": source,
            "OCPPD_BENCH_WORKLOAD": workload,
        },
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"e2e_bus.py failed:\n{out.stdout}\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=os.environ.get("OCPPD_BENCH_SOURCE", "main"))
    parser.add_argument("--chargers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backend", choices=("memory", "amqp"), default="memory")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    args = parser.parse_args()
    workloads = args.workloads.split(",")
    if os.path.isdir(args.before):
        before, label = os.path.abspath(args.before), args.before
    else:
        before, commit = extract(args.before)
        label = f"{args.before} ({commit})"
    sources = {"before": before, "after": ROOT}
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for _ in range(args.rounds):
        for workload in workloads:
            for name, source in sources.items():
                result = measure(
                    source, workload, args.chargers, args.seconds, args.backend, args.store
                )
                kept = best.get((workload, name))
                if kept is None or result["rate"] > kept["rate"]:
                    best[workload, name] = result
    print(
        f"{args.backend} bus, {args.store}, {args.chargers} chargers closed loop, "
        f"{args.seconds:.0f} s, best of {args.rounds}; before = {label}, after = this tree"
    )
    print()
    print("| workload | code | answered/s | p50 ms | p99 ms | stored/s | errors |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for workload in workloads:
        for name in sources:
            r = best[workload, name]
            print(
                f"| {workload} | {name} | {r['rate']:.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['stored_rate']:.0f} | {r['errors']} |"
            )
    print()
    for workload in workloads:
        b, a = best[workload, "before"], best[workload, "after"]
        print(
            f"{workload}: after/before answered {a['rate'] / b['rate']:.2f}, "
            f"stored {a['stored_rate'] / b['stored_rate']:.2f}, "
            f"p50 latency {a['p50_ms'] / b['p50_ms']:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
