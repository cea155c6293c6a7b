"""Tests for ``ocppd.ocpp.schemas``: the official OCPP 1.6 schemas and the error mapping."""

from __future__ import annotations

import copy
import itertools
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import fastjsonschema
from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp import actions, errors
from ocppd.ocpp.schemas import (
    CHARGER_INTEGER_RANGES,
    EARLIEST_TIME,
    LATEST_TIME,
    RULE_CODES,
    SchemaRegistry,
    is_date_time,
    schema_error,
)
from ocppd.timeutil import parse_iso

# One registry for the module: loading compiles 78 schemas. Tests only read it.
REGISTRY = SchemaRegistry.load()

TIME = "2026-03-01T08:15:30.123Z"
ID_TAG = "04A2B3C4D5E6F7"

#: A realistic request of every charger-initiated action.
CHARGER_REQUESTS: dict[str, dict[str, Any]] = {
    "Authorize": {"idTag": ID_TAG},
    "BootNotification": {
        "chargePointVendor": "ABB",
        "chargePointModel": "Terra AC W22-T-R-0",
        "chargePointSerialNumber": "TACW2244321G1234",
        "chargeBoxSerialNumber": "TACW2244321G1234",
        "firmwareVersion": "1.6.3",
        "iccid": "8931440000000000001",
        "imsi": "262011234567890",
        "meterType": "ABB B23 112-100",
        "meterSerialNumber": "B23-9876543",
    },
    "DataTransfer": {
        "vendorId": "com.abb",
        "messageId": "ChargingCurrent",
        "data": '{"current":16}',
    },
    "DiagnosticsStatusNotification": {"status": "Uploaded"},
    "FirmwareStatusNotification": {"status": "Installed"},
    "Heartbeat": {},
    "MeterValues": {
        "connectorId": 1,
        "transactionId": 1207,
        "meterValue": [
            {
                "timestamp": TIME,
                "sampledValue": [
                    {
                        "value": "12345.6",
                        "context": "Sample.Periodic",
                        "format": "Raw",
                        "measurand": "Energy.Active.Import.Register",
                        "location": "Outlet",
                        "unit": "Wh",
                    },
                    {
                        "value": "15.9",
                        "measurand": "Current.Import",
                        "phase": "L1",
                        "unit": "A",
                    },
                    {"value": "80", "measurand": "SoC", "location": "EV", "unit": "Percent"},
                ],
            }
        ],
    },
    "StartTransaction": {
        "connectorId": 1,
        "idTag": ID_TAG,
        "meterStart": 123456,
        "timestamp": TIME,
        "reservationId": 42,
    },
    "StatusNotification": {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Charging",
        "timestamp": TIME,
        "info": "",
        "vendorId": "com.abb",
        "vendorErrorCode": "0",
    },
    "StopTransaction": {
        "idTag": ID_TAG,
        "meterStop": 135790,
        "timestamp": "2026-03-01T09:45:00+01:00",
        "transactionId": 1207,
        "reason": "EVDisconnected",
        "transactionData": [
            {
                "timestamp": TIME,
                "sampledValue": [
                    {
                        "value": "123456",
                        "context": "Transaction.Begin",
                        "measurand": "Energy.Active.Import.Register",
                        "unit": "Wh",
                    }
                ],
            },
            {
                "timestamp": "2026-03-01T08:45:00Z",
                "sampledValue": [
                    {
                        "value": "135790",
                        "context": "Transaction.End",
                        "measurand": "Energy.Active.Import.Register",
                        "unit": "Wh",
                    }
                ],
            },
        ],
    },
}

#: What ocppd answers to each charger-initiated action.
CENTRAL_SYSTEM_RESPONSES: dict[str, dict[str, Any]] = {
    "Authorize": {
        "idTagInfo": {"status": "Accepted", "expiryDate": TIME, "parentIdTag": "FLEET-1"}
    },
    "BootNotification": {"status": "Accepted", "currentTime": TIME, "interval": 300},
    "DataTransfer": {"status": "UnknownVendorId"},
    "DiagnosticsStatusNotification": {},
    "FirmwareStatusNotification": {},
    "Heartbeat": {"currentTime": TIME},
    "MeterValues": {},
    "StartTransaction": {"idTagInfo": {"status": "Accepted"}, "transactionId": 1207},
    "StatusNotification": {},
    "StopTransaction": {"idTagInfo": {"status": "Accepted"}},
}

START = CHARGER_REQUESTS["StartTransaction"]


def with_changes(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``payload`` with top-level fields replaced."""
    result = copy.deepcopy(payload)
    result.update(changes)
    return result


def without(payload: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A deep copy of ``payload`` without some top-level fields."""
    result = copy.deepcopy(payload)
    for key in keys:
        del result[key]
    return result


class RegistryTests(SynchronousTestCase):
    """Loading and coverage of the official schemas."""

    def test_every_action_has_both_schemas(self) -> None:
        """Every OCPP 1.6 and security-extension action has a compiled request and response
        schema, and the registry holds nothing else."""
        self.assertEqual(REGISTRY.request_schema_actions, actions.KNOWN)
        self.assertEqual(REGISTRY.response_schema_actions, actions.KNOWN)
        for action in actions.KNOWN:
            self.assertTrue(REGISTRY.has_request_schema(action), action)
            self.assertTrue(REGISTRY.has_response_schema(action), action)
        self.assertFalse(REGISTRY.has_request_schema("BootNotificationResponse"))
        self.assertFalse(REGISTRY.has_response_schema("Bogus"))

    def test_load_builds_independent_registries(self) -> None:
        """load() builds a new registry each time: there is no module-level cache."""
        self.assertIsNot(SchemaRegistry.load(), REGISTRY)

    def test_unknown_action(self) -> None:
        """Validating an action without a schema is NotImplemented, not a KeyError."""
        error = self.assertRaises(errors.OcppError, REGISTRY.validate_request, "Bogus", {})
        self.assertEqual(error.code, errors.NOT_IMPLEMENTED)
        error = self.assertRaises(errors.OcppError, REGISTRY.validate_response, "Bogus", {})
        self.assertEqual(error.code, errors.NOT_IMPLEMENTED)

    def test_minimal_payloads_of_every_schema(self) -> None:
        """Every compiled validator runs: the empty payload passes or fails with a table code
        (it is an OccurenceConstraintViolation exactly when the schema requires fields)."""
        for action in sorted(actions.KNOWN):
            for validate in (REGISTRY.validate_request, REGISTRY.validate_response):
                try:
                    validate(action, {})
                except errors.OcppError as e:
                    self.assertEqual(e.code, errors.OCCURENCE_CONSTRAINT_VIOLATION, action)
                    self.assertEqual(e.details["rule"], "required", action)

    def test_remote_ref_refused(self) -> None:
        """A schema with a remote $ref is refused at load time rather than fetched."""
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "Evil.json").write_text(
            json.dumps({"type": "object", "properties": {"a": {"$ref": "http://x/y.json"}}})
        )
        self.assertRaises(ValueError, SchemaRegistry.load, directory)

    def test_later_draft_keyword_refused(self) -> None:
        """A schema using a keyword draft-04 would ignore is refused, not silently weakened."""
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "Later.json").write_text(
            json.dumps({"type": "object", "properties": {"a": {"const": 1}}})
        )
        self.assertRaises(ValueError, SchemaRegistry.load, directory)

    def test_property_named_like_keyword_allowed(self) -> None:
        """A property merely named ``const`` is not the keyword."""
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "Thing.json").write_text(
            json.dumps({"type": "object", "properties": {"const": {"type": "integer"}}})
        )
        (directory / "ThingResponse.json").write_text(json.dumps({"type": "object"}))
        (directory / "README.txt").write_text("not a schema")
        registry = SchemaRegistry.load(directory)
        self.assertEqual(registry.request_schema_actions, {"Thing"})
        self.assertEqual(registry.response_schema_actions, {"Thing"})
        registry.validate_request("Thing", {"const": 1})


class ValidPayloadTests(SynchronousTestCase):
    """Realistic payloads pass."""

    def test_every_charger_request(self) -> None:
        """A realistic request of every charger-initiated action is valid."""
        self.assertEqual(set(CHARGER_REQUESTS), actions.CHARGER_INITIATED)
        for action, payload in CHARGER_REQUESTS.items():
            REGISTRY.validate_request(action, payload)

    def test_every_central_system_response(self) -> None:
        """What we answer to every charger-initiated action is valid."""
        self.assertEqual(set(CENTRAL_SYSTEM_RESPONSES), actions.CHARGER_INITIATED)
        for action, payload in CENTRAL_SYSTEM_RESPONSES.items():
            REGISTRY.validate_response(action, payload)

    def test_validation_does_not_mutate(self) -> None:
        """Validation leaves the payload exactly as received."""
        payload = copy.deepcopy(CHARGER_REQUESTS["MeterValues"])
        REGISTRY.validate_request("MeterValues", payload)
        self.assertEqual(payload, CHARGER_REQUESTS["MeterValues"])

    def test_decimal_multiple_of(self) -> None:
        """A limit of 21.4 A is a multiple of 0.1 although 21.4 / 0.1 is not exact in floats."""
        REGISTRY.validate_request("SetChargingProfile", set_charging_profile(21.4))
        REGISTRY.validate_request("SetChargingProfile", set_charging_profile(16))

    def test_security_extension_schema(self) -> None:
        """A draft-06 security whitepaper schema validates a real payload."""
        REGISTRY.validate_request(
            "GetLog",
            {
                "logType": "SecurityLog",
                "requestId": 1,
                "log": {"remoteLocation": "ftp://logs.example.com/", "oldestTimestamp": TIME},
            },
        )


def set_charging_profile(limit: Any) -> dict[str, Any]:
    """A SetChargingProfile request with one schedule period of ``limit``."""
    return {
        "connectorId": 1,
        "csChargingProfiles": {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            },
        },
    }


class ErrorMappingTests(SynchronousTestCase):
    """Each schema failure maps to its OCPP-J 1.6 table 7 code, naming the field."""

    def assertRefused(
        self,
        action: str,
        payload: Any,
        code: str,
        field: str,
        rule: str,
        *,
        response: bool = False,
        registry: SchemaRegistry = REGISTRY,
    ) -> errors.OcppError:
        """Validation raises OcppError with this code and details."""
        validate = registry.validate_response if response else registry.validate_request
        error = self.assertRaises(errors.OcppError, validate, action, payload)
        self.assertEqual(
            (error.code, error.details), (code, {"field": field, "rule": rule}), repr(error)
        )
        self.assertIn(error.code, errors.CALL_ERROR_CODES)
        self.assertTrue(error.description.startswith(field or "payload"), repr(error))
        return error

    def test_max_length(self) -> None:
        """A 21-character idTag (max 20) is a PropertyConstraintViolation."""
        error = self.assertRefused(
            "StartTransaction",
            with_changes(START, idTag="X" * 21),
            errors.PROPERTY_CONSTRAINT_VIOLATION,
            "idTag",
            "maxLength",
        )
        self.assertEqual(error.description, "idTag: must be shorter than or equal to 20 characters")

    def test_type_string_for_integer(self) -> None:
        """connectorId "1" is a TypeConstraintViolation."""
        self.assertRefused(
            "StartTransaction",
            with_changes(START, connectorId="1"),
            errors.TYPE_CONSTRAINT_VIOLATION,
            "connectorId",
            "type",
        )

    def test_type_boolean_for_integer(self) -> None:
        """true is not an integer, although Python's True is an int."""
        self.assertRefused(
            "StartTransaction",
            with_changes(START, meterStart=True),
            errors.TYPE_CONSTRAINT_VIOLATION,
            "meterStart",
            "type",
        )

    def test_type_float_for_integer(self) -> None:
        """1.0 is not an OCPP integer."""
        self.assertRefused(
            "StartTransaction",
            with_changes(START, connectorId=1.0),
            errors.TYPE_CONSTRAINT_VIOLATION,
            "connectorId",
            "type",
        )

    def test_type_float_for_integer_draft_06(self) -> None:
        """1.0 is not an integer in the security schemas either, although they declare
        draft-06, under which it would be."""
        self.assertRefused(
            "GetLog",
            {"logType": "SecurityLog", "requestId": 1.0, "log": {"remoteLocation": "x"}},
            errors.TYPE_CONSTRAINT_VIOLATION,
            "requestId",
            "type",
        )

    def test_type_object_for_string(self) -> None:
        """DataTransfer data is a string in OCPP 1.6; an object is a TypeConstraintViolation."""
        self.assertRefused(
            "DataTransfer",
            {"vendorId": "com.abb", "data": {"current": 16}},
            errors.TYPE_CONSTRAINT_VIOLATION,
            "data",
            "type",
        )

    def test_type_nested(self) -> None:
        """A nested field's path names the array indexes."""
        payload = copy.deepcopy(CHARGER_REQUESTS["MeterValues"])
        payload["meterValue"][0]["sampledValue"][1]["value"] = 15.9
        self.assertRefused(
            "MeterValues",
            payload,
            errors.TYPE_CONSTRAINT_VIOLATION,
            "meterValue[0].sampledValue[1].value",
            "type",
        )

    def test_required(self) -> None:
        """A missing timestamp is an OccurenceConstraintViolation naming it."""
        error = self.assertRefused(
            "StartTransaction",
            without(START, "timestamp"),
            errors.OCCURENCE_CONSTRAINT_VIOLATION,
            "timestamp",
            "required",
        )
        self.assertEqual(error.description, "timestamp: required but missing")

    def test_required_several(self) -> None:
        """Several missing fields are all named; details carry the first."""
        error = self.assertRefused(
            "StartTransaction",
            without(START, "idTag", "timestamp"),
            errors.OCCURENCE_CONSTRAINT_VIOLATION,
            "idTag",
            "required",
        )
        self.assertEqual(error.description, "idTag, timestamp: required but missing")

    def test_required_nested(self) -> None:
        """A missing nested field is named by its path."""
        payload = copy.deepcopy(CHARGER_REQUESTS["MeterValues"])
        del payload["meterValue"][0]["sampledValue"][2]["value"]
        self.assertRefused(
            "MeterValues",
            payload,
            errors.OCCURENCE_CONSTRAINT_VIOLATION,
            "meterValue[0].sampledValue[2].value",
            "required",
        )

    def test_min_items(self) -> None:
        """MeterValues with no meterValue is an OccurenceConstraintViolation."""
        self.assertRefused(
            "MeterValues",
            {"connectorId": 1, "meterValue": []},
            errors.OCCURENCE_CONSTRAINT_VIOLATION,
            "meterValue",
            "minItems",
        )

    def test_additional_property(self) -> None:
        """An extra property does not conform to the PDU: FormationViolation."""
        error = self.assertRefused(
            "StartTransaction",
            with_changes(START, vendorExtra=1),
            errors.FORMATION_VIOLATION,
            "vendorExtra",
            "additionalProperties",
        )
        self.assertEqual(error.description, "vendorExtra: not a property of this message")

    def test_additional_property_nested(self) -> None:
        """An extra property in a nested object of a response is named by its path."""
        self.assertRefused(
            "StartTransaction",
            {"idTagInfo": {"status": "Accepted", "colour": "green"}, "transactionId": 1},
            errors.FORMATION_VIOLATION,
            "idTagInfo.colour",
            "additionalProperties",
            response=True,
        )

    def test_additional_property_long_name_clipped(self) -> None:
        """An unexpected property's name is the charger's text: it is echoed clipped."""
        error = self.assertRefused(
            "Heartbeat",
            {"k" * 1000: 1},
            errors.FORMATION_VIOLATION,
            "k" * 97 + "...",
            "additionalProperties",
        )
        self.assertLess(len(error.description), 200)

    def test_enum(self) -> None:
        """An unknown StatusNotification status is a PropertyConstraintViolation."""
        self.assertRefused(
            "StatusNotification",
            with_changes(CHARGER_REQUESTS["StatusNotification"], status="Sleeping"),
            errors.PROPERTY_CONSTRAINT_VIOLATION,
            "status",
            "enum",
        )

    def test_date_time(self) -> None:
        """A timestamp that is no date-time is a PropertyConstraintViolation."""
        self.assertRefused(
            "StartTransaction",
            with_changes(START, timestamp="yesterday"),
            errors.PROPERTY_CONSTRAINT_VIOLATION,
            "timestamp",
            "format",
        )

    def test_date_time_impossible_date(self) -> None:
        """30 February has the right shape but is no date."""
        self.assertRefused(
            "StartTransaction",
            with_changes(START, timestamp="2026-02-30T00:00:00Z"),
            errors.PROPERTY_CONSTRAINT_VIOLATION,
            "timestamp",
            "format",
        )

    def test_multiple_of(self) -> None:
        """A charging limit of 4.11 A (resolution 0.1) is a PropertyConstraintViolation."""
        self.assertRefused(
            "SetChargingProfile",
            set_charging_profile(4.11),
            errors.PROPERTY_CONSTRAINT_VIOLATION,
            "csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit",
            "multipleOf",
        )

    def unbounded_rates(self) -> SchemaRegistry:
        """
        A registry with SetChargingProfile's schema as it is, under a name of
        no OCPP action, so its ``limit`` has no range (ocppd bounds it in the
        real one, where 1e308 is over its maximum before its multipleOf).
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        text = (files("ocpp") / "v16" / "schemas" / "SetChargingProfile.json").read_text()
        (directory / "UnboundedRate.json").write_text(text)
        return SchemaRegistry.load(directory)

    def test_multiple_of_huge_float(self) -> None:
        """1e308 overflows the multipleOf check; still a PropertyConstraintViolation."""
        self.assertRefused(
            "UnboundedRate",
            set_charging_profile(1e308),
            errors.PROPERTY_CONSTRAINT_VIOLATION,
            "csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit",
            "multipleOf",
            registry=self.unbounded_rates(),
        )

    def test_huge_integer(self) -> None:
        """An integer beyond float range makes the validator itself overflow: that is a
        PropertyConstraintViolation too, never an OverflowError escaping."""
        self.assertRefused(
            "UnboundedRate",
            set_charging_profile(10**400),
            errors.PROPERTY_CONSTRAINT_VIOLATION,
            "",
            "range",
            registry=self.unbounded_rates(),
        )

    def test_rates_we_send_are_bounded(self) -> None:
        """A charging rate ocppd sends is at most 10 MW (or A): 1e308 is over it."""
        for limit in (1e308, 10**400, -1):
            self.assertRefused(
                "SetChargingProfile",
                set_charging_profile(limit),
                errors.PROPERTY_CONSTRAINT_VIOLATION,
                "csChargingProfiles.chargingSchedule.chargingSchedulePeriod[0].limit",
                "minimum" if limit == -1 else "maximum",
            )

    def test_payload_array(self) -> None:
        """A payload that is an array, not an object, is a FormationViolation."""
        error = self.assertRefused("Heartbeat", [], errors.FORMATION_VIOLATION, "", "type")
        self.assertEqual(error.description, "payload: must be a JSON object")

    def test_payload_null(self) -> None:
        """A null payload is a FormationViolation."""
        self.assertRefused("StartTransaction", None, errors.FORMATION_VIOLATION, "", "type")


class RuleTableTests(SynchronousTestCase):
    """The rules OCPP 1.6's own schemas never exercise, through small inline schemas."""

    def error_for(self, schema: dict[str, Any], payload: Any) -> errors.OcppError:
        """
        The OcppError for ``payload`` failing ``schema``.

        Draft-06, because under draft-04 a failed boolean ``exclusiveMinimum``
        is reported as rule ``minimum`` (the same code either way).
        """
        validate = fastjsonschema.compile(
            {"$schema": "http://json-schema.org/draft-06/schema#", **schema},
            use_default=False,
        )
        failure = self.assertRaises(fastjsonschema.JsonSchemaValueException, validate, payload)
        return schema_error(failure)

    def test_table(self) -> None:
        """Each rule maps to its table 7 code, with the field and rule in the details."""
        integer = {"type": "integer"}
        rows: list[tuple[dict[str, Any], Any, str, str]] = [
            ({"a": {"type": "array", "maxItems": 1}}, [1, 2], "maxItems", "Occurence"),
            ({"a": {"type": "array", "minItems": 1}}, [], "minItems", "Occurence"),
            ({"a": {"type": "string", "minLength": 2}}, "x", "minLength", "Property"),
            ({"a": {"type": "string", "pattern": "^[0-9]+$"}}, "x", "pattern", "Property"),
            ({"a": {**integer, "minimum": 0}}, -1, "minimum", "Property"),
            ({"a": {**integer, "maximum": 9}}, 10, "maximum", "Property"),
            (
                {"a": {**integer, "exclusiveMinimum": 0}},
                0,
                "exclusiveMinimum",
                "Property",
            ),
            (
                {"a": {**integer, "exclusiveMaximum": 9}},
                9,
                "exclusiveMaximum",
                "Property",
            ),
            ({"a": {"type": "object", "minProperties": 1}}, {}, "minProperties", "Formation"),
            ({"a": {"not": integer}}, 1, "not", "Formation"),
        ]
        codes = {
            "Occurence": errors.OCCURENCE_CONSTRAINT_VIOLATION,
            "Property": errors.PROPERTY_CONSTRAINT_VIOLATION,
            "Formation": errors.FORMATION_VIOLATION,
        }
        for properties, value, rule, code in rows:
            error = self.error_for({"type": "object", "properties": properties}, {"a": value})
            self.assertEqual(
                (error.code, error.details), (codes[code], {"field": "a", "rule": rule}), rule
            )
            self.assertTrue(error.description.startswith("a: "), error.description)

    def test_rule_codes_complete(self) -> None:
        """The published table has exactly the rules of the brief."""
        self.assertEqual(
            {
                rule
                for rule, code in RULE_CODES.items()
                if code == errors.OCCURENCE_CONSTRAINT_VIOLATION
            },
            {"required", "minItems", "maxItems"},
        )
        self.assertEqual(RULE_CODES["type"], errors.TYPE_CONSTRAINT_VIOLATION)
        self.assertEqual(RULE_CODES["additionalProperties"], errors.FORMATION_VIOLATION)
        self.assertEqual(
            {
                rule
                for rule, code in RULE_CODES.items()
                if code == errors.PROPERTY_CONSTRAINT_VIOLATION
            },
            {
                "enum",
                "maxLength",
                "minLength",
                "pattern",
                "format",
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
                "multipleOf",
            },
        )


class DateTimeTests(SynchronousTestCase):
    """The date-time format OCPP timestamps must have."""

    def test_accepted(self) -> None:
        """RFC 3339 times with Z, offsets and fractions pass, and so does a time without an
        offset (UTC, as ocppd.timeutil.parse_iso reads it)."""
        for value in [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00+01:00",
            "2026-01-01T00:00:00-05:30",
            "2026-01-01T00:00:00.1Z",
            "2026-01-01T00:00:00.123Z",
            "2026-01-01T00:00:00.123456789Z",
            "2026-01-01t00:00:00z",
            "2026-01-01T00:00:00+0100",
            "2026-01-01T00:00:00",
            "2028-02-29T23:59:59Z",
            # Clocks that never were set, and the edges of the accepted years.
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:00:00+14:00",
            "1900-01-01T00:00:00Z",
            "1900-01-01T23:58:00+23:58",
            "8999-12-31T23:59:59.999999999999Z",
            "8999-12-31T00:00:00-23:59",
            "2026-01-01T00:00:00." + "9" * 1000 + "Z",
        ]:
            self.assertTrue(is_date_time(value), value)
            REGISTRY.validate_request("StartTransaction", with_changes(START, timestamp=value))

    def test_refused(self) -> None:
        """Garbage, impossible dates and times, non-ASCII digits and other shapes fail."""
        for value in [
            "",
            "garbage",
            "2026-01-01",
            "2026-01-01 00:00:00Z",
            "20260101T000000Z",
            "2026-01-01T00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T23:59:60Z",
            "2026-02-30T00:00:00Z",
            "2027-02-29T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00Z\n",
            " 2026-01-01T00:00:00Z",
            "٢٠٢٦-01-01T00:00:00Z",
            "2026-01-01T00:00:00+25:00",
            "1767225600",
            # Valid RFC 3339, outside [1900, 9000) in UTC, or beyond datetime once in UTC.
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00+00:01",
            "1899-12-31T23:59:59.999999Z",
            "1900-01-01T00:00:00+00:01",
            "9000-01-01T00:00:00Z",
            "8999-12-31T23:59:00-23:59",
            "9999-12-31T23:59:59.999999Z",
            "9999-12-31T23:59:59-23:59",
        ]:
            self.assertFalse(is_date_time(value), value)
            error = self.assertRaises(
                errors.OcppError,
                REGISTRY.validate_request,
                "StartTransaction",
                with_changes(START, timestamp=value),
            )
            self.assertEqual(error.code, errors.PROPERTY_CONSTRAINT_VIOLATION, value)

    def test_utc_reading_as_parse_iso(self) -> None:
        """
        A time ending in Z (read by ``datetime.fromisoformat`` directly) gets
        the verdict of ``parse_iso``'s reading, over the edges of every field.
        """
        checked = 0
        for year, month, day, hour, minute, second, fraction in itertools.product(
            ["0001", "1899", "1900", "2027", "2028", "8999", "9000", "9999"],
            ["00", "01", "02", "12", "13"],
            ["00", "01", "28", "29", "31", "32"],
            ["00", "23", "24"],
            ["00", "59", "60"],
            ["00", "59", "60"],
            ["", ".0", ".999999", ".9999995", ".123456789"],
        ):
            for tee in "Tt":
                value = f"{year}-{month}-{day}{tee}{hour}:{minute}:{second}{fraction}Z"
                try:
                    instant = parse_iso(value)
                except ValueError:
                    expected = False
                else:
                    expected = EARLIEST_TIME <= instant < LATEST_TIME
                self.assertEqual(is_date_time(value), expected, value)
                checked += expected
        self.assertGreater(checked, 1000)


class IntegerRangeTests(SynchronousTestCase):
    """Every integer of a charger's request has a documented range (docs/ocpp.md, "Bounds")."""

    def test_every_charger_integer_has_a_range(self) -> None:
        """The ranges name exactly the integers of the official charger-initiated schemas."""
        schemas = files("ocpp") / "v16" / "schemas"
        integers = {}
        for action in actions.CHARGER_INITIATED:
            schema = json.loads((schemas / f"{action}.json").read_text())
            fields = {
                name
                for name, child in schema.get("properties", {}).items()
                if child.get("type") == "integer"
            }
            if fields:
                integers[action] = fields
        self.assertEqual(
            integers, {action: set(ranges) for action, ranges in CHARGER_INTEGER_RANGES.items()}
        )

    def test_each_bound(self) -> None:
        """
        At each end of its range a field passes; one beyond it (``meterStart:
        2**63`` of issue 13 item 13 among them) is a PropertyConstraintViolation
        naming the field and the rule.
        """
        for action, ranges in CHARGER_INTEGER_RANGES.items():
            for field, (low, high) in ranges.items():
                case = f"{action}.{field}"
                for value in (low, high):
                    REGISTRY.validate_request(
                        action, with_changes(CHARGER_REQUESTS[action], **{field: value})
                    )
                for value, rule in [
                    (low - 1, "minimum"),
                    (high + 1, "maximum"),
                    (2**63, "maximum"),
                ]:
                    error = self.assertRaises(
                        errors.OcppError,
                        REGISTRY.validate_request,
                        action,
                        with_changes(CHARGER_REQUESTS[action], **{field: value}),
                    )
                    self.assertEqual(error.code, errors.PROPERTY_CONSTRAINT_VIOLATION, case)
                    self.assertEqual(error.details, {"field": field, "rule": rule}, case)
                    self.assertTrue(error.description.startswith(f"{field}: must be"), case)

    def test_commands_we_send_are_bounded(self) -> None:
        """
        Every integer of a command ocppd sends has a range, nested ones too:
        32-bit, not negative for counts and connectors, a real connector for
        a remote start or an unlock (issue 18: the point page's forms).
        """
        for action in actions.CENTRAL_SYSTEM_INITIATED - actions.CHARGER_INITIATED:
            schema = REGISTRY.request_schema(action)
            assert schema is not None, action
            stack = [schema]
            while stack:
                node = stack.pop()
                if node.get("type") in ("integer", "number"):
                    self.assertLessEqual({"minimum", "maximum"}, set(node), action)
                stack.extend(node.get("properties", {}).values())
                if "items" in node:
                    stack.append(node["items"])
        REGISTRY.validate_request("RemoteStopTransaction", {"transactionId": -(2**31)})
        REGISTRY.validate_request("UnlockConnector", {"connectorId": 2**31 - 1})
        refused = [
            ("RemoteStopTransaction", {"transactionId": -(2**31) - 1}, "transactionId", "minimum"),
            ("UnlockConnector", {"connectorId": 2**40}, "connectorId", "maximum"),
            ("UnlockConnector", {"connectorId": 0}, "connectorId", "minimum"),
            ("RemoteStartTransaction", {"idTag": "A", "connectorId": 0}, "connectorId", "minimum"),
            (
                "ChangeAvailability",
                {"connectorId": -1, "type": "Operative"},
                "connectorId",
                "minimum",
            ),
            ("GetDiagnostics", {"location": "ftp://x/", "retries": -1}, "retries", "minimum"),
        ]
        for action, payload, field, rule in refused:
            error = self.assertRaises(errors.OcppError, REGISTRY.validate_request, action, payload)
            self.assertEqual(error.details, {"field": field, "rule": rule}, action)
        REGISTRY.validate_request("ChangeAvailability", {"connectorId": 0, "type": "Operative"})

    def test_unbounded_charger_integer_refused_at_load(self) -> None:
        """A charger-initiated schema with an integer the ranges miss stops the start."""
        directory = Path(self.mktemp())
        directory.mkdir()
        (directory / "Heartbeat.json").write_text(
            json.dumps({"type": "object", "properties": {"beats": {"type": "integer"}}})
        )
        error = self.assertRaises(ValueError, SchemaRegistry.load, directory)
        self.assertIn("Heartbeat has an integer without a range", str(error))
        (directory / "Heartbeat.json").write_text(json.dumps({"type": "object"}))
        (directory / "StatusNotification.json").write_text(
            json.dumps({"type": "object", "properties": {"connectorId": {"type": "string"}}})
        )
        error = self.assertRaises(ValueError, SchemaRegistry.load, directory)
        self.assertIn("no integer 'connectorId'", str(error))
