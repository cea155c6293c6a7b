"""
The embedded bus's journal (a ``bus_journal`` table): ``StoreJournal`` is the
``ocppd.bus.journal.Journal`` the daemon gives its ``MemoryBus``.

Where the table lives depends on the store (docs/bus.md, "Durability"):

- **PostgreSQL**: in the store, beside everything else; the processor removes
  its deliveries' records in its own batch transaction (``settler_for``).
- **SQLite** (a file): in a SQLite file of its own beside the store's, the
  *journal file* (``journal_file``: ``ocppd-bus-journal.sqlite3`` beside
  ``ocppd.sqlite3``), on its own ``Database`` (one thread, WAL,
  ``synchronous=FULL`` like the store). SQLite has one writer per file: in
  the store's file, every journal commit (and so every answer to a charger)
  waited behind the processor's batch transaction. The journal file's one
  table is created at start if missing (``prepare_journal_file``; no alembic:
  one table whose format the journal's own code owns, recorded in
  ``PRAGMA user_version``). Records an older version left in the store's
  ``bus_journal`` are moved there at start (``move_store_records``).
- An in-memory SQLite store keeps the journal in the store (it dies with the
  process anyway).

Each write is one transaction on its database's pool: the bus's group commit
hands it everything that arrived while the previous one was in the database.
On SQLite a commit is durable (``synchronous=FULL``), so a message whose
publish fired survives ``kill -9`` and a power cut alike.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection, Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from twisted.internet.defer import Deferred

from ocppd.bus.journal import DeadMark, JournalBatch, JournalRecord, JournalSettler
from ocppd.store.database import Database, sqlite_file
from ocppd.store.prepared import Prepared
from ocppd.store.tables import bus_journal
from ocppd.timeutil import format_iso, parse_iso


def load_journal(conn: Connection, node: str) -> list[JournalRecord]:
    """Every record of ``node``'s bus, by seq."""
    t = bus_journal.c
    rows = conn.execute(
        sa.select(
            t.seq,
            t.queue,
            t.routing_key,
            t.message_id,
            t.body,
            t.dead_attempts,
            t.dead_reason,
            t.dead_failed_at,
        )
        .where(t.node == node)
        .order_by(t.seq)
    )
    return [
        JournalRecord(
            seq=row.seq,
            queue=row.queue,
            routing_key=row.routing_key,
            message_id=row.message_id,
            body=bytes(row.body),
            dead=None
            if row.dead_attempts is None
            else DeadMark(
                attempts=row.dead_attempts,
                reason=row.dead_reason or "",
                failed_at=format_iso(row.dead_failed_at),
            ),
        )
        for row in rows
    ]


def _dead_values(mark: DeadMark | None) -> dict[str, Any]:
    if mark is None:
        return {"dead_attempts": None, "dead_reason": None, "dead_failed_at": None}
    return {
        "dead_attempts": mark.attempts,
        "dead_reason": mark.reason,
        "dead_failed_at": parse_iso(mark.failed_at),
    }


def _journal_insert() -> sa.Insert:
    return bus_journal.insert().values(
        {
            column.name: sa.bindparam(f"j_{column.name}", type_=column.type)
            for column in bus_journal.c
        }
    )


_t = bus_journal.c
#: The columns of a live record (the rest say why a dead letter died).
_LIVE_COLUMNS = ("node", "seq", "queue", "routing_key", "message_id", "body")
#: The hot statements of every write, on the driver's cursor
#: (``ocppd.store.prepared``): through ``conn.execute``, SQLAlchemy's per-row
#: parameter building cost ~10 us a record each way, as much as the rest of a
#: MeterValues' bus work.
_INSERT = Prepared(_journal_insert())
#: What a publish writes: a live record, so without the dead-letter columns
#: (NULL by default). On SQLite every ``None`` and ``bytes`` parameter goes
#: through the driver's adaptation lookup (``sqlite3`` skips it only for
#: ``int``, ``float``, ``str`` and ``bytearray``), which formats and clears an
#: ``AttributeError`` each time: the three NULLs and the body were about half
#: of the database thread's instructions per journaled MeterValues.
_INSERT_LIVE = Prepared(
    bus_journal.insert().values(
        {name: sa.bindparam(f"j_{name}", type_=bus_journal.c[name].type) for name in _LIVE_COLUMNS}
    )
)
#: ``_INSERT_LIVE``'s parameters, in the order of ``write_journal``'s rows of values.
_INSERT_LIVE_ORDER = tuple(f"j_{name}" for name in _LIVE_COLUMNS)
_DELETE_RANGE = Prepared(
    bus_journal.delete()
    .where(_t.node == sa.bindparam("j_node"))
    .where(_t.seq >= sa.bindparam("j_low"))
    .where(_t.seq <= sa.bindparam("j_high"))
)


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """
    ``seqs`` as the fewest (first, last) runs of consecutive numbers, in order:
    messages are mostly settled in the order they were published, so a
    write's removals are a few runs, each deleted in one range scan.
    """
    runs: list[tuple[int, int]] = []
    for seq in sorted(seqs):
        if runs and seq == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], seq)
        else:
            runs.append((seq, seq))
    return runs


def write_journal(conn: Connection, node: str, batch: JournalBatch) -> None:
    """Apply ``batch`` to ``node``'s records: inserts, dead-letter marks, then removals."""
    live = [record for record in batch.added if record.dead is None]
    if len(live) == len(batch.added):
        # What every publish writes: plain values in the insert's order, for
        # the driver as they are (~2.5 us a record less of the database
        # thread's Python, which holds the GIL the reactor waits for).
        assert _INSERT_LIVE.names(conn) == _INSERT_LIVE_ORDER
        # The same blob to SQLite as bytes, without the adaptation lookup
        # (see _INSERT_LIVE); a copy of the body costs far less.
        blob: Callable[[bytes], Any] = bytearray if conn.dialect.name == "sqlite" else bytes
        _INSERT_LIVE.many_values(
            conn,
            [
                (
                    node,
                    record.seq,
                    record.queue,
                    record.routing_key,
                    record.message_id,
                    blob(record.body),
                )
                for record in live
            ],
        )
    else:
        _INSERT.many(
            conn,
            [
                {
                    "j_node": node,
                    "j_seq": record.seq,
                    "j_queue": record.queue,
                    "j_routing_key": record.routing_key,
                    "j_message_id": record.message_id,
                    "j_body": record.body,
                    **{f"j_{name}": value for name, value in _dead_values(record.dead).items()},
                }
                for record in batch.added
            ],
        )
    if batch.marked:
        conn.execute(
            bus_journal.update()
            .where(_t.node == sa.bindparam("b_node"))
            .where(_t.seq == sa.bindparam("b_seq")),
            [
                {"b_node": node, "b_seq": seq, **_dead_values(mark)}
                for seq, mark in batch.marked.items()
            ],
        )
    if batch.removed:
        remove_records(conn, batch.removed, node=node)


#: ``_INSERT_LIVE`` and ``_DELETE_RANGE`` as SQLite's DB-API takes them
#: (``write_journal_held``; a test checks they compile so).
_SQLITE_INSERT_LIVE = (
    "INSERT INTO bus_journal (node, seq, queue, routing_key, message_id, body) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_SQLITE_DELETE_RANGE = (
    "DELETE FROM bus_journal "
    "WHERE bus_journal.node = ? AND bus_journal.seq >= ? AND bus_journal.seq <= ?"
)


def write_journal_held(dbapi: Any, node: str, batch: JournalBatch) -> bool:
    """
    ``write_journal`` on a SQLite DB-API connection (``Database.run_held``),
    for what the bus writes under load: new live records and removals.
    False, having written nothing, for a batch that marks dead letters (or
    adds a dead one): ``write_journal`` writes those.
    """
    if batch.marked:
        return False
    rows = []
    for record in batch.added:
        if record.dead is not None:
            return False
        # bytearray: the same blob, without sqlite3's adaptation lookup (_INSERT_LIVE).
        rows.append(
            (
                node,
                record.seq,
                record.queue,
                record.routing_key,
                record.message_id,
                bytearray(record.body),
            )
        )
    if rows:
        dbapi.executemany(_SQLITE_INSERT_LIVE, rows)
    if batch.removed:
        dbapi.executemany(
            _SQLITE_DELETE_RANGE, [(node, low, high) for low, high in seq_ranges(batch.removed)]
        )
    return True


def remove_records(conn: Connection, seqs: Collection[int], *, node: str) -> None:
    """Delete ``node``'s records ``seqs``, in ``conn``'s transaction (a run of seqs at once)."""
    if seqs:
        _DELETE_RANGE.many(
            conn,
            [{"j_node": node, "j_low": low, "j_high": high} for low, high in seq_ranges(seqs)],
        )


class StoreJournal:
    """``node``'s bus journal in ``database``."""

    def __init__(self, database: Database, node: str) -> None:
        self._database = database
        self._node = node
        #: A SQLite file (the journal file, or a SQLite store): the writes go
        #: on a DB-API connection the database holds (``Database.run_held``),
        #: not through SQLAlchemy: a group commit is a small transaction, and
        #: SQLAlchemy's per transaction cost four times its own work on the
        #: journal's thread (bench/RESULTS.md).
        self._held = database.dialect == "sqlite" and sqlite_file(database.engine.url) is not None

    def load(self) -> list[JournalRecord]:
        # Blocking, once at start-up (before anything is served), like the migrations.
        return self._database.run_sync(load_journal, self._node)

    def write(self, batch: JournalBatch) -> Deferred[None]:
        if self._held:
            return self._database.run_held(write_journal_held, self._node, batch).addCallback(
                self._written_held, batch
            )
        return self._database.run(write_journal, self._node, batch)

    def _written_held(self, written: bool, batch: JournalBatch) -> Deferred[None] | None:
        if written:
            return None
        return self._database.run(write_journal, self._node, batch)

    def settler_for(self, database: object) -> JournalSettler | None:
        """
        Removal inside a transaction of ``database``, if it is this journal's
        (``MemoryBus.journal_settler``): a consumer's acknowledgement
        committed with its effects.
        """
        if database is not self._database:
            return None
        return functools.partial(remove_records, node=self._node)


#: What the journal file's name adds to the store file's stem.
JOURNAL_FILE_SUFFIX = "-bus-journal"
#: The journal file's format (``PRAGMA user_version``): 1, the ``bus_journal``
#: table as the store's migration 0010 made it.
JOURNAL_FILE_VERSION = 1


def journal_file(store_url: str | URL) -> str | None:
    """
    The journal file of a SQLite store file (``/data/ocppd.sqlite3`` ->
    ``/data/ocppd-bus-journal.sqlite3``); None when the journal stays in the
    store (PostgreSQL, an in-memory SQLite).
    """
    path = sqlite_file(store_url)
    if path is None:
        return None
    stem, ext = os.path.splitext(path)
    return stem + JOURNAL_FILE_SUFFIX + ext


def journal_database(store_url: str | URL, *, reactor: Any = None) -> Database | None:
    """
    A (not started) ``Database`` on the journal file of ``store_url``; None when
    the journal stays in the store. Nothing is created before it is used.
    """
    path = journal_file(store_url)
    if path is None:
        return None
    return Database.from_url("sqlite:///" + path, reactor=reactor, max_threads=1)


class JournalFileTooNew(Exception):
    """The journal file was written by a newer version of ocppd."""


def prepare_journal_file(conn: Connection) -> None:
    """Create the journal file's ``bus_journal`` table if missing (in ``conn``'s transaction)."""
    version = conn.exec_driver_sql("PRAGMA user_version").scalar() or 0
    if version > JOURNAL_FILE_VERSION:
        raise JournalFileTooNew(
            f"the bus journal file is format {version}, this version of ocppd knows "
            f"{JOURNAL_FILE_VERSION}: run the newer version, or drain its bus"
        )
    bus_journal.create(conn, checkfirst=True)
    if version < JOURNAL_FILE_VERSION:
        conn.exec_driver_sql(f"PRAGMA user_version = {JOURNAL_FILE_VERSION}")


def _store_records(conn: Connection, node: str) -> list[dict[str, Any]]:
    return [
        dict(row._mapping)
        for row in conn.execute(
            sa.select(bus_journal).where(bus_journal.c.node == node).order_by(bus_journal.c.seq)
        )
    ]


def _copy_records(conn: Connection, rows: list[dict[str, Any]]) -> None:
    # Already there (a move that crashed before its removal from the store):
    # the same (node, seq), left as it is.
    conn.execute(
        sa.insert(bus_journal).prefix_with("OR IGNORE"),
        [{**row, "body": bytes(row["body"])} for row in rows],
    )


def move_store_records(store: Database, journal: Database, node: str) -> int:
    """
    Move ``node``'s records an older version left in the store's
    ``bus_journal`` to the journal file, blocking (at start, before the bus
    loads): copied and committed in the journal file first, then removed
    from the store. A crash between the two leaves them in both, and the
    next start copies them again, keeping the copy already there (same
    node and seq), then removes them: nothing is lost and nothing doubled.
    How many records were moved.
    """
    rows = store.run_sync(_store_records, node)
    if not rows:
        return 0
    journal.run_sync(_copy_records, rows)
    store.run_sync(remove_records, [row["seq"] for row in rows], node=node)
    return len(rows)
