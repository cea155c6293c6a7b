"""
The CMS map's tile server (``[web] map_tiles``): checking its URL template,
and the Content-Security-Policy source that lets the pages load its images.

The template is Leaflet's: ``https://tile.example.org/{z}/{x}/{y}.png``,
with ``{s}`` for a subdomain (``https://{s}.tile.example.org/...``), which
the policy allows as ``https://*.tile.example.org``. The host is checked
character by character: it goes into a header, where a space or a ``;``
would add a directive of its own.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

#: A host name, or ``{s}.`` and a host name; an optional port.
_HOST = re.compile(
    r"(\{s\}\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?"
)
#: What the rest of a template may hold: a path, a query, Leaflet's placeholders.
_REST = re.compile(r"[A-Za-z0-9/._~\-{}=&@%+,]*(\?[A-Za-z0-9/._~\-{}=&@%+,]*)?")
MAX_LENGTH = 500


def tile_problem(template: str) -> str | None:
    """Why ``template`` is no tile URL template, or None (the empty one is: no tiles)."""
    if not template:
        return None
    if len(template) > MAX_LENGTH:
        return f"at most {MAX_LENGTH} characters"
    parts = urlsplit(template)
    if (
        parts.scheme not in ("https", "http")
        or template[len(parts.scheme) : len(parts.scheme) + 3] != "://"
    ):
        return "an http:// or https:// URL"
    rest = template[len(parts.scheme) + 3 :]
    host, _, path = rest.partition("/")
    if not _HOST.fullmatch(host):
        return f"a host name (or {{s}}. and one) and a port, not {host!r}"
    if not _REST.fullmatch(path):
        return "a path without spaces, quotes or ;"
    for placeholder in ("{z}", "{x}", "{y}"):
        if placeholder not in path:
            return f"a template with {{z}}, {{x}} and {{y}} (no {placeholder})"
    return None


def tile_source(template: str) -> str | None:
    """The CSP source of the template's images (``https://*.example.org``), None for none."""
    if not template or tile_problem(template) is not None:
        return None
    scheme, _, rest = template.partition("://")
    host = rest.partition("/")[0]
    return f"{scheme}://{host.replace('{s}', '*')}"


def tile_sources(template: str) -> tuple[str, ...]:
    """
    The image sources the pages need besides their own: the tile server's,
    if any, and ``data:``: Leaflet points a tile it stops loading (the map
    moved on) at a blank GIF ``data:`` URL, which the policy would refuse
    (an image, which cannot run script).
    """
    source = tile_source(template)
    return () if source is None else (source, "data:")


def map_settings(web: Any) -> dict[str, Any]:
    """What the CMS map is told (``GET /api/cms/map``): tiles (None: none), their credit."""
    return {"tiles": web.map_tiles or None, "attribution": web.map_attribution or None}
