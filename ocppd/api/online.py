"""
Whether chargers are online, as the API shows it: presence is the truth
(docs/presence.md, "Online and offline: what is the truth").

A charger is online while a node holds a live claim on it. ``charge_points.online``
in the store is a cached view of that, written by the processor from the
connect and disconnect events; it lags, and a node killed with -9 leaves its
chargers marked online there until the liveness sweep. So every answer that
says ``online`` asks presence, once per request for all its chargers
(``IPresence.owners``), and falls back to the store's flag only while presence
is unreachable: the answer then says ``"onlineSource": "store"`` and the node
logs it once per outage, instead of failing a page over a status light.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from ocppd.logs import Logger
from ocppd.presence.interface import IPresence, Owner, PresenceUnavailable
from ocppd.store.records import ChargePointRecord

OnlineSource = Literal["presence", "store"]


@attrs.frozen
class Online:
    """
    Which of some chargers are online: their owners in presence, or None when
    presence could not be asked (the store's flags stand in).
    """

    owners: Mapping[str, Owner | None] | None

    @property
    def source(self) -> OnlineSource:
        return "store" if self.owners is None else "presence"

    def of(self, charge_point_id: str, stored: bool) -> bool:
        """Whether the charger is online; ``stored`` is the store's flag, the fallback."""
        if self.owners is None:
            return stored
        return self.owners.get(charge_point_id) is not None

    def __call__(self, record: ChargePointRecord) -> bool:
        return self.of(record.charge_point_id, record.online)

    def fields(self, record: ChargePointRecord) -> dict[str, Any]:
        """``online`` and ``onlineSource`` of a charger's JSON."""
        return {"online": self(record), "onlineSource": self.source}

    def shown(self, charger: dict[str, Any]) -> dict[str, Any]:
        """A charger's JSON rendered with ``STORED`` (in a transaction), shown with these states."""
        online = self.of(charger["chargePointId"], charger["online"])
        return {**charger, "online": online, "onlineSource": self.source}


#: The store's flags: for what is built inside a write's transaction (its
#: events); the answer to the caller is shown again with presence.
STORED = Online(None)


class OnlineView:
    """Asks presence who is online, one round trip per request."""

    log = Logger()

    def __init__(self, presence: IPresence) -> None:
        self._presence = presence
        self._falling_back = False

    def lookup(self, charge_point_ids: Iterable[str]) -> Deferred[Online]:
        """
        Presence's answer for ``charge_point_ids``; while presence is
        unreachable, ``STORED`` (logged once as the outage starts and once
        as it ends). Any other failure is a bug, and fails the request.
        """

        def found(owners: dict[str, Owner | None]) -> Online:
            if self._falling_back:
                self._falling_back = False
                self.log.info("Presence answers again: online states come from presence")
            return Online(owners)

        def unavailable(failure: Failure) -> Online:
            failure.trap(PresenceUnavailable)
            if not self._falling_back:
                self._falling_back = True
                self.log.warn(
                    "Presence unreachable ({reason}): chargers are shown online or offline"
                    " as the store last recorded (onlineSource: store) until it is back",
                    reason=failure.getErrorMessage(),
                )
            return STORED

        return self._presence.owners(charge_point_ids).addCallbacks(found, unavailable)
