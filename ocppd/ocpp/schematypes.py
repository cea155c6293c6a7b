"""
msgspec types generated from the OCPP 1.6 JSON schemas: the fast check of a payload.

:func:`compile_schema` turns one schema (as :class:`ocppd.ocpp.schemas.SchemaRegistry`
prepares it for ``fastjsonschema``: draft-04, ranges added) into a msgspec type
(a ``Struct`` per object) and the checks msgspec cannot express. Converting a
decoded payload to that type is a single walk in C; for a MeterValues of four
sampled values it costs about a quarter of the generated Python of
``fastjsonschema`` (bench/RESULTS.md).

The compiled check is a *fast acceptance* only: whatever it accepts, the
schema accepts, and the registry answers anything it refuses with
``fastjsonschema``'s verdict and error (which then decides alone). So the
verdict and the CALLERROR of every payload stay ``fastjsonschema``'s, and the
price of a refusal (rare) is both checks. To keep that implication exact, a
schema is only compiled when every keyword it uses maps onto msgspec with the
same meaning; any other (``multipleOf``, ``pattern``, a ``format`` other than
``date-time``, tuple ``items``, a type list...) leaves that action to
``fastjsonschema`` alone (:func:`compile_schema` returns ``None``).
``tests/ocpp/test_schematypes.py`` checks the two agree on generated valid
and invalid payloads of every schema.

Mapping (draft-04 meaning on the left):

- ``object``: a ``Struct`` (``forbid_unknown_fields`` when
  ``additionalProperties`` is false); a property not ``required`` defaults to
  ``UNSET`` (never ``None``: a JSON ``null`` is not a missing field). An
  object without ``properties`` is any ``dict``.
- ``string``: ``str`` with ``max_length`` (both count code points); an
  ``enum`` of strings is a ``Literal``; ``format: date-time`` is checked
  after the conversion with :func:`ocppd.ocpp.schemas.is_date_time`.
- ``integer``: ``int`` (never a float, never a bool) with ``ge``/``le``.
- ``boolean``: ``bool``. ``array``: ``list`` with ``min_length``/``max_length``.
- ``$ref`` to ``#/definitions/...``: the definition's type.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

import attrs
import msgspec

__all__ = ["CompiledSchema", "compile_schema"]

#: Keywords with no effect on validation (annotations, identifiers).
_ANNOTATIONS = frozenset({"$schema", "$id", "id", "title", "description", "javaType", "comment"})

#: What each type may carry besides annotations; anything else is not compiled.
#: ``additionalProperties`` only applies to objects (the OCPP schemas put it on
#: every enum as well, where it does nothing).
_KEYWORDS: Mapping[str, frozenset[str]] = {
    "object": frozenset({"type", "properties", "required", "additionalProperties", "definitions"}),
    "string": frozenset({"type", "maxLength", "enum", "format", "additionalProperties"}),
    "integer": frozenset({"type", "minimum", "maximum", "additionalProperties"}),
    "boolean": frozenset({"type", "additionalProperties"}),
    "array": frozenset({"type", "items", "minItems", "maxItems", "additionalProperties"}),
}

#: A check msgspec cannot make, run on the converted value: ``True`` if it passes.
Check = Callable[[Any], bool]


class _Unsupported(Exception):
    """A schema uses something this module does not map exactly."""


@attrs.frozen
class CompiledSchema:
    """The msgspec type of a payload and the checks left after converting to it."""

    type: Any
    check: Check | None

    def accepts(self, payload: Any) -> bool:
        """Whether ``payload`` surely passes the schema (``False``: ask ``fastjsonschema``)."""
        try:
            value = msgspec.convert(payload, self.type)
        except Exception:
            # Refused (ValidationError), or something msgspec cannot even look
            # at (a lone surrogate where it wants UTF-8): fastjsonschema
            # decides, and reports the error if there is one.
            return False
        return self.check is None or self.check(value)


def compile_schema(
    name: str, schema: Mapping[str, Any], is_date_time: Callable[[str], bool]
) -> CompiledSchema | None:
    """
    The compiled form of ``schema`` (named ``name``, for the Struct names), or
    ``None`` if it uses a rule that has no exact msgspec equivalent.
    ``is_date_time`` is the ``format: date-time`` check, the same function
    ``fastjsonschema`` is given.
    """
    compiler = _Compiler(name, schema, is_date_time)
    try:
        kind, check = compiler.type_of(schema, name, depth=0)
    except _Unsupported:
        return None
    return CompiledSchema(kind, check)


class _Compiler:
    # Deeper than any OCPP schema (6); a cycle of $refs is not compiled.
    _MAX_DEPTH = 16

    def __init__(
        self, name: str, root: Mapping[str, Any], is_date_time: Callable[[str], bool]
    ) -> None:
        self._name = name
        self._root = root
        self._is_date_time = is_date_time

    def type_of(self, schema: Any, path: str, depth: int) -> tuple[Any, Check | None]:
        """The msgspec type of ``schema`` and the check of a value of it, if any."""
        if depth > self._MAX_DEPTH or not isinstance(schema, Mapping):
            raise _Unsupported(path)
        if "$ref" in schema:  # draft-04: the siblings of $ref are ignored
            return self.type_of(self._resolve(schema["$ref"]), path, depth + 1)
        kind = schema.get("type")
        allowed = _KEYWORDS.get(kind) if isinstance(kind, str) else None
        if allowed is None or not set(schema) - _ANNOTATIONS <= allowed:
            raise _Unsupported(path)
        if kind == "object":
            return self._object(schema, path, depth)
        if kind == "array":
            return self._array(schema, path, depth)
        if kind == "string":
            return self._string(schema)
        if kind == "integer":
            return _constrained(int, ge=schema.get("minimum"), le=schema.get("maximum")), None
        return bool, None

    def _resolve(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/definitions/"):
            raise _Unsupported(str(ref))
        definitions = self._root.get("definitions")
        name = ref[len("#/definitions/") :]
        if not isinstance(definitions, Mapping) or name not in definitions or "/" in name:
            raise _Unsupported(ref)
        return definitions[name]

    def _object(self, schema: Mapping[str, Any], path: str, depth: int) -> tuple[Any, Check | None]:
        properties = schema.get("properties", {})
        required = schema.get("required", [])
        extra = schema.get("additionalProperties", True)
        if not isinstance(properties, Mapping) or not isinstance(required, list):
            raise _Unsupported(path)
        if not isinstance(extra, bool) or not set(required) <= set(properties):
            raise _Unsupported(path)
        if not properties:
            if extra:
                return dict[str, Any], None
            return _struct(path, [], forbid_unknown_fields=True), None
        fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
        checks: list[tuple[str, Check]] = []
        for key, child in properties.items():
            if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
                raise _Unsupported(f"{path}.{key}")
            if key.startswith("_"):
                raise _Unsupported(f"{path}.{key}")
            kind, check = self.type_of(child, f"{path}.{key}", depth + 1)
            if key in required:
                fields.append((key, kind))
            else:
                fields.append((key, kind | msgspec.UnsetType, msgspec.UNSET))
            if check is not None:
                checks.append((key, check))
        struct = _struct(path, fields, kw_only=True, forbid_unknown_fields=not extra)
        return struct, _fields_check(checks) if checks else None

    def _array(self, schema: Mapping[str, Any], path: str, depth: int) -> tuple[Any, Check | None]:
        items = schema.get("items")
        if not isinstance(items, Mapping):  # a list is tuple validation: not mapped
            raise _Unsupported(path)
        kind, check = self.type_of(items, f"{path}[]", depth + 1)
        least, most = schema.get("minItems"), schema.get("maxItems")
        array = _constrained(list[kind], min_length=least, max_length=most)  # type: ignore[valid-type]
        if check is None:
            return array, None
        item_check = check
        return array, lambda values: all(map(item_check, values))

    def _string(self, schema: Mapping[str, Any]) -> tuple[Any, Check | None]:
        fmt = schema.get("format")
        if fmt is not None and fmt != "date-time":
            raise _Unsupported(str(fmt))
        longest = schema.get("maxLength")
        enum = schema.get("enum")
        if enum is not None:
            if not isinstance(enum, list) or not enum or not all(isinstance(v, str) for v in enum):
                raise _Unsupported("enum")
            # Keep only what the other rules also let through.
            members = [
                value
                for value in enum
                if (longest is None or len(value) <= longest)
                and (fmt is None or self._is_date_time(value))
            ]
            if not members:
                raise _Unsupported("enum")
            return Literal[tuple(members)], None
        kind = _constrained(str, max_length=longest)
        return kind, None if fmt is None else self._is_date_time


def _constrained(kind: Any, **bounds: Any) -> Any:
    """``kind`` with the msgspec constraints in ``bounds`` that are given."""
    given = {key: value for key, value in bounds.items() if value is not None}
    for value in given.values():
        if type(value) is not int:  # a float bound is not compared alike
            raise _Unsupported(repr(value))
    return Annotated[kind, msgspec.Meta(**given)] if given else kind


def _fields_check(checks: list[tuple[str, Check]]) -> Check:
    """The check of a Struct: each checked field, when present, passes its check."""

    def check(value: Any) -> bool:
        for key, field_check in checks:
            field = getattr(value, key)
            if field is not msgspec.UNSET and not field_check(field):
                return False
        return True

    return check


def _struct(path: str, fields: list[Any], **options: Any) -> Any:
    """
    The Struct of the object at ``path``. Untracked by the garbage collector
    (``gc=False``): an instance lives for one check and holds only strings,
    numbers, lists and other such Structs, so it can be in no cycle, and every
    payload checked would otherwise add several objects to the next collection.
    """
    return msgspec.defstruct(_struct_name(path), fields, gc=False, **options)


def _struct_name(path: str) -> str:
    """A readable class name for the Struct of the object at ``path``."""
    return "".join(part[:1].upper() + part[1:] for part in path.replace("[]", ".Item").split("."))
