"""
A reconnect storm (issue 16): N chargers connect at once, each with HTTP Basic
auth, and boot (BootNotification), as after a node's restart.

    .venv/bin/python bench/storm.py [--chargers 10000] [--parallel 0,256] [--kinds ocppd,ceiling]

For each server kind and each ``--parallel`` (handshakes in flight at once; 0
means every charger at once), a fresh server pinned to CPU 0 takes the storm
from one load-generator process on CPU 1 (``loadgen.py storm``) and the table
shows: the seconds until half, 99 % and all chargers had their
BootNotification answered, the server's CPU seconds over that period (and
until it settled: the processor stores the boots after the answers), its peak
RSS (VmHWM), the load generator's CPU, and the chargers refused (by HTTP
status) or failed otherwise. The bare-Autobahn ceiling answers the boot with a
canned CALLRESULT and checks no key: the cost of the sockets and handshakes
alone, in the same run.

Both processes raise their open-file limit to the hard limit; ocppd is
started with its default listener options (only the port and interface
differ), so the accept backlog is the product's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# bench/profile.py, found first on the path (ahead of the standard library's profile).
from profile import summarize

from measure import LoadGen, percentile
from servers import (
    BIN,
    IDLE_PREFIX,
    LOAD_PREFIX,
    NAMES,
    Server,
    cpu_seconds,
    prepare_ocppd,
    raise_fd_limit,
    rss_kib,
)

#: Kinds a storm is measured for.
STORM_KINDS = ("ocppd", "ceiling")


def storm(
    server: Server,
    chargers: int,
    parallel: int,
    *,
    timeout: float,
    settle: float = 3.0,
    profile: str | None = None,
) -> dict[str, Any]:
    """
    One storm of ``chargers`` against ``server``, ``parallel`` handshakes in
    flight; with ``profile`` (a file), py-spy's raw stacks of the server
    from the storm's start until it settled.
    """
    prefix = IDLE_PREFIX if server.kind.startswith("ocppd") else LOAD_PREFIX
    gen = LoadGen("storm", server.port, f"--id-prefix={prefix}", f"--timeout={timeout}")
    spy = None
    try:
        time.sleep(1.0)  # the load generator imports and starts its loop
        if profile is not None:
            spy = subprocess.Popen(
                [
                    os.path.join(BIN, "py-spy"),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--rate",
                    "200",
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    profile,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attaches
        cpu_before = cpu_seconds(server.pid)
        gen.send(f"{chargers} {parallel}")
        result = gen.receive()
        cpu_booted = cpu_seconds(server.pid) - cpu_before
        # Sample while settling: the processor stores the boots after the answers.
        time.sleep(settle)
        cpu_settled = cpu_seconds(server.pid) - cpu_before
        peak = rss_kib(server.pid, "VmHWM")
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            spy.wait()
        gen.send("")
    finally:
        gen.finish()
        if spy is not None and spy.poll() is None:
            spy.kill()
    booted = sorted(result["booted_at"])
    return {
        "booted": len(booted),
        "t50": percentile(booted, 0.50),
        "t99": percentile(booted, 0.99),
        "t100": booted[-1] if booted else float("nan"),
        "cpu_booted": cpu_booted,
        "cpu_settled": cpu_settled,
        "peak_mib": peak / 1024,
        "load_cpu": result["cpu"],
        "refusals": result["refusals"],
        "failures": result["failures"],
    }


def storm_table(
    kinds: list[str],
    template: str,
    chargers: int,
    parallels: list[int],
    timeout: float,
    listen_options: str = "",
    settings: tuple[str, ...] = (),
    profile: str | None = None,
) -> list[tuple[str, int, dict[str, Any]]]:
    """
    Print the storm table for every kind and parallelism (``template``:
    ``prepare_ocppd``) and return its rows: (kind, in flight, result).
    """
    rows = []
    for parallel in parallels:
        for kind in kinds:
            if kind not in STORM_KINDS:
                continue
            with Server(kind, template, listen_options=listen_options, settings=settings) as server:
                spied = None
                if profile is not None:
                    spied = os.path.join(profile, f"storm-{kind}-{chargers}-{parallel}.txt")
                result = storm(server, chargers, parallel, timeout=timeout, profile=spied)
                rows.append((kind, parallel, result))
                if spied is not None:
                    print(f"\n### py-spy of {NAMES[kind]}, {parallel or 'all'} in flight")
                    summarize(spied, 30)
    print(
        f"\n## Reconnect storm: {chargers} chargers connect (Basic auth) and boot, "
        "one load process\n"
    )
    print(
        "| server | in flight | booted | t50 s | t99 s | all booted s | server CPU s "
        "(settled) | peak RSS MiB | load CPU s | refused | failed |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, parallel, r in rows:
        refused = sum(r["refusals"].values())
        failed = sum(r["failures"].values())
        print(
            f"| {NAMES[kind]} | {parallel or 'all'} | {r['booted']} | {r['t50']:.1f} | "
            f"{r['t99']:.1f} | {r['t100']:.1f} | {r['cpu_booted']:.1f} ({r['cpu_settled']:.1f}) | "
            f"{r['peak_mib']:.0f} | {r['load_cpu']:.1f} | {refused} | {failed} |"
        )
    for kind, parallel, r in rows:
        for what in ("refusals", "failures"):
            if r[what]:
                print(f"{NAMES[kind]}, {parallel or 'all'} in flight, {what}: {r[what]}")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description="reconnect storm benchmark (issue 16)")
    parser.add_argument("--chargers", type=int, default=10_000)
    parser.add_argument(
        "--parallel",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[0, 256],
        help="handshakes in flight, comma-separated; 0 = all at once",
    )
    parser.add_argument("--kinds", type=lambda s: s.split(","), default=list(STORM_KINDS))
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per charger")
    parser.add_argument(
        "--listen-options",
        default="",
        help="appended to ocppd's [ocpp] listen, e.g. :backlog=4096 (default: none, the product's)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.OPTION=VALUE",
        help="a setting of ocppd's for the storm, e.g. ocpp.open_handshake_timeout=30 (repeatable)",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="record each server with py-spy (all threads) during its storm; raw stacks in DIR",
    )
    args = parser.parse_args()
    limit = raise_fd_limit()
    if args.chargers + 100 > limit:
        print(f"open-file limit {limit} is too low for {args.chargers} connections")
        return 1
    template = prepare_ocppd(0, args.chargers)
    try:
        storm_table(
            args.kinds,
            template,
            args.chargers,
            args.parallel,
            args.timeout,
            args.listen_options,
            tuple(args.set),
            args.profile,
        )
    finally:
        shutil.rmtree(template, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
