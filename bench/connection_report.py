"""
The faults report's offline time on a large connection history: how long
``reports.charger_health`` takes over a week, a month and a year.

    .venv/bin/python bench/connection_report.py [--postgres URL] [--chargers 1000] [--days 365]

Seeds ``--chargers`` chargers, each with a connection a day for ``--days``
days (reconnecting after a short outage), plus one open connection each, and
prints the median of 5 runs of the report per span.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from scratch import analyze, median_ms, scratch_database  # noqa: E402  (bench/ is on sys.path)

from ocppd.store import reports  # noqa: E402
from ocppd.store.tables import charge_points, charger_connections  # noqa: E402

END = datetime(2026, 12, 7, tzinfo=UTC)


def seed(engine: Any, chargers: int, days: int) -> int:
    start = END - timedelta(days=days)
    with engine.begin() as conn:
        conn.execute(
            charge_points.insert(),
            [
                {
                    "charge_point_id": f"CP{n:05}",
                    "registration_status": "Accepted",
                    "online": True,
                    "connection_id": f"open{n}",
                    "created_at": start,
                }
                for n in range(chargers)
            ],
        )
        rows = 0
        for day in range(days):
            at = start + timedelta(days=day)
            conn.execute(
                charger_connections.insert(),
                [
                    {
                        "charge_point_id": f"CP{n:05}",
                        "connection_id": f"d{day}",
                        "node": "n1",
                        "connected_at": at + timedelta(minutes=n % 60),
                        "disconnected_at": at + timedelta(hours=23, minutes=n % 60),
                        "close_code": 1006,
                    }
                    for n in range(chargers)
                ],
            )
            rows += chargers
        conn.execute(
            charger_connections.insert(),
            [
                {
                    "charge_point_id": f"CP{n:05}",
                    "connection_id": f"open{n}",
                    "node": "n1",
                    "connected_at": END - timedelta(hours=1),
                }
                for n in range(chargers)
            ],
        )
    return rows + chargers


def health(conn: Any, start: datetime) -> Any:
    return reports.charger_health(conn, start, END)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", default="sqlite", help="a PostgreSQL URL (default SQLite)")
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    with scratch_database(args.postgres) as (engine, label):
        rows = seed(engine, args.chargers, args.days)
        analyze(engine, label)
        print(f"{label}: {args.chargers} chargers, {rows} connections")
        for days in (7, 30, 365):
            start = END - timedelta(days=days)
            ms = median_ms(engine, functools.partial(health, start=start), 5)
            print(f"faults report over {days:3} days: {ms:8.0f} ms")


if __name__ == "__main__":
    main()
