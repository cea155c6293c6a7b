"""
The targets of issue 16 in one table, from the measurements of one ``bench/run``.

Every row is a ratio or a value beside its reference measured in the same run
(the bare-Autobahn ceiling, or the old code for the end-to-end row), and the
target it is held to. A row whose measurement was not part of the run says so
instead of guessing.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from typing import Any

import durable_bus
from servers import ROOT

#: Rows: (measure, ocppd's value, the reference, ratio, target, met).
Row = tuple[str, str, str, str, str, str]

Throughput = dict[tuple[str, str], dict[str, Any]]
IdleRows = list[tuple[str, dict[str, Any]]]
StormRows = list[tuple[str, int, dict[str, Any]]]


def run_e2e(
    *, backend: str, store: str, chargers: int, seconds: float, source: str = ROOT
) -> dict[str, Any]:
    """One ``e2e_bus.py`` MeterValues run of the daemon's code at ``source``."""
    return durable_bus.measure(source, "MeterValues", chargers, seconds, backend, store)


def baseline_source(baseline: str) -> tuple[str, Callable[[], None]]:
    """
    The directory of the old code: ``baseline`` itself when it is a directory,
    else a git revision of this repository extracted to a temporary directory
    (removed by the returned cleanup).
    """
    if os.path.isdir(baseline):
        return baseline, lambda: None
    target, _ = durable_bus.extract(baseline)
    return target, lambda: shutil.rmtree(target, ignore_errors=True)


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _against_ceiling(throughput: Throughput, action: str, field: str) -> tuple[float, float] | None:
    """ocppd's and the ceiling's ``field`` for ``action``; None unless both were measured."""
    if ("ocppd", action) not in throughput or ("ceiling", action) not in throughput:
        return None
    return throughput["ocppd", action][field], throughput["ceiling", action][field]


def _rate_row(throughput: Throughput, action: str, target: float) -> Row:
    measure = f"{action} rate / bare Autobahn"
    pair = _against_ceiling(throughput, action, "rate")
    if pair is None:
        return (measure, "not measured", "", "", f">= {target:.2f}", "")
    ocppd, ceiling = pair
    ratio = ocppd / ceiling
    return (
        measure,
        f"{ocppd:.0f}/s",
        f"{ceiling:.0f}/s",
        f"{ratio:.2f}",
        f">= {target:.2f}",
        _met(ratio >= target),
    )


def _p99_row(throughput: Throughput, action: str, most_ms: float) -> Row:
    measure = f"{action} p99"
    target = f"<= {most_ms:g} ms and <= 1.5x the ceiling's"
    pair = _against_ceiling(throughput, action, "p99_ms")
    if pair is None:
        return (measure, "not measured", "", "", target, "")
    ocppd, ceiling = pair
    ratio = ocppd / ceiling
    return (
        measure,
        f"{ocppd:.1f} ms",
        f"{ceiling:.1f} ms",
        f"{ratio:.2f}",
        target,
        _met(ocppd <= most_ms and ratio <= 1.5),
    )


def _cpu_row(throughput: Throughput, stored: dict[str, Any] | None) -> Row:
    measure = "CPU per stored MeterValues (ocppd: all threads, measured loop until stored)"
    if stored is None:
        return (measure, "not measured", "", "", "<= 115 us", "")
    reference = ""
    ceiling = throughput.get(("ceiling", "MeterValues"))
    if ceiling is not None:
        reference = f"{ceiling['server_cpu'] * 1e6 / ceiling['rate']:.0f} us (answer only)"
    ocppd = stored["server_us_per_stored"]
    return (measure, f"{ocppd:.0f} us", reference, "", "<= 115 us", _met(ocppd <= 115))


def _e2e_row(new: dict[str, Any] | None, old: dict[str, Any] | None) -> Row:
    measure = "stored MeterValues/s, RabbitMQ + PostgreSQL, vs the old code"
    if new is None or old is None:
        return (measure, "not measured (--baseline)", "", "", ">= 4x", "")
    ratio = new["stored_rate"] / old["stored_rate"]
    return (
        measure,
        f"{new['stored_rate']:.0f}/s",
        f"{old['stored_rate']:.0f}/s (old)",
        f"{ratio:.2f}",
        ">= 4x",
        _met(ratio >= 4),
    )


def _storm_row(storm: StormRows, chargers: int) -> Row:
    measure = "reconnect storm: all booted (connect, Basic auth, boot at once)"
    target = "<= 60 s, none refused"
    at_once = {kind: r for kind, parallel, r in storm if parallel == 0}
    if "ocppd" not in at_once:
        return (measure, "not measured", "", "", target, "")
    r = at_once["ocppd"]
    refused = sum(r["refusals"].values()) + sum(r["failures"].values())
    reference = ""
    if "ceiling" in at_once:
        reference = f"{at_once['ceiling']['t100']:.1f} s"
    return (
        measure.replace("all booted", f"{chargers:,} booted"),
        f"{r['t100']:.1f} s, {refused} refused or failed",
        reference,
        "",
        target,
        _met(r["booted"] == chargers and r["t100"] <= 60 and refused == 0),
    )


def _idle_row(idle: IdleRows) -> Row:
    by_kind = {kind: row for kind, row in idle if row["target"] == 10_000}
    measure = "idle memory per connected charger at 10,000"
    if "ocppd" not in by_kind:
        return (measure, "not measured (--idle ...,10000)", "", "", "<= 12 KiB", "")
    ocppd = by_kind["ocppd"]["kib_per_charger"]
    reference = ""
    if "ceiling" in by_kind:
        reference = f"{by_kind['ceiling']['kib_per_charger']:.1f} KiB"
    return (measure, f"{ocppd:.1f} KiB", reference, "", "<= 12 KiB", _met(ocppd <= 12))


def rows(
    throughput: Throughput,
    idle: IdleRows,
    storm: StormRows,
    storm_chargers: int,
    stored: dict[str, Any] | None,
    e2e_new: dict[str, Any] | None,
    e2e_old: dict[str, Any] | None,
) -> list[Row]:
    """The issue's table, row by row, in its order."""
    return [
        _rate_row(throughput, "Heartbeat", 0.70),
        _rate_row(throughput, "MeterValues", 0.50),
        _p99_row(throughput, "Heartbeat", 8.0),
        _p99_row(throughput, "MeterValues", 10.0),
        _cpu_row(throughput, stored),
        _e2e_row(e2e_new, e2e_old),
        _storm_row(storm, storm_chargers),
        _idle_row(idle),
    ]


def print_table(table: list[Row]) -> None:
    print("\n## Issue 16 targets (every reference measured in this run)\n")
    print("| measure | ocppd | reference | ratio | target | met |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for row in table:
        print("| " + " | ".join(row) + " |")
