"""
What the CMS point page is built from, over real HTTP against a whole node:
each command's form (``GET /api/cms/commands``), the ranges commands are
held to, and a point's meter history per connector
(``GET /api/cms/points/{id}/meter``): bounded period, thinned series,
connectors never mixed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.api.commands import COMMANDS
from ocppd.api.point_meter import CHART_POINTS
from ocppd.measurands import ENERGY_REGISTER, POWER_IMPORT, MeterSample
from ocppd.store import transactions
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase
from tests.integration.daemon import postgres_overrides

T0 = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    """A time for a query string (``+00:00`` would read as a space)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def field(fields: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(f for f in fields if f["name"] == name)


class CommandFormTests(ApiTestCase):
    @inlineCallbacks
    def test_every_command_has_its_form(self) -> Any:
        """All 19 commands, their fields from the schemas with the ranges the API holds to."""
        token = yield self.login(ADMIN)
        code, body, _ = yield self.request("GET", "/api/cms/commands", token=token)
        self.assertEqual(code, 200, body)
        forms = {form["command"]: form for form in body["commands"]}
        self.assertEqual(list(forms), list(COMMANDS))
        self.assertEqual(len(forms), 19)
        reset = forms["reset"]
        self.assertEqual(reset["action"], "Reset")
        self.assertEqual(
            reset["fields"],
            [
                {
                    "name": "type",
                    "type": "string",
                    "required": True,
                    "enum": ["Hard", "Soft"],
                }
            ],
        )
        start = forms["remote-start"]["fields"]
        self.assertEqual(
            field(start, "connectorId"),
            {
                "name": "connectorId",
                "type": "integer",
                "required": False,
                "minimum": 1,
                "maximum": 2**31 - 1,
            },
        )
        self.assertEqual(field(start, "idTag")["maxLength"], 20)
        profile = field(start, "chargingProfile")
        schedule = field(profile["fields"], "chargingSchedule")
        periods = field(schedule["fields"], "chargingSchedulePeriod")
        self.assertEqual(periods["type"], "array")
        self.assertTrue(field(periods["items"]["fields"], "limit")["required"])
        self.assertEqual(field(periods["items"]["fields"], "numberPhases")["maximum"], 3)
        reserve = field(forms["reserve-now"]["fields"], "reservationId")
        self.assertFalse(reserve["required"])
        self.assertIn("allocates", reserve["note"])
        self.assertEqual(field(forms["reserve-now"]["fields"], "expiryDate")["format"], "date-time")
        keys = field(forms["get-configuration"]["fields"], "key")
        self.assertEqual(keys["items"], {"type": "string", "maxLength": 50})

    @inlineCallbacks
    def test_customer_refused(self) -> Any:
        token = yield self.login(CUSTOMER)
        self.assertError(
            (yield self.request("GET", "/api/cms/commands", token=token)), 403, "forbidden"
        )

    @inlineCallbacks
    def test_integers_bounded_before_sending(self) -> Any:
        """An integer beyond its range is a 400 naming it, before the charger is looked for."""
        token = yield self.login(ADMIN)
        cases = [
            ("unlock-connector", {"connectorId": 2**31}),
            ("unlock-connector", {"connectorId": 0}),
            ("remote-stop", {"transactionId": 2**40}),
            ("change-availability", {"connectorId": -1, "type": "Inoperative"}),
            ("get-diagnostics", {"location": "ftp://x/", "retries": -1}),
            ("get-composite-schedule", {"connectorId": 1, "duration": 2**32}),
            (
                "set-charging-profile",
                {
                    "connectorId": 1,
                    "csChargingProfiles": {
                        "chargingProfileId": 1,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": {
                            "chargingRateUnit": "A",
                            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1e12}],
                        },
                    },
                },
            ),
        ]
        for name, body in cases:
            result = yield self.request(
                "POST", f"/api/charger/{name}", {"chargePointId": "CP1", **body}, token=token
            )
            self.assertError(result, 400, "bad_request")
        # In range, it gets as far as the charger (not connected here).
        result = yield self.request(
            "POST",
            "/api/charger/unlock-connector",
            {"chargePointId": "CP1", "connectorId": 2**31 - 1},
            token=token,
        )
        self.assertError(result, 409, "not_connected")


def samples(at: datetime, energy_wh: int, power_w: int) -> list[MeterSample]:
    return [
        MeterSample(timestamp=at, value=str(energy_wh), measurand=ENERGY_REGISTER, unit="Wh"),
        MeterSample(timestamp=at, value=str(power_w / 1000), measurand=POWER_IMPORT, unit="kW"),
        # Per phase: never a total, never charted.
        MeterSample(timestamp=at, value="1", measurand=POWER_IMPORT, unit="W", phase="L1"),
    ]


class PointMeterTests(ApiTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.token = yield self.login(ADMIN)

    def meter(self, query: str = "") -> Any:
        return self.request("GET", f"/api/cms/points/CP1/meter{query}", token=self.token)

    def store(self, connector: int, rows: list[tuple[datetime, int, int]]) -> Any:
        def write(conn: Any) -> None:
            for at, energy, power in rows:
                transactions.add_meter_values(
                    conn,
                    charge_point_id="CP1",
                    connector_id=connector,
                    transaction_id=None,
                    samples=samples(at, energy, power),
                    now=at,
                )

        return self.daemon.query(write)

    @inlineCallbacks
    def test_per_connector_in_the_period(self) -> Any:
        """Each connector its own series of register and power; outside the period left out."""
        yield self.store(1, [(T0 + timedelta(minutes=m), 1000 + 10 * m, 7000) for m in range(5)])
        yield self.store(2, [(T0 + timedelta(minutes=m), 90_000 + m, 3000) for m in range(3)])
        yield self.store(1, [(T0 - timedelta(days=2), 5, 5)])
        code, body, _ = yield self.meter(
            f"?from={iso(T0 - timedelta(hours=1))}&to={iso(T0 + timedelta(hours=1))}"
        )
        self.assertEqual(code, 200, body)
        self.assertEqual(body["chargePointId"], "CP1")
        self.assertEqual(body["from"], "2030-01-01T07:00:00.000Z")
        by_connector = {c["connectorId"]: c["points"] for c in body["connectors"]}
        self.assertEqual(sorted(by_connector), [1, 2])
        self.assertEqual(
            by_connector[1][0], {"at": "2030-01-01T08:00:00.000Z", "energyWh": 1000, "powerW": 7000}
        )
        self.assertEqual([p["energyWh"] for p in by_connector[1]], [1000, 1010, 1020, 1030, 1040])
        self.assertEqual([p["energyWh"] for p in by_connector[2]], [90_000, 90_001, 90_002])
        self.assertEqual({p["powerW"] for p in by_connector[2]}, {3000})

    @inlineCallbacks
    def test_thinned_to_a_bounded_number_of_points(self) -> Any:
        """A long series is thinned in the database; its newest sample stays."""
        count = CHART_POINTS * 3 + 7
        rows = [(T0 + timedelta(seconds=10 * i), i, 100) for i in range(count)]
        yield self.store(1, rows)
        code, body, _ = yield self.meter(f"?from={iso(T0)}&to={iso(T0 + timedelta(days=1))}")
        self.assertEqual(code, 200, body)
        points = body["connectors"][0]["points"]
        self.assertEqual(len(points), CHART_POINTS)
        self.assertEqual(points[-1]["energyWh"], count - 1)
        energies = [p["energyWh"] for p in points]
        self.assertEqual(energies, sorted(energies))

    @inlineCallbacks
    def test_at_most_16_connectors(self) -> Any:
        """A charger reporting any number of connectors: the lowest 16 charted, each whole."""
        for connector in range(20, 0, -1):
            yield self.store(connector, [(T0 + timedelta(seconds=s), s, 1) for s in range(3)])
        code, body, _ = yield self.meter(f"?from={iso(T0)}&to={iso(T0 + timedelta(hours=1))}")
        self.assertEqual(code, 200, body)
        self.assertEqual([c["connectorId"] for c in body["connectors"]], list(range(1, 17)))
        self.assertEqual({len(c["points"]) for c in body["connectors"]}, {3})

    @inlineCallbacks
    def test_default_period_and_bounds(self) -> Any:
        """Without a period: the last day; a period too long, reversed or not a time: 400."""
        now = datetime.now(UTC).replace(microsecond=0)
        yield self.store(3, [(now - timedelta(hours=1), 42, 1000)])
        yield self.store(1, [(now - timedelta(days=3), 41, 1000)])
        code, body, _ = yield self.meter()
        self.assertEqual(code, 200, body)
        self.assertEqual([c["connectorId"] for c in body["connectors"]], [3])
        for query, name in [
            ("?from=2030-01-01T00:00:00Z&to=2030-03-01T00:00:00Z", "from"),
            ("?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", "from"),
            ("?to=yesterday", "to"),
            ("?to=0001-01-01T00:00:00Z", "to"),
        ]:
            result = yield self.meter(query)
            self.assertError(result, 400, "bad_request")
            self.assertTrue(result[1]["error"]["message"].startswith(f"{name}:"), result[1])

    @inlineCallbacks
    def test_unknown_point_and_customer(self) -> Any:
        result = yield self.request("GET", "/api/cms/points/NOPE/meter", token=self.token)
        self.assertError(result, 404, "not_found")
        customer = yield self.login(CUSTOMER)
        result = yield self.request("GET", "/api/cms/points/CP1/meter", token=customer)
        self.assertError(result, 403, "forbidden")


class PostgresPointMeterTests(PointMeterTests):
    """The thinning's window query on the real PostgreSQL."""

    def daemon_overrides(self) -> list[str]:
        return [*super().daemon_overrides(), *postgres_overrides(self)]
