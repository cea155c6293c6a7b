"""
Why a routed command failed, beyond what a local one can say.

They extend ``ocppd.ocpp.commands.CommandError``, so every caller that maps
command failures to answers (``ocppd.api.commands``) sees one family. The
outcomes the charger's own node reports travel back as the local errors
(``ChargerNotConnected``, ``CommandTimeout``, ``CallErrorReceived``, ...).
"""

from __future__ import annotations

from ocppd.ocpp.commands import CommandError


class RoutingUnavailable(CommandError):
    """
    The command could not be routed: the owner lookup (presence) or the
    command transport (the broker) is unreachable. Never sent; try later
    (HTTP 503).
    """


class NodeUnreachable(CommandError):
    """No node of that id takes commands (it is gone): nothing was sent."""


class TransportTimeout(CommandError):
    """No reply from the owning node in time (it may have died mid-command)."""


class BadRoutedReply(CommandError):
    """The owning node's reply is not one ocppd sends (too big or malformed)."""


__all__ = ["BadRoutedReply", "NodeUnreachable", "RoutingUnavailable", "TransportTimeout"]
