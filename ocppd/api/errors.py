"""One error format for every API failure: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An answer other than success, with its HTTP status and a stable code."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str, *, field: str | None = None) -> ApiError:
    """400 for a body that is not what the route takes; the message names the field."""
    if field is not None:
        message = f"{field}: {message}"
    return ApiError(400, "bad_request", message)


UNAUTHORIZED = ApiError(
    401, "unauthorized", "sign in first", headers={"WWW-Authenticate": 'Bearer realm="ocppd"'}
)
FORBIDDEN = ApiError(403, "forbidden", "this needs an operator account")
