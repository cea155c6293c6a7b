"""
The embedded bus's journal in the store (``bus_journal``): ``StoreJournal``
is the ``ocppd.bus.journal.Journal`` the daemon gives its ``MemoryBus``.

Each write is one transaction on the database's pool: the bus's group commit
hands it everything that arrived while the previous one was in the database.
On SQLite a commit is durable (``synchronous=FULL``), so a message whose
publish fired survives ``kill -9`` and a power cut alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred

from ocppd.bus.journal import DeadMark, JournalBatch, JournalRecord
from ocppd.store.database import Database
from ocppd.store.tables import bus_journal
from ocppd.timeutil import format_iso, parse_iso

#: Seqs per DELETE ... IN (...): well below SQLite's bound on parameters.
CHUNK = 500

T = TypeVar("T")


def _chunks(items: Iterable[T], size: int = CHUNK) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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


def write_journal(conn: Connection, node: str, batch: JournalBatch) -> None:
    """Apply ``batch`` to ``node``'s records: inserts, dead-letter marks, then removals."""
    t = bus_journal.c
    if batch.added:
        conn.execute(
            bus_journal.insert(),
            [
                {
                    "node": node,
                    "seq": record.seq,
                    "queue": record.queue,
                    "routing_key": record.routing_key,
                    "message_id": record.message_id,
                    "body": record.body,
                    **_dead_values(record.dead),
                }
                for record in batch.added
            ],
        )
    if batch.marked:
        conn.execute(
            bus_journal.update()
            .where(t.node == sa.bindparam("b_node"))
            .where(t.seq == sa.bindparam("b_seq")),
            [
                {"b_node": node, "b_seq": seq, **_dead_values(mark)}
                for seq, mark in batch.marked.items()
            ],
        )
    for chunk in _chunks(sorted(batch.removed)):
        conn.execute(bus_journal.delete().where(t.node == node).where(t.seq.in_(chunk)))


class StoreJournal:
    """``node``'s bus journal in ``database``."""

    def __init__(self, database: Database, node: str) -> None:
        self._database = database
        self._node = node

    def load(self) -> list[JournalRecord]:
        # Blocking, once at start-up (before anything is served), like the migrations.
        return self._database.run_sync(load_journal, self._node)

    def write(self, batch: JournalBatch) -> Deferred[None]:
        return self._database.run(write_journal, self._node, batch)
