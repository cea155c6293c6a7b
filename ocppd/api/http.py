"""JSON in and out of Twisted requests."""

from __future__ import annotations

import json
from typing import Any

from twisted.web.iweb import IRequest

from ocppd.api.errors import ApiError, bad_request


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_json_object(request: IRequest) -> dict[str, Any]:
    """
    The request body as a JSON object, or a 400. The size was capped before
    the body was buffered (``ocppd.web.LimitedRequest``); NaN/Infinity and
    nesting deep enough to exhaust the recursion limit are refused as well.
    """
    content_type = (request.getHeader("content-type") or "").split(";")[0].strip()
    if content_type and content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send application/json")
    raw = request.content.read() if request.content is not None else b""
    try:
        body = json.loads(raw or b"null", parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise bad_request(f"the body is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def write_json(request: IRequest, status: int, body: Any) -> bytes:
    request.setResponseCode(status)
    request.setHeader("Content-Type", "application/json")
    request.setHeader("Cache-Control", "no-store")
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


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
