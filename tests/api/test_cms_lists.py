"""
The CMS's stations, charge points and sessions lists (ocppd.api.cms_lists)
over real HTTP against a whole node, on SQLite and PostgreSQL: searched in
any case, filtered, sorted and paged by cursor over 500 seeded rows each,
and exported as CSV with the same filters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from twisted.internet.defer import inlineCallbacks

from ocppd.store import people, tables, users
from ocppd.store.tables import transactions
from tests.api.listing import ListReading
from tests.api.test_api import ADMIN, CUSTOMER
from tests.integration.clients import connect
from tests.integration.daemon import postgres_overrides

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
SEEDED = 500


def seed(conn: Any) -> None:
    """
    The rows every test lists, a statement per table: what ``stations.add_station``
    and ``chargers.add_charge_point`` would write, without their 1,000 round trips.
    """
    customer = users.get_user_by_email(conn, CUSTOMER[0])
    assert customer is not None
    people.update_user(conn, customer.id, name="Jo Driver", role="customer", blocked_at=None)
    conn.execute(
        tables.stations.insert(),
        [
            {
                "name": f"Site {n:03d}",
                "address": f"{n} Harbour Road" if n % 2 else None,
                "created_at": T0,
                "updated_at": T0,
            }
            for n in range(SEEDED)
        ],
    )
    station_ids = dict(conn.execute(sa.select(tables.stations.c.name, tables.stations.c.id)).all())
    conn.execute(
        tables.charge_points.insert(),
        [
            {
                "charge_point_id": f"cp-{n:03d}",
                "key_hash": None,
                "registration_status": "Pending" if n % 5 == 0 else "Accepted",
                "station_id": station_ids[f"Site {n:03d}"] if n < 3 else None,
                "tariff_id": None,
                "online": False,
                "boot_closes_sessions": n != 491,
                "created_at": T0 + timedelta(seconds=n),
            }
            for n in range(SEEDED)
        ],
    )
    conn.execute(
        transactions.insert(),
        [
            {
                "charge_point_id": f"cp-{n % 50:03d}",
                "connector_id": 1,
                "id_tag": f"TAG-{n:03d}",
                "id_tag_status": "Accepted",
                "meter_start_wh": 0,
                # Started in the opposite order to their ids: the two sorts differ.
                "started_at": T0 - timedelta(minutes=n),
                "status": "completed",
                "user_id": customer.id if n % 10 == 0 else None,
                # Closed by the central system, then billed again on the charger's
                # late stop (docs/ocpp.md); one reason as a hostile cell.
                "stop_reason": "charger rebooted" if n in (50, 100) else None,
                "charger_stop_reason": {50: "Local", 100: "=1+1"}.get(n),
                "created_at": T0,
                "updated_at": T0,
            }
            for n in range(SEEDED)
        ],
    )


class CmsListTests(ListReading):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.token = yield self.login(ADMIN)
        yield self.daemon.query(seed)

    @inlineCallbacks
    def test_stations(self) -> Any:
        """By id unless sorted; name or address in any case; chargers online from presence."""
        ids = [s["id"] for s in (yield self.all_pages("/api/cms/stations", limit=200))]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(ids), SEEDED)
        names = [s["name"] for s in (yield self.all_pages("/api/cms/stations", sort="-name"))]
        self.assertEqual(names, [f"Site {n:03d}" for n in range(SEEDED - 1, -1, -1)])
        found = yield self.all_pages("/api/cms/stations", q="sITE 04", sort="name", limit=3)
        self.assertEqual([s["name"] for s in found], [f"Site {n:03d}" for n in range(40, 50)])
        by_address = yield self.get("/api/cms/stations", q="7 HARBOUR")
        self.assertEqual(
            [s["name"] for s in by_address["items"]], [f"Site {n:03d}" for n in range(7, 500, 10)]
        )
        first = yield self.get("/api/cms/stations", q="site 000")
        self.assertEqual(
            first["items"][0]["chargers"], [{"chargePointId": "cp-000", "online": False}]
        )

    @inlineCallbacks
    def test_points(self) -> Any:
        """Any case in the id; filtered by station and registration; online from presence."""
        ids = [p["chargePointId"] for p in (yield self.all_pages("/api/cms/points", limit=200))]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(ids), SEEDED + 1)
        newest = yield self.all_pages("/api/cms/points", sort="-created", limit=150)
        self.assertEqual(
            [p["chargePointId"] for p in newest][:4], ["CP1", "cp-499", "cp-498", "cp-497"]
        )
        self.assertEqual(len(newest), SEEDED + 1)
        found = yield self.get("/api/cms/points", q="CP-01")
        self.assertEqual(
            [p["chargePointId"] for p in found["items"]], [f"cp-{n:03d}" for n in range(10, 20)]
        )
        self.assertEqual(
            {(p["online"], p["onlineSource"]) for p in found["items"]}, {(False, "presence")}
        )
        station = (yield self.get("/api/cms/stations", q="Site 001"))["items"][0]
        here = yield self.get("/api/cms/points", stationId=station["id"])
        self.assertEqual([p["chargePointId"] for p in here["items"]], ["cp-001"])
        pending = yield self.all_pages(
            "/api/cms/points", registrationStatus="Pending", q="cp-1", limit=7
        )
        self.assertEqual(
            [p["chargePointId"] for p in pending], [f"cp-{n:03d}" for n in range(100, 200, 5)]
        )

    @inlineCallbacks
    def test_sessions(self) -> Any:
        """
        Newest first unless sorted; a charger named in any case (the filter
        was case-sensitive); searched by customer; with the customer's name.
        """
        newest = yield self.all_pages("/api/cms/sessions", limit=200)
        ids = [s["id"] for s in newest]
        self.assertEqual(ids, sorted(ids, reverse=True))
        self.assertEqual(len(ids), SEEDED)
        by_start = yield self.all_pages("/api/cms/sessions", sort="started", limit=200)
        self.assertEqual([s["id"] for s in by_start], ids)
        of_one = yield self.all_pages("/api/cms/sessions", chargePointId="CP-007", limit=3)
        self.assertEqual({s["chargePointId"] for s in of_one}, {"cp-007"})
        self.assertEqual(len(of_one), SEEDED // 50)
        mine = yield self.all_pages("/api/cms/sessions", q="JO@EXAMPLE", limit=20)
        self.assertEqual(len(mine), SEEDED // 10)
        self.assertEqual(
            {(s["customer"]["email"], s["userId"]) for s in mine},
            {(CUSTOMER[0], mine[0]["userId"])},
        )
        tagged = yield self.get("/api/cms/sessions", q="tag-12")
        self.assertEqual(
            sorted(s["idTag"] for s in tagged["items"]), [f"TAG-{n:03d}" for n in range(120, 130)]
        )
        self.assertIsNone(tagged["items"][0]["customer"])

    @inlineCallbacks
    def test_csv_exports(self) -> Any:
        """Each list with its filters and order, whole; a cell that would be a formula is text."""
        code, made, _ = yield self.request(
            "POST", "/api/cms/stations", {"name": "=HYPERLINK(1)"}, token=self.token
        )
        self.assertEqual(code, 201, made)
        rows = yield self.csv_rows("/api/cms/stations.csv", q="=hyper")
        self.assertEqual(rows[0][:3], ["id", "name", "address"])
        self.assertEqual(rows[1][1], "'=HYPERLINK(1)")
        rows = yield self.csv_rows("/api/cms/stations.csv", q="site 00", sort="-name")
        self.assertEqual([r[1] for r in rows[1:]], [f"Site {n:03d}" for n in range(9, -1, -1)])
        self.assertEqual(rows[0][-2:], ["chargers", "chargersOnline"])
        self.assertEqual(rows[-1][-2:], ["1", "0"])
        rows = yield self.csv_rows("/api/cms/points.csv", q="CP-49")
        self.assertEqual(rows[0][:2], ["chargePointId", "online"])
        self.assertEqual([r[0] for r in rows[1:]], [f"cp-{n:03d}" for n in range(490, 500)])
        self.assertEqual({r[1] for r in rows[1:]}, {"false"})
        boot_closes = rows[0].index("bootClosesSessions")
        self.assertEqual([r[boot_closes] for r in rows[1:]], ["true", "false"] + ["true"] * 8)
        all_points = yield self.csv_rows("/api/cms/points.csv")
        self.assertEqual(len(all_points), SEEDED + 2)
        rows = yield self.csv_rows("/api/cms/sessions.csv", chargePointId="Cp-000", sort="started")
        self.assertEqual(rows[0][:2], ["id", "chargePointId"])
        self.assertEqual(rows[0][-2:], ["customerEmail", "customerName"])
        self.assertEqual(len(rows), 1 + SEEDED // 50)
        self.assertEqual({r[1] for r in rows[1:]}, {"cp-000"})
        self.assertEqual({(r[-2], r[-1]) for r in rows[1:]}, {(CUSTOMER[0], "Jo Driver")})
        stop, charger_stop = rows[0].index("stopReason"), rows[0].index("chargerStopReason")
        self.assertEqual(
            # Started oldest first: sessions 100, 50 and 0 come last.
            [(r[stop], r[charger_stop]) for r in rows[-3:]],
            [("charger rebooted", "'=1+1"), ("charger rebooted", "Local"), ("", "")],
        )
        everything = yield self.csv_rows("/api/cms/sessions.csv")
        self.assertEqual(len(everything), SEEDED + 1)

    @inlineCallbacks
    def test_online_from_presence(self) -> Any:
        """A connected charger is online in the points list, its export and its station's row."""
        charger = yield connect(self.daemon.port, "CP1", "key-1-0123456789ab")
        self.addCleanup(lambda: (charger.close(), charger.closed)[1])
        station = (yield self.get("/api/cms/stations", q="Site 002"))["items"][0]
        code, _, _ = yield self.request(
            "PUT", "/api/cms/points/CP1", {"stationId": station["id"]}, token=self.token
        )
        self.assertEqual(code, 200)
        listed = (yield self.get("/api/cms/points", q="cp1"))["items"]
        self.assertEqual([(p["online"], p["onlineSource"]) for p in listed], [(True, "presence")])
        rows = yield self.csv_rows("/api/cms/points.csv", q="cp1")
        self.assertEqual([r[:2] for r in rows[1:]], [["CP1", "true"]])
        row = (yield self.get("/api/cms/stations", q="Site 002"))["items"][0]
        # In id order, which is the database's collation: compared as a set.
        self.assertCountEqual(
            row["chargers"],
            [
                {"chargePointId": "CP1", "online": True},
                {"chargePointId": "cp-002", "online": False},
            ],
        )
        rows = yield self.csv_rows("/api/cms/stations.csv", q="Site 002")
        self.assertEqual(rows[1][-2:], ["2", "1"])

    @inlineCallbacks
    def test_bad_queries(self) -> Any:
        """A bad sort or filter, or another list's or order's cursor: 400 naming it."""
        stations_cursor = (yield self.get("/api/cms/stations", limit=2))["next"]
        points_cursor = (yield self.get("/api/cms/points", limit=2))["next"]
        for path, query, field in (
            ("/api/cms/stations", {"sort": "address"}, "sort"),
            ("/api/cms/stations", {"q": "x" * 101}, "q"),
            ("/api/cms/stations", {"cursor": stations_cursor, "sort": "name"}, "cursor"),
            ("/api/cms/stations", {"cursor": points_cursor}, "cursor"),
            ("/api/cms/points", {"cursor": stations_cursor}, "cursor"),
            ("/api/cms/points", {"cursor": points_cursor, "sort": "-chargePointId"}, "cursor"),
            ("/api/cms/points", {"stationId": "0"}, "stationId"),
            ("/api/cms/points", {"registrationStatus": "accepted"}, "registrationStatus"),
            ("/api/cms/sessions", {"cursor": points_cursor}, "cursor"),
            ("/api/cms/sessions", {"sort": "energy"}, "sort"),
            ("/api/cms/sessions", {"status": "Active"}, "status"),
            ("/api/cms/sessions", {"from": "yesterday"}, "from"),
            ("/api/cms/sessions.csv", {"userId": "x"}, "userId"),
            ("/api/cms/points.csv", {"sort": "x"}, "sort"),
            ("/api/cms/stations.csv", {"q": "x" * 101}, "q"),
        ):
            result = yield self.request("GET", f"{path}?{urlencode(query)}", token=self.token)
            self.assertError(result, 400, "bad_request")
            self.assertIn(field, result[1]["error"]["message"])

    @inlineCallbacks
    def test_customers_forbidden(self) -> Any:
        customer = yield self.login(CUSTOMER)
        for path in ("/api/cms/stations.csv", "/api/cms/points.csv", "/api/cms/sessions.csv"):
            result = yield self.request("GET", path, token=customer)
            self.assertError(result, 403, "forbidden")


class PostgresCmsListTests(CmsListTests):
    def daemon_overrides(self) -> list[str]:
        return [*postgres_overrides(self), *self.overrides]
