"""Tests for ``ocppd.ocpp.frames``: parsing untrusted OCPP-J text, and marshalling."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp import errors, frames
from ocppd.ocpp.frames import (
    MAX_UNIQUE_ID_LENGTH,
    UNKNOWN_UNIQUE_ID,
    Call,
    CallError,
    CallResult,
    Frame,
    FrameError,
    parse_frame,
)
from tests.fuzz.profile import FUZZ

ID_36 = "a" * 36
ID_37 = "b" * 37


class FrameErrorAssertions(SynchronousTestCase):
    """Base with an assertion for one row of the bad-input matrix."""

    def assertFrameError(
        self,
        text: str | bytes,
        code: str,
        unique_id: str,
        message_type_id: int | None = None,
    ) -> FrameError:
        """``parse_frame(text)`` raises a FrameError with this code and answer id."""
        error = self.assertRaises(FrameError, parse_frame, text)
        self.assertEqual(
            (error.code, error.unique_id, error.message_type_id),
            (code, unique_id, message_type_id),
            f"for {text[:80]!r}: {error!r}",
        )
        self.assertIsInstance(error, errors.OcppError)
        self.assertIn(error.code, errors.CALL_ERROR_CODES)
        self.assertIsInstance(error.description, str)
        self.assertTrue(error.description)
        # The error must itself be answerable.
        CallError(error.unique_id, error.code, error.description, error.details).marshal()
        return error


class InvalidJsonTests(FrameErrorAssertions):
    """Text that is not (acceptable) JSON is a FormationViolation."""

    def test_garbage(self) -> None:
        """Text that is not JSON at all."""
        self.assertFrameError("hello", errors.FORMATION_VIOLATION, UNKNOWN_UNIQUE_ID)

    def test_truncated(self) -> None:
        """A frame cut short; its well-formed prefix still yields the id to answer."""
        self.assertFrameError(
            '[2,"abc","Heartbeat",{', errors.FORMATION_VIOLATION, "abc", message_type_id=2
        )

    def test_truncated_inside_id(self) -> None:
        """A frame cut inside its unique id has no id to answer to."""
        self.assertFrameError('[2,"ab', errors.FORMATION_VIOLATION, UNKNOWN_UNIQUE_ID)

    def test_empty(self) -> None:
        """An empty message."""
        self.assertFrameError("", errors.FORMATION_VIOLATION, UNKNOWN_UNIQUE_ID)

    def test_whitespace_only(self) -> None:
        """A message of JSON whitespace only."""
        self.assertFrameError(" \r\n\t", errors.FORMATION_VIOLATION, UNKNOWN_UNIQUE_ID)

    def test_nan_in_payload(self) -> None:
        """NaN is accepted by Python's json but is not JSON."""
        self.assertFrameError(
            '[2,"mv1","MeterValues",{"connectorId":NaN}]',
            errors.FORMATION_VIOLATION,
            "mv1",
            message_type_id=2,
        )

    def test_infinity_in_payload(self) -> None:
        """Infinity and -Infinity are not JSON either."""
        for constant in ("Infinity", "-Infinity"):
            self.assertFrameError(
                f'[2,"i","MeterValues",{{"connectorId":{constant}}}]',
                errors.FORMATION_VIOLATION,
                "i",
                message_type_id=2,
            )

    def test_float_overflow(self) -> None:
        """1e999 is valid JSON syntax that Python would silently turn into inf."""
        error = self.assertFrameError(
            '[2,"big","DataTransfer",{"vendorId":"x","n":1e999}]',
            errors.FORMATION_VIOLATION,
            "big",
            message_type_id=2,
        )
        self.assertIn("out of range", error.description)

    def test_huge_integer(self) -> None:
        """An integer beyond Python's digit limit is refused, with a short description."""
        error = self.assertFrameError(
            '[2,"n","Heartbeat",{"n":' + "9" * 5000 + "}]",
            errors.FORMATION_VIOLATION,
            "n",
            message_type_id=2,
        )
        self.assertLessEqual(len(error.description), 140)

    def test_duplicate_keys(self) -> None:
        """An object naming a key twice is ambiguous and refused."""
        error = self.assertFrameError(
            '[2,"d","Authorize",{"idTag":"A","idTag":"B"}]',
            errors.FORMATION_VIOLATION,
            "d",
            message_type_id=2,
        )
        self.assertIn("idTag", error.description)

    def test_lone_surrogate_escape(self) -> None:
        """A lone \\ud800 escape decodes to a string that cannot be sent as UTF-8."""
        self.assertFrameError(
            '[2,"s","Authorize",{"idTag":"\\ud800"}]',
            errors.FORMATION_VIOLATION,
            "s",
            message_type_id=2,
        )

    def test_lone_surrogate_raw(self) -> None:
        """A str carrying a raw lone surrogate is refused the same way."""
        self.assertFrameError(
            '[2,"s","Authorize",{"idTag":"\ud800"}]',
            errors.FORMATION_VIOLATION,
            "s",
            message_type_id=2,
        )

    def test_nul_character(self) -> None:
        """
        A NUL (valid JSON as \\u0000) in a value, a key or the uniqueId is a
        FormationViolation, on the fast and the strict decoding path:
        PostgreSQL text cannot hold it (an idTag with one made every start an
        InternalError; found by the fuzz).
        """
        for text, unique_id in [
            ('[2,"n","Authorize",{"idTag":"A\\u0000"}]', "n"),
            ('[2, "n", "Authorize", {"idTag": "\\u0000"}]', "n"),
            ('[2,"n","DataTransfer",{"vendorId":"x","\\u0000":"y"}]', "n"),
            ('[3,"n",{"a":["b","\\u0000"]}]', "n"),
            ('[2,"n\\u0000","Heartbeat",{}]', "-1"),
        ]:
            error = self.assertRaises(FrameError, parse_frame, text)
            self.assertEqual((error.code, error.unique_id), (errors.FORMATION_VIOLATION, unique_id))
            self.assertIn("NUL", error.description)

    def test_escaped_backslash_before_u0000(self) -> None:
        """A backslash followed by the text u0000 is no NUL."""
        frame = parse_frame('[2,"n","DataTransfer",{"vendorId":"x","data":"\\\\u0000"}]')
        self.assertEqual(frame, Call("n", "DataTransfer", {"vendorId": "x", "data": "\\u0000"}))

    def test_bytes_not_utf8(self) -> None:
        """Bytes that are not UTF-8 are a FormationViolation; the ASCII prefix gives the id."""
        self.assertFrameError(
            b'[2,"u","Authorize",{"idTag":"\xff"}]',
            errors.FORMATION_VIOLATION,
            "u",
            message_type_id=2,
        )

    def test_bytes_utf16(self) -> None:
        """UTF-16 bytes, which json.loads(bytes) would accept, are refused."""
        self.assertFrameError(
            '[2,"u","Heartbeat",{}]'.encode("utf-16"),
            errors.FORMATION_VIOLATION,
            UNKNOWN_UNIQUE_ID,
        )

    def test_bom(self) -> None:
        """A byte-order mark is not JSON whitespace."""
        self.assertFrameError(
            '\ufeff[2,"b","Heartbeat",{}]', errors.FORMATION_VIOLATION, UNKNOWN_UNIQUE_ID
        )

    def test_prefix_with_escape_not_recovered(self) -> None:
        """The id of invalid JSON is recovered only from a plain, escape-free prefix."""
        self.assertFrameError('[2,"a\\"b","X",{', errors.FORMATION_VIOLATION, UNKNOWN_UNIQUE_ID)

    def test_prefix_with_long_id_not_recovered(self) -> None:
        """An over-long id is not recovered from invalid JSON either."""
        self.assertFrameError(f'[2,"{ID_37}","X",{{', errors.FORMATION_VIOLATION, UNKNOWN_UNIQUE_ID)

    def test_prefix_of_callresult(self) -> None:
        """A broken CALLRESULT reports its id and MessageTypeId 3, so the protocol can fail
        its own pending request rather than answer."""
        self.assertFrameError(
            '[3,"r1",{"status":NaN}]', errors.FORMATION_VIOLATION, "r1", message_type_id=3
        )


class NestingTests(FrameErrorAssertions):
    """Nesting is bounded before json.loads can recurse."""

    def test_deep_arrays(self) -> None:
        """100k nested arrays fail fast with FormationViolation, not RecursionError."""
        self.assertFrameError("[" * 100_000 + "]" * 100_000, errors.FORMATION_VIOLATION, "-1")

    def test_deep_payload(self) -> None:
        """Deep nesting inside a payload keeps the recovered id."""
        text = '[2,"deep","DataTransfer",' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "]"
        self.assertFrameError(text, errors.FORMATION_VIOLATION, "deep", message_type_id=2)

    def test_unclosed_deep(self) -> None:
        """Unclosed deep nesting (never valid JSON) is refused the same way."""
        self.assertFrameError("[" * 100_000, errors.FORMATION_VIOLATION, "-1")

    def test_limit_is_inclusive(self) -> None:
        """Exactly max_depth levels (the frame's array counting as 1) parse; one more does not."""
        ok = '[2,"x","DataTransfer",{"vendorId":"v","d":' + "[" * 30 + "]" * 30 + "}]"
        self.assertEqual(parse_frame(ok).unique_id, "x")  # 1 + 1 + 30 = 32
        too_deep = '[2,"x","DataTransfer",{"vendorId":"v","d":' + "[" * 31 + "]" * 31 + "}]"
        self.assertFrameError(too_deep, errors.FORMATION_VIOLATION, "x", message_type_id=2)

    def test_max_depth_parameter(self) -> None:
        """max_depth is configurable."""
        text = '[2,"x","Heartbeat",{"a":{"b":{}}}]'
        self.assertIsInstance(parse_frame(text, max_depth=4), Call)
        error = self.assertRaises(FrameError, parse_frame, text, max_depth=3)
        self.assertEqual(error.code, errors.FORMATION_VIOLATION)

    def test_brackets_inside_strings_do_not_count(self) -> None:
        """Many brackets inside string values are text, not nesting."""
        tricky = '[{\\"\\\\' * 50  # brackets, escaped quotes and backslashes
        frame = parse_frame(json.dumps([2, "t", "DataTransfer", {"data": tricky}]))
        self.assertEqual(frame, Call("t", "DataTransfer", {"data": tricky}))

    def test_adversarial_escapes_are_linear(self) -> None:
        """
        A long run of escaped quotes after enough brackets to trigger the
        scan is answered, not scanned for ever.

        The scan runs in a child process that is given a minute: a linear
        scan takes well under a second even on a loaded machine, a
        backtracking one would take years, so this detects a hang without
        asserting a speed.
        """
        text = "[" * 40 + '"' + '\\"' * 500_000
        script = (
            "import sys\n"
            "from ocppd.ocpp.frames import FrameError, parse_frame\n"
            "try:\n"
            "    parse_frame(sys.stdin.read())\n"
            "except FrameError as e:\n"
            "    print(e.code)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], input=text, capture_output=True, text=True, timeout=60
        )
        self.assertEqual(result.stdout.strip(), errors.FORMATION_VIOLATION, result.stderr)


class StructureTests(FrameErrorAssertions):
    """Valid JSON that is not an OCPP-J frame."""

    def test_string(self) -> None:
        """A JSON string is not a frame."""
        self.assertFrameError('"hello"', errors.PROTOCOL_ERROR, "-1")

    def test_object(self) -> None:
        """A JSON object is not a frame."""
        self.assertFrameError('{"uniqueId":"x"}', errors.PROTOCOL_ERROR, "-1")

    def test_number(self) -> None:
        """A JSON number is not a frame."""
        self.assertFrameError("2", errors.PROTOCOL_ERROR, "-1")

    def test_null(self) -> None:
        """JSON null is not a frame."""
        self.assertFrameError("null", errors.PROTOCOL_ERROR, "-1")

    def test_empty_array(self) -> None:
        """``[]`` has no MessageTypeId."""
        self.assertFrameError("[]", errors.PROTOCOL_ERROR, "-1")

    def test_type_only(self) -> None:
        """``[2]`` has no uniqueId."""
        self.assertFrameError("[2]", errors.PROTOCOL_ERROR, "-1", message_type_id=2)

    def test_call_without_action(self) -> None:
        """``[2,"id"]`` is incomplete; the id is recovered."""
        self.assertFrameError('[2,"id"]', errors.PROTOCOL_ERROR, "id", message_type_id=2)

    def test_call_without_payload(self) -> None:
        """``[2,"id","Heartbeat"]`` is incomplete."""
        self.assertFrameError(
            '[2,"id","Heartbeat"]', errors.PROTOCOL_ERROR, "id", message_type_id=2
        )

    def test_call_extra_element(self) -> None:
        """A CALL with a fifth element does not have a CALL's shape."""
        self.assertFrameError(
            '[2,"id","Heartbeat",{},"extra"]', errors.PROTOCOL_ERROR, "id", message_type_id=2
        )

    def test_unique_id_not_string(self) -> None:
        """A numeric uniqueId cannot be answered to."""
        self.assertFrameError(
            '[2,5,"Heartbeat",{}]', errors.PROTOCOL_ERROR, "-1", message_type_id=2
        )

    def test_unique_id_null(self) -> None:
        """A null uniqueId is not a string."""
        self.assertFrameError(
            '[2,null,"Heartbeat",{}]', errors.PROTOCOL_ERROR, "-1", message_type_id=2
        )

    def test_action_not_string(self) -> None:
        """The action must be a string."""
        self.assertFrameError('[2,"id",5,{}]', errors.PROTOCOL_ERROR, "id", message_type_id=2)

    def test_payload_array(self) -> None:
        """The payload must be an object, not an array."""
        self.assertFrameError(
            '[2,"id","Heartbeat",[]]', errors.PROTOCOL_ERROR, "id", message_type_id=2
        )

    def test_payload_null(self) -> None:
        """The payload must be an object, not null."""
        self.assertFrameError(
            '[2,"id","Heartbeat",null]', errors.PROTOCOL_ERROR, "id", message_type_id=2
        )

    def test_callresult_short(self) -> None:
        """``[3,"id"]`` has no payload."""
        self.assertFrameError('[3,"id"]', errors.PROTOCOL_ERROR, "id", message_type_id=3)

    def test_callresult_extra(self) -> None:
        """``[3,"id",{},{}]`` has an extra element."""
        self.assertFrameError('[3,"id",{},{}]', errors.PROTOCOL_ERROR, "id", message_type_id=3)

    def test_callresult_payload_string(self) -> None:
        """A CALLRESULT payload must be an object."""
        self.assertFrameError('[3,"id","ok"]', errors.PROTOCOL_ERROR, "id", message_type_id=3)

    def test_callerror_short(self) -> None:
        """A CALLERROR without description and details is incomplete."""
        self.assertFrameError(
            '[4,"id","GenericError"]', errors.PROTOCOL_ERROR, "id", message_type_id=4
        )

    def test_callerror_code_not_string(self) -> None:
        """The errorCode must be a string."""
        self.assertFrameError('[4,"id",1,"",{}]', errors.PROTOCOL_ERROR, "id", message_type_id=4)

    def test_callerror_description_not_string(self) -> None:
        """The errorDescription must be a string."""
        self.assertFrameError(
            '[4,"id","GenericError",null,{}]', errors.PROTOCOL_ERROR, "id", message_type_id=4
        )

    def test_callerror_details_not_object(self) -> None:
        """The errorDetails must be an object (OCPP-J: ``{}`` when there are none)."""
        self.assertFrameError(
            '[4,"id","GenericError","",[]]', errors.PROTOCOL_ERROR, "id", message_type_id=4
        )


class MessageTypeIdTests(FrameErrorAssertions):
    """Anything but the integers 2, 3 and 4 is an unknown MessageTypeId."""

    def test_unknown_number(self) -> None:
        """``[9,"id",{}]``: the id is still recovered."""
        self.assertFrameError('[9,"id",{}]', errors.PROPERTY_CONSTRAINT_VIOLATION, "id")

    def test_string_type(self) -> None:
        """``"2"`` is a string, not the integer 2."""
        self.assertFrameError(
            '["2","id","Heartbeat",{}]', errors.PROPERTY_CONSTRAINT_VIOLATION, "id"
        )

    def test_boolean_type(self) -> None:
        """``true`` is not a MessageTypeId even though Python's True is an int."""
        self.assertFrameError(
            '[true,"id","Heartbeat",{}]', errors.PROPERTY_CONSTRAINT_VIOLATION, "id"
        )

    def test_float_type(self) -> None:
        """``2.0`` is not the integer 2, although ``2.0 == 2`` in Python."""
        self.assertFrameError(
            '[2.0,"id","Heartbeat",{}]', errors.PROPERTY_CONSTRAINT_VIOLATION, "id"
        )

    def test_null_type(self) -> None:
        """A null MessageTypeId."""
        self.assertFrameError('[null,"id",{}]', errors.PROPERTY_CONSTRAINT_VIOLATION, "id")

    def test_unknown_type_alone(self) -> None:
        """``[9]``: an unknown type without an id answers to ``-1``."""
        self.assertFrameError("[9]", errors.PROPERTY_CONSTRAINT_VIOLATION, "-1")

    def test_unknown_type_with_long_id(self) -> None:
        """An over-long id is not recovered."""
        self.assertFrameError(f'[5,"{ID_37}",{{}}]', errors.PROPERTY_CONSTRAINT_VIOLATION, "-1")


class UniqueIdTests(FrameErrorAssertions):
    """The uniqueId is at most 36 characters (OCPP-J 1.6 section 4.1.3)."""

    def test_37_characters(self) -> None:
        """A 37-character id is a PropertyConstraintViolation, answered to ``-1``."""
        error = self.assertFrameError(
            f'[2,"{ID_37}","Heartbeat",{{}}]',
            errors.PROPERTY_CONSTRAINT_VIOLATION,
            "-1",
            message_type_id=2,
        )
        self.assertIn("36", error.description)

    def test_36_characters(self) -> None:
        """A 36-character id (a GUID) is fine."""
        self.assertEqual(parse_frame(f'[2,"{ID_36}","Heartbeat",{{}}]').unique_id, ID_36)

    def test_36_non_ascii_characters(self) -> None:
        """The limit counts characters, not UTF-8 bytes."""
        unique_id = "é" * 36
        self.assertEqual(
            parse_frame(json.dumps([3, unique_id, {}], ensure_ascii=False)).unique_id,
            unique_id,
        )

    def test_outgoing_id_checked(self) -> None:
        """We cannot build a frame with an id a peer would have to refuse."""
        self.assertRaises(ValueError, Call, ID_37, "Reset", {"type": "Soft"})
        self.assertRaises(ValueError, CallResult, ID_37, {})
        self.assertRaises(ValueError, CallError, ID_37, errors.GENERIC_ERROR)
        self.assertRaises(TypeError, Call, 5, "Reset", {})


class ValidFrameTests(SynchronousTestCase):
    """Well-formed frames parse, and marshal back to the same frame."""

    def test_call(self) -> None:
        """A BootNotification CALL parses into a Call."""
        frame = parse_frame(
            '[2, "19223201", "BootNotification",'
            ' {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"}]'
        )
        self.assertEqual(
            frame,
            Call(
                "19223201",
                "BootNotification",
                {"chargePointVendor": "VendorX", "chargePointModel": "SingleSocketCharger"},
            ),
        )

    def test_callresult(self) -> None:
        """A CALLRESULT parses into a CallResult."""
        frame = parse_frame('[3,"19223201",{"status":"Accepted"}]')
        self.assertEqual(frame, CallResult("19223201", {"status": "Accepted"}))

    def test_callerror(self) -> None:
        """A CALLERROR parses into a CallError."""
        frame = parse_frame('[4,"162376037","NotSupported","SetDisplayMessageRequest",{}]')
        self.assertEqual(
            frame, CallError("162376037", "NotSupported", "SetDisplayMessageRequest", {})
        )

    def test_callerror_unknown_code_kept(self) -> None:
        """A CALLERROR with a code outside table 7 is kept verbatim, not refused."""
        frame = parse_frame('[4,"x","VendorSpecificError","oops",{"a":1}]')
        self.assertEqual(frame, CallError("x", "VendorSpecificError", "oops", {"a": 1}))
        assert isinstance(frame, CallError)
        self.assertEqual(frame.to_error().code, "VendorSpecificError")

    def test_empty_unique_id(self) -> None:
        """An empty uniqueId is a string of at most 36 characters: accepted."""
        self.assertEqual(parse_frame('[3,"",{}]'), CallResult("", {}))

    def test_bytes_input(self) -> None:
        """UTF-8 bytes, as Autobahn delivers them, parse like text."""
        text = '[2,"b","Authorize",{"idTag":"Zürich"}]'
        self.assertEqual(parse_frame(text.encode("utf-8")), parse_frame(text))

    def test_whitespace_around(self) -> None:
        """JSON whitespace around and inside the frame is allowed."""
        frame = parse_frame(' \n[ 2 , "w" , "Heartbeat" , { } ]\r\n')
        self.assertEqual(frame, Call("w", "Heartbeat", {}))

    def test_unicode_payload(self) -> None:
        """Non-ASCII text survives parse and marshal, sent as UTF-8 rather than escapes."""
        payload = {"vendorId": "Ünïcødé", "data": '充电桩 ⚡ 😀 \u0001 \\ "'}
        call = Call("u-1", "DataTransfer", payload)
        text = call.marshal()
        self.assertIn("充电桩 ⚡ 😀", text)
        self.assertNotIn("\\u5145", text)
        self.assertEqual(parse_frame(text), call)

    def test_escaped_surrogate_pair(self) -> None:
        """A valid escaped surrogate pair is one character, not a lone surrogate."""
        frame = parse_frame('[3,"e",{"s":"\\ud83d\\ude00"}]')
        self.assertEqual(frame, CallResult("e", {"s": "😀"}))

    def test_round_trips(self) -> None:
        """marshal() then parse_frame() gives back an equal frame, for every type."""
        frames: list[Frame] = [
            Call("1", "Heartbeat", {}),
            Call(ID_36, "MeterValues", {"connectorId": 1, "meterValue": [{"x": [1.5, None]}]}),
            CallResult("2", {"currentTime": "2026-01-01T00:00:00.000Z"}),
            CallError("3", errors.FORMATION_VIOLATION),
            CallError("4", errors.GENERIC_ERROR, "boom", {"why": ["a", "b"]}),
        ]
        for frame in frames:
            self.assertEqual(parse_frame(frame.marshal()), frame)

    def test_marshal_is_compact(self) -> None:
        """marshal() emits the OCPP-J array with no spaces."""
        self.assertEqual(
            Call("1", "Reset", {"type": "Soft"}).marshal(), '[2,"1","Reset",{"type":"Soft"}]'
        )
        self.assertEqual(CallResult("1", {}).marshal(), '[3,"1",{}]')
        self.assertEqual(CallError("1", "GenericError").marshal(), '[4,"1","GenericError","",{}]')

    def test_marshal_refuses_nan(self) -> None:
        """A non-finite number we would send is a bug, not invalid JSON on the wire."""
        self.assertRaises(ValueError, CallResult("1", {"x": float("nan")}).marshal)

    def test_callerror_details_not_shared(self) -> None:
        """The default details dict is a fresh one per CallError."""
        first, second = CallError("1", "GenericError"), CallError("2", "GenericError")
        self.assertEqual(first.details, {})
        self.assertIsNot(first.details, second.details)

    def test_callerror_from_error(self) -> None:
        """An OcppError becomes the CALLERROR answering a given id."""
        error = errors.OcppError(errors.SECURITY_ERROR, "not accepted", {"status": "Pending"})
        self.assertEqual(
            CallError.from_error("7", error),
            CallError("7", errors.SECURITY_ERROR, "not accepted", {"status": "Pending"}),
        )

    def test_message_type_constants(self) -> None:
        """Each class carries its MessageTypeId."""
        self.assertEqual(
            (Call.MESSAGE_TYPE, CallResult.MESSAGE_TYPE, CallError.MESSAGE_TYPE), (2, 3, 4)
        )
        self.assertEqual(MAX_UNIQUE_ID_LENGTH, 36)


class OcppErrorTests(SynchronousTestCase):
    """The exception and the table 7 codes."""

    def test_codes(self) -> None:
        """The ten codes of OCPP-J 1.6 table 7, in the specification's spelling."""
        self.assertEqual(
            errors.CALL_ERROR_CODES,
            {
                "NotImplemented",
                "NotSupported",
                "InternalError",
                "ProtocolError",
                "SecurityError",
                "FormationViolation",
                "PropertyConstraintViolation",
                "OccurenceConstraintViolation",
                "TypeConstraintViolation",
                "GenericError",
            },
        )

    def test_defaults(self) -> None:
        """description defaults to empty and details to a fresh empty dict."""
        first, second = errors.OcppError("GenericError"), errors.OcppError("GenericError")
        self.assertEqual((first.code, first.description, first.details), ("GenericError", "", {}))
        self.assertIsNot(first.details, second.details)
        self.assertEqual(str(errors.OcppError("X", "why")), "X: why")

    def test_frame_error_defaults(self) -> None:
        """A FrameError without an id answers to ``-1``."""
        error = FrameError(errors.PROTOCOL_ERROR, "x")
        self.assertEqual((error.unique_id, error.message_type_id), ("-1", None))


class FastDecoderTests(FrameErrorAssertions):
    """
    Compact frames are decoded by ``orjson`` (``frames._decode_fast``); these
    are the cases where it alone would differ from the strict decoder.
    """

    def test_compact_and_spaced_frames_decode_alike(self) -> None:
        """The fast path (compact) and the strict path (spaced) give the same frame."""
        payload = {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": "2027-01-01T00:00:00.000Z",
                    "sampledValue": [{"value": "1.5", "unit": "kWh"}],
                }
            ],
            "ratio": 0.1,
            "negative": -7,
            "text": "\u00e9\u20ac",
        }
        compact = json.dumps([2, "m", "MeterValues", payload], separators=(",", ":"))
        compact = compact.replace("\\u00e9", "\u00e9").replace("\\u20ac", "\u20ac")
        spaced = json.dumps([2, "m", "MeterValues", payload], indent=1)
        self.assertIsNotNone(frames._decode_fast(compact))
        self.assertIsNone(frames._decode_fast(spaced))
        self.assertEqual(parse_frame(compact), parse_frame(spaced))
        self.assertEqual(parse_frame(compact), Call("m", "MeterValues", payload))

    def test_compact_duplicate_keys(self) -> None:
        """orjson would keep the last duplicate; the compact frame is still refused."""
        self.assertIsNone(frames._decode_fast('[2,"d",{"a":1,"a":1}]'))
        self.assertFrameError(
            '[2,"d","DataTransfer",{"vendorId":"V","vendorId":"V"}]',
            errors.FORMATION_VIOLATION,
            "d",
            message_type_id=2,
        )

    def test_compact_integer_beyond_64_bits(self) -> None:
        """orjson reads a 30-digit integer as a float; the frame keeps the exact int."""
        digits = "123456789012345678901234567890"
        frame = parse_frame('[2,"i","DataTransfer",{"vendorId":"V","data":' + digits + "}]")
        assert isinstance(frame, Call)
        self.assertEqual(frame.payload["data"], int(digits))
        self.assertIs(type(frame.payload["data"]), int)

    def test_compact_overflowing_float(self) -> None:
        """1e999 in a compact frame is refused as in a spaced one."""
        error = self.assertFrameError(
            '[2,"f","DataTransfer",{"vendorId":"V","data":1e999}]',
            errors.FORMATION_VIOLATION,
            "f",
            message_type_id=2,
        )
        self.assertIn("out of range", error.description)

    def test_compact_nan(self) -> None:
        """NaN in a compact frame is refused with the strict decoder's description."""
        error = self.assertFrameError(
            '[2,"n","DataTransfer",{"vendorId":"V","data":NaN}]',
            errors.FORMATION_VIOLATION,
            "n",
            message_type_id=2,
        )
        self.assertIn("NaN", error.description)


_texts = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=3)


class CommonCallPathTests(SynchronousTestCase):
    """
    The short path of parse_frame for a well-formed CALL agrees with the full
    checks of the decoded value (texts that the decoder itself refuses, NUL and
    lone surrogates, are InvalidJsonTests' business).
    """

    @FUZZ
    @given(
        st.one_of(
            st.tuples(
                st.sampled_from([2, 3, 4, 2.0, True, "2", None]),
                _texts | st.sampled_from(["x" * 36, "x" * 37, 1, None]),
                _texts | st.sampled_from([2, None, {}]),
                st.dictionaries(_texts, st.integers(), max_size=2)
                | st.sampled_from([[], "{}", None]),
            ).map(list),
            st.lists(st.sampled_from([2, "a", {}]), max_size=6),
        )
    )
    def test_same_frame_or_error(self, value: list[Any]) -> None:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        try:
            expected: Any = frames._frame_of(json.loads(text))
        except FrameError as e:
            expected = repr(e)
        try:
            got: Any = parse_frame(text)
        except FrameError as e:
            got = repr(e)
        self.assertEqual(got, expected)
        if isinstance(got, Call):
            self.assertIs(type(got), Call)
            self.assertEqual(Call(got.unique_id, got.action, got.payload), got)
