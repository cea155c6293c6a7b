"""
idTag authorization for the request path, from a cache over the id tags table.

Authorize and StartTransaction must be answered fast; the cache answers from
memory and reads the store only on a miss or after ``ttl`` seconds, so a
tag blocked by an operator takes effect within ``ttl`` at most (at once on
the node whose API made the change: it calls ``invalidate``). A tag of a
blocked account answers ``Blocked``.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime

from ocppd.store import people, tags
from ocppd.store.database import Database
from ocppd.timeutil import format_iso, from_timestamp


@attrs.frozen
class IdTagInfo:
    """OCPP 1.6 IdTagInfo."""

    status: str
    expiry_date: datetime | None = None
    parent_id_tag: str | None = None

    def to_ocpp(self) -> dict[str, Any]:
        info: dict[str, Any] = {"status": self.status}
        if self.expiry_date is not None:
            info["expiryDate"] = format_iso(self.expiry_date)
        if self.parent_id_tag is not None:
            info["parentIdTag"] = self.parent_id_tag
        return info


def id_tag_info(record: Any, now: datetime) -> IdTagInfo:
    """
    What to answer for a stored tag (None: unknown) at ``now``: an Accepted
    tag past its expiry is Expired. Also what the local list sends.
    """
    if record is None:
        return IdTagInfo("Invalid")
    expires = record.expires_at
    if record.status == "Accepted" and expires is not None and expires <= now:
        return IdTagInfo("Expired", expires, record.parent_id_tag)
    return IdTagInfo(record.status, expires, record.parent_id_tag)


@attrs.frozen
class _Entry:
    record: Any
    loaded_at: float


class IdTagCache:
    def __init__(
        self, database: Database, clock: IReactorTime, *, ttl: float = 60.0, max_size: int = 100_000
    ) -> None:
        self._database = database
        self._clock = clock
        self._ttl = ttl
        self._max_size = max_size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def authorize(self, id_tag: str) -> Deferred[IdTagInfo]:
        """The IdTagInfo to answer for ``id_tag`` now."""
        id_tag = tags.canonical_id_tag(id_tag)
        now = self._clock.seconds()
        entry = self._entries.get(id_tag)
        if entry is not None and now - entry.loaded_at < self._ttl:
            self._entries.move_to_end(id_tag)
            return succeed(id_tag_info(entry.record, from_timestamp(now)))
        # Blocked while its owner's account is (people.authorization_record).
        return self._database.run(people.authorization_record, id_tag).addCallback(
            self._loaded, id_tag
        )

    def invalidate(self, id_tag: str | None = None) -> None:
        """Forget one tag (or all) after an operator changed it."""
        if id_tag is None:
            self._entries.clear()
        else:
            self._entries.pop(tags.canonical_id_tag(id_tag), None)

    def _loaded(self, record: Any, id_tag: str) -> IdTagInfo:
        now = self._clock.seconds()
        self._entries[id_tag] = _Entry(record, now)
        self._entries.move_to_end(id_tag)
        while len(self._entries) > self._max_size:
            self._entries.popitem(last=False)
        return id_tag_info(record, from_timestamp(now))
