"""
Lists: ``{"items": [...], "next": CURSOR|null}`` with ``?limit=&cursor=``.

Pagination is by keyset (the last key of a page), not by offset: a page
neither repeats nor skips rows when others are added or deleted between two
requests, and a deep page costs an index seek rather than a scan.

The cursor is opaque to clients: URL-safe base64 of a small JSON object
naming the list it belongs to and the last key. Naming the list lets a
cursor of one list be refused (400) on another instead of being read as a
key of the wrong type. It is not signed: it only says where to resume, and a
forged one can show nothing the caller could not list anyway.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.web.iweb import IRequest

from ocppd.api.errors import bad_request
from ocppd.api.http import parse_decimal
from ocppd.jsoncodec import unstorable

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_MAX_CURSOR_LENGTH = 512

T = TypeVar("T")


def query_arg(request: IRequest, name: str) -> str | None:
    """
    The single value of query parameter ``name``, or None when absent; 400
    when given twice (which value was meant is a guess), not UTF-8 or
    holding NUL (``ocppd.jsoncodec.unstorable``).
    """
    values = (request.args or {}).get(name.encode("ascii"))
    if not values:
        return None
    if len(values) > 1:
        raise bad_request("give it once", field=name)
    try:
        text = str(values[0].decode("utf-8"))
    except UnicodeDecodeError:
        raise bad_request("not UTF-8", field=name) from None
    if unstorable(text):
        raise bad_request("must not hold NUL", field=name)
    return text


def parse_limit(request: IRequest) -> int:
    """``?limit=``: 1 to 200, 50 when absent; anything else is a 400."""
    text = query_arg(request, "limit")
    if text is None:
        return DEFAULT_LIMIT
    limit = parse_decimal(text, maximum=MAX_LIMIT)
    if limit is None or limit < 1:
        raise bad_request(f"an integer from 1 to {MAX_LIMIT}", field="limit")
    return limit


def encode_cursor(kind: str, key: int | str) -> str:
    """The cursor resuming list ``kind`` after ``key``."""
    raw = json.dumps({"l": kind, "k": key}, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(text: str | None, kind: str, key_type: type[int] | type[str]) -> Any:
    """The key in a cursor of list ``kind`` (None without a cursor), or 400."""
    if text is None:
        return None
    invalid = bad_request("not a cursor of this list", field="cursor")
    if not text or len(text) > _MAX_CURSOR_LENGTH:
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise invalid from None
    if not isinstance(data, dict) or data.get("l") != kind:
        raise invalid
    key = data.get("k")
    # bool is an int subclass; a cursor holding true is not one we made.
    if not isinstance(key, key_type) or isinstance(key, bool):
        raise invalid
    return key


def page(
    kind: str,
    rows: Sequence[T],
    limit: int,
    key: Callable[[T], int | str],
    render: Callable[[T], dict[str, Any]],
) -> dict[str, Any]:
    """
    The list body for ``rows``, fetched with ``limit + 1``: the extra row,
    if there, only says that another page exists, without a COUNT query.
    """
    shown = rows[:limit]
    more = len(rows) > limit
    return {
        "items": [render(row) for row in shown],
        "next": encode_cursor(kind, key(shown[-1])) if more and shown else None,
    }
