"""
The store's record of each charger at its handshake, read in batches.

A reconnect storm asks for thousands of chargers within seconds; one
transaction each costs the database thread a BEGIN, a query and a COMMIT per
charger, and the reactor a thread hop. Here a lookup with none running goes to
the database at once (alone: a quiet node adds no latency), and the ids asked
for while it runs wait and go together in the next query, up to
``max_batch`` ids per query. The same id asked twice in a batch is read once.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ocppd.store import chargers
from ocppd.store.database import Database
from ocppd.store.records import ChargePointRecord

#: Ids per query: well under SQLite's limit of bound parameters (32,766).
MAX_BATCH = 500


class ChargerLookup:
    """``get(charge_point_id)``, batched (see the module docstring)."""

    def __init__(self, database: Database, *, max_batch: int = MAX_BATCH) -> None:
        self._database = database
        self._max_batch = max_batch
        #: Ids waiting for the next query, and who waits for each.
        self._waiting: dict[str, list[Deferred[ChargePointRecord | None]]] = {}
        self._running = False

    def get(self, charge_point_id: str) -> Deferred[ChargePointRecord | None]:
        """The charger's record, or None if there is no such charger."""
        found: Deferred[ChargePointRecord | None] = Deferred()
        self._waiting.setdefault(charge_point_id, []).append(found)
        if not self._running:
            self._next()
        return found

    def _next(self) -> None:
        if not self._waiting:
            self._running = False
            return
        self._running = True
        batch: dict[str, list[Deferred[ChargePointRecord | None]]] = {}
        for charge_point_id in list(islice(self._waiting, self._max_batch)):
            batch[charge_point_id] = self._waiting.pop(charge_point_id)
        read = self._database.run(chargers.get_charge_points, list(batch))
        read.addCallbacks(self._found, self._failed, callbackArgs=(batch,), errbackArgs=(batch,))
        read.addBoth(lambda _: self._next())

    @staticmethod
    def _found(
        records: dict[str, ChargePointRecord],
        batch: dict[str, list[Deferred[ChargePointRecord | None]]],
    ) -> None:
        for charge_point_id, waiters in batch.items():
            record = records.get(charge_point_id)
            for waiter in waiters:
                if not waiter.called:  # cancelled meanwhile
                    waiter.callback(record)

    @staticmethod
    def _failed(failure: Failure, batch: dict[str, list[Deferred[Any]]]) -> None:
        for waiters in batch.values():
            for waiter in waiters:
                if not waiter.called:
                    waiter.errback(failure)
