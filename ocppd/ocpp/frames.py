"""
OCPP-J 1.6 RPC frames: parsing untrusted text into messages, and marshalling.

An OCPP-J message is a JSON array (OCPP-J 1.6 section 4)::

    [2, "<UniqueId>", "<Action>", {<Payload>}]                        CALL
    [3, "<UniqueId>", {<Payload>}]                                    CALLRESULT
    [4, "<UniqueId>", "<errorCode>", "<errorDescription>", {<errorDetails>}]  CALLERROR

This module is pure (no I/O, no reactor), in the manner of
``autobahn.wamp.message``: :func:`parse_frame` turns the text of one WebSocket
message into a :class:`Call`, :class:`CallResult` or :class:`CallError`, or
raises :class:`FrameError` carrying the CALLERROR code to answer with and the
unique id to answer to; each message class has ``marshal()``.

Choice of codes, frame level (the reference ``ocpp`` package's ``unpack()``
choices where it makes one, extended to the cases it does not check):

======================================================  ============================
What is wrong                                           Code
======================================================  ============================
not UTF-8, empty, not JSON, NaN/Infinity, a number      FormationViolation
that overflows a float, duplicate object keys, a lone
surrogate escape, a NUL character (``\\u0000``, which
PostgreSQL text cannot hold), nesting deeper than
``max_depth``
JSON, but not an array; ``[]``                          ProtocolError
MessageTypeId not the integer 2, 3 or 4 (``"2"``,       PropertyConstraintViolation
``2.0``, ``true``, ``9``)
uniqueId missing or not a string                        ProtocolError
uniqueId longer than 36 characters                      PropertyConstraintViolation
too few or too many elements for the MessageTypeId      ProtocolError
action / errorCode / errorDescription not a string,     ProtocolError
payload / errorDetails not an object
======================================================  ============================

Why these: the reference maps an array with missing elements to
``ProtocolError`` ("Payload for Action is incomplete") and an unknown
MessageTypeId to ``PropertyConstraintViolation`` ("at least one field contains
an invalid value"); a wrong element type and extra elements mean the frame
does not have its message type's shape, which the reference also reports as
``ProtocolError`` (its constructors fail with ``TypeError``). The uniqueId's
36-character limit (OCPP-J 1.6 section 4.1.3) is a constraint on a *value* of
an otherwise well-formed frame, hence ``PropertyConstraintViolation``, the same
code the schema layer gives a ``maxLength`` violation and the frame layer
gives a bad MessageTypeId value.

The unique id to answer with (:attr:`FrameError.unique_id`): the frame's own
when it can be recovered, else ``"-1"``. OCPP-J 1.6 does not say what to
answer to a frame whose id is unknown; OCPP-J 2.0.1 (CALLERROR section) uses
``"-1"``, and we follow it. The id is recovered when element 1 is a string of
at most 36 characters, and also, for text that is not valid JSON (a NaN in a
MeterValues, say), when the text *starts* with a well-formed
``[<2|3|4>, "<id>",`` prefix: the charger then gets an answer it can match to
its request instead of waiting for its timeout and resending the same bytes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from itertools import accumulate
from typing import Any, ClassVar

import attrs
import orjson

from ocppd import jsoncodec
from ocppd.ocpp.errors import (
    FORMATION_VIOLATION,
    PROPERTY_CONSTRAINT_VIOLATION,
    PROTOCOL_ERROR,
    OcppError,
)

__all__ = [
    "CALL",
    "CALL_ERROR",
    "CALL_RESULT",
    "DEFAULT_MAX_DEPTH",
    "MAX_UNIQUE_ID_LENGTH",
    "UNKNOWN_UNIQUE_ID",
    "Call",
    "CallError",
    "CallResult",
    "Frame",
    "FrameError",
    "marshal_result",
    "parse_frame",
]

CALL = 2
CALL_RESULT = 3
CALL_ERROR = 4

#: OCPP-J 1.6 section 4.1.3: "maximum of 36 characters, to allow for GUIDs".
MAX_UNIQUE_ID_LENGTH = 36

#: The id we answer to when the frame's own cannot be recovered (OCPP-J 2.0.1).
UNKNOWN_UNIQUE_ID = "-1"

#: Deepest JSON nesting accepted, counting the frame's own array as 1. The
#: deepest OCPP 1.6 message (SetChargingProfile) nests 6 levels; 32 leaves
#: room for vendor DataTransfer data while keeping ``json`` far from its
#: recursion limit.
DEFAULT_MAX_DEPTH = 32

# Number of array elements of each message type.
_FRAME_LENGTH = {CALL: 4, CALL_RESULT: 3, CALL_ERROR: 5}


def _check_unique_id(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    """attrs validator: a uniqueId we send must itself follow OCPP-J."""
    if not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a str, not {type(value).__name__}")
    if len(value) > MAX_UNIQUE_ID_LENGTH:
        raise ValueError(f"{attribute.name} is longer than {MAX_UNIQUE_ID_LENGTH} characters")


def _dumps(value: list[Any]) -> str:
    """
    Compact JSON as OCPP-J peers expect it.

    ``ensure_ascii=False`` sends non-ASCII text as UTF-8 rather than
    ``\\uXXXX`` escapes (shorter, and some chargers mishandle escapes);
    ``allow_nan=False`` makes a non-finite float a bug here rather than
    invalid JSON on the wire.
    """
    return jsoncodec.dumps(value, ensure_ascii=False)


@attrs.frozen
class Call:
    """A request: ``[2, unique_id, action, payload]``."""

    MESSAGE_TYPE: ClassVar[int] = CALL

    unique_id: str = attrs.field(validator=_check_unique_id)
    action: str = attrs.field(validator=attrs.validators.instance_of(str))
    payload: dict[str, Any] = attrs.field(validator=attrs.validators.instance_of(dict))

    def marshal(self) -> str:
        """The frame as compact JSON text."""
        return _dumps([self.MESSAGE_TYPE, self.unique_id, self.action, self.payload])


@attrs.frozen
class CallResult:
    """A successful answer: ``[3, unique_id, payload]``."""

    MESSAGE_TYPE: ClassVar[int] = CALL_RESULT

    unique_id: str = attrs.field(validator=_check_unique_id)
    payload: dict[str, Any] = attrs.field(validator=attrs.validators.instance_of(dict))

    def marshal(self) -> str:
        """The frame as compact JSON text."""
        return marshal_result(self.unique_id, self.payload)


def marshal_result(unique_id: str, payload: dict[str, Any]) -> str:
    """``CallResult(unique_id, payload).marshal()`` for a uniqueId known to be valid."""
    return _dumps([CALL_RESULT, unique_id, payload])


@attrs.frozen
class CallError:
    """
    An error answer: ``[4, unique_id, code, description, details]``.

    A CALLERROR we receive keeps its ``code`` verbatim even when it is not
    one of :data:`ocppd.ocpp.errors.CALL_ERROR_CODES`: it is the charger's
    answer, to be logged and passed on, not a reason to drop the frame.
    """

    MESSAGE_TYPE: ClassVar[int] = CALL_ERROR

    unique_id: str = attrs.field(validator=_check_unique_id)
    code: str = attrs.field(validator=attrs.validators.instance_of(str))
    description: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    details: dict[str, Any] = attrs.field(
        factory=dict, validator=attrs.validators.instance_of(dict)
    )

    @classmethod
    def from_error(cls, unique_id: str, error: OcppError) -> CallError:
        """The CALLERROR answering ``unique_id`` with ``error``."""
        return cls(unique_id, error.code, error.description, dict(error.details))

    def to_error(self) -> OcppError:
        """This CALLERROR as an exception, e.g. to errback a pending request."""
        return OcppError(self.code, self.description, dict(self.details))

    def marshal(self) -> str:
        """The frame as compact JSON text."""
        return _dumps(
            [self.MESSAGE_TYPE, self.unique_id, self.code, self.description, self.details]
        )


Frame = Call | CallResult | CallError


def _checked_call(unique_id: str, action: str, payload: dict[str, Any]) -> Call:
    """
    ``Call(unique_id, action, payload)`` for fields :func:`parse_frame` has
    already checked: attrs' validators would check them again per message.
    """
    call = object.__new__(Call)
    object.__setattr__(call, "unique_id", unique_id)
    object.__setattr__(call, "action", action)
    object.__setattr__(call, "payload", payload)
    return call


class FrameError(OcppError):
    """
    A frame that cannot be parsed, with what to answer.

    ``unique_id`` is the id to put in the CALLERROR: the frame's own when it
    could be recovered, else :data:`UNKNOWN_UNIQUE_ID` (``"-1"``, see the
    module docstring). ``message_type_id`` is the frame's MessageTypeId when
    it was a valid 2, 3 or 4, else ``None``: OCPP-J only answers a CALL with a
    CALLERROR, so for a broken CALLRESULT/CALLERROR (3 or 4) the protocol
    should fail its own pending request ``unique_id`` rather than send a
    CALLERROR back.
    """

    unique_id: str
    message_type_id: int | None

    def __init__(
        self,
        code: str,
        description: str = "",
        details: dict[str, Any] | None = None,
        *,
        unique_id: str = UNKNOWN_UNIQUE_ID,
        message_type_id: int | None = None,
    ) -> None:
        super().__init__(code, description, details)
        self.unique_id = unique_id
        self.message_type_id = message_type_id

    def __repr__(self) -> str:
        return (
            f"FrameError(code={self.code!r}, description={self.description!r}, "
            f"unique_id={self.unique_id!r}, message_type_id={self.message_type_id!r})"
        )


# -- decoding -----------------------------------------------------------------

# A JSON string literal, or an unterminated one running to the end of the
# text. Every iteration of the inner loop starts with a backslash and the tail
# always matches (a quote or the end), so the match never backtracks and the
# scan is linear even on adversarial input such as '"\\"\\"\\"...'.
_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.?[^"\\]*)*(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}

# The start of a frame, for recovering the unique id of text that is not
# valid JSON. Only JSON whitespace, only ids without escapes or control
# characters or surrogates, and the id must be followed by a separator.
_FRAME_PREFIX = re.compile(
    r"\A[ \t\n\r]*\[[ \t\n\r]*([234])[ \t\n\r]*,[ \t\n\r]*"
    r'"([^"\\\x00-\x1f\ud800-\udfff]{0,' + str(MAX_UNIQUE_ID_LENGTH) + r'})"[ \t\n\r]*[,\]]'
)

# A \uD800-\uDFFF escape may be half of a valid surrogate pair or a lone
# surrogate; only when one appears do we pay for the full check.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# JSON text can only carry a NUL escaped (a raw one is a decode error). The
# same six characters also follow an escaped backslash (a literal backslash
# and "u0000"); the full check tells the two apart.
_NUL_ESCAPE = "\\u0000"


def _too_deep(text: str, max_depth: int) -> bool:
    """
    Whether the JSON ``text`` nests arrays/objects deeper than ``max_depth``.

    ``json.loads`` recurses once per level and raises ``RecursionError``
    (or worse, with a raised recursion limit, overflows the C stack) on
    deep input, so the depth is measured before it runs. Brackets inside
    string literals do not count; the literals are cut out with a linear
    regex (:data:`_STRING_LITERAL`, which tokenises strings exactly as the
    JSON decoder does), the remaining brackets are turned into +1/-1 steps
    and the maximum running sum is taken, all in C. The common case, fewer
    brackets than the limit in the whole text, costs two ``str.count``.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    brackets = _NOT_BRACKET.sub("", _STRING_LITERAL.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > max_depth


def _reject_constant(name: str) -> Any:
    """``json`` ``parse_constant`` hook: NaN, Infinity and -Infinity are not JSON."""
    raise ValueError(f"{name} is not a valid JSON number")


def _finite_float(text: str) -> float:
    """``json`` ``parse_float`` hook: ``1e999`` would silently become ``inf``."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """
    ``json`` ``object_pairs_hook``: refuse duplicate keys.

    ``json`` silently keeps the last of ``{"idTag": "A", "idTag": "B"}``,
    while another parser along the way (a log viewer, a consumer in another
    language) may keep the first, and the raw text stored in the message log
    would then say something else than what was acted on (RFC 8259 section 4:
    behaviour with duplicate names is unpredictable). It is refused instead.
    """
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key[:40]!r} in object")
            seen.add(key)
    return result


def _decode_fast(text: str) -> Any:
    """
    The common frame decoded by ``orjson``, or ``None`` when only the strict
    decoder below can give the answer (its value or its exact error).

    ``orjson`` rejects NaN/Infinity, numbers that overflow a float, lone
    surrogates and control characters as the strict decoder does, but keeps
    the last of duplicate keys and reads integers beyond 64 bits as floats.
    Both cases are ruled out by one comparison: a value that encodes back to
    exactly the received text came from text without duplicate keys (an
    encoder never writes two), and its numbers are the ones written. Compact
    frames (what chargers send) take this path; a frame with whitespace,
    escapes or a non-canonical number takes the strict one, which was the
    only one before. ``None`` is never a frame (those are arrays), so it can
    mean "undecided".
    """
    try:
        value = orjson.loads(text)
        encoded = orjson.dumps(value)
    except (orjson.JSONDecodeError, orjson.JSONEncodeError):
        return None
    return value if encoded == text.encode("utf-8") else None


def _holds_nul(value: Any) -> bool:
    """Whether a decoded frame has a NUL character in any string or key."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in key or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _without_nul(text: str, value: Any) -> Any:
    """
    ``value``, unless it holds a NUL character: valid JSON, but PostgreSQL
    text columns refuse it, so the store (an idTag, a vendor name, a sampled
    value, the logged action or uniqueId) would fail on it after the answer.
    """
    if _NUL_ESCAPE in text and _holds_nul(value):
        raise ValueError("frame contains a NUL character (\\u0000)")
    return value


def _decode(text: str | bytes, max_depth: int) -> Any:
    """Decode the text of a frame, raising ``ValueError`` with a reason."""
    if isinstance(text, str) and text.count("[") + text.count("{") <= max_depth:
        # Within the depth limit by the cheap bound of _too_deep; orjson's own
        # limit (1024) is far above any max_depth we are given.
        value = _decode_fast(text)
        if value is not None:
            return _without_nul(text, value)
    if isinstance(text, bytes):
        # Decode ourselves: json.loads(bytes) would also accept UTF-16/32.
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError("frame is not UTF-8 text") from e
    if not text.strip(" \t\n\r"):
        raise ValueError("frame is empty")
    if _too_deep(text, max_depth):
        raise ValueError(f"frame nests deeper than {max_depth} levels")
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_object_without_duplicates,
        )
    except RecursionError as e:  # not reachable after _too_deep; never let it escape
        raise ValueError(f"frame nests deeper than {max_depth} levels") from e
    # A lone surrogate (raw in a str, or as a \uD800 escape) decodes fine but
    # cannot be encoded as UTF-8: it would break the WebSocket answer, the
    # bus and the database further on. Refuse it here.
    try:
        if _SURROGATE_ESCAPE.search(text):
            _dumps(value).encode("utf-8")
        else:
            text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError("frame contains a lone UTF-16 surrogate") from e
    return _without_nul(text, value)


def _sniff_prefix(text: str | bytes) -> tuple[str, int | None]:
    """
    The unique id and MessageTypeId of text that failed to decode, if its
    start is a well-formed frame prefix; else ``("-1", None)``.
    """
    if isinstance(text, bytes):
        text = text[:256].decode("utf-8", errors="replace")
    match = _FRAME_PREFIX.match(text, 0, 256)
    if match is None:
        return UNKNOWN_UNIQUE_ID, None
    return match.group(2), int(match.group(1))


def parse_frame(text: str | bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Frame:
    """
    Parse the text of one OCPP-J WebSocket message.

    ``text`` is the message as ``str``, or as the UTF-8 ``bytes`` Autobahn
    hands to ``onMessage`` (decoded strictly here). ``max_depth`` bounds the
    JSON nesting, the frame's own array counting as 1. The size of the
    message is not bounded here: the WebSocket layer caps it
    (``maxMessagePayloadSize``) before the text exists.

    Raises :class:`FrameError` (never anything else) with the code and the
    unique id to answer with; see the module docstring for the table.
    """
    try:
        value = _decode(text, max_depth)
    except ValueError as e:  # includes json.JSONDecodeError and int digit limits
        unique_id, message_type_id = _sniff_prefix(text)
        reason = str(e)
        if len(reason) > 120:  # the int digit limit's message runs to 200 characters
            reason = reason[:117] + "..."
        raise FrameError(
            FORMATION_VIOLATION,
            f"invalid JSON: {reason}",
            unique_id=unique_id,
            message_type_id=message_type_id,
        ) from None

    if (
        type(value) is list
        and len(value) == 4
        and type(value[0]) is int  # not True, not 2.0
        and value[0] == CALL
        and type(value[1]) is str
        and len(value[1]) <= MAX_UNIQUE_ID_LENGTH
        and type(value[2]) is str
        and type(value[3]) is dict
    ):
        # Nearly every frame: a well-formed CALL by every check below, built
        # without attrs checking its fields a second time.
        return _checked_call(value[1], value[2], value[3])
    return _frame_of(value)


def _frame_of(value: Any) -> Frame:
    """The frame a decoded JSON ``value`` is, or the FrameError saying why it is none."""
    if not isinstance(value, list):
        raise FrameError(PROTOCOL_ERROR, f"frame must be a JSON array, not {_json_type(value)}")
    if not value:
        raise FrameError(PROTOCOL_ERROR, "frame has no MessageTypeId")

    element_1 = value[1] if len(value) > 1 else None
    answer_id = (
        element_1
        if isinstance(element_1, str) and len(element_1) <= MAX_UNIQUE_ID_LENGTH
        else UNKNOWN_UNIQUE_ID
    )

    message_type_id = value[0]
    # type() rather than isinstance(): True is an int, and 2.0 == 2.
    if type(message_type_id) is not int or message_type_id not in _FRAME_LENGTH:
        raise FrameError(
            PROPERTY_CONSTRAINT_VIOLATION,
            f"MessageTypeId must be 2, 3 or 4, not {_short(message_type_id)}",
            unique_id=answer_id,
        )

    def fail(code: str, description: str) -> FrameError:
        return FrameError(code, description, unique_id=answer_id, message_type_id=message_type_id)

    if len(value) < 2:
        raise fail(PROTOCOL_ERROR, "frame has no uniqueId")
    if not isinstance(element_1, str):
        raise fail(PROTOCOL_ERROR, f"uniqueId must be a string, not {_json_type(element_1)}")
    if len(element_1) > MAX_UNIQUE_ID_LENGTH:
        raise fail(
            PROPERTY_CONSTRAINT_VIOLATION,
            f"uniqueId is longer than {MAX_UNIQUE_ID_LENGTH} characters",
        )
    expected = _FRAME_LENGTH[message_type_id]
    if len(value) != expected:
        raise fail(
            PROTOCOL_ERROR,
            f"frame of MessageTypeId {message_type_id} must have {expected} elements, "
            f"not {len(value)}",
        )

    if message_type_id == CALL:
        _, unique_id, action, payload = value
        _expect(fail, "action", action, str)
        _expect(fail, "payload", payload, dict)
        return Call(unique_id, action, payload)
    if message_type_id == CALL_RESULT:
        _, unique_id, payload = value
        _expect(fail, "payload", payload, dict)
        return CallResult(unique_id, payload)
    _, unique_id, code, description, details = value
    _expect(fail, "errorCode", code, str)
    _expect(fail, "errorDescription", description, str)
    _expect(fail, "errorDetails", details, dict)
    return CallError(unique_id, code, description, details)


_JSON_TYPE_NAMES: dict[type, str] = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _json_type(value: object) -> str:
    """The JSON type of a decoded value, for error descriptions."""
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _short(value: object) -> str:
    """A decoded value for an error description, never echoing much input."""
    if isinstance(value, dict | list):
        return _json_type(value)
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _expect(
    fail: Callable[[str, str], FrameError], name: str, value: object, expected: type
) -> None:
    """Raise ``ProtocolError`` unless the element ``name`` has the JSON type expected."""
    if not isinstance(value, expected):
        raise fail(
            PROTOCOL_ERROR,
            f"{name} must be {_JSON_TYPE_NAMES[expected]}, not {_json_type(value)}",
        )
