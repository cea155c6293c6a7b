"""
The listen backlog of a server endpoint string: a default where it names none.

Twisted listens with a backlog of 50. A restarted node gets every charger's
reconnect at once, and while it is busy answering the first handshakes (its
accept gate closed, ``ocppd.ocpp.accept_gate``) the kernel keeps the next ones
in this queue; beyond it, it drops their SYNs, and each charger's kernel tries
again after 1, 3, 7, 15, 31 and 63 seconds, then gives up. The kernel caps the
number at ``net.core.somaxconn`` (4096 on Linux since 5.4).
"""

from __future__ import annotations

import re

#: Endpoint types whose server string takes ``backlog=``.
_WITH_BACKLOG = frozenset({"tcp", "tcp6", "ssl", "unix"})

#: The OCPP listener's backlog unless ``[ocpp] listen`` names one.
OCPP_BACKLOG = 4096


def with_default_backlog(description: str, backlog: int) -> str:
    """
    ``description`` (a Twisted server endpoint string) with ``:backlog=N``
    added, if its type takes one and it names none; otherwise unchanged
    (``systemd:`` sockets come with systemd's own ``Backlog=``).
    """
    # Parameters are separated by colons; a backslash escapes one inside a value.
    parts = re.split(r"(?<!\\):", description)
    kind = parts[0].strip().lower()
    if kind.isdigit():
        kind = "tcp"  # Twisted's old form: a bare port number
    if kind not in _WITH_BACKLOG:
        return description
    if any(part.strip().lower().startswith("backlog=") for part in parts[1:]):
        return description
    return f"{description}:backlog={backlog}"
