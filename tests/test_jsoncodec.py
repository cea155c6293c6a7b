"""Tests for ocppd.jsoncodec: orjson's speed, the strict codec's answers."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ocppd import jsoncodec


class _Int(int):
    pass


class _Str(str):
    __slots__ = ()


class _Float(float):
    pass


class _Dict(dict[str, Any]):
    pass


class _Colour(enum.Enum):
    RED = 1


#: Leaves JSON may carry and leaves it may not, as orjson and the strict
#: encoder see them: non-finite floats, big integers, subclasses, an enum, a
#: datetime; text that holds "nan" and "inf" (what ``_nulls_are_nones`` looks for).
_JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "nan", "inf", "-inf", "f\x03nan", "é\u2028", "Infinity"]),
    st.text(max_size=8),
    st.builds(_Int, st.integers()),
    st.builds(_Str, st.text(max_size=4)),
    st.builds(_Float, st.floats(allow_nan=False)),
)
#: ``_JSON_LEAVES`` and what orjson writes but the strict encoder refuses.
#: (Without a null in its output, ``dumps`` takes orjson's word for an enum or
#: a datetime: a known gap, not what these tests are about.)
_LEAVES = st.one_of(_JSON_LEAVES, st.just(_Colour.RED), st.just(datetime(2026, 12, 7, tzinfo=UTC)))


def _nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Nested dicts (plain and a subclass), lists and tuples of ``leaves``."""
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.lists(inner, max_size=4).map(tuple),
            st.dictionaries(st.text(max_size=4), inner, max_size=4),
            st.dictionaries(st.text(max_size=4), inner, max_size=4).map(_Dict),
        ),
        max_leaves=12,
    )


def strict(value: Any, ensure_ascii: bool = True) -> str:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=ensure_ascii)


class DumpsTests(SynchronousTestCase):
    def test_same_json_as_the_strict_encoder(self) -> None:
        """Nulls, non-string keys, big integers, non-ASCII text: the same JSON value."""
        for value in (
            [3, "id", {"currentTime": "2026-11-29T12:00:00.000Z"}],
            {"a": None, "b": [None, 1.5, -0.0]},
            {1: "int key", "s": "é\u2028€"},
            {"big": 2**70, "small": -(2**63) - 1},
            {"nested": {"x": [1, 2, {"y": "z"}]}, "t": True, "f": False},
            [],
        ):
            for ensure_ascii in (True, False):
                text = jsoncodec.dumps(value, ensure_ascii=ensure_ascii)
                self.assertEqual(json.loads(text), json.loads(strict(value, ensure_ascii)), value)

    def test_refuses_what_the_strict_encoder_refuses(self) -> None:
        """NaN and infinities raise ValueError anywhere, objects JSON cannot carry TypeError."""
        for value in ({"v": float("nan")}, [1, [float("inf")]], {"v": float("-inf"), "w": None}):
            self.assertRaises(ValueError, jsoncodec.dumps, value)
        self.assertRaises(TypeError, jsoncodec.dumps, {"v": object()})
        self.assertRaises(TypeError, jsoncodec.dumps, {("tuple", "key"): 1})

    def test_bytes_are_the_encoded_text(self) -> None:
        """``dumps_bytes`` is byte for byte ``dumps(...).encode()``, and refuses alike."""
        for value in (
            {"a": None, "b": [None, 1.5, -0.0]},
            {1: "int key", "s": "é\u2028€"},
            {"s": "é\u2028€", "n": 1},
            {"big": 2**70, "small": -(2**63) - 1},
            {"payload": {"meterValue": [{"sampledValue": [{"value": "1000"}]}]}},
        ):
            self.assertEqual(jsoncodec.dumps_bytes(value), jsoncodec.dumps(value).encode(), value)
        for value in ({"v": float("nan")}, {"v": float("-inf"), "w": None}):
            self.assertRaises(ValueError, jsoncodec.dumps_bytes, value)
        self.assertRaises(TypeError, jsoncodec.dumps_bytes, {"v": object()})

    def test_long_digit_runs(self) -> None:
        """Runs of 19 digits or more are found wherever they are; shorter ones are not."""
        self.assertTrue(jsoncodec.has_long_digit_run(b'{"v":1234567890123456789}'))
        self.assertTrue(jsoncodec.has_long_digit_run(b"-" + b"9" * 40))
        self.assertFalse(jsoncodec.has_long_digit_run(b'{"v":123456789012345678,"w":"a1b2"}'))
        self.assertFalse(jsoncodec.has_long_digit_run(b""))

    def test_nulls_of_none_take_orjson(self) -> None:
        """A null that is a None is orjson's output; a NaN or infinity beside one still raises."""
        # Non-ASCII text tells them apart: the strict encoder escapes it.
        value = {"session": {"stoppedAt": None, "idTag": "é"}, "live": [1.5, None, (True, "x")]}
        self.assertEqual(jsoncodec.dumps_bytes(value), orjson.dumps(value))
        self.assertEqual(jsoncodec.dumps(value), orjson.dumps(value).decode())
        for bad in (float("nan"), float("inf"), float("-inf")):
            for value in (
                {"a": None, "b": bad},
                {"a": None, "b": {"c": [1, (2, bad)]}},
                [None, [[[{"d": bad}]]]],
            ):
                self.assertRaises(ValueError, jsoncodec.dumps_bytes, value)
                self.assertRaises(ValueError, jsoncodec.dumps, value)

    def test_nulls_beside_other_types_take_the_strict_encoder(self) -> None:
        """What orjson writes and the strict encoder refuses (a datetime) raises beside a None."""
        when = datetime(2026, 12, 7, tzinfo=UTC)
        self.assertRaises(TypeError, jsoncodec.dumps_bytes, {"a": None, "at": when})
        self.assertRaises(TypeError, jsoncodec.dumps, [None, {"at": when}])


class NullProofTests(SynchronousTestCase):
    @settings(max_examples=500, derandomize=True, database=None)
    @given(_nested(_LEAVES))
    def test_proof_is_by_exact_types(self, value: Any) -> None:
        """
        ``_finite_and_plain`` holds exactly for exact dicts, lists, tuples,
        strings, integers, booleans, None and finite floats.
        """
        self.assertEqual(jsoncodec._finite_and_plain(value), _by_types(value))

    @settings(max_examples=500, derandomize=True, database=None)
    @given(_nested(_JSON_LEAVES))
    def test_verdicts_are_the_strict_encoders(self, value: Any) -> None:
        """``dumps_bytes`` refuses what the strict encoder refuses, else writes the same value."""
        try:
            expected = strict(value)
        except (TypeError, ValueError) as e:
            self.assertRaises(type(e), jsoncodec.dumps_bytes, value)
            return
        self.assertEqual(json.loads(jsoncodec.dumps_bytes(value)), json.loads(expected))


def _by_types(value: Any) -> bool:
    """``_finite_and_plain`` spelt out by ``isinstance`` and type equality, a reference."""
    if type(value) in (dict, list, tuple):
        items = value.values() if isinstance(value, dict) else value
        return all(_by_types(item) for item in items)
    if type(value) is float:
        return value == value and value not in (float("inf"), float("-inf"))
    return type(value) in (str, int, bool, type(None))
