"""
What one stored MeterValues costs the embedded SQLite database in I/O.

    .venv/bin/python bench/pages.py [--prefill 40000] [--messages 3000] [--batch 1 10 100]
                                    [--pragma cache_size=-2000 ...] [--keep FILE]
                                    [--page-size 1024] [--by-tree]

A migrated SQLite file with 100 chargers in a session each is first filled
with ``--prefill`` MeterValues (4 samples and a message-log row each, as the
processor stores them: a database of some size, whose indexes no longer fit a
small page cache), checkpointed, then ``--messages`` more are applied by the
processor in batches of each ``--batch`` size (each message its charger's next
reading: a new sample). Printed per message, from ``/proc/self/io`` and
``getrusage(RUSAGE_THREAD)`` of the one thread that does all the work:
bytes written and read through system calls (``wchar``, ``rchar``: the WAL
frames a commit appends, a checkpoint's copy into the database file, pages
read back from the WAL and the file, statement journals in temporary
files), the write and read calls themselves, this thread's user and system
CPU time, and the frames the WAL file grew by (every frame the commits
appended only with ``--pragma wal_autocheckpoint=0``: after a checkpoint
the next commit starts the file over). Unlike wall time these counts
barely move with the load of a shared machine. ``--pragma`` adds settings
after ocppd's own (what a change of them would do, without one).
``OCPPD_BENCH_SOURCE`` names another tree whose ``ocppd`` is measured.
``--callgrind`` counts the instructions of each batch size's messages (user
space only: a system call's work in the kernel is not among them).
``--by-tree`` (with ``--pragma wal_autocheckpoint=0``) reads the frames back
from the WAL file and names the B-tree of each page (SQLite's ``dbstat``),
leaf or interior: which table or index each commit rewrote, and how much.
``--page-size`` makes the new file with another page size (a property of
the file, fixed once it has tables; ocppd leaves SQLite's 4,096).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import shutil
import struct
import sys
import time
from collections import Counter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.environ.get("OCPPD_BENCH_SOURCE", ROOT)
sys.path[:0] = [os.path.join(ROOT, "bench"), SOURCE]

import processor_batch  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from scratch import scratch_database  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from ocppd.consumers.processor import OcppProcessor  # noqa: E402
from ocppd.store import database as store_database  # noqa: E402
from ocppd.store.database import Database  # noqa: E402

CHARGERS = 100
FIELDS = ("wchar", "syscw", "rchar", "syscr")


def io_counters() -> dict[str, int]:
    with open("/proc/self/io") as f:
        pairs = (line.split(":") for line in f)
        return {name: int(value) for name, value in pairs if name in FIELDS}


def thread_cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime, usage.ru_stime


WAL_HEADER = 32
FRAME_HEADER = 24


def wal_frames_by_tree(
    engine: sa.Engine, wal: str, start: int, page_size: int
) -> tuple[Counter[str], int]:
    """
    The frames of ``wal`` from byte ``start`` on, by the B-tree each page
    belongs to now and its kind (leaf or interior), and the commits among them.

    Only meaningful with ``--pragma wal_autocheckpoint=0``: a checkpoint lets
    the next commit write the file over from its start. Pages are named with
    the ``dbstat`` table ("other" for free pages and those past the file's end).
    """
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        assert driver is not None
        owner = {
            page: f"{name} ({kind})"
            for name, page, kind in driver.execute("SELECT name, pageno, pagetype FROM dbstat")
        }
    finally:
        raw.close()
    frames: Counter[str] = Counter()
    commits = 0
    with open(wal, "rb") as f:
        f.seek(max(start, WAL_HEADER))
        while len(header := f.read(FRAME_HEADER)) == FRAME_HEADER:
            page, size_after_commit = struct.unpack(">II", header[:8])
            frames[owner.get(page, "other")] += 1
            commits += size_after_commit > 0
            f.seek(page_size, os.SEEK_CUR)
    return frames, commits


def pragmas(engine: sa.Engine, settings: list[str]) -> None:
    """Each ``settings`` (``name=value``) on every new connection, after ocppd's own."""

    def configure(dbapi_connection: object, record: object) -> None:
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        for setting in settings:
            cursor.execute(f"PRAGMA {setting}")
        cursor.close()

    sa.event.listen(engine, "connect", configure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefill", type=int, default=40000, help="MeterValues stored first")
    parser.add_argument("--messages", type=int, default=3000, help="measured per batch size")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--pragma", action="append", default=[])
    parser.add_argument("--keep", help="copy the database file here at the end")
    parser.add_argument(
        "--page-size", type=int, help="the new database file's page size (default SQLite's)"
    )
    parser.add_argument(
        "--by-tree",
        action="store_true",
        help="WAL frames per MeterValues by B-tree (set --pragma wal_autocheckpoint=0)",
    )
    parser.add_argument(
        "--callgrind",
        metavar="LIB",
        help="the cg_start/cg_stop library (bench/request_path.py): run under valgrind"
        " --tool=callgrind --instr-atstart=no; one dump per batch size",
    )
    args = parser.parse_args()
    processor_batch.CHARGERS = CHARGERS
    callgrind = ctypes.CDLL(args.callgrind) if args.callgrind else None
    if args.page_size:
        configure = store_database._configure_sqlite_connection

        def sized(dbapi_connection: object, record: object) -> None:
            # Before journal_mode=WAL, which writes the new file's header.
            dbapi_connection.execute(f"PRAGMA page_size={args.page_size}")  # type: ignore[attr-defined]
            configure(dbapi_connection, record)

        store_database._configure_sqlite_connection = sized  # type: ignore[assignment]
    with scratch_database("sqlite") as (engine, _):
        pragmas(engine, args.pragma)
        database = Database(engine)
        sessions = processor_batch.setup(database)
        processor = OcppProcessor(None, database, clock=Clock())  # type: ignore[arg-type]
        started = time.perf_counter()
        for _ in range(args.prefill // 500):
            database.run_sync(
                processor.apply_batch, processor_batch.envelopes("MeterValues", 500, sessions)
            )
        filled = time.perf_counter() - started
        # Outside a transaction (the engine's begin event opens one with BEGIN IMMEDIATE).
        raw = engine.raw_connection()
        try:
            driver = raw.driver_connection
            driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            settings = [
                driver.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("cache_size", "wal_autocheckpoint", "journal_size_limit", "mmap_size")
            ]
        finally:
            raw.close()
        path = engine.url.database
        size = os.path.getsize(path)
        wal = path + "-wal"
        page_size = int(
            database.run_sync(lambda conn: conn.exec_driver_sql("PRAGMA page_size").scalar_one())
        )
        print(
            f"SQLite, {CHARGERS} chargers, {args.prefill} MeterValues first "
            f"({size / 1e6:.0f} MB, {filled:.0f} s); cache_size, wal_autocheckpoint, "
            f"journal_size_limit, mmap_size: {settings}"
        )
        print(
            f"{'batch':>5} {'wchar B':>8} {'syscw':>6} {'rchar B':>8} {'syscr':>6}"
            f" {'user us':>8} {'sys us':>7} {'frames':>6}   (per MeterValues)"
        )
        for batch in args.batch:
            made = [
                processor_batch.envelopes("MeterValues", batch, sessions)
                for _ in range(args.messages // batch)
            ]
            count = sum(len(envelopes) for envelopes in made)
            wal_before = os.path.getsize(wal) if os.path.exists(wal) else 0
            before, (user, system) = io_counters(), thread_cpu()
            if callgrind is not None:
                callgrind.cg_start()
            for envelopes in made:
                database.run_sync(processor.apply_batch, envelopes)
            if callgrind is not None:
                callgrind.cg_stop()
            after, (user_after, system_after) = io_counters(), thread_cpu()
            grown = (os.path.getsize(wal) - wal_before) / (page_size + 24) / count
            per = {name: (after[name] - before[name]) / count for name in FIELDS}
            print(
                f"{batch:5} {per['wchar']:8.0f} {per['syscw']:6.1f} {per['rchar']:8.0f}"
                f" {per['syscr']:6.1f} {(user_after - user) / count * 1e6:8.0f}"
                f" {(system_after - system) / count * 1e6:7.0f} {grown:6.1f}"
            )
            if args.by_tree:
                frames, commits = wal_frames_by_tree(engine, wal, wal_before, page_size)
                print(f"      {commits} commits; WAL frames per MeterValues by B-tree:")
                for name, n in frames.most_common():
                    print(f"      {n / count:6.2f} frames  {name}")
        print(f"WAL file at the end: {os.path.getsize(wal) / 1e6:.1f} MB")
        database.stop()
        if args.keep:
            shutil.copyfile(path, args.keep)


if __name__ == "__main__":
    main()
