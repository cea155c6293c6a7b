"""
How fast the embedded database grows, and where the message log's retention
leaves it (issue 14, item 10).

    .venv/bin/python bench/log_growth.py [--messages 20000] [--rate 80]

Stores ``--messages`` MeterValues (4 sampled values, in a session: what a
charging network sends most) through the processor, as the daemon does, into
a fresh SQLite file, and measures the file's growth per message. Then it
empties the message log and the idempotency claims (``VACUUM`` after each) to
split the growth between what the retention options prune and what is kept
for good (meter values, billing data). It prints bytes per message and, at
``--rate`` messages per second, the growth per day and the size the file
settles at under the default ``[store] keep_message_log_days`` and
``keep_claims_days``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "bench"), ROOT]

import sqlalchemy as sa  # noqa: E402
from processor_batch import CHARGERS, NOW, envelopes, setup  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from ocppd.config import StoreConfig  # noqa: E402
from ocppd.consumers.processor import OcppProcessor  # noqa: E402
from ocppd.store import migrate  # noqa: E402
from ocppd.store.database import Database  # noqa: E402
from ocppd.timeutil import format_iso  # noqa: E402

BATCH = 500
DAY = 86_400


def outside_transaction(database: Database, statement: str) -> None:
    """Run ``statement`` on the driver's connection (the begin event would open a transaction)."""
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(statement)
        cursor.close()
    finally:
        raw.close()


def file_size(database: Database, path: str) -> int:
    """The database's size once the WAL is folded into the main file."""
    outside_transaction(database, "PRAGMA wal_checkpoint(TRUNCATE)")
    return os.path.getsize(path)


def vacuumed_size(database: Database, path: str, statement: str) -> int:
    """The file's size after ``statement`` and a ``VACUUM``."""
    database.run_sync(lambda conn: conn.execute(sa.text(statement)))
    outside_transaction(database, "VACUUM")
    return file_size(database, path)


def human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:,.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=80.0, help="messages per second")
    args = parser.parse_args()
    store = StoreConfig()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "bench.sqlite3")
        database = Database.from_url(f"sqlite:///{path}")
        migrate.upgrade(database.engine)
        sessions = setup(database)
        processor = OcppProcessor(None, database, clock=Clock())  # type: ignore[arg-type]
        before = file_size(database, path)
        stored = 0
        while stored < args.messages:
            count = min(BATCH, args.messages - stored)
            batch = envelopes("MeterValues", count, sessions)
            for n, envelope in enumerate(batch, start=stored):
                # A reading a minute, per charger: each one new (one timestamp would be
                # stored once).
                at = NOW + timedelta(minutes=n // CHARGERS)
                envelope.payload["request"]["meterValue"][0]["timestamp"] = format_iso(at)
            for outcome in database.run_sync(processor.apply_batch, batch):
                if not isinstance(outcome, tuple):
                    outcome.raiseException()
            stored += count
        full = file_size(database, path)
        without_log = vacuumed_size(database, path, "DELETE FROM message_log")
        kept = vacuumed_size(database, path, "DELETE FROM processed_messages")
        database.stop()

    per_message = (full - before) / stored
    log = (full - without_log) / stored
    claims = (without_log - kept) / stored
    rest = per_message - log - claims
    per_day = args.rate * DAY
    retained = (
        log * per_day * store.keep_message_log_days + claims * per_day * store.keep_claims_days
    )
    print(f"SQLite, {stored:,} MeterValues (4 sampled values each) through the processor")
    print(f"{'part':34} {'bytes/message':>14} {'per day at ' + str(args.rate) + '/s':>18}")
    for label, size in (
        ("message log (CALL + answer: 1 row)", log),
        ("idempotency claims", claims),
        ("meter values (kept for billing)", rest),
        ("total", per_message),
    ):
        print(f"{label:34} {size:14,.0f} {human(size * per_day):>18}")
    print(
        f"Retention in effect by default: message log {store.keep_message_log_days} days, "
        f"claims {store.keep_claims_days} days"
    )
    print(
        f"The pruned parts settle at {human(retained)}; meter values add "
        f"{human(rest * per_day)} a day for good."
    )


if __name__ == "__main__":
    main()
