"""
Hypothesis strategies for OCPP 1.6 payloads, generated from the official JSON
schemas of the ``ocpp`` package (the files ``SchemaRegistry`` loads, read
here as they are, without ocppd's ranges), biased to the extremes: huge and
negative integers, long and non-ASCII strings, years 0001 and 9999, offsets
of ±23:59, long fractions, and numeric-looking sampled values.

:func:`from_schema` knows the keywords the charger-initiated schemas use and
refuses any other, so a schema that gains a keyword fails here loudly rather
than being fuzzed less than it seems.

:func:`expected_refusal` is the oracle for ocppd's own edge (docs/ocpp.md),
computed independently of ``ocppd.ocpp``: a NUL character anywhere is a
FormationViolation; an integer outside its documented range or a time that
is not a real instant in ``[1900-01-01, 9000-01-01)`` UTC is a
PropertyConstraintViolation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any

from hypothesis import strategies as st

from ocppd.ocpp.errors import FORMATION_VIOLATION, PROPERTY_CONSTRAINT_VIOLATION
from ocppd.ocpp.schemas import CHARGER_INTEGER_RANGES
from tests.fuzz.profile import EXTREME_INTEGERS, NUMERIC_LOOKING

__all__ = ["charger_request", "expected_refusal", "from_schema", "official_schema"]

_KNOWN_KEYWORDS = frozenset(
    {
        "$schema",
        "title",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "maxLength",
        "minItems",
        "items",
        "format",
    }
)

integers = st.one_of(
    st.integers(-2, 20), st.sampled_from(EXTREME_INTEGERS), st.integers(-(2**70), 2**70)
)

# Characters whose upper case is longer (ß -> SS) or otherwise surprising.
_CASE_CHANGING = "ßﬁﬃŉİıǅ"
# Characters databases and logs are known to mishandle.
_AWKWARD = "\x00\x01\x1b\n\r\t\u2028\u202e\ufeff'\"\\%_;"


def strings(max_length: int | None) -> st.SearchStrategy[str]:
    """Any text within ``max_length`` characters, often at it, some of it awkward."""
    limit = 20_000 if max_length is None else max_length
    short = min(limit, 40)
    return st.one_of(
        st.text(max_size=short),
        st.text(alphabet=_AWKWARD + _CASE_CHANGING, max_size=short),
        st.text(alphabet=_CASE_CHANGING, min_size=limit, max_size=limit)
        if max_length is not None
        else st.integers(100, limit).map(lambda n: "ß" * n),
        st.text(min_size=max(0, limit - 2), max_size=limit) if limit <= 255 else st.nothing(),
        st.sampled_from([text for text in NUMERIC_LOOKING if len(text) <= limit]),
    )


def mostly(common: st.SearchStrategy[Any], rare: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``common`` three times in four, ``rare`` the rest (``one_of`` would merge repeats)."""
    return st.sampled_from([common, common, common, rare]).flatmap(lambda chosen: chosen)


def _two(value: int) -> str:
    return f"{value:02d}"


@st.composite
def extreme_date_times(draw: st.DrawFn) -> str:
    """
    Text of the official ``date-time`` shape (and without offset, which
    ocppd also reads), at the edges of ``datetime``: years 0001 and 9999,
    offsets of ±23:59, impossible days and leap seconds, long fractions.
    """
    year = draw(
        st.sampled_from([1, 2, 1899, 1900, 1969, 1970, 2000, 2026, 2038, 8999, 9000, 9999])
        | st.integers(1, 9999)
    )
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28) | st.sampled_from([29, 30, 31]))
    hour = draw(st.integers(0, 23) | st.just(23))
    minute = draw(st.integers(0, 59) | st.just(59))
    second = draw(st.integers(0, 59) | st.sampled_from([59, 60]))
    fraction = draw(
        st.just("")
        | st.text("0123456789", min_size=1, max_size=9).map(".{}".format)
        | st.integers(10, 2000).map(lambda n: "." + "9" * n)
    )
    hours = draw(st.integers(0, 23) | st.just(23))
    minutes = draw(st.integers(0, 59) | st.just(59))
    offset = draw(
        st.sampled_from(["Z", "z", ""])
        | st.sampled_from(["+", "-"]).map(lambda sign: f"{sign}{_two(hours)}:{_two(minutes)}")
        | st.sampled_from(["+", "-"]).map(lambda sign: f"{sign}{_two(hours)}{_two(minutes)}")
    )
    separator = draw(st.sampled_from("Tt"))
    return (
        f"{year:04d}-{_two(month)}-{_two(day)}{separator}"
        f"{_two(hour)}:{_two(minute)}:{_two(second)}{fraction}{offset}"
    )


#: Times a charger with a working clock sends, around the fixture's sessions.
realistic_date_times = st.datetimes(
    min_value=datetime(2026, 11, 29, 10, 0), max_value=datetime(2026, 11, 29, 14, 0)
).map(lambda at: at.isoformat(timespec="milliseconds") + "Z")

#: Mostly realistic times, so most requests pass the edge and reach the processor.
date_times = mostly(realistic_date_times, extreme_date_times())


#: Sampled values: numbers of every shape, and text that only looks like one.
sampled_values = st.one_of(
    st.sampled_from(NUMERIC_LOOKING),
    st.integers(-(10**20), 10**20).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.from_regex(r"\A[+-]?[0-9]{0,20}(\.[0-9]{0,20})?([eE][+-]?[0-9]{1,12})?\Z"),
    strings(None),
)

#: Known values of the fixture (tags, sessions, connectors) mixed into the
#: generated ones, so that a request often concerns something that exists.
FIELD_BIAS: Mapping[str, st.SearchStrategy[Any]] = {
    "value": sampled_values,
    "idTag": st.sampled_from(["TAG1", "tag1", "BLOCKED", "UNKNOWN"]),
    "transactionId": st.integers(1, 30),
    "connectorId": st.integers(1, 3),
    "meterStart": st.integers(0, 10**7),
    # Large registers within the bounds, whose price exceeds any column.
    "meterStop": st.integers(0, 10**7) | st.sampled_from([2**31, 10**12, 2**53 - 1]),
}


def from_schema(schema: Mapping[str, Any], name: str = "") -> st.SearchStrategy[Any]:
    """Values valid against ``schema`` (the subset of draft-04 OCPP 1.6 uses)."""
    unknown = set(schema) - _KNOWN_KEYWORDS
    if unknown:
        raise ValueError(f"{name or 'schema'}: no strategy for keywords {sorted(unknown)}")
    strategy = _by_type(schema, name)
    bias = FIELD_BIAS.get(name)
    # Mostly the bias, so the fixture's sessions are often hit.
    return strategy if bias is None else mostly(bias, strategy)


def _by_type(schema: Mapping[str, Any], name: str) -> st.SearchStrategy[Any]:
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        if schema.get("additionalProperties", True) is not False:
            raise ValueError(f"{name}: objects with additional properties are not generated")
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fields = {key: from_schema(child, key) for key, child in properties.items()}
        return st.fixed_dictionaries(
            {key: fields[key] for key in properties if key in required},
            optional={key: fields[key] for key in properties if key not in required},
        )
    if kind == "array":
        least = schema.get("minItems", 0)
        return st.lists(from_schema(schema["items"], name), min_size=least, max_size=least + 4)
    if kind == "string":
        if "format" in schema:
            if schema["format"] != "date-time":
                raise ValueError(f"{name}: no strategy for format {schema['format']!r}")
            return date_times
        return strings(schema.get("maxLength"))
    if kind == "integer":
        return integers
    raise ValueError(f"{name}: no strategy for type {kind!r}")


def official_schema(action: str) -> dict[str, Any]:
    """The request schema of ``action`` as the ``ocpp`` package ships it."""
    path = files("ocpp") / "v16" / "schemas" / f"{action}.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def charger_request(action: str) -> st.SearchStrategy[dict[str, Any]]:
    """Requests of ``action`` valid against its official schema."""
    return from_schema(official_schema(action))


# -- the oracle --------------------------------------------------------------------

_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:[Zz]|([+-])(\d\d):?(\d\d))?\Z"
)
_EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def _time_refused(text: str) -> bool:
    """Whether a generated time is not a real instant within [1900, 9000) in UTC."""
    match = _TIME.match(text)
    assert match is not None, text  # the generator only makes this shape
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    sign, offset_hours, offset_minutes = match.group(8, 9, 10)
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        offset = timedelta(hours=int(offset_hours or 0), minutes=int(offset_minutes or 0))
        instant = local - offset if sign == "+" else local + offset
    except (ValueError, OverflowError):
        return True
    # The fraction cannot change the answer: both bounds are whole seconds.
    return not _EARLIEST <= instant < _LATEST


def _times(schema: Mapping[str, Any], value: Any) -> list[str]:
    """Every date-time text in ``value``, walked along ``schema``."""
    if schema.get("format") == "date-time":
        return [value]
    if schema.get("type") == "object":
        properties = schema.get("properties", {})
        return [t for key, child in value.items() for t in _times(properties[key], child)]
    if schema.get("type") == "array":
        return [t for item in value for t in _times(schema["items"], item)]
    return []


def _holds_nul(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(map(_holds_nul, value))
    return isinstance(value, str) and "\x00" in value


def expected_refusal(action: str, payload: dict[str, Any]) -> str | None:
    """
    The CALLERROR code ocppd's edge must answer this schema-valid request
    with (docs/ocpp.md: frame level, then "Bounds"), or None if it must
    answer it.
    """
    if _holds_nul(payload):
        return FORMATION_VIOLATION
    for field, (low, high) in CHARGER_INTEGER_RANGES.get(action, {}).items():
        if field in payload and not low <= payload[field] <= high:
            return PROPERTY_CONSTRAINT_VIOLATION
    if any(_time_refused(text) for text in _times(official_schema(action), payload)):
        return PROPERTY_CONSTRAINT_VIOLATION
    return None
