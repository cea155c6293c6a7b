"""
What Prometheus metrics cost the request path (issue 19): Heartbeat
throughput of ocppd with metrics off and on (``[metrics] listen`` set, and
scraped every ``--scrape-interval`` seconds while measured, 15 times as often
as Prometheus' default), in the same run.

The two alternate in ABBA order (off, on, on, off, ...), each freshly
started, so that a drift of the machine (a neighbour starting, thermal)
weighs on both alike; each pair's ratio is printed, and the median of the
ratios is the result, held to the issue's target: metrics on moves the
Heartbeat rate by no more than 3 %.

On a machine others share, a neighbour's burst during one run of a pair
moves its ratio by far more than 3 %. ``--side-by-side`` runs each pair's
two servers at the same time instead, both pinned to the server CPU and
each loaded by its own load generator on the load CPU: the scheduler gives
the two the same share of the core, whatever the neighbours take, so the
ratio of their rates is the ratio of their costs per message.

    bench/run --only metrics [--metrics-rounds 8]
    .venv/bin/python bench/metrics_overhead.py --rounds 8 [--side-by-side]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import urllib.request
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from measure import closed_loop
from servers import Server, prepare_ocppd

#: The issue's bound on the Heartbeat rate's change with metrics on.
TARGET = 0.03


class Scraper:
    """GETs ``/metrics`` every ``interval`` seconds in a thread, as Prometheus would."""

    def __init__(self, port: int, interval: float) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.interval = interval
        self.scrapes = 0
        self.size = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with urllib.request.urlopen(self.url, timeout=5) as response:
                self.size = len(response.read())
            self.scrapes += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def load() -> str:
    """The machine's load averages (``uptime``), to read the run by."""
    out = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    return out.split("load average:")[-1].strip() if "load average" in out else out


def _run(
    server: Server, *, connections: int, warmup: float, seconds: float, scrape: float
) -> dict[str, Any]:
    """One closed-loop Heartbeat run against ``server``, scraped when its metrics are on."""
    scraper = None
    if server.metrics_port is not None and scrape > 0:
        scraper = Scraper(server.metrics_port, scrape)
    result = closed_loop(
        server,
        "Heartbeat",
        connections=connections,
        processes=1,
        warmup=warmup,
        seconds=seconds,
        on_measuring=scraper.start if scraper is not None else None,
    )
    if scraper is not None:
        scraper.stop()
    result["scrapes"] = scraper.scrapes if scraper is not None else 0
    result["scrape_bytes"] = scraper.size if scraper is not None else 0
    return result


def measure(
    template: str,
    *,
    rounds: int,
    connections: int,
    warmup: float,
    seconds: float,
    scrape: float,
    side_by_side: bool = False,
) -> list[dict[str, Any]]:
    """``rounds`` pairs of (off, on) Heartbeat runs in ABBA order; the table's rows."""
    options: dict[str, Any] = {
        "connections": connections,
        "warmup": warmup,
        "seconds": seconds,
        "scrape": scrape,
    }
    rows = []
    for n in range(rounds):
        order = ("ocppd", "ocppd-metrics") if n % 2 == 0 else ("ocppd-metrics", "ocppd")
        pair: dict[str, Any] = {}
        if side_by_side:
            servers = [Server(kind, template) for kind in order]
            try:

                def run(server: Server, into: dict[str, Any] = pair) -> None:
                    into[server.kind] = _run(server, **options)

                threads = [threading.Thread(target=run, args=(server,)) for server in servers]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
            finally:
                for server in servers:
                    server.stop()
        else:
            for kind in order:
                with Server(kind, template) as server:
                    pair[kind] = _run(server, **options)
        rows.append(pair)
    return rows


def print_table(rows: list[dict[str, Any]], *, before: str, after: str, args: Any) -> float:
    """The Markdown table and the verdict; returns the median on/off ratio."""
    how = "at the same time, sharing the server CPU" if args.side_by_side else "in ABBA order"
    scraped = (
        f"/metrics scraped every {args.scrape_interval:g} s while on"
        if args.scrape_interval > 0
        else "/metrics not scraped"
    )
    print(
        f"\n## Metrics overhead: Heartbeat, {args.connections} chargers, closed loop, "
        f"{args.seconds:g} s after {args.warmup:g} s warm-up, {len(rows)} pairs {how}, {scraped}\n"
    )
    print(f"load average (1, 5, 15 min) before: {before}; after: {after}\n")
    print(
        "| pair | off msgs/s | on msgs/s | on/off | off us CPU/msg | on us CPU/msg | "
        "scrapes | errors |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    ratios = []
    for n, pair in enumerate(rows, 1):
        off, on = pair["ocppd"], pair["ocppd-metrics"]
        ratio = on["rate"] / off["rate"]
        ratios.append(ratio)
        print(
            f"| {n} | {off['rate']:.0f} | {on['rate']:.0f} | {ratio:.3f} | "
            f"{off['server_cpu'] * 1e6 / off['rate']:.0f} | "
            f"{on['server_cpu'] * 1e6 / on['rate']:.0f} | {on['scrapes']} | "
            f"{off['errors'] + on['errors']} |"
        )
    median = statistics.median(ratios)
    spread = max(ratios) - min(ratios)
    change = 1 - median
    print(
        f"\nmedian on/off {median:.3f} (pairs {min(ratios):.3f}-{max(ratios):.3f}, spread "
        f"{spread:.3f}): metrics on moves the Heartbeat rate by {change:+.1%} "
        f"(target: no more than {TARGET:.0%}: {'met' if abs(change) <= TARGET else 'NOT met'}); "
        f"one scrape is {rows[-1]['ocppd-metrics'].get('scrape_bytes', 0)} bytes"
    )
    return median


def metrics_table(args: Any, template: str) -> float:
    before = load()
    rows = measure(
        template,
        rounds=args.metrics_rounds,
        connections=args.connections,
        warmup=args.warmup,
        seconds=args.seconds,
        scrape=args.scrape_interval,
        side_by_side=args.side_by_side,
    )
    return print_table(rows, before=before, after=load(), args=args)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-rounds", type=int, default=8, help="off/on pairs")
    parser.add_argument("--scrape-interval", type=float, default=1.0)
    parser.add_argument(
        "--side-by-side", action="store_true", help="each pair's servers at the same time"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", dest="metrics_rounds", type=int, default=8)
    parser.add_argument(
        "--scrape-interval", type=float, default=1.0, help="seconds; 0: metrics on, not scraped"
    )
    parser.add_argument(
        "--side-by-side", action="store_true", help="each pair's servers at the same time"
    )
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument(
        "--no-nice", dest="nice", action="store_false", help="do not raise the priority (root)"
    )
    args = parser.parse_args()
    if args.nice and os.geteuid() == 0:
        # As bench/run does: the servers and load generator (children) win
        # the CPU over whatever else runs on a shared machine.
        os.nice(-10)
    template = prepare_ocppd(args.connections, 0)
    try:
        metrics_table(args, template)
    finally:
        import shutil

        shutil.rmtree(template, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
