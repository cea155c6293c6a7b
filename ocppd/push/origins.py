"""
Which web pages may open the push channel: the ``Origin`` check.

A browser sends the page's origin with every WebSocket handshake and cannot
lie about it; without the check, any site a signed-in operator visits could
open ``/push`` with a token it obtained and read along. Clients that are not
browsers send no Origin (and could send any), so they are let through: the
ticket is what authenticates them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _pattern(allowed: str) -> re.Pattern[str]:
    if allowed == "*":
        return re.compile(r".*")
    # "*" stands for host-name characters only, so "https://*.example.com"
    # cannot match "https://evil.test/.example.com".
    return re.compile(re.escape(allowed.lower()).replace(r"\*", r"[a-z0-9.-]*"))


class OriginPolicy:
    """
    ``allowed`` empty: only pages of the host the browser connected to
    (Origin host and port = the ``Host`` header). Otherwise the origins
    listed, each ``scheme://host[:port]``, where ``*`` matches host-name
    characters (``https://*.example.com``) and a lone ``*`` allows any page.
    """

    def __init__(self, allowed: Sequence[str] = ()) -> None:
        self._patterns = [_pattern(origin.strip()) for origin in allowed if origin.strip()]

    def allows(self, origin: str | None, host: str | None) -> bool:
        if origin is None:
            return True
        origin = origin.strip().lower()
        if self._patterns:
            return any(pattern.fullmatch(origin) for pattern in self._patterns)
        return _same_host(origin, host)


def _same_host(origin: str, host: str | None) -> bool:
    if not host or origin == "null":
        return False
    try:
        page = urlsplit(origin)
        server = urlsplit("//" + host.strip().lower())
        default = _DEFAULT_PORTS.get(page.scheme)
        if default is None or not page.hostname:
            return False
        return page.hostname == server.hostname and (page.port or default) == (
            server.port or default
        )
    except ValueError:  # a port that is not a number
        return False
