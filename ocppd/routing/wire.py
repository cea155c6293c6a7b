"""
What a routed command and its reply look like between two nodes (JSON).

Request: ``{"v": 1, "chargePointId", "action", "payload", "timeout"}``.
Reply: ``{"v": 1, "outcome": ..., ...}`` with ``outcome`` one of

- ``answer``: ``payload``, the charger's CALLRESULT payload;
- ``not_connected`` / ``disconnected`` / ``timeout``: ``reason``;
- ``call_error``: ``code``, ``description``, ``details``;
- ``invalid_reply``: ``code``, ``description``, ``payload``;
- ``invalid_command``: ``code``, ``description``;
- ``failed``: ``reason`` (the owner failed unexpectedly).

Whatever comes off the bus is hostile: both decoders bound the size, check
every field's type, and raise ``WireError`` for anything else. Pure code, no I/O.
"""

from __future__ import annotations

import json
import math
from typing import Any

import attrs

from ocppd import jsoncodec
from ocppd.ocpp.commands import (
    CallErrorReceived,
    ChargerDisconnected,
    ChargerNotConnected,
    CommandTimeout,
    InvalidCommand,
    InvalidReply,
)
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.handshake import CHARGE_POINT_ID
from ocppd.routing.errors import BadRoutedReply

VERSION = 1
#: Largest request or reply body accepted (an OCPP frame is at most
#: ``[ocpp] max_message_size``, 64 KiB by default; this leaves room).
MAX_BODY = 1 << 20
#: Longest text field (reasons, codes, descriptions) kept from a reply.
MAX_TEXT = 1000
#: Longest OCPP action name.
MAX_ACTION = 64


class WireError(ValueError):
    """Bytes from another node that are not a request or reply of ours."""


@attrs.frozen
class CommandRequest:
    charge_point_id: str
    action: str
    payload: dict[str, Any]
    #: Seconds the owner gives the charger to answer.
    timeout: float


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _load(body: bytes, max_size: int) -> dict[str, Any]:
    if len(body) > max_size:
        raise WireError(f"{len(body)} bytes, more than {max_size}")
    try:
        obj = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as e:
        raise WireError(f"not JSON: {str(e)[:200]}") from None
    if not isinstance(obj, dict):
        raise WireError("not a JSON object")
    if jsoncodec.holds_unstorable(obj):
        # What no store can keep (NUL, lone surrogates): never a charger's
        # answer, which the OCPP endpoint would have refused.
        raise WireError("holds NUL or a lone surrogate")
    if obj.get("v") != VERSION:
        raise WireError(f"unknown version {str(obj.get('v'))[:20]!r}")
    return obj


def _text(obj: dict[str, Any], name: str, limit: int = MAX_TEXT) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise WireError(f"{name} is not a string")
    return value[:limit]


def _object(obj: dict[str, Any], name: str) -> dict[str, Any]:
    value = obj.get(name)
    if not isinstance(value, dict):
        raise WireError(f"{name} is not an object")
    return value


def encode_request(request: CommandRequest) -> bytes:
    return jsoncodec.dumps(
        {
            "v": VERSION,
            "chargePointId": request.charge_point_id,
            "action": request.action,
            "payload": request.payload,
            "timeout": request.timeout,
        }
    ).encode()


def decode_request(body: bytes, *, max_timeout: float, max_size: int = MAX_BODY) -> CommandRequest:
    """A request from another node; its timeout is capped at ``max_timeout``."""
    obj = _load(body, max_size)
    charge_point_id = _text(obj, "chargePointId", 100)
    if not CHARGE_POINT_ID.fullmatch(charge_point_id):
        raise WireError("chargePointId is not a charge point id")
    action = _text(obj, "action", MAX_ACTION + 1)
    if not action.isascii() or not action.isalpha() or len(action) > MAX_ACTION:
        raise WireError("action is not an OCPP action name")
    timeout = obj.get("timeout")
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise WireError("timeout is not a positive number")
    return CommandRequest(
        charge_point_id, action, _object(obj, "payload"), min(float(timeout), max_timeout)
    )


def _reply(outcome: str, **fields: Any) -> bytes:
    return jsoncodec.dumps({"v": VERSION, "outcome": outcome, **fields}).encode()


def encode_answer(payload: dict[str, Any]) -> bytes:
    return _reply("answer", payload=payload)


def encode_failure(error: BaseException) -> bytes:
    """The reply telling the caller's node why the command failed here."""
    if isinstance(error, ChargerNotConnected):
        return _reply("not_connected", reason=str(error)[:MAX_TEXT])
    if isinstance(error, ChargerDisconnected):
        return _reply("disconnected", reason=str(error)[:MAX_TEXT])
    if isinstance(error, CommandTimeout):
        return _reply("timeout", reason=str(error)[:MAX_TEXT])
    if isinstance(error, CallErrorReceived):
        return _reply(
            "call_error", code=error.code, description=error.description, details=error.details
        )
    if isinstance(error, InvalidReply):
        return _reply(
            "invalid_reply",
            code=error.error.code,
            description=error.error.description,
            payload=error.payload,
        )
    if isinstance(error, InvalidCommand):
        return _reply("invalid_command", code=error.error.code, description=error.error.description)
    return _reply("failed", reason=f"{type(error).__name__}: {error}"[:MAX_TEXT])


def decode_reply(body: bytes, *, max_size: int = MAX_BODY) -> dict[str, Any]:
    """
    The charger's answer from a reply, or raise what the owner reported, as
    the local errors (``BadRoutedReply`` for a reply that is not one of ours).
    """
    try:
        obj = _load(body, max_size)
        outcome = obj.get("outcome")
        if outcome == "answer":
            return _object(obj, "payload")
        error = _failure(outcome, obj)
    except WireError as e:
        raise BadRoutedReply(f"malformed reply from the charger's node: {e}") from None
    raise error


def _failure(outcome: Any, obj: dict[str, Any]) -> Exception:
    if outcome == "not_connected":
        return ChargerNotConnected(_text(obj, "reason"))
    if outcome == "disconnected":
        return ChargerDisconnected(_text(obj, "reason"))
    if outcome == "timeout":
        return CommandTimeout(_text(obj, "reason"))
    if outcome == "call_error":
        return CallErrorReceived(
            _text(obj, "code", 100), _text(obj, "description"), _object(obj, "details")
        )
    if outcome == "invalid_reply":
        error = OcppError(_text(obj, "code", 100), _text(obj, "description"))
        return InvalidReply(error, _object(obj, "payload"))
    if outcome == "invalid_command":
        return InvalidCommand(OcppError(_text(obj, "code", 100), _text(obj, "description")))
    if outcome == "failed":
        return BadRoutedReply(f"the charger's node failed: {_text(obj, 'reason')}")
    raise WireError(f"unknown outcome {str(outcome)[:40]!r}")
