"""
Validation of OCPP 1.6 payloads against the official OCA JSON schemas.

The schemas are read from the installed ``ocpp`` package
(``ocpp/v16/schemas/<Action>.json`` for requests,
``<Action>Response.json`` for responses; never copied into this repository)
and compiled once each with ``fastjsonschema`` when
:meth:`SchemaRegistry.load` runs. There is no module-level cache: the daemon
loads one registry at start-up and injects it where it is needed, and tests
build their own.

Deliberate departures from running the files through ``fastjsonschema``
as they are:

- Every schema is compiled as draft-04. The security whitepaper's schemas
  declare draft-06, under which ``1.0`` is an integer; OCPP's integers are
  integers, and a float ``requestId`` would travel on into dict keys and
  integer columns. Those schemas use no draft-06-only keyword (checked at
  load time), so draft-04 is otherwise the same validation.
- ``format: date-time`` is checked by :func:`is_date_time` instead of
  ``fastjsonschema``'s regex, which matches any Unicode digit (``٢٠٢٦``)
  and accepts leap second ``:60``, neither of which ``datetime`` can parse.
  A time without an offset is accepted: ``ocppd.timeutil.parse_iso`` reads
  it as UTC, as OCPP 1.6 intends, and real chargers send it. A time must
  lie in ``[EARLIEST_TIME, LATEST_TIME)`` once in UTC: years 0001 and 9999
  are valid RFC 3339, but a day of arithmetic away from ``datetime``'s
  limits.
- The 1.6 schemas give integers no range, so ``meterStart: 2**63`` would
  fail in the store instead (and a charger retry an ``InternalError``
  forever). Every integer of a charger-initiated request gets one
  (:data:`CHARGER_INTEGER_RANGES`, loaded as ``minimum``/``maximum``), and
  :meth:`SchemaRegistry.load` refuses to start if a charger's integer has
  none: every value that passes validation fits the store and the pages.
  The integers and decimals of the requests ocppd sends (central-system
  initiated) get ranges as well (:data:`CENTRAL_INTEGER_RANGES`, by property
  name wherever it is nested): an operator's ``connectorId: 2**40`` is a 400
  at the API, never a frame a charger's 32-bit firmware misreads.
- Defaults are never inserted into a payload (``use_default=False``):
  validation does not mutate what was received.
- A remote ``$ref`` in a schema is refused at load time, so loading never
  reaches the network.

Mapping of failures to CALLERROR codes, per OCPP-J 1.6 table 7 (deliberately
not the ``ocpp`` package's mapping, which reports ``required`` as
ProtocolError and ``maxLength`` as TypeConstraintViolation):

=================================================  ================================
Schema rule that failed                            Code
=================================================  ================================
``type`` of a field                                TypeConstraintViolation
``type`` of the payload itself (not an object)     FormationViolation
``required``, ``minItems``, ``maxItems``           OccurenceConstraintViolation
``additionalProperties``                           FormationViolation
``enum``, ``maxLength``, ``minLength``,            PropertyConstraintViolation
``pattern``, ``format``, ``minimum``,
``maximum``, ``exclusiveMinimum``,
``exclusiveMaximum``, ``multipleOf``; a number
too large to check at all
anything else                                      FormationViolation
=================================================  ================================

The error's ``description`` is ``"<field path>: <what is wrong>"`` (e.g.
``"idTag: must be shorter than or equal to 20 characters"``) and its
``details`` are ``{"field": <path>, "rule": <schema keyword>}``; the path of
a nested field reads ``meterValue[0].sampledValue[1].measurand``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import fastjsonschema

from ocppd.bounds import INT32_MAX, INT32_MIN
from ocppd.measurands import MAX_READING
from ocppd.ocpp.actions import CENTRAL_SYSTEM_INITIATED, CHARGER_INITIATED
from ocppd.ocpp.errors import (
    FORMATION_VIOLATION,
    NOT_IMPLEMENTED,
    OCCURENCE_CONSTRAINT_VIOLATION,
    PROPERTY_CONSTRAINT_VIOLATION,
    TYPE_CONSTRAINT_VIOLATION,
    OcppError,
)
from ocppd.ocpp.schematypes import CompiledSchema, compile_schema
from ocppd.timeutil import parse_iso

__all__ = [
    "CENTRAL_INTEGER_RANGES",
    "CENTRAL_NUMBER_RANGE",
    "CHARGER_INTEGER_RANGES",
    "EARLIEST_TIME",
    "LATEST_TIME",
    "RULE_CODES",
    "SchemaRegistry",
    "is_date_time",
    "schema_error",
]

Validator = Callable[[Any], Any]

_DRAFT_04 = "http://json-schema.org/draft-04/schema#"

# Keywords of later drafts that draft-04 would silently ignore; a schema using
# one of them cannot be downgraded to draft-04.
_POST_DRAFT_04_KEYWORDS = frozenset(
    {"const", "contains", "propertyNames", "examples", "if", "then", "else"}
)

#: The CALLERROR code for each failed schema keyword (see the module
#: docstring); a keyword not listed is a ``FormationViolation``.
RULE_CODES: Mapping[str, str] = {
    "type": TYPE_CONSTRAINT_VIOLATION,
    "required": OCCURENCE_CONSTRAINT_VIOLATION,
    "minItems": OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": OCCURENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": FORMATION_VIOLATION,
    "enum": PROPERTY_CONSTRAINT_VIOLATION,
    "maxLength": PROPERTY_CONSTRAINT_VIOLATION,
    "minLength": PROPERTY_CONSTRAINT_VIOLATION,
    "pattern": PROPERTY_CONSTRAINT_VIOLATION,
    "format": PROPERTY_CONSTRAINT_VIOLATION,
    "minimum": PROPERTY_CONSTRAINT_VIOLATION,
    "maximum": PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMinimum": PROPERTY_CONSTRAINT_VIOLATION,
    "exclusiveMaximum": PROPERTY_CONSTRAINT_VIOLATION,
    "multipleOf": PROPERTY_CONSTRAINT_VIOLATION,
}

# Longest field path echoed back: an unexpected property's name is the
# charger's text, not ours.
_MAX_FIELD_LENGTH = 100


#: The range of each integer of each charger-initiated request (docs/ocpp.md,
#: "Bounds"). Connectors follow OCPP 1.6 (0 is the charger itself, a
#: transaction needs a real connector); meter registers count Wh up from 0
#: to the largest reading pages show exactly; ids a charger reports back are
#: any OCPP integer, so an unknown one is still kept for an operator.
CHARGER_INTEGER_RANGES: Mapping[str, Mapping[str, tuple[int, int]]] = {
    "MeterValues": {"connectorId": (0, INT32_MAX), "transactionId": (INT32_MIN, INT32_MAX)},
    "StartTransaction": {
        "connectorId": (1, INT32_MAX),
        "meterStart": (0, MAX_READING),
        "reservationId": (INT32_MIN, INT32_MAX),
    },
    "StatusNotification": {"connectorId": (0, INT32_MAX)},
    "StopTransaction": {
        "meterStop": (0, MAX_READING),
        "transactionId": (INT32_MIN, INT32_MAX),
    },
}

#: The range of the integers of the requests ocppd sends, by property name
#: wherever it is nested (``chargingSchedule.duration`` is ``duration``), with
#: ``(action, name)`` first where one action differs. OCPP 1.6 integers are
#: 32-bit in chargers' firmware; counts, durations and connectors are not
#: negative; a remote start and an unlock need a real connector (1.6 5.11, 5.17).
CENTRAL_INTEGER_RANGES: Mapping[str | tuple[str, str], tuple[int, int]] = {
    "connectorId": (0, INT32_MAX),
    ("RemoteStartTransaction", "connectorId"): (1, INT32_MAX),
    ("UnlockConnector", "connectorId"): (1, INT32_MAX),
    "retries": (0, INT32_MAX),
    "retryInterval": (0, INT32_MAX),
    "duration": (0, INT32_MAX),
    "startPeriod": (0, INT32_MAX),
    "stackLevel": (0, INT32_MAX),
    "numberPhases": (1, 3),
}
#: The range of every decimal of a request ocppd sends (a charging rate's
#: ``limit`` and ``minChargingRate``, in A or W): up to 10 MW.
CENTRAL_NUMBER_RANGE = (0, 10_000_000)

#: The earliest time accepted in an OCPP payload, in UTC: before any charger's
#: clock (one without a clock says 1970), centuries from ``datetime.min``.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
#: The first time no longer accepted: centuries from ``datetime.max``.
LATEST_TIME = datetime(9000, 1, 1, tzinfo=UTC)

# ASCII digits only ([0-9], not \d, which matches any Unicode digit).
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})?\Z"
)


def is_date_time(value: str) -> bool:
    """
    Whether ``value`` is an OCPP ``dateTime``: RFC 3339 shape with ASCII
    digits, optional offset (UTC when absent), a real calendar time that
    ``ocppd.timeutil.parse_iso`` can parse, from :data:`EARLIEST_TIME` to
    before :data:`LATEST_TIME`, so every payload that passes validation can
    be stored and computed with without a second failure further on.
    Fraction digits beyond microseconds are accepted and dropped.
    """
    if not _DATE_TIME.match(value):
        return False
    try:
        if value[-1] == "Z":
            # What chargers send (a MeterValues has one per reading): read as
            # parse_iso reads it, which only spells the Z as +00:00 for
            # fromisoformat and converts UTC to UTC, at a third of its cost.
            instant = datetime.fromisoformat(value)
        else:
            instant = parse_iso(value)
    except (ValueError, OverflowError):
        return False
    return EARLIEST_TIME <= instant < LATEST_TIME


def _subschemas(schema: Any) -> Iterator[dict[str, Any]]:
    """
    ``schema`` and every schema nested in it, by draft-04 structure.

    Only schema positions are visited, never the keys of ``properties`` or
    the values of ``enum``, so a property called ``const`` is not mistaken
    for the keyword.
    """
    if not isinstance(schema, dict):
        return
    yield schema
    for keyword in ("properties", "patternProperties", "definitions", "dependencies"):
        children = schema.get(keyword)
        if isinstance(children, dict):
            for child in children.values():
                yield from _subschemas(child)
    for keyword in ("items", "allOf", "anyOf", "oneOf"):
        children = schema.get(keyword)
        for child in children if isinstance(children, list) else [children]:
            yield from _subschemas(child)
    for keyword in ("additionalProperties", "additionalItems", "not"):
        yield from _subschemas(schema.get(keyword))


def _as_draft_04(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """
    A copy of ``schema`` declared draft-04, after checking it is safe to be.

    Raises ``ValueError`` if the schema has a non-local ``$ref`` (resolving it
    would fetch it) or a keyword draft-04 does not know.
    """
    for node in _subschemas(schema):
        ref = node.get("$ref")
        if isinstance(ref, str) and not ref.startswith("#"):
            raise ValueError(f"schema {name} has a non-local $ref {ref!r}")
        later = _POST_DRAFT_04_KEYWORDS.intersection(node)
        if later:
            raise ValueError(f"schema {name} uses keywords draft-04 lacks: {sorted(later)}")
    return {**schema, "$schema": _DRAFT_04}


def _with_ranges(
    name: str, schema: dict[str, Any], ranges: Mapping[str, tuple[int, int]]
) -> dict[str, Any]:
    """
    A copy of the request schema of charger-initiated action ``name`` with
    ``ranges`` as ``minimum``/``maximum`` of its integers. Raises
    ``ValueError`` if a range names no integer property, or if an integer of
    the schema is left without a range.
    """
    properties = dict(schema.get("properties", {}))
    for field, (low, high) in ranges.items():
        child = properties.get(field)
        if not isinstance(child, dict) or child.get("type") != "integer":
            raise ValueError(f"schema {name} has no integer {field!r} to bound")
        properties[field] = {**child, "minimum": low, "maximum": high}
    bounded = {**schema, "properties": properties}
    for node in _subschemas(bounded):
        if node.get("type") == "integer" and not {"minimum", "maximum"} <= node.keys():
            raise ValueError(f"schema {name} has an integer without a range")
    return bounded


def _with_central_ranges(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """
    A copy of the request schema of central-system-initiated action ``name``
    with a range on each integer (:data:`CENTRAL_INTEGER_RANGES`, 32-bit when
    the name has none) and each decimal (:data:`CENTRAL_NUMBER_RANGE`).
    """

    def bounded(key: str, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        node = dict(node)
        if node.get("type") == "integer":
            low, high = CENTRAL_INTEGER_RANGES.get(
                (name, key), CENTRAL_INTEGER_RANGES.get(key, (INT32_MIN, INT32_MAX))
            )
            node.setdefault("minimum", low)
            node.setdefault("maximum", high)
        elif node.get("type") == "number":
            node.setdefault("minimum", CENTRAL_NUMBER_RANGE[0])
            node.setdefault("maximum", CENTRAL_NUMBER_RANGE[1])
        if isinstance(node.get("properties"), dict):
            node["properties"] = {k: bounded(k, v) for k, v in node["properties"].items()}
        if "items" in node:
            node["items"] = bounded(key, node["items"])
        return node

    result = bounded("", schema)
    assert isinstance(result, dict)
    return result


def _field_path(name: str | None) -> str:
    """
    ``data.meterValue[0].measurand`` -> ``meterValue[0].measurand``.

    The payload itself (``data``) is ``""``.
    """
    name = name or "data"
    if name == "data":
        return ""
    if name.startswith("data."):
        return name[5:]
    return name[4:] if name.startswith("data[") else name


def _join(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def _clip(field: str) -> str:
    return field if len(field) <= _MAX_FIELD_LENGTH else field[: _MAX_FIELD_LENGTH - 3] + "..."


def schema_error(error: fastjsonschema.JsonSchemaValueException) -> OcppError:
    """
    The :class:`OcppError` for one ``fastjsonschema`` failure (see the
    module docstring for the mapping and the shape of the description).
    """
    rule = error.rule or ""
    path = _field_path(error.name)
    definition = error.definition if isinstance(error.definition, dict) else {}
    value = error.value
    prefix = f"{error.name} "
    what = error.message[len(prefix) :] if error.message.startswith(prefix) else error.message

    if rule == "type" and path == "":
        return OcppError(
            FORMATION_VIOLATION,
            "payload: must be a JSON object",
            {"field": "", "rule": rule},
        )
    if rule == "required" and isinstance(value, dict):
        missing = [key for key in definition.get("required", ()) if key not in value]
        fields = [_join(path, key) for key in missing] or [path]
        return OcppError(
            OCCURENCE_CONSTRAINT_VIOLATION,
            f"{', '.join(fields)}: required but missing",
            {"field": fields[0], "rule": rule},
        )
    if rule == "additionalProperties" and isinstance(value, dict):
        allowed = definition.get("properties", {})
        extra = sorted(str(key) for key in value if key not in allowed)
        fields = [_clip(_join(path, key)) for key in extra] or [path]
        return OcppError(
            FORMATION_VIOLATION,
            f"{', '.join(fields[:5])}: not a property of this message",
            {"field": fields[0], "rule": rule},
        )
    if rule == "multipleOf":
        # fastjsonschema reports a quotient overflow as "inifinity reached".
        what = f"must be a multiple of {definition.get('multipleOf')}"
    code = RULE_CODES.get(rule, FORMATION_VIOLATION)
    field = _clip(path)
    return OcppError(code, f"{field or 'payload'}: {what}", {"field": field, "rule": rule})


class SchemaRegistry:
    """
    The compiled OCPP 1.6 request and response validators, by action.

    Build it with :meth:`load` (reads and compiles every schema, a fraction
    of a second, once per process) and share the instance; it is immutable
    after construction and safe to use from any thread.
    """

    def __init__(
        self,
        requests: Mapping[str, Validator],
        responses: Mapping[str, Validator],
        *,
        compiled_requests: Mapping[str, CompiledSchema] | None = None,
        compiled_responses: Mapping[str, CompiledSchema] | None = None,
        request_documents: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._requests: Mapping[str, Validator] = dict(requests)
        self._responses: Mapping[str, Validator] = dict(responses)
        # The fast acceptance of each action whose schema compiles to msgspec
        # types (ocppd.ocpp.schematypes); the validators above decide the rest.
        self._compiled_requests: Mapping[str, CompiledSchema] = dict(compiled_requests or {})
        self._compiled_responses: Mapping[str, CompiledSchema] = dict(compiled_responses or {})
        # The request schemas as validated (with their ranges), for describing
        # a command's form (ocppd.api.command_forms).
        self._request_documents: Mapping[str, Mapping[str, Any]] = dict(request_documents or {})

    @classmethod
    def load(cls, directory: Traversable | None = None) -> SchemaRegistry:
        """
        Read and compile every schema in ``directory``, by default the
        installed ``ocpp`` package's ``v16/schemas``.

        ``<Action>.json`` is the request schema of ``<Action>``,
        ``<Action>Response.json`` its response schema. Raises ``ValueError``
        for a schema that cannot be used (see :func:`_as_draft_04` and
        :func:`_with_ranges`) and
        ``fastjsonschema.JsonSchemaDefinitionException`` for an invalid one:
        the daemon should not start with a broken schema set.
        """
        if directory is None:
            directory = files("ocpp") / "v16" / "schemas"
        requests: dict[str, Validator] = {}
        responses: dict[str, Validator] = {}
        compiled_requests: dict[str, CompiledSchema] = {}
        compiled_responses: dict[str, CompiledSchema] = {}
        documents: dict[str, Mapping[str, Any]] = {}
        for entry in sorted(directory.iterdir(), key=lambda e: e.name):
            if not entry.name.endswith(".json"):
                continue
            name = entry.name[: -len(".json")]
            # utf-8-sig: the OCPP 2.x schema files start with a BOM; be ready.
            schema = json.loads(entry.read_bytes().decode("utf-8-sig"))
            if name in CHARGER_INITIATED:
                schema = _with_ranges(name, schema, CHARGER_INTEGER_RANGES.get(name, {}))
            elif name in CENTRAL_SYSTEM_INITIATED:
                schema = _with_central_ranges(name, schema)
            schema = _as_draft_04(name, schema)
            validator = fastjsonschema.compile(
                schema, formats={"date-time": is_date_time}, use_default=False
            )
            compiled = compile_schema(name, schema, is_date_time)
            if name.endswith("Response"):
                action, validators, fast = name[: -len("Response")], responses, compiled_responses
            else:
                action, validators, fast = name, requests, compiled_requests
            validators[action] = validator
            if validators is requests:
                documents[action] = schema
            if compiled is not None:
                fast[action] = compiled
        return cls(
            requests,
            responses,
            compiled_requests=compiled_requests,
            compiled_responses=compiled_responses,
            request_documents=documents,
        )

    @property
    def request_schema_actions(self) -> frozenset[str]:
        """The actions with a request schema."""
        return frozenset(self._requests)

    @property
    def response_schema_actions(self) -> frozenset[str]:
        """The actions with a response schema."""
        return frozenset(self._responses)

    def request_schema(self, action: str) -> Mapping[str, Any] | None:
        """The request schema of ``action`` as validated (ranges included), or None."""
        return self._request_documents.get(action)

    def has_request_schema(self, action: str) -> bool:
        """Whether a request of ``action`` can be validated."""
        return action in self._requests

    def has_response_schema(self, action: str) -> bool:
        """Whether a response to ``action`` can be validated."""
        return action in self._responses

    def validate_request(self, action: str, payload: Any) -> None:
        """
        Check the payload of a CALL of ``action``.

        Raises :class:`OcppError` with the code of the mapping table; an
        action without a schema is ``NotImplemented`` (the caller normally
        rejects unknown actions before, with ``classify_inbound``).
        """
        compiled = self._compiled_requests.get(action)
        if compiled is not None and compiled.accepts(payload):
            return
        self._validate(self._requests, action, payload, "request")

    def validate_response(self, action: str, payload: Any) -> None:
        """Check the payload of a CALLRESULT answering a CALL of ``action``."""
        compiled = self._compiled_responses.get(action)
        if compiled is not None and compiled.accepts(payload):
            return
        self._validate(self._responses, action, payload, "response")

    def compiled_actions(self, kind: str) -> frozenset[str]:
        """
        The actions whose ``kind`` ("request" or "response") schema has a
        compiled fast check (the others are checked by ``fastjsonschema`` alone).
        """
        compiled = self._compiled_requests if kind == "request" else self._compiled_responses
        return frozenset(compiled)

    def fastjsonschema_verdict(self, kind: str, action: str, payload: Any) -> OcppError | None:
        """``fastjsonschema``'s verdict alone (``None``: valid), to compare the fast check with."""
        validators = self._requests if kind == "request" else self._responses
        try:
            self._validate(validators, action, payload, kind)
        except OcppError as e:
            return e
        return None

    def compiled_accepts(self, kind: str, action: str, payload: Any) -> bool:
        """Whether the compiled fast check of ``action`` accepts ``payload``."""
        compiled = self._compiled_requests if kind == "request" else self._compiled_responses
        return compiled[action].accepts(payload)

    @staticmethod
    def _validate(
        validators: Mapping[str, Validator], action: str, payload: Any, kind: str
    ) -> None:
        validator = validators.get(action)
        if validator is None:
            raise OcppError(NOT_IMPLEMENTED, f"no {kind} schema for action {action[:40]!r}")
        try:
            validator(payload)
        except fastjsonschema.JsonSchemaValueException as e:
            raise schema_error(e) from None
        except ArithmeticError:
            # A float multipleOf check divides the value as a float: an
            # integer beyond float range raises OverflowError from inside
            # the validator instead of failing the rule.
            raise OcppError(
                PROPERTY_CONSTRAINT_VIOLATION,
                "payload: a number is out of range",
                {"field": "", "rule": "range"},
            ) from None
