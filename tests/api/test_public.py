"""Routes for every signed-in user: stations with live availability, one charger."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.api.public import charger_tx
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase
from tests.api.test_openapi import check_response
from tests.integration.clients import connect


class PublicTests(ApiTestCase):
    @inlineCallbacks
    def test_stations_and_charger_live(self) -> Any:
        """A customer sees a station's charger come online and its connector available."""
        admin = yield self.login(ADMIN)
        customer = yield self.login(CUSTOMER)
        code, station, _ = yield self.request(
            "POST", "/api/cms/stations", {"name": "Depot"}, token=admin
        )
        self.assertEqual(code, 201)
        code, _, _ = yield self.request(
            "PUT", "/api/cms/points/CP1", {"stationId": station["id"]}, token=admin
        )
        self.assertEqual(code, 200)
        code, body, _ = yield self.request("GET", "/api/stations", token=customer)
        self.assertEqual(code, 200)
        [item] = body["items"]
        self.assertEqual((item["name"], item["online"], item["available"]), ("Depot", False, 0))
        self.assertEqual([c["chargePointId"] for c in item["chargers"]], ["CP1"])
        self.assertNotIn("registrationStatus", json.dumps(body))
        self.assertNotIn("authorizationRequired", json.dumps(body))

        client = yield connect(self.daemon.port, "CP1", "key-1-0123456789ab")
        client.send(
            '[2,"s","StatusNotification",{"connectorId":1,"errorCode":"NoError",'
            '"status":"Available","timestamp":"2030-01-01T00:00:00Z"}]'
        )
        yield client.messages.get()
        yield self.daemon.wait_for(
            charger_tx,
            "CP1",
            until=lambda c: c is not None and [s.status for s in c[1]] == ["Available"],
        )
        code, body, _ = yield self.request("GET", "/api/chargers/CP1", token=customer)
        self.assertEqual(code, 200)
        self.assertEqual(
            (body["online"], body["onlineSource"], body["available"]), (True, "presence", True)
        )
        self.assertEqual(
            [(c["connectorId"], c["status"]) for c in body["connectors"]], [(1, "Available")]
        )
        code, body, _ = yield self.request("GET", "/api/stations", token=customer)
        self.assertEqual((body["items"][0]["online"], body["items"][0]["available"]), (True, 1))
        client.close()
        yield client.closed

    @inlineCallbacks
    def test_refusals(self) -> Any:
        """Anonymous 401; an unknown or not yet accepted charger 404."""
        self.assertError((yield self.request("GET", "/api/stations")), 401, "unauthorized")
        self.assertError((yield self.request("GET", "/api/chargers/CP1")), 401, "unauthorized")
        customer = yield self.login(CUSTOMER)
        self.assertError(
            (yield self.request("GET", "/api/chargers/NOPE", token=customer)), 404, "not_found"
        )
        admin = yield self.login(ADMIN)
        yield self.request(
            "PUT", "/api/cms/points/CP1", {"registrationStatus": "Pending"}, token=admin
        )
        self.assertError(
            (yield self.request("GET", "/api/chargers/CP1", token=customer)), 404, "not_found"
        )
        self.assertError(
            (yield self.request("GET", "/api/stations?limit=0", token=customer)), 400, "bad_request"
        )

    @inlineCallbacks
    def test_match_the_document(self) -> Any:
        """Both routes' answers validate against the OpenAPI document."""
        customer = yield self.login(CUSTOMER)
        admin = yield self.login(ADMIN)
        yield self.request("POST", "/api/cms/stations", {"name": "Depot"}, token=admin)
        _, document, _ = yield self.request("GET", "/api/openapi.json")
        check_response(
            self,
            document,
            "/api/stations",
            "get",
            (yield self.request("GET", "/api/stations", token=customer)),
        )
        check_response(
            self,
            document,
            "/api/chargers/{chargePointId}",
            "get",
            (yield self.request("GET", "/api/chargers/CP1", token=customer)),
        )
        check_response(
            self,
            document,
            "/api/chargers/{chargePointId}",
            "get",
            (yield self.request("GET", "/api/chargers/NOPE", token=customer)),
        )


class UserSessionTests(ApiTestCase):
    @inlineCallbacks
    def test_only_ones_own_sessions(self) -> Any:
        """A customer lists their own sessions only, whatever userId they put in the query."""
        yield self.add_user(("other@example.com", "yet another password"), "customer")
        self.daemon.ocppctl("tag", "add", "MINE", "--user", CUSTOMER[0])
        self.daemon.ocppctl("tag", "add", "THEIRS", "--user", "other@example.com")
        client = yield connect(self.daemon.port, "CP1", "key-1-0123456789ab")
        for n, tag in enumerate(("MINE", "THEIRS", "MINE")):
            client.send(
                json.dumps(
                    [
                        2,
                        f"s{n}",
                        "StartTransaction",
                        {
                            "connectorId": n + 1,
                            "idTag": tag,
                            "meterStart": n,
                            "timestamp": f"2030-01-01T00:0{n}:00Z",
                        },
                    ]
                )
            )
            yield client.messages.get()
        client.close()
        yield client.closed
        customer = yield self.login(CUSTOMER)
        code, body, _ = yield self.request("GET", "/api/user/sessions", token=customer)
        self.assertEqual(code, 200)
        self.assertEqual(
            [(s["idTag"], s["connectorId"]) for s in body["items"]], [("MINE", 3), ("MINE", 1)]
        )
        code, body, _ = yield self.request(
            "GET", "/api/user/sessions?userId=2&limit=1", token=customer
        )
        self.assertEqual([s["idTag"] for s in body["items"]], ["MINE"])
        code, page2, _ = yield self.request(
            "GET", f"/api/user/sessions?limit=1&cursor={body['next']}", token=customer
        )
        self.assertEqual(([s["connectorId"] for s in page2["items"]], page2["next"]), ([1], None))
        self.assertError((yield self.request("GET", "/api/user/sessions")), 401, "unauthorized")
        self.assertError(
            (yield self.request("GET", "/api/user/sessions?status=maybe", token=customer)),
            400,
            "bad_request",
        )
