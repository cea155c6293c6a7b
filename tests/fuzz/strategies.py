"""
Hostile JSON for the fuzz tests of what browsers and API clients send (the
REST bodies, the push channel's WAMP messages): right and wrong types,
integers far beyond 64 bits, long text, text JSON can carry but nothing can
store (lone surrogates, NUL), and nesting.

Bodies are built the way bugs hide: a plausible body (every field of the
right type, short and ordinary) with one or two fields made hostile, so that
the hostile value gets past the checks of the others and reaches the code
that uses it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.fuzz.profile import EXTREME_INTEGERS

_edges = st.sampled_from(EXTREME_INTEGERS)
integers = st.one_of(_edges, _edges, _edges, st.integers())

floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [-0.0, 1e-300, 1e300, 1.7976931348623157e308, 90.000001, -180.5, 0.1]
)

#: Characters JSON escapes can carry that no store takes, and other oddities.
ODD_CHARACTERS = ("\ud800", "\udbff", "\udc00", "\udfff", "\x00", "\n", "\u202e", "\uffff")
_characters = st.characters() | st.sampled_from(ODD_CHARACTERS)
texts = st.one_of(
    st.text(_characters, max_size=30),
    st.builds(
        lambda head, odd, tail: head + odd + tail,
        st.text(max_size=5),
        st.sampled_from(ODD_CHARACTERS),
        st.text(max_size=5),
    ),
    st.sampled_from(["", " ", "x" * 5000, "١٢٣", "①", "²", "NaN", "1e999999", "-0"]),
)

scalars = st.none() | st.booleans() | integers | floats | texts

#: Any JSON value, nested a few levels deep.
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=12,
)

times = st.datetimes().map(lambda t: t.isoformat() + "Z") | st.sampled_from(
    ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2027-02-30T00:00:00Z", "2027-01-01"]
)


#: One at a time in an otherwise ordinary body (``edges``), by the field's type.
EDGES_ANY = (None, True, 1e300, -0.0, [], {"": []})
EDGES_BY_TYPE: dict[str, tuple[Any, ...]] = {
    "integer": (2**31, 2**63 - 1, -(2**63), -1),
    "number": (2**63 - 1, 1e-300),
    "string": ("\ud800", "a\x00b", "x" * 5000, "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"),
}


def ordinary(name: str, schema: dict[str, Any], known: dict[str, Any]) -> Any:
    """One ordinary value of field ``name`` (``known`` names existing rows by field)."""
    if name in known:
        return known[name]
    if "anyOf" in schema:
        members = [m for m in schema["anyOf"] if m.get("type") != "null"] or schema["anyOf"]
        return ordinary(name, members[0], known)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "string":
        return "2027-06-01T12:00:00Z" if schema.get("format") == "date-time" else "x1"
    return {"integer": 1, "number": 1.5, "boolean": False, "null": None, "array": []}.get(
        str(kind), {}
    )


def edges(schema: dict[str, Any]) -> tuple[Any, ...]:
    """The edge values a field of ``schema`` gets, each in turn."""
    kinds = {m.get("type") for m in schema.get("anyOf", [schema])}
    return EDGES_ANY + tuple(
        v for kind in sorted(map(str, kinds)) for v in EDGES_BY_TYPE.get(kind, ())
    )


def plausible(schema: dict[str, Any], known: tuple[str, ...]) -> st.SearchStrategy[Any]:
    """Ordinary values of ``schema``'s type: what a well-behaved client would send."""
    if "anyOf" in schema:
        return st.one_of([plausible(member, known) for member in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.just("2027-06-01T12:00:00Z")
        return st.sampled_from(known) | st.text("abcXYZ019-", min_size=1, max_size=8)
    if kind == "integer":
        return st.integers(min_value=0, max_value=3)
    if kind == "number":
        return st.sampled_from([0, 1.5, -45.25])
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.just([])
    return st.just({})


def hostile(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Extreme values of ``schema``'s type, or anything at all."""
    kind = schema.get("type")
    if "anyOf" in schema:
        typed: st.SearchStrategy[Any] = st.one_of([hostile(m) for m in schema["anyOf"]])
    elif kind == "string":
        typed = times | texts if schema.get("format") == "date-time" else texts
    elif kind == "integer":
        typed = integers
    elif kind == "number":
        typed = floats | integers
    else:
        typed = json_values
    return st.one_of(typed, typed, json_values)


def objects(
    properties: dict[str, dict[str, Any]], required: list[str], known: tuple[str, ...]
) -> st.SearchStrategy[dict[str, Any]]:
    """
    A plausible object of ``properties`` (the required ones always there)
    with up to two fields made hostile, and now and then a field nobody knows.
    """
    base = st.fixed_dictionaries(
        {name: plausible(properties[name], known) for name in required if name in properties},
        optional={
            name: plausible(schema, known)
            for name, schema in properties.items()
            if name not in required
        },
    )
    names = sorted(properties) or ["x"]
    change = st.sampled_from(names).flatmap(
        lambda name: st.tuples(st.just(name), hostile(properties.get(name, {})))
    )
    # Mostly one hostile field: the others then let it through to where it is used.
    one = st.lists(change, min_size=1, max_size=1)
    changes = st.one_of(one, one, one, st.lists(change, max_size=2))
    unknown = st.dictionaries(texts, json_values, max_size=1) | st.just({})

    def build(body: dict[str, Any], changed: list[tuple[str, Any]], more: dict[str, Any]) -> Any:
        return {**more, **body, **dict(changed)}

    return st.builds(build, base, changes, unknown)
