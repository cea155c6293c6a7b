"""
All benchmarks of issue 7 in one run (``bench/run``); see ``bench/README.md``.

1. Closed-loop throughput and latency of Heartbeat and MeterValues, 100
   chargers, for ocppd, the bare-Autobahn ceiling and the ``ocpp``-package peer,
   and for ocppd with its processor off (its request path alone).
2. Memory per idle, booted charger at 1,000 and 5,000 connections, same three.
3. Stored MeterValues per second through the embedded bus and RabbitMQ
   (``e2e_bus.py``).
4. A reconnect storm (``storm.py``, only with ``--only storm``: it takes
   minutes): 10,000 chargers connect with Basic auth and boot at once.
5. What metrics cost (``metrics_overhead.py``, issue 19): Heartbeat with
   ``[metrics] listen`` off and on, alternating.

Each server runs alone, pinned to CPU 0, freshly started for each measurement;
the load generators are pinned to CPU 1 and report their own CPU use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import metrics_overhead
import targets
from measure import closed_loop, idle_memory
from servers import (
    BENCH,
    NAMES,
    ROOT,
    Server,
    prepare_ocppd,
    raise_fd_limit,
)
from storm import storm_table

# "ocppd-noproc" (the request path alone, its processor not consuming) shows
# how much of ocppd's time its processor takes on the same core;
# "ocppd-loghb" (Heartbeat only) is ocppd with [ocpp] log_heartbeats = true.
KINDS = ("ocppd", "ceiling", "peer", "ocppd-noproc", "ocppd-loghb")
#: Kinds measured for one action only: the setting changes nothing else.
ONLY_ACTION = {"ocppd-loghb": "Heartbeat"}
ACTIONS = ("Heartbeat", "MeterValues")


def steady_warmup(args: argparse.Namespace, kind: str, action: str) -> float:
    """
    The warm-up of a throughput measurement. ocppd answers a MeterValues once
    its bus has it, and stores it after: until its processor's backlog reaches
    ``[bus] flow_limit`` (5,000 messages) and flow control holds the answers
    back, it answers faster than it can store, a rate it cannot keep. So its
    MeterValues are measured after ``--steady-warmup`` seconds, when answering
    and storing have settled to the same rate.
    """
    if kind == "ocppd" and action == "MeterValues":
        return max(args.warmup, args.steady_warmup)
    return args.warmup


def throughput_table(args: argparse.Namespace, template: str) -> targets.Throughput:
    results: dict[tuple[str, str], dict[str, Any]] = {}
    kinds = args.kinds
    # Interleaved rounds, best kept: on a shared machine a neighbour's burst
    # only ever makes a server look slower.
    for _ in range(args.rounds):
        for action in ACTIONS:
            for kind in kinds:
                if ONLY_ACTION.get(kind, action) != action:
                    continue
                with Server(kind, template) as server:
                    result = closed_loop(
                        server,
                        action,
                        connections=args.connections,
                        processes=args.processes,
                        warmup=steady_warmup(args, kind, action),
                        seconds=args.seconds,
                    )
                best = results.get((kind, action))
                if best is not None:
                    # Errors of every round count, whichever round is shown.
                    result["errors"] += best["errors"]
                    best["errors"] = result["errors"]
                if best is None or result["rate"] > best["rate"]:
                    results[kind, action] = result
    print(
        f"\n## Throughput: {args.connections} chargers, closed loop, one outstanding call each, "
        f"{args.seconds:g} s after {args.warmup:g} s warm-up (ocppd's MeterValues: "
        f"{args.steady_warmup:g} s), best of {args.rounds} rounds\n"
    )
    print("| server | action | msgs/s | p50 ms | p99 ms | errors | server CPU | load CPU |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for action in ACTIONS:
        for kind in kinds:
            if (kind, action) not in results:
                continue
            r = results[kind, action]
            print(
                f"| {NAMES[kind]} | {action} | {r['rate']:.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['errors']} | {r['server_cpu']:.0%} | {r['load_cpu']:.0%} |"
            )
            if r["first_error"]:
                print(f"|   first error: {r['first_error'][:80]} |")
    print()
    for action in ACTIONS:
        if not {"ocppd", "ceiling", "peer"} <= set(kinds):
            break
        ocppd = results["ocppd", action]["rate"]
        ceiling = results["ceiling", action]["rate"]
        peer = results["peer", action]["rate"]
        print(
            f"{action}: ocppd/ceiling {ocppd / ceiling:.2f}, ocppd/peer {ocppd / peer:.2f} "
            f"(msgs/s); p50 ocppd/peer "
            f"{results['ocppd', action]['p50_ms'] / results['peer', action]['p50_ms']:.2f}"
        )
        if ("ocppd-noproc", action) in results:
            alone = results["ocppd-noproc", action]["rate"]
            print(
                f"{action}, request path alone (processor off): ocppd/ceiling "
                f"{alone / ceiling:.2f}, ocppd/peer {alone / peer:.2f}; the processor "
                f"costs ocppd {1e6 / ocppd - 1e6 / alone:.0f} us of the core per message"
            )
        if ("ocppd-loghb", action) in results:
            logged = results["ocppd-loghb", action]["rate"]
            print(
                f"{action}, Heartbeats logged ([ocpp] log_heartbeats = true): "
                f"ocppd/ceiling {logged / ceiling:.2f}, ocppd/peer {logged / peer:.2f}"
            )
    busiest = max(r["load_cpu"] for r in results.values())
    print(
        f"Load generator: {args.processes} process(es) on CPU 1, at most {busiest:.0%} of "
        "that core busy: "
        + ("not the bottleneck." if busiest < 0.9 else "SATURATED, raise --processes.")
    )
    return results


def idle_table(args: argparse.Namespace, template: str) -> targets.IdleRows:
    rows = []
    # Idle chargers send nothing to store: the ocppd variants would repeat ocppd.
    for kind in (kind for kind in args.kinds if kind not in ("ocppd-noproc", "ocppd-loghb")):
        with Server(kind, template) as server:
            for row in idle_memory(server, args.idle):
                rows.append((kind, row))
    print("\n## Idle connections: RSS growth per connected, booted charger\n")
    print("| server | chargers | connected | failed | connect s | RSS MiB (base) | KiB/charger |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, r in rows:
        print(
            f"| {NAMES[kind]} | {r['target']} | {r['connected']} | {r['failed']} | "
            f"{r['connect_s']:.1f} | {r['rss_mib']:.0f} ({r['baseline_mib']:.0f}) | "
            f"{r['kib_per_charger']:.1f} |"
        )
    return rows


def e2e_table(args: argparse.Namespace) -> None:
    print("\n## End to end: stored MeterValues through the bus (bench/e2e_bus.py)\n")
    sys.stdout.flush()
    subprocess.run(
        [
            sys.executable,
            os.path.join(BENCH, "e2e_bus.py"),
            f"--chargers={args.e2e_chargers}",
            f"--seconds={args.e2e_seconds}",
        ],
        check=True,
        cwd=ROOT,
    )


def stored_cost(args: argparse.Namespace) -> dict[str, Any]:
    """ocppd's CPU per stored MeterValues on the embedded default, ``--connections`` chargers."""
    return targets.run_e2e(
        backend="memory", store="sqlite", chargers=args.connections, seconds=args.seconds
    )


def e2e_versus_baseline(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """
    Stored MeterValues/s through RabbitMQ and PostgreSQL: this tree, then ``--baseline``.

    With ``--connections`` chargers (100), as every row of the issue's targets table
    says; with the 10 of ``--e2e-chargers`` both codes wait on the broker's confirms
    far more than they work, and the ratio measures latency, not what is stored.
    """
    source, cleanup = targets.baseline_source(args.baseline)
    try:
        runs = {
            name: targets.run_e2e(
                backend="amqp",
                store="postgres",
                chargers=args.connections,
                seconds=max(args.e2e_seconds, 5.0),
                source=where,
            )
            for name, where in (("new", ROOT), ("old", source))
        }
    finally:
        cleanup()
    print(f"\n## End to end through RabbitMQ + PostgreSQL, this tree and {args.baseline}\n")
    print("| code | answered/s | p50 ms | p99 ms | stored/s | errors | server us/stored |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in runs.items():
        print(
            f"| {name} | {r['rate']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
            f"{r['stored_rate']:.0f} | {r['errors']} | {r['server_us_per_stored']:.0f} |"
        )
    return runs["new"], runs["old"]


def main() -> int:
    parser = argparse.ArgumentParser(description="ocppd benchmark suite (issue 7)")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--processes", type=int, default=1, help="load-generator processes")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2, help="throughput rounds (best kept)")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--steady-warmup",
        type=float,
        default=10.0,
        help="ocppd's MeterValues warm-up: until answers wait for the processor (steady_warmup)",
    )
    parser.add_argument(
        "--idle", type=lambda s: [int(x) for x in s.split(",")], default=[1000, 5000, 10_000]
    )
    parser.add_argument("--e2e-chargers", type=int, default=10)
    parser.add_argument("--e2e-seconds", type=float, default=2.0)
    parser.add_argument(
        "--baseline",
        default=os.environ.get("OCPPD_BENCH_BASELINE"),
        help="the old code for the end-to-end row of the targets: a git revision of this "
        "repository or a directory holding its ocppd/ (default $OCPPD_BENCH_BASELINE)",
    )
    parser.add_argument("--storm", type=int, default=10_000, help="chargers of the storm")
    parser.add_argument(
        "--storm-parallel",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[0],
        help="storm handshakes in flight, comma-separated; 0 = all at once",
    )
    parser.add_argument(
        "--only",
        choices=["throughput", "idle", "e2e", "storm", "targets", "metrics"],
        action="append",
        default=None,
        help="repeatable (default: all); 'targets' adds the measurements that only the "
        "targets table uses (CPU per stored message, RabbitMQ + PostgreSQL vs --baseline)",
    )
    parser.add_argument(
        "--kinds",
        type=lambda s: s.split(","),
        default=list(KINDS),
        help="servers, comma-separated: ocppd, ceiling, peer, ocppd-noproc (processor off), "
        "ocppd-loghb (Heartbeats logged)",
    )
    parser.add_argument(
        "--no-nice", dest="nice", action="store_false", help="do not raise the priority (root)"
    )
    metrics_overhead.add_arguments(parser)
    args = parser.parse_args()
    only = set(args.only or ["throughput", "idle", "e2e", "storm", "targets", "metrics"])
    if args.nice and os.geteuid() == 0:
        # Children inherit it: the servers and load generators then win the
        # CPU over whatever else runs on the machine (a shared box is noisy).
        os.nice(-10)
    limit = raise_fd_limit()
    # Each connection is a socket in the server and one in the load generator.
    most = max([*args.idle, args.storm if "storm" in only else 0])
    if most + 100 > limit:
        print(f"open-file limit {limit} is too low for {most} connections")
        return 1
    started = time.monotonic()
    print(
        f"ocppd benchmark suite: {os.cpu_count()} CPUs, servers on CPU 0, load on CPU 1, "
        f"open-file limit {limit}"
    )
    template = prepare_ocppd(args.connections, most) if only - {"e2e", "targets"} else ""
    throughput: targets.Throughput = {}
    idle: targets.IdleRows = []
    storm: targets.StormRows = []
    try:
        if "throughput" in only:
            throughput = throughput_table(args, template)
        if "idle" in only:
            idle = idle_table(args, template)
        if "storm" in only:
            storm = storm_table(
                args.kinds, template, args.storm, args.storm_parallel, timeout=120.0
            )
        if "metrics" in only:
            metrics_overhead.metrics_table(args, template)
    finally:
        if template:
            shutil.rmtree(template, ignore_errors=True)
    if "e2e" in only:
        e2e_table(args)
    if "targets" in only:
        stored = stored_cost(args)
        new, old = e2e_versus_baseline(args) if args.baseline else (None, None)
        targets.print_table(targets.rows(throughput, idle, storm, args.storm, stored, new, old))
    print(f"\nwhole run: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
