"""``ocppd.api.command_forms``: a command's form from its request schema (pure)."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.api.command_forms import describe_command, describe_field
from ocppd.api.commands import COMMANDS
from ocppd.ocpp.schemas import SchemaRegistry

REGISTRY = SchemaRegistry.load()


class DescribeTests(SynchronousTestCase):
    def test_filled_fields_optional_with_a_note(self) -> None:
        """What ocppd fills in is optional in the form, whatever the schema requires."""
        schema = REGISTRY.request_schema("ReserveNow")
        assert schema is not None
        self.assertIn("reservationId", schema["required"])
        form = describe_command("reserve-now", "ReserveNow", schema)
        reservation = next(f for f in form["fields"] if f["name"] == "reservationId")
        self.assertEqual((reservation["required"], reservation["maximum"]), (False, 2**31 - 1))
        self.assertIn("note", reservation)
        connector = next(f for f in form["fields"] if f["name"] == "connectorId")
        self.assertEqual((connector["required"], connector["minimum"]), (True, 0))

    def test_every_command_described(self) -> None:
        """Each of the 19 commands has a request schema, and every field a known type."""
        types = set()
        stack = []
        for name, action in COMMANDS.items():
            schema = REGISTRY.request_schema(action)
            assert schema is not None, action
            stack.extend(describe_command(name, action, schema)["fields"])
        while stack:
            field = stack.pop()
            types.add(field["type"])
            stack.extend(field.get("fields", []))
            if "items" in field:
                stack.append(field["items"])
        self.assertLessEqual(types, {"string", "integer", "number", "object", "array"})

    def test_nesting_bounded(self) -> None:
        """A schema nested deeper than any OCPP request is refused, not followed for ever."""
        node: dict[str, object] = {"type": "string"}
        for _ in range(20):
            node = {"type": "object", "properties": {"x": node}}
        self.assertRaises(ValueError, describe_field, None, node)
