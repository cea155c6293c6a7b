"""
The reports for operators (``GET /api/cms/reports/...``) over real HTTP
against a whole node, on SQLite and on PostgreSQL: sessions seeded across
UTC days, weeks and months add up to exact sums in the right buckets,
utilisation is the share of connector time with a session, faults are read
from the message log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from twisted.internet.defer import inlineCallbacks

from ocppd.api.openapi import document
from ocppd.store import messages
from ocppd.store.tables import (
    charge_points,
    charger_connections,
    connectors,
    stations,
    transactions,
)
from tests.api.test_api import ADMIN, ApiTestCase
from tests.api.test_openapi import check_response
from tests.integration.daemon import postgres_overrides


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


CREATED = at("2026-10-01T00:00:00")

#: (charger, connector, started, stopped or None, energy Wh, cost, currency, confirmed)
SESSIONS = [
    # Sunday before midnight: the week of Monday 26 October, the month of November.
    ("CP1", 1, "2026-11-01T23:59:00", "2026-11-02T01:00:00", 999, 99, "EUR", True),
    ("CP1", 1, "2026-11-02T08:00:00", "2026-11-02T10:00:00", 10000, 500, "EUR", True),
    ("CP1", 2, "2026-11-02T23:30:00", "2026-11-03T00:30:00", 2000, 120, "EUR", True),
    ("CP2", 1, "2026-11-03T12:00:00", "2026-11-03T13:00:00", 5000, 300, "CHF", True),
    # Running: 2500 Wh so far (last reading 3500 from 1000), nothing billed yet.
    ("CP2", 1, "2026-11-04T06:00:00", None, None, None, None, True),
    # Never confirmed (a start refused with InternalError): no session at all.
    ("CP2", 2, "2026-11-03T15:00:00", "2026-11-03T16:00:00", 8888, 888, "EUR", False),
    ("CP1", 1, "2026-11-10T10:00:00", "2026-11-10T11:00:00", 1000, 50, "EUR", True),
    ("CP2", 2, "2026-12-01T10:00:00", "2026-12-01T10:30:00", 700, 40, "EUR", True),
]

#: (charger, action, status or None, at, direction)
FRAMES = [
    ("CP2", "BootNotification", None, "2026-11-02T08:00:00", "in"),
    ("CP1", "StatusNotification", "Faulted", "2026-11-02T09:00:00", "in"),
    ("CP1", "StatusNotification", "Available", "2026-11-02T09:30:00", "in"),
    ("CP1", "StatusNotification", "Faulted", "2026-11-02T10:00:00", "in"),
    # Not the charger's report: a frame of ours.
    ("CP1", "StatusNotification", "Faulted", "2026-11-02T11:00:00", "out"),
    ("CP1", "StatusNotification", "Faulted", "2026-11-05T09:00:00", "in"),
]


#: (charger, socket, connected, disconnected or None): CP1 away 09:00-09:30 and
#: from 18:00 on 2 November; CP2 connected 06:00-07:00 only, with a second
#: socket inside that hour (a quick reconnect) counted once.
CONNECTIONS = [
    ("CP1", "a", "2026-11-01T20:00:00", "2026-11-02T09:00:00"),
    ("CP1", "b", "2026-11-02T09:30:00", "2026-11-02T18:00:00"),
    ("CP2", "c", "2026-11-02T06:00:00", "2026-11-02T07:00:00"),
    ("CP2", "d", "2026-11-02T06:30:00", "2026-11-02T06:45:00"),
]


def seed(conn: Any) -> None:
    conn.execute(
        stations.insert(),
        [
            {"id": n, "name": name, "created_at": CREATED, "updated_at": CREATED}
            for n, name in ((1, "Alpha"), (2, "Beta"), (3, "Empty"))
        ],
    )
    conn.execute(
        charge_points.update().values(
            station_id=1, last_seen_at=at("2026-11-02T18:00"), created_at=CREATED
        )
    )
    for charger, station in (("CP2", 2), ("CP3", None)):
        conn.execute(
            charge_points.insert().values(
                charge_point_id=charger,
                registration_status="Accepted",
                station_id=station,
                online=False,
                created_at=CREATED,
            )
        )
    conn.execute(
        connectors.insert(),
        [
            {
                "charge_point_id": charger,
                "connector_id": connector,
                "status": "Faulted" if (charger, connector) == ("CP2", 2) else "Available",
                "error_code": "NoError",
                "status_at": CREATED,
            }
            for charger in ("CP1", "CP2", "CP3")
            for connector in (0, 1, 2)
        ],
    )
    for n, (charger, connector, start, stop, energy, cost, currency, confirmed) in enumerate(
        SESSIONS
    ):
        conn.execute(
            transactions.insert().values(
                charge_point_id=charger,
                connector_id=connector,
                id_tag=f"TAG{n}",
                id_tag_status="Accepted",
                meter_start_wh=1000,
                started_at=at(start),
                meter_stop_wh=None if energy is None else 1000 + energy,
                stopped_at=None if stop is None else at(stop),
                energy_wh=energy,
                last_meter_wh=3500,
                status="active" if stop is None else "completed",
                cost=cost,
                currency=currency,
                confirmed=confirmed,
                created_at=at(start),
                updated_at=at(start),
            )
        )
    conn.execute(
        charger_connections.insert(),
        [
            {
                "charge_point_id": charger,
                "connection_id": socket,
                "node": "n1",
                "connected_at": at(start),
                "disconnected_at": at(stop),
                "close_code": 1006,
            }
            for charger, socket, start, stop in CONNECTIONS
        ],
    )
    for n, (charger, action, status, when, direction) in enumerate(FRAMES):
        # Most CALLs with our answer in their row (as the processor logs
        # them since revision 0023), the others alone (as before): both
        # count alike.
        answered = direction == "in" and n % 3 != 0
        messages.log_message(
            conn,
            message_id=f"m{n}:call",
            charge_point_id=charger,
            direction=direction,
            message_type="CALL",
            action=action,
            unique_id=str(n),
            payload={} if status is None else {"connectorId": 1, "status": status},
            at=at(when),
            answer_type="CALLRESULT" if answered else None,
            answer_payload={} if answered else None,
        )


class ReportTests(ApiTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.token = yield self.login(ADMIN)
        yield self.daemon.query(seed)

    @inlineCallbacks
    def report(self, name: str, **query: Any) -> Any:
        result = yield self.request(
            "GET", f"/api/cms/reports/{name}?{urlencode(query)}", token=self.token
        )
        self.assertEqual(result[0], 200, result[1])
        # Every answer is what the OpenAPI document says it is.
        check_response(self, document(), f"/api/cms/reports/{name}", "get", result)
        return result[1]

    @staticmethod
    def figures(body: dict[str, Any]) -> list[tuple[str, int, int, dict[str, int]]]:
        return [
            (b["start"][:10], b["sessions"], b["energyWh"], b["revenue"]) for b in body["buckets"]
        ]

    @inlineCallbacks
    def test_days(self) -> Any:
        """Per UTC day by start; empty days listed; totals; unconfirmed starts left out."""
        body = yield self.report(
            "sessions", period="day", **{"from": "2026-11-02T00:00:00Z", "to": "2026-11-06T00:00Z"}
        )
        self.assertEqual(
            self.figures(body),
            [
                ("2026-11-02", 2, 12000, {"EUR": 620}),
                ("2026-11-03", 1, 5000, {"CHF": 300}),
                ("2026-11-04", 1, 2500, {}),
                ("2026-11-05", 0, 0, {}),
            ],
        )
        self.assertEqual(
            (body["period"], body["from"], body["to"], body["currencies"]),
            ("day", "2026-11-02T00:00:00.000Z", "2026-11-06T00:00:00.000Z", ["CHF", "EUR"]),
        )
        self.assertEqual(
            body["totals"], {"sessions": 4, "energyWh": 19500, "revenue": {"CHF": 300, "EUR": 620}}
        )

    @inlineCallbacks
    def test_weeks(self) -> Any:
        """From Monday 00:00 UTC: a Sunday's session is in the week before; from is widened."""
        body = yield self.report(
            "sessions", period="week", **{"from": "2026-11-01T12:00Z", "to": "2026-12-02T00:00Z"}
        )
        self.assertEqual(
            self.figures(body),
            [
                ("2026-10-26", 1, 999, {"EUR": 99}),
                ("2026-11-02", 4, 19500, {"EUR": 620, "CHF": 300}),
                ("2026-11-09", 1, 1000, {"EUR": 50}),
                ("2026-11-16", 0, 0, {}),
                ("2026-11-23", 0, 0, {}),
                ("2026-11-30", 1, 700, {"EUR": 40}),
            ],
        )
        self.assertEqual(body["to"], "2026-12-07T00:00:00.000Z")

    @inlineCallbacks
    def test_months(self) -> Any:
        body = yield self.report(
            "sessions", period="month", **{"from": "2026-10-15T00:00Z", "to": "2026-12-15T00:00Z"}
        )
        self.assertEqual(
            self.figures(body),
            [
                ("2026-10-01", 0, 0, {}),
                ("2026-11-01", 6, 21499, {"EUR": 769, "CHF": 300}),
                ("2026-12-01", 1, 700, {"EUR": 40}),
            ],
        )

    @inlineCallbacks
    def test_default_span(self) -> Any:
        """Without from: the last 30 days, 12 weeks or 12 months up to to."""
        for period, count in (("day", 30), ("week", 12), ("month", 12)):
            body = yield self.report("sessions", period=period, to="2026-12-15T00:00:00Z")
            self.assertEqual(len(body["buckets"]), count, period)
        body = yield self.report("sessions", period="month", to="2026-12-15T00:00:00Z")
        self.assertEqual(body["buckets"][0]["start"], "2026-01-01T00:00:00.000Z")
        self.assertEqual(body["totals"]["sessions"], 7)

    @inlineCallbacks
    def test_utilisation(self) -> Any:
        """Session seconds within the span over the connectors' time, per station."""
        body = yield self.report(
            "utilisation", **{"from": "2026-11-02T00:00:00Z", "to": "2026-11-03T00:00:00Z"}
        )
        # Alpha: 1 h (from midnight) + 2 h + 30 min, of two connectors over a day.
        self.assertEqual(
            [
                (i["stationId"], i["name"], i["connectors"], i["busySeconds"], i["utilisation"])
                for i in body["items"]
            ],
            [
                (1, "Alpha", 2, 12600, round(12600 / (2 * 86400), 4)),
                (2, "Beta", 2, 0, 0.0),
                (3, "Empty", 0, 0, None),
                (None, None, 2, 0, 0.0),
            ],
        )
        # A running session counts up to the end of the span.
        body = yield self.report(
            "utilisation", **{"from": "2026-11-04T00:00:00Z", "to": "2026-11-04T12:00:00Z"}
        )
        self.assertEqual(body["items"][1]["busySeconds"], 6 * 3600)
        self.assertEqual(body["items"][1]["utilisation"], 0.25)

    @inlineCallbacks
    def test_faults(self) -> Any:
        """Faulted reports and boots logged in the span; offline time and outages (history)."""
        body = yield self.report(
            "faults", **{"from": "2026-11-02T00:00:00Z", "to": "2026-11-03T00:00:00Z"}
        )
        self.assertEqual(
            [
                (
                    i["chargePointId"],
                    i["faults"],
                    i["lastFaultAt"],
                    i["boots"],
                    i["faultedConnectors"],
                    i["online"],
                    i["offlineSeconds"],
                    i["outages"],
                )
                for i in body["items"]
            ],
            [
                ("CP1", 2, "2026-11-02T10:00:00.000Z", 0, 0, False, 6 * 3600 + 1800, 2),
                ("CP2", 0, None, 1, 1, False, 23 * 3600, 2),
                ("CP3", 0, None, 0, 0, False, 86400, 1),
            ],
        )
        self.assertEqual(body["chargers"], 3)
        # The chargers in most trouble first, as many as asked for.
        body = yield self.report(
            "faults", limit=1, **{"from": "2026-11-02T00:00:00Z", "to": "2026-11-03T00:00:00Z"}
        )
        self.assertEqual(
            ([i["chargePointId"] for i in body["items"]], body["chargers"]), (["CP1"], 3)
        )
        body = yield self.report(
            "faults", **{"from": "2026-11-05T00:00:00Z", "to": "2026-11-06T00:00:00Z"}
        )
        self.assertEqual([i["chargePointId"] for i in body["items"]], ["CP1", "CP2", "CP3"])

    @inlineCallbacks
    def test_bad_queries(self) -> Any:
        """Each bad query is a 400 naming its field: periods, times, unbounded spans."""
        for name, field, query in (
            ("sessions", "period", {"period": "year"}),
            ("sessions", "from", {"from": "yesterday"}),
            ("sessions", "from", {"from": "2026-11-03T00:00Z", "to": "2026-11-02T00:00Z"}),
            ("sessions", "from", {"from": "2024-01-01T00:00Z", "to": "2026-01-01T00:00Z"}),
            ("sessions", "from", {"period": "month", "from": "1990-01-01T00:00Z"}),
            ("utilisation", "from", {"from": "2024-01-01T00:00Z", "to": "2026-01-01T00:00Z"}),
            ("utilisation", "from", {"from": "2026-11-03T00:00Z", "to": "2026-11-02T00:00Z"}),
            ("faults", "to", {"to": "not a time"}),
        ):
            result = yield self.request(
                "GET", f"/api/cms/reports/{name}?{urlencode(query)}", token=self.token
            )
            self.assertError(result, 400, "bad_request")
            self.assertTrue(result[1]["error"]["message"].startswith(field + ":"), result[1])


class PostgresReportTests(ReportTests):
    def daemon_overrides(self) -> list[str]:
        return [*postgres_overrides(self), *self.overrides]


class MapSettingsTests(ApiTestCase):
    """``GET /api/cms/map``: the tile server of ``[web] map_tiles``, or none."""

    @inlineCallbacks
    def test_no_tiles(self) -> Any:
        token = yield self.login(ADMIN)
        result = yield self.request("GET", "/api/cms/map", token=token)
        check_response(self, document(), "/api/cms/map", "get", result)
        code, body, response = result
        self.assertEqual((code, body), (200, {"tiles": None, "attribution": None}))
        policy = response.headers.getRawHeaders("content-security-policy")[0]
        self.assertIn("img-src 'self';", policy)


class MapTilesTests(ApiTestCase):
    overrides = (
        "web.map_tiles=https://{s}.tiles.example.org/{z}/{x}/{y}.png",
        "web.map_attribution=© Example contributors",
    )

    @inlineCallbacks
    def test_tiles(self) -> Any:
        """The template and credit as configured; the pages may load the server's images."""
        token = yield self.login(ADMIN)
        code, body, response = yield self.request("GET", "/api/cms/map", token=token)
        self.assertEqual(
            (code, body),
            (
                200,
                {
                    "tiles": "https://{s}.tiles.example.org/{z}/{x}/{y}.png",
                    "attribution": "© Example contributors",
                },
            ),
        )
        policy = response.headers.getRawHeaders("content-security-policy")[0]
        self.assertIn("img-src 'self' https://*.tiles.example.org data:;", policy)
        self.assertIn("script-src 'self';", policy)
