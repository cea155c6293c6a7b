"""
What a driver sees before and while charging (issue 17): the tariff of a
charger up front, a session's snapshot (its tariff, running figures and
meter history) that shows what the last push showed, and the running
sessions the dashboard asks for.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.api.session_snapshot import HISTORY_POINTS
from ocppd.measurands import MeterSample
from ocppd.store import chargers, transactions
from ocppd.timeutil import format_iso
from tests.api.test_customer import CustomerTestCase
from tests.api.test_openapi import check_response
from tests.integration.daemon import postgres_overrides

PRICE = {
    "currency": "EUR",
    "pricePerKwh": 30,
    "pricePerMinute": 2,
    "sessionFee": 50,
    "sessionFeeAlways": False,
}


def meter_with_soc(tx: int, at: str, wh: int, watts: int, soc: int) -> dict[str, Any]:
    return {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [
            {
                "timestamp": at,
                "sampledValue": [
                    {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                    {"value": str(watts / 1000), "measurand": "Power.Active.Import", "unit": "kW"},
                    {"value": str(soc), "measurand": "SoC", "unit": "Percent", "location": "EV"},
                    # Per phase: not the session's total, never charted.
                    {"value": "1", "measurand": "Power.Active.Import", "phase": "L1", "unit": "W"},
                ],
            }
        ],
    }


class PricesUpFrontTests(CustomerTestCase):
    @inlineCallbacks
    def test_charger_and_stations_show_the_tariff(self) -> Any:
        """The charger and the stations list carry the price; no tariff is null."""
        code, body, _ = yield self.request("GET", "/api/chargers/CP1", token=self.customer)
        self.assertEqual((code, body["tariff"]), (200, PRICE))
        _, station, _ = yield self.request(
            "POST", "/api/cms/stations", {"name": "Depot"}, token=self.admin
        )
        yield self.request(
            "PUT", "/api/cms/points/CP1", {"stationId": station["id"]}, token=self.admin
        )
        code, body, _ = yield self.request("GET", "/api/stations", token=self.customer)
        self.assertEqual(body["items"][0]["chargers"][0]["tariff"], PRICE)
        yield self.request("PUT", "/api/cms/points/CP1", {"tariffId": None}, token=self.admin)
        _, body, _ = yield self.request("GET", "/api/chargers/CP1", token=self.customer)
        self.assertIsNone(body["tariff"])
        _, body, _ = yield self.request("GET", "/api/stations", token=self.customer)
        self.assertIsNone(body["items"][0]["chargers"][0]["tariff"])


class PlugTests(CustomerTestCase):
    @inlineCallbacks
    def test_plug_and_power_recorded_by_the_operator(self) -> Any:
        """An operator records a charger's plug and power; drivers see them; nonsense is 400."""
        point = "/api/cms/points/CP1"
        code, body, _ = yield self.request(
            "PUT", point, {"connectorType": "Type2", "maxPowerW": 22000}, token=self.admin
        )
        self.assertEqual((code, body["connectorType"], body["maxPowerW"]), (200, "Type2", 22000))
        _, body, _ = yield self.request("GET", "/api/chargers/CP1", token=self.customer)
        self.assertEqual((body["connectorType"], body["maxPowerW"]), ("Type2", 22000))
        for field, value in (
            ("connectorType", "Type9"),
            ("connectorType", 2),
            ("maxPowerW", 0),
            ("maxPowerW", 1_000_001),
            ("maxPowerW", 7.4),
            ("maxPowerW", True),
        ):
            code, body, _ = yield self.request("PUT", point, {field: value}, token=self.admin)
            self.assertEqual((code, body["error"]["code"]), (400, "bad_request"), (field, value))
            self.assertIn(field, body["error"]["message"])
        # A fetched point sent back unchanged keeps them; null clears.
        _, fetched, _ = yield self.request("GET", point, token=self.admin)
        code, body, _ = yield self.request("PUT", point, fetched, token=self.admin)
        self.assertEqual((code, body["connectorType"], body["maxPowerW"]), (200, "Type2", 22000))
        code, body, _ = yield self.request(
            "PUT", point, {"connectorType": None, "maxPowerW": None}, token=self.admin
        )
        self.assertEqual((body["connectorType"], body["maxPowerW"]), (None, None))
        _, body, _ = yield self.request("GET", "/api/chargers/CP1", token=self.customer)
        self.assertEqual((body["connectorType"], body["maxPowerW"]), (None, None))

    @inlineCallbacks
    def test_boot_closes_sessions_setting(self) -> Any:
        """On by default; an operator turns it off; kept by other edits; not a boolean is 400."""
        point = "/api/cms/points/CP1"
        _, body, _ = yield self.request("GET", point, token=self.admin)
        self.assertIs(body["bootClosesSessions"], True)
        code, body, _ = yield self.request(
            "PUT", point, {"bootClosesSessions": False}, token=self.admin
        )
        self.assertEqual((code, body["bootClosesSessions"]), (200, False))
        code, body, _ = yield self.request("PUT", point, {"maxPowerW": 7400}, token=self.admin)
        self.assertEqual((code, body["bootClosesSessions"]), (200, False))
        for value in (None, 0, "false"):
            code, body, _ = yield self.request(
                "PUT", point, {"bootClosesSessions": value}, token=self.admin
            )
            self.assertEqual((code, body["error"]["code"]), (400, "bad_request"), value)
            self.assertIn("bootClosesSessions", body["error"]["message"])
        stored = yield self.daemon.query(chargers.get_charge_point, "CP1")
        self.assertIs(stored.boot_closes_sessions, False)


class DriverMessageTests(CustomerTestCase):
    @inlineCallbacks
    def test_refusals_are_sentences_in_currency_units(self) -> Any:
        """What a driver may read of a refused start: sentences, money in EUR, not cents."""
        yield self.charger()
        yield self.top_up(self.customer, 499)
        body = {"chargePointId": "CP1", "connectorId": 1}
        code, answer, _ = yield self.request(
            "POST", "/api/user/charging/start", body, token=self.customer
        )
        self.assertEqual(
            (code, answer["error"]["message"]),
            (402, "Starting needs at least 5.00 EUR available in your wallet; 4.99 EUR is."),
        )
        body["connectorId"] = 2
        yield self.top_up(self.customer, 1)
        code, answer, _ = yield self.request(
            "POST", "/api/user/charging/start", body, token=self.customer
        )
        self.assertEqual(
            (code, answer["error"]["message"]),
            (409, "Connector 2 of CP1 is unknown: it cannot start charging now."),
        )


class SessionSnapshotTests(CustomerTestCase):
    @inlineCallbacks
    def started(self) -> Any:
        charger = yield self.charger()
        id_tag = yield self.id_tag(self.customer)
        yield self.top_up(self.customer, 5000)
        _, tx = yield self.start_from_app(charger, self.customer, id_tag)
        return charger, tx

    def snapshot(self, tx: int | str, token: str | None = None) -> Any:
        return self.request("GET", f"/api/user/sessions/{tx}", token=token or self.customer)

    @inlineCallbacks
    def test_whole_from_the_first_second(self) -> Any:
        """
        Before any meter value: 0 Wh, cost 0 and the tariff. After them: the
        same live figures as the last push, and the history as charted.
        """
        charger, tx = yield self.started()
        code, body, _ = yield self.snapshot(tx)
        self.assertEqual(code, 200, body)
        self.assertEqual((body["session"]["id"], body["tariff"]), (tx, PRICE))
        self.assertEqual(
            body["live"],
            {
                "energyWh": 0,
                "powerW": None,
                "socPercent": None,
                "cost": 0,
                "currency": "EUR",
                "at": "2026-11-29T10:00:00.000Z",
            },
        )
        self.assertEqual(body["history"], [])

        yield charger.call(
            "MeterValues", meter_with_soc(tx, "2026-11-29T10:05:00Z", 2000, 7400, 41)
        )
        yield charger.call(
            "MeterValues", meter_with_soc(tx, "2026-11-29T10:10:00Z", 4000, 11000, 48)
        )
        yield self.daemon.wait_for(
            lambda conn: None, until=lambda _: len(self.events("session.updated")) == 2
        )
        pushed = self.events("session.updated")[-1]["live"]
        # 3000 Wh and 10 minutes: 50 + 90 + 20.
        self.assertEqual(
            pushed,
            {
                "energyWh": 3000,
                "powerW": 11000,
                "socPercent": 48,
                "cost": 160,
                "currency": "EUR",
                "at": "2026-11-29T10:10:00.000Z",
            },
        )
        _, body, _ = yield self.snapshot(tx)
        self.assertEqual(body["live"], pushed)
        self.assertEqual(
            body["history"],
            [
                {
                    "at": "2026-11-29T10:05:00.000Z",
                    "energyWh": 1000,
                    "powerW": 7400,
                    "socPercent": 41,
                },
                {
                    "at": "2026-11-29T10:10:00.000Z",
                    "energyWh": 3000,
                    "powerW": 11000,
                    "socPercent": 48,
                },
            ],
        )

        yield charger.call(
            "StopTransaction",
            {"transactionId": tx, "meterStop": 5000, "timestamp": "2026-11-29T10:20:00Z"},
        )
        yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.cost is not None
        )
        _, body, _ = yield self.snapshot(tx)
        self.assertEqual((body["session"]["status"], body["session"]["cost"]), ("completed", 210))
        self.assertIsNone(body["live"])
        self.assertEqual(len(body["history"]), 2)

    @inlineCallbacks
    def test_history_is_bounded(self) -> Any:
        """Thousands of samples come back as at most HISTORY_POINTS, the newest included."""
        _, tx = yield self.started()
        start = datetime(2026, 11, 29, 10, tzinfo=UTC)
        count = HISTORY_POINTS * 3 + 7
        samples = [
            MeterSample(
                timestamp=start + timedelta(seconds=10 * (n + 1)),
                value=str(1000 + 10 * (n + 1)),
            )
            for n in range(count)
        ]

        def store(conn: Any) -> None:
            transactions.add_meter_values(
                conn,
                charge_point_id="CP1",
                connector_id=1,
                transaction_id=tx,
                samples=samples,
                now=start,
            )

        yield self.daemon.query(store)
        _, body, _ = yield self.snapshot(tx)
        history = body["history"]
        self.assertEqual(len(history), HISTORY_POINTS)
        self.assertEqual(history[-1]["energyWh"], 10 * count)
        self.assertEqual(history[-1]["at"], format_iso(samples[-1].timestamp))
        self.assertEqual(sorted(p["at"] for p in history), [p["at"] for p in history])
        self.assertEqual(body["live"]["energyWh"], 10 * count)

    @inlineCallbacks
    def test_only_ones_own(self) -> Any:
        """Another customer's session, no session and a non-id all answer 404."""
        _, tx = yield self.started()
        self.assertError((yield self.snapshot(tx, token=self.other)), 404, "not_found")
        self.assertError((yield self.snapshot(999999)), 404, "not_found")
        self.assertError((yield self.snapshot("abc")), 404, "not_found")
        self.assertError(
            (yield self.request("GET", f"/api/user/sessions/{tx}")), 401, "unauthorized"
        )
        _, body, _ = yield self.request("GET", "/api/user/sessions/running", token=self.other)
        self.assertEqual(body, {"items": []})

    @inlineCallbacks
    def test_running_sessions_however_many_newer(self) -> Any:
        """
        The running session is found even behind newer sessions of the same
        driver (the dashboard used to read the newest five); stopped, it is gone.
        """
        charger, tx = yield self.started()
        id_tag = yield self.id_tag(self.customer)
        for n in range(6):
            at = f"2026-11-29T11:0{n}:00Z"
            started = yield charger.call(
                "StartTransaction",
                {"connectorId": 2, "idTag": id_tag, "meterStart": 0, "timestamp": at},
            )
            yield charger.call(
                "StopTransaction",
                {
                    "transactionId": started["transactionId"],
                    "meterStop": 0,
                    "timestamp": at,
                },
            )
        yield self.daemon.wait_for(
            lambda conn: transactions.list_sessions_page(conn, user_id=2, limit=10),
            until=lambda rows: len(rows) == 7 and sum(r.status == "active" for r in rows) == 1,
        )
        _, newest, _ = yield self.request("GET", "/api/user/sessions?limit=5", token=self.customer)
        self.assertNotIn(tx, [s["id"] for s in newest["items"]])
        code, body, _ = yield self.request("GET", "/api/user/sessions/running", token=self.customer)
        self.assertEqual(code, 200)
        [running] = body["items"]
        self.assertEqual((running["session"]["id"], running["tariff"]), (tx, PRICE))
        self.assertEqual(running["live"]["energyWh"], 0)
        self.assertNotIn("history", running)
        yield charger.call(
            "StopTransaction",
            {"transactionId": tx, "meterStop": 1000, "timestamp": "2026-11-29T10:01:00Z"},
        )
        yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.status == "completed"
        )
        _, body, _ = yield self.request("GET", "/api/user/sessions/running", token=self.customer)
        self.assertEqual(body, {"items": []})

    @inlineCallbacks
    def test_match_the_document(self) -> Any:
        """The snapshot and the running list validate against the OpenAPI document."""
        charger, tx = yield self.started()
        yield charger.call(
            "MeterValues", meter_with_soc(tx, "2026-11-29T10:05:00Z", 2000, 7400, 41)
        )
        yield self.daemon.wait_for(
            lambda conn: None, until=lambda _: bool(self.events("session.updated"))
        )
        _, document, _ = yield self.request("GET", "/api/openapi.json")
        for path, template in (
            (f"/api/user/sessions/{tx}", "/api/user/sessions/{sessionId}"),
            ("/api/user/sessions/999999", "/api/user/sessions/{sessionId}"),
            ("/api/user/sessions/running", "/api/user/sessions/running"),
            ("/api/chargers/CP1", "/api/chargers/{chargePointId}"),
        ):
            answer = yield self.request("GET", path, token=self.customer)
            check_response(self, document, template, "get", answer)


class PostgresSessionSnapshotTests(SessionSnapshotTests):
    """The thinning's window functions and integer division on PostgreSQL too."""

    def daemon_overrides(self) -> list[str]:
        return [*postgres_overrides(self), *self.overrides]
