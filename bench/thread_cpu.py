"""
CPU per message of each thread of a server under the closed-loop load of ``bench/run``.

    .venv/bin/python bench/thread_cpu.py [--server ocppd] [--action Heartbeat] [--seconds 4] [--gc]

Reads every thread's user and system time from ``/proc`` when the measured period
starts and ends, and divides by the messages answered in it: where a server's
core goes, without a profiler's pauses (py-spy's samples do not say how much of
a thread's time was CPU and how much was waiting on a disk).

``--gc`` also times every garbage collection of the server in the measured period
(``bench/diag/gc_timing.py``): the collector's CPU per message and its
longest collection, by generation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from measure import add_load_arguments, load_from_arguments
from servers import BENCH, Server, prepare_ocppd

TICKS = os.sysconf("SC_CLK_TCK")


def thread_times(pid: int) -> dict[int, tuple[str, int, int]]:
    """Each thread's (name, user ticks, system ticks)."""
    times = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        times[int(tid)] = (name, int(fields[11]), int(fields[12]))
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(parser, seconds=4.0)
    parser.add_argument("--gc", action="store_true", help="time the server's garbage collections")
    args = parser.parse_args()
    if args.gc:
        source = os.environ.get("OCPPD_BENCH_SOURCE", os.path.dirname(BENCH))
        os.environ["OCPPD_BENCH_SOURCE"] = os.path.join(BENCH, "diag") + os.pathsep + source
        gc_out = os.path.join(tempfile.mkdtemp(prefix="ocppd-bench-gc-"), "gc.json")
        os.environ["OCPPD_BENCH_GC_OUT"] = gc_out
    template = prepare_ocppd(args.connections, 0) if args.server.startswith("ocppd") else None
    before: dict[int, tuple[str, int, int]] = {}
    collections = None
    with Server(args.server, template) as server:

        def measuring() -> None:
            before.update(thread_times(server.pid))
            if args.gc:
                os.kill(server.pid, signal.SIGUSR1)

        result = load_from_arguments(server, args, measuring)
        after = thread_times(server.pid)
        if args.gc:
            os.kill(server.pid, signal.SIGUSR2)
            collections = read_when_written(gc_out)
    if template is not None:
        shutil.rmtree(template, ignore_errors=True)
    messages = result["rate"] * args.seconds
    print(
        f"{args.server} {args.action}: {result['rate']:.0f} msgs/s,"
        f" p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms"
    )
    print(f"{'thread':>8} {'name':16} {'user us/msg':>12} {'sys us/msg':>11}")
    for tid, (name, user, system) in sorted(after.items()):
        _, user_before, system_before = before.get(tid, (name, 0, 0))
        user_us = (user - user_before) / TICKS * 1e6 / messages
        system_us = (system - system_before) / TICKS * 1e6 / messages
        if user_us or system_us:
            print(f"{tid:>8} {name:16} {user_us:12.1f} {system_us:11.1f}")
    if collections is not None:
        total = sum(cpu for runs in collections.values() for cpu, _ in runs)
        print(f"garbage collector: {total * 1e6 / messages:.1f} us/msg of CPU")
        for generation, runs in sorted(collections.items()):
            longest = max((cpu for cpu, _ in runs), default=0.0)
            print(
                f"  generation {generation}: {len(runs)} collections,"
                f" longest {longest * 1e3:.1f} ms"
            )
    return 0


def read_when_written(path: str, within: float = 5.0) -> dict[str, list[list[float]]]:
    """The collections ``bench/diag/gc_timing.py`` wrote to ``path`` on SIGUSR2."""
    deadline = time.monotonic() + within
    while True:
        try:
            with open(path) as f:
                return dict(json.load(f))
        except (FileNotFoundError, json.JSONDecodeError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


if __name__ == "__main__":
    sys.exit(main())
