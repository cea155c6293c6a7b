"""
Tests for ``ocppd.ocpp.schematypes``: the msgspec types compiled from the OCPP
schemas give ``fastjsonschema``'s verdict on every payload.

Both validators run over the same corpus: the realistic payloads of
``tests/ocpp/test_schemas.py`` and each of them broken one field at a time,
the schema-valid extremes of ``tests/fuzz/schemas.py``, the hostile bodies of
``tests/fuzz/strategies.py``, and payloads generated here from every schema of
both directions (valid ones, and ones with a field made hostile, removed or
added at any depth). For each payload the compiled check must accept exactly
what ``fastjsonschema`` accepts, and ``SchemaRegistry`` must answer exactly as
``fastjsonschema`` alone would (code, description and details).
"""

from __future__ import annotations

import copy
import gc
import json
from collections.abc import Callable, Iterator, Mapping
from importlib.resources import files
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp import actions
from ocppd.ocpp.schemas import SchemaRegistry, is_date_time
from ocppd.ocpp.schematypes import compile_schema
from tests.fuzz import strategies as hostile_json
from tests.fuzz.profile import EXTREME_INTEGERS, fuzz_settings
from tests.fuzz.schemas import charger_request, date_times, extreme_date_times, strings
from tests.ocpp.test_schemas import CENTRAL_SYSTEM_RESPONSES, CHARGER_REQUESTS

REGISTRY = SchemaRegistry.load()

#: Examples per schema and kind (valid, broken): 78 schemas.
EXAMPLES = fuzz_settings(25)


def official(name: str) -> dict[str, Any]:
    path = files("ocpp") / "v16" / "schemas" / f"{name}.json"
    schema: dict[str, Any] = json.loads(path.read_bytes().decode("utf-8-sig"))
    return schema


def schema_names() -> Iterator[tuple[str, str, str]]:
    """(kind, action, file name) of every schema the registry loaded."""
    for action in sorted(REGISTRY.request_schema_actions):
        yield "request", action, action
    for action in sorted(REGISTRY.response_schema_actions):
        yield "response", action, action + "Response"


class Corpus:
    """Payload strategies along one schema: ``valid`` ones, and ``broken`` at some depth."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._root = schema

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            schema = self._root["definitions"][schema["$ref"].rpartition("/")[2]]
        return schema

    def valid(self, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        schema = self._resolve(schema)
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        kind = schema.get("type")
        if kind == "object":
            properties = schema.get("properties", {})
            if not properties:
                if schema.get("additionalProperties", True) is False:
                    return st.just({})
                return st.dictionaries(st.text(max_size=5), hostile_json.json_values, max_size=2)
            required = set(schema.get("required", ()))
            return st.fixed_dictionaries(
                {key: self.valid(child) for key, child in properties.items() if key in required},
                optional={
                    key: self.valid(child)
                    for key, child in properties.items()
                    if key not in required
                },
            )
        if kind == "array":
            least = schema.get("minItems", 0)
            most = schema.get("maxItems", least + 3)
            return st.lists(self.valid(schema["items"]), min_size=least, max_size=most)
        if kind == "string":
            if schema.get("format") == "date-time":
                return date_times
            if schema.get("format") == "uri":
                return st.sampled_from(["ftp://example.com/x", "https://a.b/c?d", "x", ""])
            longest = schema.get("maxLength")
            if longest is not None and longest > 1000:  # beyond what hypothesis builds
                return strings(None) | st.integers(longest - 1, longest + 1).map("x".__mul__)
            return strings(longest)
        if kind == "integer":
            low, high = schema.get("minimum"), schema.get("maximum")
            around = st.integers(-3, 3) | st.sampled_from(EXTREME_INTEGERS)
            if low is not None and high is not None:
                return st.integers(low, high) | around | st.sampled_from([low, high])
            return st.integers(0, 1000) | around
        if kind == "number":
            return st.integers(-5, 5) | st.sampled_from([0.1, 0.3, 1.5, 7.7, 1e300, 2**70, -0.0])
        if kind == "boolean":
            return st.booleans()
        return hostile_json.json_values

    def broken(self, schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
        """A payload with one thing wrong (or, by chance, nothing) somewhere inside."""
        schema = self._resolve(schema)
        kind = schema.get("type")
        wrong_here = st.one_of(
            hostile_json.hostile(dict(schema)),
            st.sampled_from(hostile_json.edges(dict(schema))),
            extreme_date_times() if schema.get("format") == "date-time" else st.nothing(),
        )
        if kind == "object" and schema.get("properties"):
            properties = schema["properties"]
            names = sorted(properties)
            return st.one_of(
                wrong_here,
                st.tuples(self.valid(schema), st.sampled_from(names), st.data()).map(
                    lambda case: self._with_child_broken(properties, *case)
                ),
                st.tuples(self.valid(schema), st.sampled_from(names)).map(
                    lambda case: {k: v for k, v in case[0].items() if k != case[1]}
                ),
                st.tuples(self.valid(schema), st.sampled_from([*names, "x", "_", "__class__"])).map(
                    lambda case: {**case[0], case[1] + "X": 1}
                ),
            )
        if kind == "array":
            return st.one_of(
                wrong_here,
                st.lists(self.broken(schema["items"]), min_size=1, max_size=3),
                st.just([]),
                st.lists(self.valid(schema["items"]), min_size=4, max_size=8),
            )
        return wrong_here

    def _with_child_broken(
        self, properties: Mapping[str, Any], value: dict[str, Any], key: str, data: Any
    ) -> dict[str, Any]:
        return {**value, key: data.draw(self.broken(properties[key]))}


def check_same_verdict(case: SynchronousTestCase, kind: str, action: str, payload: Any) -> None:
    """The compiled check and the registry both agree with ``fastjsonschema`` alone."""
    expected = REGISTRY.fastjsonschema_verdict(kind, action, payload)
    if action in REGISTRY.compiled_actions(kind):
        case.assertEqual(
            REGISTRY.compiled_accepts(kind, action, payload),
            expected is None,
            f"{kind} {action} {payload!r:.300}: fastjsonschema says {expected!r}",
        )
    validate = REGISTRY.validate_request if kind == "request" else REGISTRY.validate_response
    try:
        validate(action, copy.deepcopy(payload))
    except Exception as e:
        got: Any = (type(e), e.code, e.description, e.details)  # type: ignore[attr-defined]
    else:
        got = None
    want = None if expected is None else (type(expected), *vars_of(expected))
    case.assertEqual(got, want, f"{kind} {action} {payload!r:.300}")


def vars_of(error: Any) -> tuple[str, str, Any]:
    return error.code, error.description, error.details


def make_test(
    kind: str, action: str, file_name: str, pick: Callable[[Corpus, Any], st.SearchStrategy[Any]]
) -> Callable[[SynchronousTestCase], None]:
    schema = official(file_name)
    corpus = Corpus(schema)

    @EXAMPLES
    @given(pick(corpus, schema))
    def test(self: SynchronousTestCase, payload: Any) -> None:
        check_same_verdict(self, kind, action, payload)

    return test


class GeneratedCorpusTests(SynchronousTestCase):
    """One valid and one broken test per schema and direction (filled in below)."""


for _kind, _action, _file in schema_names():
    setattr(
        GeneratedCorpusTests,
        f"test_{_kind}_{_action}_valid",
        make_test(_kind, _action, _file, lambda corpus, schema: corpus.valid(schema)),
    )
    setattr(
        GeneratedCorpusTests,
        f"test_{_kind}_{_action}_broken",
        make_test(_kind, _action, _file, lambda corpus, schema: corpus.broken(schema)),
    )


class KnownCorpusTests(SynchronousTestCase):
    """The payloads the other OCPP tests use, whole and broken one field at a time."""

    def cases(self) -> Iterator[tuple[str, str, Any]]:
        for action, payload in CHARGER_REQUESTS.items():
            yield "request", action, payload
        for action, payload in CENTRAL_SYSTEM_RESPONSES.items():
            yield "response", action, payload

    def test_whole(self) -> None:
        for kind, action, payload in self.cases():
            check_same_verdict(self, kind, action, payload)
            self.assertIsNone(REGISTRY.fastjsonschema_verdict(kind, action, payload))

    def test_one_field_broken(self) -> None:
        values = (*hostile_json.EDGES_ANY, *hostile_json.EDGES_BY_TYPE["string"], 1.0, -1, 2**31)
        for kind, action, payload in self.cases():
            for key in payload:
                check_same_verdict(
                    self, kind, action, {k: v for k, v in payload.items() if k != key}
                )
                for value in values:
                    check_same_verdict(self, kind, action, {**payload, key: value})
            check_same_verdict(self, kind, action, {**payload, "unknownField": 1})

    @fuzz_settings(100)
    @given(
        st.sampled_from(sorted(actions.CHARGER_INITIATED)).flatmap(
            lambda action: st.tuples(st.just(action), charger_request(action))
        )
    )
    def test_fuzz_charger_requests(self, case: tuple[str, dict[str, Any]]) -> None:
        """The schema-valid extremes the charger-path fuzz tests send."""
        check_same_verdict(self, "request", *case)

    @fuzz_settings(100)
    @given(
        st.sampled_from(sorted(actions.CHARGER_INITIATED)).flatmap(
            lambda action: st.tuples(
                st.just(action),
                hostile_json.objects(
                    official(action).get("properties", {}),
                    official(action).get("required", []),
                    ("TAG1", "x"),
                ),
            )
        )
    )
    def test_hostile_charger_requests(self, case: tuple[str, dict[str, Any]]) -> None:
        """Plausible requests with a field or two made hostile."""
        check_same_verdict(self, "request", *case)


class CompileTests(SynchronousTestCase):
    """What is compiled and what is left to ``fastjsonschema``."""

    def test_charger_requests_compiled(self) -> None:
        """Every request a charger sends us is checked by the compiled types."""
        self.assertEqual(actions.CHARGER_INITIATED - REGISTRY.compiled_actions("request"), set())

    def test_unmapped_rules_not_compiled(self) -> None:
        for schema in (
            {"type": "object", "properties": {"x": {"type": "number", "multipleOf": 0.1}}},
            {"type": "object", "properties": {"x": {"type": "string", "pattern": "a"}}},
            {"type": "object", "properties": {"x": {"type": "string", "format": "uri"}}},
            {"type": "object", "properties": {"x": {"type": ["string", "null"]}}},
            {"type": "object", "properties": {"x": {"type": "array", "items": [{}]}}},
            {"type": "object", "properties": {"x": {"$ref": "http://example.com/x"}}},
            {"type": "object", "properties": {"class": {"type": "string"}}},
            {"type": "object", "required": ["x"]},
            {"type": "object", "properties": {"x": {"type": "integer", "maximum": 1.5}}},
        ):
            self.assertIsNone(compile_schema("X", schema, is_date_time), schema)

    def test_instances_untracked_by_the_collector(self) -> None:
        compiled = compile_schema(
            "X", {"type": "object", "properties": {"x": {"type": "string"}}}, is_date_time
        )
        assert compiled is not None
        self.assertFalse(gc.is_tracked(msgspec.convert({"x": "y"}, compiled.type)))

    def test_date_time_checked_after_conversion(self) -> None:
        compiled = compile_schema(
            "X",
            {
                "type": "object",
                "properties": {
                    "at": {"type": "array", "items": {"type": "string", "format": "date-time"}}
                },
            },
            is_date_time,
        )
        assert compiled is not None
        self.assertTrue(compiled.accepts({"at": ["2026-01-01T00:00:00Z"]}))
        self.assertFalse(compiled.accepts({"at": ["2026-01-01T00:00:00Z", "٢٠٢٦-01-01T00:00:00Z"]}))
        self.assertTrue(compiled.accepts({}))
