"""
JSON in and out of Twisted requests, and the one place where text and
numbers from a request become Python values.

Every value is checked where it is decoded, so that no route has to: a body
is strict JSON whose strings are all storable text
(``ocppd.jsoncodec.unstorable``) and whose numbers all fit a column
(``read_json_object``), a header is ASCII (``header_text``), a number in a
URL is ASCII digits (``parse_decimal``). The URL itself (path, Host) is
checked by the web listener before any route sees it
(``ocppd.web.url_problem``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from twisted.web.iweb import IRequest

from ocppd.api.errors import ApiError, bad_request
from ocppd.bounds import INT64_MAX
from ocppd.jsoncodec import holds_unstorable, unstorable

_INT64_DIGITS = len(str(INT64_MAX))


class _OutOfRange(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _parse_int(text: str) -> int:
    # By length first: int() of thousands of digits is quadratic work.
    if len(text.lstrip("-")) <= _INT64_DIGITS:
        value = int(text)
        if -INT64_MAX - 1 <= value <= INT64_MAX:
            return value
    raise _OutOfRange(text)


def _parse_float(text: str) -> float:
    value = float(text)
    # 1e400 reads as inf, which no field takes and Decimal arithmetic chokes on.
    if not math.isfinite(value):
        raise _OutOfRange(text)
    return value


def _check_text(body: dict[str, Any]) -> None:
    """400 naming the top-level field whose value (or a key within) is unstorable."""
    for field, value in body.items():
        if unstorable(field):
            raise bad_request("a field name holds NUL or an unpaired surrogate")
        if holds_unstorable(value):
            raise bad_request("text must not hold NUL or unpaired surrogates", field=field)


def read_json_object(request: IRequest) -> dict[str, Any]:
    """
    The request body as a JSON object, or a 400. The size was capped before
    the body was buffered (``ocppd.web.WebRequest``); NaN/Infinity, numbers
    beyond 64-bit integers or finite floats, unstorable text
    and nesting deep enough to exhaust the recursion limit are refused as well.
    """
    content_type = (header_text(request, "Content-Type") or "").split(";")[0].strip()
    if content_type and content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send application/json")
    raw = request.content.read() if request.content is not None else b""
    try:
        body = json.loads(
            raw or b"null",
            parse_constant=_reject_constant,
            parse_int=_parse_int,
            parse_float=_parse_float,
        )
    except _OutOfRange:
        raise bad_request(
            "a number is out of range: integers must fit in 64 bits, decimals must be finite"
        ) from None
    except (ValueError, RecursionError) as e:
        raise bad_request(f"the body is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    _check_text(body)
    return body


def header_text(request: IRequest, name: str) -> str | None:
    """
    The value of request header ``name`` (the last one if repeated), or None;
    400 naming the header unless it is printable ASCII. The headers ocppd
    reads (Authorization, Content-Type, Idempotency-Key) are ASCII by their
    definitions, and Twisted's own ``getHeader`` would raise on other bytes.
    """
    values = request.requestHeaders.getRawHeaders(name.encode("ascii"))
    if not values:
        return None
    value = values[-1]
    if not value.isascii() or any(byte < 0x20 or byte == 0x7F for byte in value):
        raise ApiError(400, "bad_request", f"{name}: printable ASCII only")
    return value.decode("ascii")


def parse_decimal(text: str, *, maximum: int) -> int | None:
    """
    The integer ``text`` spells in ASCII digits, if it is at most ``maximum``;
    else None. ``str.isdigit`` and ``int`` also take other scripts' digits
    (``٣``) and signs like ``①`` or ``²`` (which ``int`` then refuses): a
    number in a URL is 0-9 only.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(maximum)):
        return None
    value = int(text)
    return value if value <= maximum else None


def write_json(request: IRequest, status: int, body: Any) -> bytes:
    request.setResponseCode(status)
    request.setHeader("Content-Type", "application/json")
    request.setHeader("Cache-Control", "no-store")
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    # Should a lone surrogate reach an answer (a message quoting input), it
    # is written as the JSON escape it came in as, never a 500.
    return text.encode("utf-8", "backslashreplace")


def write_error(request: IRequest, error: ApiError) -> bytes:
    for name, value in error.headers.items():
        request.setHeader(name, value)
    return write_json(request, error.status, error.body())


def string_field(body: dict[str, Any], name: str, *, max_length: int = 254) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise bad_request("required, a non-empty string", field=name)
    if len(value) > max_length:
        raise bad_request(f"at most {max_length} characters", field=name)
    return value


def int_field(body: dict[str, Any], name: str, *, minimum: int, maximum: int) -> int:
    """A required integer (JSON number without a fraction; booleans are not numbers)."""
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise bad_request("required, an integer", field=name)
    if not minimum <= value <= maximum:
        raise bad_request(f"must be between {minimum} and {maximum}", field=name)
    return value


def no_other_fields(body: dict[str, Any], allowed: set[str]) -> None:
    """400 naming the first unknown field: most likely a misspelt one."""
    for name in body:
        if name not in allowed:
            raise bad_request("unknown field", field=name)
