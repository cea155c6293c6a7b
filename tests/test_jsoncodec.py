"""Tests for ocppd.jsoncodec: orjson's speed, the strict codec's answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import orjson
from twisted.trial.unittest import SynchronousTestCase

from ocppd import jsoncodec


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
