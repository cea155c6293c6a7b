"""The tariffs the processor prices with, read at most every few seconds for live estimates."""

from __future__ import annotations

import time

from sqlalchemy.engine import Connection

from ocppd.billing import Tariff
from ocppd.store import tariffs

#: How stale a tariff a live cost estimate may use (the bill always reads it fresh).
TARIFF_CACHE_SECONDS = 10.0


class TariffCache:
    """
    Tariffs by id. Live estimates (every MeterValues) may use one read up to
    ``TARIFF_CACHE_SECONDS`` ago; the bill at stop reads it ``fresh``.
    Used from database threads: single dict operations are atomic.
    """

    def __init__(self) -> None:
        self._tariffs: dict[int, tuple[float, Tariff | None]] = {}

    def get(self, conn: Connection, tariff_id: int | None, *, fresh: bool = False) -> Tariff | None:
        """The tariff ``tariff_id`` (None: none, or deleted)."""
        if tariff_id is None:
            return None
        now = time.monotonic()
        cached = self._tariffs.get(tariff_id)
        if not fresh and cached is not None and now - cached[0] < TARIFF_CACHE_SECONDS:
            return cached[1]
        record = tariffs.get_tariff(conn, tariff_id)
        tariff = None if record is None else Tariff.from_record(record)
        self._tariffs[tariff_id] = (now, tariff)
        return tariff
