"""
The operator CMS routes (``/api/cms/``) over real HTTP on 127.0.0.1, against
a whole ocppd node: CRUD of stations, tariffs, points and id tags, their
validation and referential checks, pagination, the sessions list, a point's
message log, the authorization matrix and the events each change publishes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet.defer import fail, inlineCallbacks, succeed

from ocppd.api.pagination import encode_cursor
from ocppd.bus.interface import BusError
from ocppd.store import audit, chargers, messages, outbox, stations, transactions
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase
from tests.integration.clients import basic_auth, connect, raw_handshake
from tests.integration.daemon import poll, postgres_overrides

T0 = datetime(2030, 1, 1, 8, 0, tzinfo=UTC)


class CmsTestCase(ApiTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.token = yield self.login(ADMIN)
        self.published: list[tuple[str, dict[str, Any]]] = []
        bus = self.daemon.node.bus
        publish = bus.publish

        def recording(key: str, envelope: Any) -> Any:
            self.published.append((key, envelope.payload))
            return publish(key, envelope)

        self.patch(bus, "publish", recording)

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self.request(method, path, body, token=self.token)

    @inlineCallbacks
    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        code, answer, _ = yield self.admin(method, path, body)
        self.assertEqual(code, status, answer)
        return answer

    @inlineCallbacks
    def bad(self, method: str, path: str, body: Any, field: str) -> Any:
        result = yield self.admin(method, path, body)
        self.assertError(result, 400, "bad_request")
        self.assertTrue(result[1]["error"]["message"].startswith(f"{field}:"), result[1])

    def cms_events(self) -> list[str]:
        return [key for key, _ in self.published if "cms." in key]


class StationTests(CmsTestCase):
    @inlineCallbacks
    def test_round_trip(self) -> Any:
        """Create, read, list, merge-update and delete a station; degrees map to microdegrees."""
        created = yield self.ok(
            "POST",
            "/api/cms/stations",
            {"name": "Depot", "address": "1 Main St", "latitude": 52.520008, "longitude": 13.4},
            201,
        )
        sid = created["id"]
        self.assertEqual(
            (created["name"], created["latitude"], created["longitude"]),
            ("Depot", 52.520008, 13.4),
        )
        stored = yield self.daemon.query(stations.get_station, sid)
        self.assertEqual((stored.latitude, stored.longitude), (52520008, 13400000))
        self.assertEqual((yield self.ok("GET", f"/api/cms/stations/{sid}")), created)
        listed = yield self.ok("GET", "/api/cms/stations")
        # The list also names the station's chargers (none yet), online as presence says.
        self.assertEqual(listed, {"items": [{**created, "chargers": []}], "next": None})
        # PUT merges: the address is kept, null clears the latitude.
        updated = yield self.ok(
            "PUT", f"/api/cms/stations/{sid}", {"name": "Depot 2", "latitude": None}
        )
        self.assertEqual(
            (updated["name"], updated["address"], updated["latitude"], updated["longitude"]),
            ("Depot 2", "1 Main St", None, 13.4),
        )
        # A fetched object can be sent back as it is (read-only fields are ignored).
        self.assertEqual((yield self.ok("PUT", f"/api/cms/stations/{sid}", updated))["id"], sid)
        deleted = yield self.ok("DELETE", f"/api/cms/stations/{sid}")
        self.assertEqual(deleted["deleted"]["name"], "Depot 2")
        for method in ("GET", "PUT", "DELETE"):
            self.assertError(
                (yield self.admin(method, f"/api/cms/stations/{sid}", {"name": "x"})),
                404,
                "not_found",
            )
        self.assertEqual(
            self.cms_events(),
            [
                "cms.station.created",
                "audit.cms.station.created",
                "cms.station.updated",
                "audit.cms.station.updated",
                "cms.station.updated",
                "audit.cms.station.updated",
                "cms.station.deleted",
                "audit.cms.station.deleted",
            ],
        )
        entries = yield self.daemon.wait_for(
            audit.list_audit_entries, until=lambda rows: len(rows) >= 4
        )
        self.assertEqual(
            [(e.action, e.outcome, e.detail["verb"], e.actor_user_id) for e in entries],
            [
                ("cms.station.created", "answered", "created", 1),
                ("cms.station.updated", "answered", "updated", 1),
                ("cms.station.updated", "answered", "updated", 1),
                ("cms.station.deleted", "answered", "deleted", 1),
            ],
        )
        self.assertEqual(entries[1].detail["before"]["name"], "Depot")
        self.assertEqual(entries[1].detail["by"], {"userId": 1, "email": ADMIN[0]})

    @inlineCallbacks
    def test_validation_and_conflicts(self) -> Any:
        """Bad fields are 400 naming them; a taken name 409; bad ids 404."""
        for body, field in [
            ({}, "name"),
            ({"name": ""}, "name"),
            ({"name": "A", "latitude": 91}, "latitude"),
            ({"name": "A", "longitude": -180.5}, "longitude"),
            ({"name": "A", "latitude": "52"}, "latitude"),
            ({"name": "A", "latitude": True}, "latitude"),
            ({"name": "A", "address": 5}, "address"),
            ({"name": "A", "nmae": "typo"}, "nmae"),
        ]:
            yield self.bad("POST", "/api/cms/stations", body, field)
        self.assertError((yield self.admin("POST", "/api/cms/stations", [])), 400, "bad_request")
        yield self.ok("POST", "/api/cms/stations", {"name": "A"}, 201)
        other = yield self.ok("POST", "/api/cms/stations", {"name": "B"}, 201)
        self.assertError(
            (yield self.admin("POST", "/api/cms/stations", {"name": "A"})), 409, "conflict"
        )
        self.assertError(
            (yield self.admin("PUT", f"/api/cms/stations/{other['id']}", {"name": "A"})),
            409,
            "conflict",
        )
        for key in ("abc", "0", "-1", "99999999999999999999"):
            self.assertError(
                (yield self.admin("GET", f"/api/cms/stations/{key}")), 404, "not_found"
            )
        self.assertEqual(self.cms_events().count("cms.station.created"), 2)


class CmsEventsWhileTheBusIsDownTests(CmsTestCase):
    @inlineCallbacks
    def test_change_announced_once_the_bus_is_back(self) -> Any:
        """
        A station created while the bus refuses every publish is created
        (201), and its cms and audit events, kept in the outbox with the
        change, are published once the bus takes them again.
        """
        bus = self.daemon.node.bus
        recording = bus.publish
        self.patch(bus, "publish", lambda key, envelope: fail(BusError("broker down")))
        created = yield self.ok("POST", "/api/cms/stations", {"name": "Depot"}, 201)
        self.assertEqual(self.cms_events(), [])
        self.assertEqual((yield self.daemon.query(outbox.count_events)), 2)
        self.patch(bus, "publish", recording)
        yield poll(lambda: succeed(self.cms_events()), until=lambda keys: len(keys) == 2)
        self.assertEqual(
            sorted(self.cms_events()), ["audit.cms.station.created", "cms.station.created"]
        )
        payloads = [p for k, p in self.published if k == "cms.station.created"]
        self.assertEqual(payloads[0]["id"], created["id"])
        yield self.daemon.wait_for(outbox.count_events, until=lambda n: n == 0)


class TariffTests(CmsTestCase):
    @inlineCallbacks
    def test_round_trip_validation_and_in_use(self) -> Any:
        """Tariff CRUD; Tariff's rules as 400s naming the field; a used tariff cannot go."""
        body: dict[str, Any] = {
            "name": "Std",
            "currency": "EUR",
            "pricePerKwh": 30,
            "sessionFee": 50,
        }
        created = yield self.ok("POST", "/api/cms/tariffs", body, 201)
        tid = created["id"]
        self.assertEqual(
            {k: created[k] for k in ("currency", "pricePerKwh", "pricePerMinute", "sessionFee")},
            {"currency": "EUR", "pricePerKwh": 30, "pricePerMinute": 0, "sessionFee": 50},
        )
        self.assertEqual((yield self.ok("GET", f"/api/cms/tariffs/{tid}")), created)
        updated = yield self.ok("PUT", f"/api/cms/tariffs/{tid}", {"pricePerMinute": 2})
        self.assertEqual((updated["pricePerKwh"], updated["pricePerMinute"]), (30, 2))
        # The fee only with energy or charged time, unless the tariff says always.
        self.assertFalse(created["sessionFeeAlways"])
        always = yield self.ok("PUT", f"/api/cms/tariffs/{tid}", {"sessionFeeAlways": True})
        self.assertTrue(always["sessionFeeAlways"])
        kept = yield self.ok("PUT", f"/api/cms/tariffs/{tid}", {"sessionFee": 60})
        self.assertEqual((kept["sessionFee"], kept["sessionFeeAlways"]), (60, True))
        cases: list[tuple[dict[str, Any], str]] = [
            ({"currency": "eur"}, "currency"),
            ({"currency": None}, "currency"),
            ({"pricePerKwh": 1.5}, "pricePerKwh"),
            ({"pricePerKwh": True}, "pricePerKwh"),
            ({"pricePerMinute": -1}, "pricePerMinute"),
            ({"sessionFee": "5"}, "sessionFee"),
            ({"sessionFeeAlways": "yes"}, "sessionFeeAlways"),
            ({"sessionFeeAlways": None}, "sessionFeeAlways"),
            ({"name": None}, "name"),
        ]
        for bad, field in cases:
            yield self.bad("POST", "/api/cms/tariffs", {**body, "name": "X", **bad}, field)
            yield self.bad("PUT", f"/api/cms/tariffs/{tid}", bad, field)
        yield self.bad("POST", "/api/cms/tariffs", {"name": "Y", "currency": "EUR"}, "pricePerKwh")
        self.assertError((yield self.admin("POST", "/api/cms/tariffs", body)), 409, "conflict")

        yield self.ok(
            "POST",
            "/api/cms/points",
            {"chargePointId": "CPT", "tariffId": tid, "authorizationKey": None},
            201,
        )
        self.assertError((yield self.admin("DELETE", f"/api/cms/tariffs/{tid}")), 409, "conflict")
        yield self.ok("PUT", "/api/cms/points/CPT", {"tariffId": None})
        yield self.ok("DELETE", f"/api/cms/tariffs/{tid}")
        self.assertError((yield self.admin("GET", f"/api/cms/tariffs/{tid}")), 404, "not_found")
        self.assertIn("cms.tariff.deleted", self.cms_events())


class PointTests(CmsTestCase):
    @inlineCallbacks
    def test_round_trip_and_references(self) -> Any:
        """Point CRUD with station and tariff; unknown references 400; in-use deletes 409."""
        station = yield self.ok("POST", "/api/cms/stations", {"name": "S"}, 201)
        tariff = yield self.ok(
            "POST", "/api/cms/tariffs", {"name": "T", "currency": "EUR", "pricePerKwh": 1}, 201
        )
        created = yield self.ok(
            "POST",
            "/api/cms/points",
            {
                "chargePointId": "CP2",
                "stationId": station["id"],
                "tariffId": tariff["id"],
                "registrationStatus": "Pending",
                "authorizationKey": "secret-2-0123456789",
            },
            201,
        )
        self.assertEqual(
            {k: created[k] for k in ("stationId", "tariffId", "registrationStatus", "online")},
            {
                "stationId": station["id"],
                "tariffId": tariff["id"],
                "registrationStatus": "Pending",
                "online": False,
            },
        )
        self.assertTrue(created["authorizationRequired"])
        self.assertEqual(created["connectors"], [])
        for key in ("vendor", "model", "firmwareVersion", "lastSeenAt"):
            self.assertIn(key, created)
        self.assertEqual((yield self.ok("GET", "/api/cms/points/CP2")), created)
        for body, field in [
            ({"stationId": 999}, "stationId"),
            ({"tariffId": "1"}, "tariffId"),
            ({"registrationStatus": "Maybe"}, "registrationStatus"),
            ({"authorizationKey": ""}, "authorizationKey"),
            ({"authorizationKey": 5}, "authorizationKey"),
            ({"authorizationKey": "k" * 15}, "authorizationKey"),
            ({"authorizationKey": "k" * 15 + "\ud800"}, "authorizationKey"),
            ({"online": True, "bogus": 1}, "bogus"),
        ]:
            yield self.bad("PUT", "/api/cms/points/CP2", body, field)
        for body, field in [
            ({"authorizationKey": None}, "chargePointId"),
            ({"chargePointId": "a/b", "authorizationKey": None}, "chargePointId"),
            ({"chargePointId": "X" * 49, "authorizationKey": None}, "chargePointId"),
            ({"chargePointId": "CP9\n", "authorizationKey": None}, "chargePointId"),
            ({"chargePointId": "CP9"}, "authorizationKey"),
            ({"chargePointId": "CP9", "authorizationKey": "short"}, "authorizationKey"),
        ]:
            yield self.bad("POST", "/api/cms/points", body, field)
        self.assertError(
            (
                yield self.admin(
                    "POST", "/api/cms/points", {"chargePointId": "CP1", "authorizationKey": None}
                )
            ),
            409,
            "conflict",
        )
        self.assertError(
            (yield self.admin("DELETE", f"/api/cms/stations/{station['id']}")), 409, "conflict"
        )
        updated = yield self.ok(
            "PUT", "/api/cms/points/CP2", {"registrationStatus": "Accepted", "stationId": None}
        )
        self.assertEqual((updated["registrationStatus"], updated["stationId"]), ("Accepted", None))
        self.assertTrue(updated["authorizationRequired"])  # kept: not in the body
        yield self.ok("DELETE", f"/api/cms/stations/{station['id']}")

        # A point with sessions is billing history: 409; without, it goes.
        yield self.daemon.query(
            transactions.allocate_transaction,
            charge_point_id="CP1",
            connector_id=1,
            id_tag="T1",
            id_tag_status="Accepted",
            meter_start_wh=0,
            started_at=T0,
            now=T0,
        )
        self.assertError((yield self.admin("DELETE", "/api/cms/points/CP1")), 409, "conflict")
        yield self.ok("DELETE", "/api/cms/points/CP2")
        self.assertIsNone((yield self.daemon.query(chargers.get_charge_point, "CP2")))
        self.assertError((yield self.admin("GET", "/api/cms/points/CP2")), 404, "not_found")
        point_events = [(k, p["id"]) for k, p in self.published if k.startswith("cms.point")]
        self.assertEqual(
            point_events,
            [
                ("cms.point.created", "CP2"),
                ("cms.point.updated", "CP2"),
                ("cms.point.deleted", "CP2"),
            ],
        )

    @inlineCallbacks
    def test_key_set_through_the_api(self) -> Any:
        """A key set by the API admits the charger, a new one replaces it; none is ever shown."""
        texts: list[str] = []

        @inlineCallbacks
        def call(method: str, path: str, body: Any = None) -> Any:
            code, answer, _ = yield self.admin(method, path, body)
            texts.append(json.dumps(answer))
            return code, answer

        code, _ = yield call(
            "POST",
            "/api/cms/points",
            {"chargePointId": "CPX", "authorizationKey": "the-key-0123456789"},
        )
        self.assertEqual(code, 201)
        client = yield connect(self.daemon.port, "CPX", "the-key-0123456789")
        client.close()
        yield client.closed
        with self.assertRaises(ConnectionError):
            yield connect(self.daemon.port, "CPX", "wrong-key")

        code, _ = yield call(
            "PUT", "/api/cms/points/CPX", {"authorizationKey": "new-key-0123456789"}
        )
        self.assertEqual(code, 200)
        with self.assertRaises(ConnectionError):
            yield connect(self.daemon.port, "CPX", "the-key-0123456789")
        client = yield connect(self.daemon.port, "CPX", "new-key-0123456789")
        client.close()
        yield client.closed
        yield call("GET", "/api/cms/points/CPX")
        yield call("GET", "/api/cms/points")
        yield call("DELETE", "/api/cms/points/CPX")
        entries = yield self.daemon.wait_for(
            audit.list_audit_entries, until=lambda rows: len(rows) >= 3
        )
        texts += [json.dumps(e.detail) for e in entries]
        texts += [json.dumps(payload) for _, payload in self.published]
        for text in texts:
            for secret in (
                "the-key-0123456789",
                "new-key-0123456789",
                "pbkdf2",
                "hmac_sha256",
                "key_hash",
                "keyHash",
            ):
                self.assertNotIn(secret, text)
        self.assertTrue(any(e.detail.get("authorizationKeyChanged") for e in entries))
        self.assertTrue(all(e.charge_point_id == "CPX" for e in entries))


class TagTests(CmsTestCase):
    @inlineCallbacks
    def test_round_trip_and_validation(self) -> Any:
        """Tag CRUD (ids in upper case), its validation, duplicates 409, unknown 404."""
        created = yield self.ok(
            "POST",
            "/api/cms/tags",
            {"idTag": "card1", "expiresAt": "2031-01-01T00:00:00+01:00", "userId": 2},
            201,
        )
        self.assertEqual(
            created,
            {
                "idTag": "CARD1",
                "status": "Accepted",
                "expiresAt": "2030-12-31T23:00:00.000Z",
                "parentIdTag": None,
                "userId": 2,
                "createdAt": created["createdAt"],
            },
        )
        self.assertEqual((yield self.ok("GET", "/api/cms/tags/card1")), created)
        updated = yield self.ok(
            "PUT", "/api/cms/tags/CARD1", {"status": "Blocked", "parentIdTag": "grp"}
        )
        self.assertEqual(
            (updated["status"], updated["parentIdTag"], updated["userId"], updated["expiresAt"]),
            ("Blocked", "GRP", 2, created["expiresAt"]),
        )
        for body, field in [
            ({"status": "Fine"}, "status"),
            ({"expiresAt": "tomorrow"}, "expiresAt"),
            ({"userId": 99}, "userId"),
            ({"parentIdTag": "X" * 21}, "parentIdTag"),
            ({"parentIdTag": "card1"}, "parentIdTag"),
        ]:
            yield self.bad("PUT", "/api/cms/tags/CARD1", body, field)
        yield self.bad("POST", "/api/cms/tags", {"idTag": "X" * 21}, "idTag")
        yield self.bad("POST", "/api/cms/tags", {"status": "Accepted"}, "idTag")
        self.assertError(
            (yield self.admin("POST", "/api/cms/tags", {"idTag": "Card1"})), 409, "conflict"
        )
        yield self.ok("DELETE", "/api/cms/tags/card1")
        for method in ("GET", "PUT", "DELETE"):
            self.assertError(
                (yield self.admin(method, "/api/cms/tags/CARD1", {})), 404, "not_found"
            )
        self.assertError((yield self.admin("GET", "/api/cms/tags/" + "X" * 30)), 404, "not_found")
        self.assertEqual(
            [k for k in self.cms_events() if k.startswith("cms.")],
            ["cms.tag.created", "cms.tag.updated", "cms.tag.deleted"],
        )


class PaginationTests(CmsTestCase):
    @inlineCallbacks
    def walk(self, path: str, limit: int) -> Any:
        """Every item of a list, page by page; the number of pages."""
        items: list[Any] = []
        cursor = None
        pages = 0
        while True:
            query = f"?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            body = yield self.ok("GET", path + query)
            pages += 1
            self.assertLessEqual(len(body["items"]), limit)
            items += body["items"]
            cursor = body["next"]
            if cursor is None:
                return items, pages

    @inlineCallbacks
    def test_pages_without_gaps_or_duplicates(self) -> Any:
        """Five of each kind paged two at a time: every one exactly once, in key order."""
        for i in range(5):
            yield self.ok("POST", "/api/cms/stations", {"name": f"S{i}"}, 201)
            yield self.ok("POST", "/api/cms/tags", {"idTag": f"T{i}"}, 201)
            yield self.ok(
                "POST",
                "/api/cms/points",
                {"chargePointId": f"P{i}", "authorizationKey": None},
                201,
            )
        items, pages = yield self.walk("/api/cms/stations", 2)
        self.assertEqual(([s["name"] for s in items], pages), ([f"S{i}" for i in range(5)], 3))
        items, _ = yield self.walk("/api/cms/tags", 2)
        self.assertEqual([t["idTag"] for t in items], [f"T{i}" for i in range(5)])
        items, _ = yield self.walk("/api/cms/points", 2)
        self.assertEqual([p["chargePointId"] for p in items], ["CP1", *(f"P{i}" for i in range(5))])
        items, pages = yield self.walk("/api/cms/stations", 5)
        self.assertEqual((len(items), pages), (5, 1))
        # A page ends where the last one ended even when rows are added in between.
        first = yield self.ok("GET", "/api/cms/tags?limit=2")
        yield self.ok("POST", "/api/cms/tags", {"idTag": "A0"}, 201)
        second = yield self.ok("GET", f"/api/cms/tags?limit=2&cursor={first['next']}")
        self.assertEqual([t["idTag"] for t in second["items"]], ["T2", "T3"])

    @inlineCallbacks
    def test_bad_limit_and_cursor(self) -> Any:
        """limit outside 1..200 or not a number, and a foreign or garbled cursor: 400."""
        for query in ("limit=0", "limit=201", "limit=x", "limit=-1", "limit=1&limit=2"):
            yield self.bad("GET", f"/api/cms/stations?{query}", None, "limit")
        yield self.ok("POST", "/api/cms/tags", {"idTag": "A"}, 201)
        yield self.ok("POST", "/api/cms/tags", {"idTag": "B"}, 201)
        tag_cursor = (yield self.ok("GET", "/api/cms/tags?limit=1"))["next"]
        self.assertIsInstance(tag_cursor, str)
        for cursor in ("nope", "!!!", "e30", tag_cursor, "x" * 600):
            yield self.bad("GET", f"/api/cms/stations?cursor={cursor}", None, "cursor")
        yield self.bad("GET", f"/api/cms/sessions?cursor={tag_cursor}", None, "cursor")
        yield self.bad("GET", f"/api/cms/points/CP1/messages?cursor={tag_cursor}", None, "cursor")


class AdmissionCacheTests(CmsTestCase):
    """An operator's change to a charger takes effect at its next login, cached or not."""

    @inlineCallbacks
    def admitted(self, key: str) -> Any:
        """CP1 logs in with ``key`` (and is remembered), then hangs up."""
        client = yield connect(self.daemon.port, "CP1", key)
        client.close()
        yield client.closed

    @inlineCallbacks
    def refused(self, key: str) -> Any:
        """The status line refusing a login of CP1 with ``key``."""
        headers = {"Sec-WebSocket-Protocol": "ocpp1.6", "Authorization": basic_auth("CP1", key)}
        response = yield raw_handshake(self.daemon.port, "/ocpp/CP1", headers)
        return response.split(b"\r\n", 1)[0].decode()

    @inlineCallbacks
    def test_key_replaced_or_charger_rejected_or_deleted(self) -> Any:
        old, new = "key-1-0123456789ab", "key-1-new-0123456789"
        yield self.admitted(old)
        yield self.ok("PUT", "/api/cms/points/CP1", {"authorizationKey": new})
        self.assertIn(" 401 ", (yield self.refused(old)))
        yield self.admitted(new)
        yield self.ok("PUT", "/api/cms/points/CP1", {"registrationStatus": "Rejected"})
        self.assertIn(" 403 ", (yield self.refused(new)))
        yield self.ok("PUT", "/api/cms/points/CP1", {"registrationStatus": "Accepted"})
        yield self.admitted(new)
        yield self.ok("DELETE", "/api/cms/points/CP1")
        self.assertIn(" 404 ", (yield self.refused(new)))


class SessionTests(CmsTestCase):
    @inlineCallbacks
    def test_filters_and_pages(self) -> Any:
        """Sessions filtered by charger, user, status and start time; newest first, paged."""
        self.daemon.ocppctl("charger", "add", "CP2", stdin="key-2-0123456789ab\n")
        self.daemon.ocppctl("tag", "add", "jo", "--user", CUSTOMER[0])
        ids = []
        for i, (cp, tag) in enumerate(
            [("CP1", "JO"), ("CP1", "ANON"), ("CP2", "JO"), ("CP2", "X")]
        ):
            started = T0 + timedelta(hours=i)
            allocation = yield self.daemon.query(
                transactions.allocate_transaction,
                charge_point_id=cp,
                connector_id=1,
                id_tag=tag,
                id_tag_status="Accepted",
                meter_start_wh=1000,
                started_at=started,
                now=started,
            )
            ids.append(allocation.transaction_id)
        yield self.daemon.query(
            transactions.record_stop,
            charge_point_id="CP1",
            transaction_id=ids[0],
            meter_stop_wh=3500,
            stopped_at=T0 + timedelta(minutes=30),
            reason="Local",
            now=T0,
        )

        @inlineCallbacks
        def listed(query: str) -> Any:
            body = yield self.ok("GET", "/api/cms/sessions" + query)
            return [s["id"] for s in body["items"]]

        self.assertEqual((yield listed("")), ids[::-1])
        self.assertEqual((yield listed("?chargePointId=CP1")), [ids[1], ids[0]])
        self.assertEqual((yield listed("?userId=2")), [ids[2], ids[0]])
        self.assertEqual((yield listed("?status=completed")), [ids[0]])
        self.assertEqual((yield listed("?status=active&chargePointId=CP2")), [ids[3], ids[2]])
        self.assertEqual(
            (yield listed("?from=2030-01-01T09:00:00Z&to=2030-01-01T11:00:00Z")),
            [ids[2], ids[1]],
        )
        self.assertEqual((yield listed("?chargePointId=NONE")), [])
        page1 = yield self.ok("GET", "/api/cms/sessions?limit=3")
        page2 = yield self.ok("GET", f"/api/cms/sessions?limit=3&cursor={page1['next']}")
        self.assertEqual([s["id"] for s in page1["items"] + page2["items"]], ids[::-1])
        self.assertIsNone(page2["next"])
        done = page2["items"][0]
        self.assertEqual(
            done,
            {
                "id": ids[0],
                "transactionId": ids[0],
                "chargePointId": "CP1",
                "connectorId": 1,
                "idTag": "JO",
                "userId": 2,
                "status": "completed",
                "startedAt": "2030-01-01T08:00:00.000Z",
                "stoppedAt": "2030-01-01T08:30:00.000Z",
                "meterStartWh": 1000,
                "meterStopWh": 3500,
                "energyWh": 2500,
                "cost": None,
                "currency": None,
                "stopReason": "Local",
                "chargerStopReason": None,
                "idTagStatus": "Accepted",
                "review": None,
                # Who the customer is (ocppd.api.cms_people).
                "customer": {"userId": 2, "email": "jo@example.com", "name": None},
            },
        )
        for query, field in [
            ("status=done", "status"),
            ("review=maybe", "review"),
            ("userId=abc", "userId"),
            ("from=yesterday", "from"),
            ("to=2030-13-01", "to"),
        ]:
            yield self.bad("GET", f"/api/cms/sessions?{query}", None, field)


class MessageLogTests(CmsTestCase):
    @inlineCallbacks
    def test_message_log_of_a_point(self) -> Any:
        """A CALL and its answer show up newest first, paged; unknown points are 404."""
        client = yield connect(self.daemon.port, "CP1", "key-1-0123456789ab")
        self.addCleanup(lambda: (client.close(), client.closed)[1])
        request = {"vendorId": "acme", "messageId": "ping"}
        client.send(json.dumps([2, "dt-1", "DataTransfer", request]))
        reply = json.loads((yield client.messages.get()))
        self.assertEqual(reply[:2], [3, "dt-1"])
        yield self.daemon.wait_for(messages.list_messages, "CP1", until=lambda rows: len(rows) >= 2)
        body = yield self.ok("GET", "/api/cms/points/CP1/messages")
        self.assertEqual(
            [(m["direction"], m["messageType"], m["action"], m["uniqueId"]) for m in body["items"]],
            [("out", "CALLRESULT", "DataTransfer", "dt-1"), ("in", "CALL", "DataTransfer", "dt-1")],
        )
        self.assertEqual(body["items"][1]["payload"], request)
        self.assertEqual(body["items"][0]["payload"], reply[2])
        self.assertRegex(body["items"][0]["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        first = yield self.ok("GET", "/api/cms/points/CP1/messages?limit=1")
        second = yield self.ok(
            "GET", f"/api/cms/points/CP1/messages?limit=1&cursor={first['next']}"
        )
        self.assertEqual(first["items"] + second["items"], body["items"])
        self.assertIsNone(second["next"])
        # One row holds both frames: the ids are the frames' own, the call's first.
        self.assertEqual(body["items"][0]["id"], body["items"][1]["id"] + 1)
        # A cursor of the row ids before revision 0023 is not taken for a frame's.
        old = encode_cursor("messages:CP1", body["items"][0]["id"])
        yield self.bad("GET", f"/api/cms/points/CP1/messages?cursor={old}", None, "cursor")
        self.assertError(
            (yield self.admin("GET", "/api/cms/points/NOPE/messages")), 404, "not_found"
        )


class AuthorizationTests(CmsTestCase):
    ROUTES: tuple[tuple[str, str, Any], ...] = (
        ("GET", "/api/cms/stations", None),
        ("POST", "/api/cms/stations", {"name": "Z"}),
        ("GET", "/api/cms/stations/1", None),
        ("PUT", "/api/cms/stations/1", {"name": "Z"}),
        ("DELETE", "/api/cms/stations/1", None),
        ("GET", "/api/cms/tariffs", None),
        ("POST", "/api/cms/tariffs", {"name": "Z", "currency": "EUR", "pricePerKwh": 0}),
        ("GET", "/api/cms/tariffs/1", None),
        ("PUT", "/api/cms/tariffs/1", {"pricePerKwh": 0}),
        ("DELETE", "/api/cms/tariffs/1", None),
        ("GET", "/api/cms/points", None),
        ("POST", "/api/cms/points", {"chargePointId": "Z", "authorizationKey": None}),
        ("GET", "/api/cms/points/CP1", None),
        ("PUT", "/api/cms/points/CP1", {"authorizationKey": None}),
        ("DELETE", "/api/cms/points/CP1", None),
        ("GET", "/api/cms/points/CP1/messages", None),
        ("GET", "/api/cms/tags", None),
        ("POST", "/api/cms/tags", {"idTag": "Z"}),
        ("GET", "/api/cms/tags/Z", None),
        ("PUT", "/api/cms/tags/Z", {"status": "Blocked"}),
        ("DELETE", "/api/cms/tags/Z", None),
        ("GET", "/api/cms/sessions", None),
    )

    @inlineCallbacks
    def test_anonymous_401_customer_403(self) -> Any:
        """No CMS route answers anyone but an admin, and none of them changes anything."""
        customer = yield self.login(CUSTOMER)
        for method, path, body in self.ROUTES:
            result = yield self.request(method, path, body)
            self.assertError(result, 401, "unauthorized")
            result = yield self.request(method, path, body, token=customer)
            self.assertError(result, 403, "forbidden")
        self.assertEqual(self.cms_events(), [])
        point = yield self.daemon.query(chargers.get_charge_point, "CP1")
        self.assertIsNotNone(point.key_hash)


class OnPostgres:
    """Run a CMS test class with the node's store on the real PostgreSQL."""

    def daemon_overrides(self) -> list[str]:
        return [*super().daemon_overrides(), *postgres_overrides(self)]  # type: ignore[misc]


class PostgresStationTests(OnPostgres, StationTests):
    pass


class PostgresTariffTests(OnPostgres, TariffTests):
    pass


class PostgresPointTests(OnPostgres, PointTests):
    pass


class PostgresTagTests(OnPostgres, TagTests):
    pass


class PostgresPaginationTests(OnPostgres, PaginationTests):
    pass


class PostgresSessionTests(OnPostgres, SessionTests):
    pass
