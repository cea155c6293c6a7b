"""
The client's address behind reverse proxies (``[web] trusted_proxies``).

A proxy (nginx, a load balancer) connects to ocppd itself, so every client
would have the proxy's address: sign-in limits and a site's charger
admissions would count all clients together, and logs would name the proxy.
A proxy appends the address it saw to ``X-Forwarded-For``. Anyone can send
that header, so it is believed only from a trusted proxy, hop by hop from
the right: the peer of the socket, then each address a trusted proxy wrote,
until the first address that is not a trusted proxy. That one is the client.
A client that sends ``X-Forwarded-For: 1.2.3.4`` through nginx only adds an
entry left of what nginx appends, which is never reached while the address
nginx appended is not trusted; from an untrusted peer the header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["MAX_HOPS", "TrustedProxies", "parse_networks", "websocket_client_address"]

#: Entries of ``X-Forwarded-For`` looked at, from the right: proxies chain a
#: few hops, never dozens; the rest of a long header is not parsed.
MAX_HOPS = 16
#: Characters of an entry parsed as an address (the longest IPv6 form is 45).
_MAX_ENTRY = 64

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDR blocks (``10.0.0.0/8``, ``::1``); ValueError names a bad one."""
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an address or CIDR block") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if len(text) > _MAX_ENTRY:
        return None
    if text.startswith("[") and "]" in text:  # [v6]:port, as some proxies write it
        text = text[1 : text.index("]")]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
    return address


class TrustedProxies:
    """Which peers may say who the client is; see the module docstring."""

    def __init__(self, networks: Sequence[Network] = ()) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def client_address(self, peer: str, forwarded_for: Iterable[str | bytes] | None) -> str:
        """
        The client's address for a socket from ``peer`` carrying the
        ``X-Forwarded-For`` header values ``forwarded_for`` (in order).
        ``peer`` itself unless it is a trusted proxy.
        """
        if not self.networks or not forwarded_for:
            return peer
        current = _address(peer)
        if current is None or not self.trusts(current):
            return peer
        hops = _rightmost_hops(forwarded_for)
        for hop in hops:
            address = _address(hop)
            if address is None:
                # Not what a proxy of ours writes: stop at the proxy that passed it on.
                return str(current)
            current = address
            if not self.trusts(current):
                return str(current)
        return str(current)


def _rightmost_hops(values: Iterable[str | bytes]) -> list[str]:
    """At most MAX_HOPS entries of the header values, rightmost first."""
    hops: list[str] = []
    for value in reversed(list(values)):
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        # Only the tail can matter: entries further left are never reached.
        for entry in reversed(text[-(MAX_HOPS * (_MAX_ENTRY + 2)) :].split(",")):
            hops.append(entry)
            if len(hops) == MAX_HOPS:
                return hops
    return hops


def websocket_client_address(protocol: Any, proxies: TrustedProxies) -> str:
    """
    The client's address of an Autobahn server ``protocol`` ("" without a
    transport): its peer's, or the one a trusted proxy's ``X-Forwarded-For``
    names once the handshake's headers are parsed.
    """
    if protocol.transport is None:
        return ""
    peer = str(getattr(protocol.transport.getPeer(), "host", ""))
    # Autobahn's parsed headers, repeated ones joined with ", ".
    forwarded = (getattr(protocol, "http_headers", None) or {}).get("x-forwarded-for")
    if forwarded is None:
        return peer
    return proxies.client_address(peer, [forwarded])
