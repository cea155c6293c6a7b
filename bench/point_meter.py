"""
What a point page's chart history costs (issue 18, item 4):
``meter_history.point_meter_history`` (each connector's energy register and
power over a period, thinned in the database to 300 points per connector
and measurand) for periods of an hour to 31 days, on a fresh database of
chargers sending one MeterValues a minute on two connectors for 31 days,
against the reference measured in the same run: the charger's newest 300
samples, a plain walk of the ``(charge_point_id, timestamp)`` index.

    .venv/bin/python bench/point_meter.py [--chargers 4] [--every 60] [--url postgresql://...|sqlite]

Prints a markdown table of milliseconds per history (median of 7) and each
ratio to the reference. On PostgreSQL the tables live in a fresh schema,
dropped at the end; ``sqlite`` uses a temporary file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import sqlalchemy as sa  # noqa: E402
from scratch import analyze, median_ms, scratch_database  # noqa: E402  (bench/ is on sys.path)

from ocppd.measurands import ENERGY_REGISTER, POWER_IMPORT  # noqa: E402
from ocppd.store import chargers as store_chargers  # noqa: E402
from ocppd.store.meter_history import point_meter_history  # noqa: E402
from ocppd.store.tables import meter_values  # noqa: E402

END = datetime(2026, 2, 1, tzinfo=UTC)
DAYS = 31
ROUNDS = 7
POINTS = 300


def seed(conn: Any, chargers: int, every: int) -> int:
    """Every charger: two connectors, energy and power every ``every`` seconds for 31 days."""
    for n in range(chargers):
        store_chargers.add_charge_point(conn, f"CP-{n}", None, now=END)
    start = END - timedelta(days=DAYS)
    steps = DAYS * 86400 // every
    total = 0
    for n in range(chargers):
        rows = []
        for step in range(steps):
            at = start + timedelta(seconds=step * every)
            for connector in (1, 2):
                for measurand, value, unit in (
                    (ENERGY_REGISTER, str(10_000 * connector + step), "Wh"),
                    (POWER_IMPORT, str(7000 + step % 100), "W"),
                ):
                    rows.append(
                        {
                            "charge_point_id": f"CP-{n}",
                            "connector_id": connector,
                            "transaction_id": 0,
                            "timestamp": at,
                            "value": value,
                            "value_wh": int(value) if unit == "Wh" else None,
                            "measurand": measurand,
                            "phase": "",
                            "unit": unit,
                            "context": "Sample.Periodic",
                            "location": "Outlet",
                            "format": "Raw",
                            "received_at": at,
                        }
                    )
            if len(rows) >= 20_000:
                conn.execute(meter_values.insert(), rows)
                total += len(rows)
                rows = []
        if rows:
            conn.execute(meter_values.insert(), rows)
            total += len(rows)
    return total


def newest_samples(conn: Any) -> Any:
    mv = meter_values.c
    return conn.execute(
        sa.select(mv.timestamp, mv.measurand, mv.value)
        .where(mv.charge_point_id == "CP-0")
        .order_by(mv.timestamp.desc())
        .limit(POINTS)
    ).all()


def history(hours: int) -> Callable[[Any], Any]:
    def call(conn: Any) -> Any:
        found = point_meter_history(
            conn, "CP-0", since=END - timedelta(hours=hours), until=END, points=POINTS
        )
        assert all(len(s) <= 2 * POINTS for s in found.values())
        return found

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=4)
    parser.add_argument("--every", type=int, default=60, help="seconds between samples")
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with scratch_database(args.url) as (engine, label):
        with engine.begin() as conn:
            rows = seed(conn, args.chargers, args.every)
        analyze(engine, label)
        cases = [
            ("newest 300 samples of the charger (reference)", newest_samples),
            ("history, last hour", history(1)),
            ("history, last 24 hours", history(24)),
            ("history, last 7 days", history(24 * 7)),
            ("history, last 31 days", history(24 * DAYS)),
        ]
        measured = [(name, median_ms(engine, call, ROUNDS)) for name, call in cases]
        reference = measured[0][1]
        per_charger = rows // args.chargers
        print(
            f"\n{label}, {args.chargers} chargers x {per_charger:,} meter rows"
            f" ({rows:,} in all; 2 connectors, a sample each {args.every} s, 31 days)\n"
        )
        print("| query | ms (median of 7) | x reference |")
        print("| --- | ---: | ---: |")
        for name, ms in measured:
            print(f"| {name} | {ms:.2f} | {ms / reference:.1f} |")


if __name__ == "__main__":
    main()
