"""
The measurements of ``bench/run``: closed-loop throughput and idle-connection
memory against one server, with load-generator processes from ``loadgen.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from servers import (
    BENCH,
    IDLE_PREFIX,
    KEY,
    LOAD_CPU,
    LOAD_PREFIX,
    NAMES,
    Server,
    cpu_seconds,
    rss_kib,
)


class LoadGen:
    """One ``loadgen.py`` process, spoken to in JSON lines."""

    def __init__(self, mode: str, port: int, *args: str) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                os.path.join(BENCH, "loadgen.py"),
                mode,
                f"--port={port}",
                f"--key={KEY}",
                f"--cpu={LOAD_CPU}",
                *args,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, line: str) -> None:
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdin.write(line + "\n")
        stdin.flush()

    def receive(self) -> dict[str, Any]:
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"load generator exited ({self.process.wait()})")
        return dict(json.loads(line))

    def finish(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def add_load_arguments(parser: argparse.ArgumentParser, *, seconds: float) -> None:
    """The options of one server under ``closed_loop``: server, action, connections, seconds."""
    parser.add_argument("--server", choices=list(NAMES), default="ocppd")
    parser.add_argument("--action", choices=["Heartbeat", "MeterValues"], default="Heartbeat")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=seconds)


def load_from_arguments(
    server: Server, args: argparse.Namespace, on_measuring: Callable[[], None]
) -> dict[str, Any]:
    """``closed_loop`` as ``add_load_arguments`` asked, from one load process."""
    return closed_loop(
        server,
        args.action,
        connections=args.connections,
        processes=1,
        warmup=1.0,
        seconds=args.seconds,
        on_measuring=on_measuring,
    )


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def closed_loop(
    server: Server,
    action: str,
    *,
    connections: int,
    processes: int,
    warmup: float,
    seconds: float,
    on_measuring: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """
    Messages/s and latency of ``action`` from ``connections`` chargers, closed
    loop; ``on_measuring`` is called when the measured period starts.
    """
    share = [connections // processes + (i < connections % processes) for i in range(processes)]
    first = 0
    gens = []
    for n in share:
        gens.append(
            LoadGen(
                "closed",
                server.port,
                f"--id-prefix={LOAD_PREFIX}",
                f"--first={first}",
                f"--connections={n}",
                f"--action={action}",
                f"--warmup={warmup}",
                f"--seconds={seconds}",
            )
        )
        first += n
    try:
        ready = [gen.receive() for gen in gens]
        if any(r["failed"] for r in ready):
            raise RuntimeError(f"{server.kind}: chargers failed to connect: {ready}")
        for gen in gens:
            gen.send("go")
        time.sleep(warmup)
        if on_measuring is not None:
            on_measuring()
        server_cpu = cpu_seconds(server.pid)
        time.sleep(seconds)
        server_cpu = cpu_seconds(server.pid) - server_cpu
        results = [gen.receive() for gen in gens]
    finally:
        for gen in gens:
            gen.finish()
    latencies = sorted(x for r in results for x in r["latencies_us"])
    elapsed = max(r["elapsed"] for r in results)
    errors = sum(r["errors"] for r in results)
    return {
        "rate": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) / 1000,
        "p99_ms": percentile(latencies, 0.99) / 1000,
        "errors": errors + sum(r["lost"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
        "load_cpu": sum(r["cpu"] for r in results) / elapsed,
        "server_cpu": server_cpu / seconds,
    }


def idle_memory(server: Server, steps: list[int], *, settle: float = 2.0) -> list[dict[str, Any]]:
    """
    RSS growth of ``server`` per connected, booted charger, at each total in
    ``steps`` (increasing): the chargers connect and boot, then sit idle.
    """
    prefix = IDLE_PREFIX if server.kind.startswith("ocppd") else LOAD_PREFIX
    time.sleep(settle)
    baseline = rss_kib(server.pid)
    gen = LoadGen("idle", server.port, f"--id-prefix={prefix}")
    rows = []
    connected = 0
    try:
        for total in steps:
            gen.send(str(total - connected))
            answer = gen.receive()
            connected = answer["connected"]
            time.sleep(settle)  # let the bus and store finish the boots
            rss = rss_kib(server.pid)
            rows.append(
                {
                    "target": total,
                    "connected": connected,
                    "failed": answer["failed"],
                    "connect_s": answer["seconds"],
                    "baseline_mib": baseline / 1024,
                    "rss_mib": rss / 1024,
                    "kib_per_charger": (rss - baseline) / max(connected, 1),
                }
            )
    finally:
        gen.finish()
    return rows
