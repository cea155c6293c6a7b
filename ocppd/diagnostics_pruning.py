"""
The diagnostics folder kept bounded: every hour (and at start), files received
more than ``[files] diagnostics_keep_days`` ago are deleted, then the oldest
while all together take more than ``[files] max_diagnostics_total`` bytes, and
upload URLs that expired unused that long ago are forgotten.

A file and its row go together (``DiagnosticsFiles.remove``, on a database
thread): the CMS never lists a file that is gone, and a file that cannot be
deleted keeps its row and is tried again next time. The sizes summed are the
rows' (what the CMS lists), not a scan of the folder. Deletions come in chunks,
one short transaction each; several nodes sharing the folder may prune at
once: each deletion is idempotent. Each pass logs one line with its counts.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime

from ocppd.diagnostics import DiagnosticsFiles, Removal
from ocppd.logs import Logger
from ocppd.periodic import PeriodicService
from ocppd.store import diagnostics
from ocppd.store.database import Database
from ocppd.store.diagnostics import UploadRecord
from ocppd.timeutil import format_iso, from_timestamp

#: Seconds between passes.
INTERVAL = 3600
#: Uploads looked at (and files deleted) per transaction.
CHUNK = 100
#: Upload ids named in a pass's log line, at most.
LOGGED_IDS = 20


def oldest_over(records: list[UploadRecord], excess: int) -> list[UploadRecord]:
    """The first of ``records`` (oldest first) whose sizes add up to ``excess`` or more."""
    chosen, freed = [], 0
    for record in records:
        if freed >= excess:
            break
        chosen.append(record)
        freed += record.size or 0
    return chosen


class DiagnosticsPruner(PeriodicService):
    """See the module docstring. Started, it prunes now and every ``INTERVAL`` seconds."""

    log = Logger()
    name = "diagnostics_pruning"

    def __init__(
        self,
        files: DiagnosticsFiles,
        database: Database,
        clock: IReactorTime,
        *,
        keep_days: int,
        max_total: int,
        chunk: int = CHUNK,
    ) -> None:
        self._files = files
        self._database = database
        self._clock = clock
        #: 0: no age limit.
        self.keep_days = keep_days
        #: 0: no size limit.
        self.max_total = max_total
        self._chunk = chunk
        super().__init__(INTERVAL, self._prune_logged, clock)

    def startService(self) -> None:
        if not (self.keep_days or self.max_total):
            # Not started: nothing to prune, and stopService has nothing to stop.
            self.log.warn(
                "Diagnostics files are kept forever ([files] diagnostics_keep_days and "
                "max_diagnostics_total are 0): the folder grows without bound"
            )
            return
        super().startService()

    @inlineCallbacks
    def _prune_logged(self) -> Generator[Deferred[Any], Any, None]:
        try:
            yield self.prune()
        except Exception:
            # Logged, and tried again next time: a busy database is no reason to stop.
            self.log.failure("Could not prune the diagnostics files")

    @inlineCallbacks
    def prune(self) -> Generator[Deferred[Any], Any, None]:
        """One pass: by age, then by total size, then the unused upload URLs."""
        now = from_timestamp(self._clock.seconds())
        if self.keep_days:
            before = now - timedelta(days=self.keep_days)
            yield self._pass(
                f"received before {format_iso(before)}",
                lambda conn: self._by_age(conn, before),
            )
        if self.max_total:
            yield self._pass(f"over max_diagnostics_total ({self.max_total} bytes)", self._by_size)
        if self.keep_days:
            yield self._forget_unused(now - timedelta(days=self.keep_days))

    def _by_age(self, conn: Connection, before: datetime) -> Removal:
        records = diagnostics.received_oldest_first(conn, received_before=before, limit=self._chunk)
        return self._files.remove(conn, records)

    def _by_size(self, conn: Connection) -> Removal:
        excess = diagnostics.received_total_size(conn) - self.max_total
        if excess <= 0:
            return Removal()
        records = diagnostics.received_oldest_first(conn, received_before=None, limit=self._chunk)
        return self._files.remove(conn, oldest_over(records, excess))

    @inlineCallbacks
    def _pass(
        self, reason: str, step: Callable[[Connection], Removal]
    ) -> Generator[Deferred[Any], Any, None]:
        """Run ``step`` chunk after chunk until it removes nothing more; log what went."""
        removed: list[UploadRecord] = []
        failed: list[tuple[UploadRecord, str]] = []
        while not self.stopping:
            removal = yield self._database.run(step)
            removed += removal.removed
            failed += removal.failed
            # A chunk that kept a file would find it again: tried next time instead.
            if removal.failed or not removal.removed:
                break
        if removed:
            self.log.info(
                "Deleted {count} diagnostics files ({bytes} bytes), {reason}",
                count=len(removed),
                bytes=sum(r.size or 0 for r in removed),
                reason=reason,
                upload_ids=[r.id for r in removed[:LOGGED_IDS]],
            )
        for record, why in failed:
            self.log.warn(
                "Could not delete diagnostics file {file_name} of upload {upload_id} "
                "({why}); kept, tried again next time",
                file_name=record.file_name,
                upload_id=record.id,
                charge_point_id=record.charge_point_id,
                why=why,
            )

    @inlineCallbacks
    def _forget_unused(self, before: datetime) -> Generator[Deferred[Any], Any, None]:
        total = 0
        while not self.stopping:
            count = yield self._database.run(
                diagnostics.delete_unused, expired_before=before, limit=self._chunk
            )
            total += count
            if count < self._chunk:
                break
        if total:
            self.log.info(
                "Forgot {count} diagnostics upload URLs unused and expired before {before}",
                count=total,
                before=format_iso(before),
            )
