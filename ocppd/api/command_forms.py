"""
What the point page builds each charger command's form from
(``GET /api/cms/commands``): every command of ``POST /api/charger/{command}``
with its request's fields, read from the same OCPP 1.6 JSON schemas the API
validates with (ranges included, ``ocppd.ocpp.schemas``), so a form never
offers what the API refuses and no command needs a form written by hand.

A field is ``{"name", "type", "required"}`` plus what bounds it: ``enum``,
``maxLength``, ``format`` (``date-time``, ``uri``), ``minimum``/``maximum``,
``multipleOf``; an object has ``fields``, an array ``items`` (one field
without a name) and ``minItems``/``maxItems``. Fields ocppd fills in when
left out are optional here, with a ``note`` saying what it sends instead.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Keywords copied as they are from a schema node into its field.
_BOUNDS = (
    "enum",
    "maxLength",
    "format",
    "minimum",
    "maximum",
    "multipleOf",
    "minItems",
    "maxItems",
)

#: (action, field) that ocppd fills in when the request leaves it out
#: (``ocppd.api.commands.CommandService.run``), with what it sends instead.
FILLED_BY_OCPPD: Mapping[tuple[str, str], str] = {
    ("ReserveNow", "reservationId"): "left empty, ocppd allocates one and follows it",
    ("SendLocalList", "localAuthorizationList"): "left empty, ocppd sends its id tags table",
    ("GetDiagnostics", "location"): "left empty, ocppd gives an upload URL of its own",
}

#: Deepest nesting described (the OCPP 1.6 requests nest 4 levels at most).
_MAX_DEPTH = 8


def describe_field(name: str | None, node: Mapping[str, Any], *, depth: int = 0) -> dict[str, Any]:
    """One schema node as a form field (see the module docstring)."""
    if depth > _MAX_DEPTH:
        raise ValueError(f"schema of {name!r} nests too deep to describe")
    kind = node.get("type")
    field: dict[str, Any] = {"type": kind if isinstance(kind, str) else "string"}
    if name is not None:
        field = {"name": name, **field, "required": False}
    for keyword in _BOUNDS:
        if keyword in node:
            field[keyword] = node[keyword]
    if kind == "object":
        required = set(node.get("required", ()))
        field["fields"] = [
            {**describe_field(key, child, depth=depth + 1), "required": key in required}
            for key, child in node.get("properties", {}).items()
        ]
    elif kind == "array":
        field["items"] = describe_field(None, node.get("items", {}), depth=depth + 1)
    return field


def describe_command(command: str, action: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The form of ``command`` (OCPP ``action``) from its request ``schema``."""
    fields = describe_field(None, schema)["fields"]
    for field in fields:
        note = FILLED_BY_OCPPD.get((action, field["name"]))
        if note is not None:
            field["required"] = False
            field["note"] = note
    return {"command": command, "action": action, "fields": fields}
