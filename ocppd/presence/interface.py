# Zope interface methods take no self and have no body; mypy without the
# mypy-zope plugin reports both.
# mypy: disable-error-code="misc, empty-body"
"""
The presence seam: which node holds which charger's socket.

Two implementations provide it: ``ocppd.presence.memory`` (embedded,
in-process) and ``ocppd.presence.redis`` (Redis, for several nodes). Both pass
``tests/presence/contract.py``. The design (keys, lease, fencing, failures) is
in ``docs/presence.md``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import attrs
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface


class PresenceUnavailable(Exception):
    """
    The presence store cannot be reached (Redis down, or not answering in
    time). Calls fail at once with this instead of waiting; callers that answer
    a request answer 503. The implementation reconnects by itself.
    """


#: A node id: it is part of Redis keys, channel names and the owner value.
NODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def check_node_id(node_id: str) -> str:
    """``node_id`` if it is a usable node id; ValueError saying why otherwise."""
    if not NODE_ID.fullmatch(node_id):
        raise ValueError(
            f"{node_id!r} is not a node id: 1 to 63 letters, digits, '.', '_' or '-',"
            " starting with a letter or digit"
        )
    return node_id


@attrs.frozen
class Owner:
    """The node holding a charger, and the fence of its claim."""

    node_id: str
    fence: int


#: Called with (charge point id, fence) when a claim this node held with that
#: fence has been taken over by a newer connection (on another node), or found
#: lost at renewal: the socket of that claim must be closed.
LostCallback = Callable[[str, int], None]


class IPresence(Interface):
    node_id = Attribute("This node's id.")
    lease = Attribute("Seconds a claim lives unless renewed.")

    def start() -> None:
        """Start renewing this node's claims every ``lease / 3`` seconds (and connecting)."""

    def stop() -> Deferred[None]:
        """Stop renewing and release the claims still held (best effort: they expire anyway)."""

    def claim(charge_point_id: str) -> Deferred[int]:
        """
        This node holds the charger's newest connection: fires with a new fence,
        greater than every fence given for this charger before. The node that
        held it before (if another) learns it through its ``on_lost`` callbacks,
        promptly. Fails with ``PresenceUnavailable``.
        """

    def release(charge_point_id: str, fence: int) -> Deferred[bool]:
        """
        The connection of the claim ``fence`` closed: forget the claim, unless a
        newer one replaced it (then nothing changes). Fires with whether it was
        current. Fails with ``PresenceUnavailable``.
        """

    def owner(charge_point_id: str) -> Deferred[Owner | None]:
        """The current owner (a live claim), or None. Fails with ``PresenceUnavailable``."""

    def owners(charge_point_ids: Iterable[str]) -> Deferred[dict[str, Owner | None]]:
        """
        The owner of each charger (None: no live claim), in one round trip
        however many (a page of the API asks for its chargers at once): every
        id given is a key of the result. Fails with ``PresenceUnavailable``.
        """

    def owner_node(charge_point_id: str) -> Deferred[str | None]:
        """The id of the node holding the charger, or None (the ``CommandRouter``'s lookup)."""

    def renew() -> Deferred[list[tuple[str, int]]]:
        """
        Extend every claim this node holds, in one round trip; fires with the
        claims found lost (superseded by a newer fence), which are forgotten
        and reported to the ``on_lost`` callbacks too. The timer calls this;
        tests may too.
        """

    def on_lost(callback: LostCallback) -> None:
        """Call ``callback(charge_point_id, fence)`` for every claim of this node that is lost."""

    def held() -> dict[str, int]:
        """The claims this node holds: charge point id -> fence (a copy)."""
