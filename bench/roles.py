"""
The processor in a process of its own (``[ocppd] role``): MeterValues end to
end through RabbitMQ and PostgreSQL, answered and stored, for

- ``all``: one process of this tree on CPU 0 (as ``bench/e2e_bus.py``);
- ``old``: the same with the code of ``--before`` (default 0f6abee, before roles);
- ``split-1``: an ``edge`` and a ``processor`` process of this tree, both on CPU 0;
- ``split-2``: the edge on CPU 0 and the processor on CPU 1.

    .venv/bin/python bench/roles.py [--before REV|PATH] [--rounds 3] [--chargers 50]
        [--seconds 10] [--modes old,all,split-1,split-2]

The load generator (this process's child, ``bench/e2e_bus.py``) is on CPU 1 in
every mode, so ``split-2``'s processor shares CPU 1 with it; RabbitMQ and
PostgreSQL are not pinned. Each round runs every mode once, back to back, in
an order rotated from round to round, with the 1-minute load average before
each run; on a machine shared with other work, compare the modes within a
round, and trust only what held in every round.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from typing import Any

from durable_bus import extract  # bench/ is on sys.path: run as bench/<script>.py

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
#: Each mode: (which code, OCPPD_BENCH_SPLIT).
MODES = {
    "old": ("before", ""),
    "all": ("after", ""),
    "split-1": ("after", "one-core"),
    "split-2": ("after", "two-cores"),
}


def measure(source: str, split: str, chargers: int, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            os.path.join(BENCH, "e2e_bus.py"),
            f"--chargers={chargers}",
            f"--seconds={seconds}",
        ],
        env={
            **os.environ,
            "OCPPD_BENCH_BACKEND": "amqp",
            "OCPPD_BENCH_STORE": "postgres",
            "OCPPD_BENCH_SOURCE": source,
            "OCPPD_BENCH_WORKLOAD": "MeterValues",
            "OCPPD_BENCH_SPLIT": split,
        },
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"e2e_bus.py failed:\n{out.stdout}\n{out.stderr}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=os.environ.get("OCPPD_BENCH_SOURCE", "0f6abee"))
    parser.add_argument("--chargers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args()
    modes = args.modes.split(",")
    if os.path.isdir(args.before):
        before, label = os.path.abspath(args.before), args.before
    else:
        before, commit = extract(args.before)
        label = f"{args.before} ({commit})"
    sources = {"before": before, "after": ROOT}
    rounds: list[dict[str, dict[str, Any]]] = []
    print(
        f"MeterValues (4 samples) through RabbitMQ + PostgreSQL, {args.chargers} chargers "
        f"closed loop, {args.seconds:.0f} s; old = {label}; load generator on CPU 1"
    )
    print()
    print(
        "| round | mode | load avg | answered/s | p50 ms | p99 ms | stored/s | µs CPU/stored "
        "| of which processor / edge |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for index in range(args.rounds):
        results: dict[str, dict[str, Any]] = {}
        shift = index % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            code, split = MODES[mode]
            load = os.getloadavg()[0]
            result = measure(sources[code], split, args.chargers, args.seconds)
            result["load"] = load
            results[mode] = result
            shares = result.get("process_us_per_stored", [])
            split_text = " / ".join(f"{us:.0f}" for us in shares) if len(shares) == 2 else ""
            print(
                f"| {index + 1} | {mode} | {load:.2f} | {result['rate']:.0f} | "
                f"{result['p50_ms']:.2f} | {result['p99_ms']:.2f} | "
                f"{result['stored_rate']:.0f} | {result['server_us_per_stored']:.0f} | "
                f"{split_text} |",
                flush=True,
            )
        rounds.append(results)
    print()
    # Each mode against one process of this tree, and this tree against the old code.
    pairs = [(mode, "all") for mode in modes if mode not in ("all", "old")]
    if "old" in modes and "all" in modes:
        pairs.append(("all", "old"))
    for mode, base in pairs:
        if mode not in modes or base not in modes:
            continue
        ratios = {
            key: [r[mode][key] / r[base][key] for r in rounds]
            for key in ("rate", "stored_rate", "p99_ms", "server_us_per_stored")
        }
        text = ", ".join(
            f"{name} {min(values):.2f}-{max(values):.2f}"
            for name, values in (
                ("answered", ratios["rate"]),
                ("stored", ratios["stored_rate"]),
                ("p99", ratios["p99_ms"]),
                ("CPU/stored", ratios["server_us_per_stored"]),
            )
        )
        print(f"{mode} / {base} in each round: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
