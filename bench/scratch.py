"""
A migrated scratch database for the store benchmarks, and the median time of
a query on it: PostgreSQL in a fresh schema dropped at the end, or SQLite in
a temporary file (``url == "sqlite"``).
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Appended: a caller's other tree (OCPPD_BENCH_SOURCE) earlier on the path stays first.
if ROOT not in sys.path:
    sys.path.append(ROOT)

import sqlalchemy as sa  # noqa: E402

from ocppd.store import migrate  # noqa: E402
from ocppd.store.database import create_engine  # noqa: E402


@contextmanager
def scratch_database(url: str) -> Iterator[tuple[Any, str]]:
    """(engine, "SQLite" or "PostgreSQL") of a migrated, empty database."""
    with tempfile.TemporaryDirectory() as directory:
        if url == "sqlite":
            scratch, label, drop = f"sqlite:///{directory}/bench.sqlite3", "SQLite", None
        else:
            schema = f"ocppd_bench_{secrets.token_hex(4)}"
            admin = create_engine(url, max_threads=1)
            with admin.begin() as conn:
                # In public, not in the scratch schema: dropped with CASCADE at
                # the end, it would take the extension and others' indexes along.
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))

            def drop() -> None:
                with admin.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()

            separator = "&" if "?" in url else "?"
            scratch = f"{url}{separator}options=-csearch_path%3D{schema}"
            label = "PostgreSQL"
        try:
            migrate.upgrade(scratch)
            engine = create_engine(scratch, max_threads=1)
            try:
                yield engine, label
            finally:
                engine.dispose()
        finally:
            if drop is not None:
                drop()


def analyze(engine: Any, label: str) -> None:
    """PostgreSQL's statistics of the seeded tables, so the planner sees their size."""
    if label == "PostgreSQL":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("ANALYZE"))


def median_ms(engine: Any, call: Callable[[Any], Any], rounds: int) -> float:
    """Milliseconds of ``call(conn)``, the median of ``rounds``, each on a fresh connection."""
    samples = []
    for _ in range(rounds):
        with engine.connect() as conn:
            start = time.perf_counter()
            call(conn)
            samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)
