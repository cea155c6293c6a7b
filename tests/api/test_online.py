"""
Presence is the truth for ``online`` (docs/presence.md, "Online and offline:
what is the truth"): every answer that says whether a charger is online asks
presence, once per request, whatever ``charge_points.online`` says; the store's
flag stands in only while presence is unreachable, and the answer says so.

A whole node's API on a ``Clock`` (``tests/api/inline.py``) with the embedded
presence; the Redis presence at the end, with a node that died.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable
from typing import Any

import attrs
from twisted.internet.defer import Deferred, fail, inlineCallbacks
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.api.online import OnlineView
from ocppd.api.public import charger_json
from ocppd.presence.interface import PresenceUnavailable
from ocppd.store import chargers, stations
from ocppd.store.records import ChargePointRecord
from ocppd.store.tables import charge_points
from tests.api.inline import InlineNode
from tests.presence.contract import eventually
from tests.presence.test_redis import RedisPresenceMixin, require_redis

#: Every route that shows whether CP1 is online, and where in its body.
SURFACES: dict[str, Any] = {
    "/api/stations": lambda body: body["items"][0]["chargers"][0],
    "/api/chargers/CP1": lambda body: body,
    "/api/cms/points": lambda body: body["items"][0],
    "/api/cms/points/CP1": lambda body: body,
}

ONLINE_LOG = "ocppd.api.online.OnlineView"


class OnlineFromPresenceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.inline = InlineNode(self)
        self.node = self.inline.node
        run, now = self.node.database.run_sync, self.inline.now()
        self.admin = self.inline.token(self.inline.add_user("ops@example.com", "pw long", "admin"))
        self.customer = self.inline.token(
            self.inline.add_user("jo@example.com", "pw longer", "customer")
        )
        station = run(stations.add_station, "Depot", now=now)
        for charge_point_id in ("CP1", "CP2", "CP3"):
            run(chargers.add_charge_point, charge_point_id, None, station_id=station, now=now)
        run(
            chargers.set_connector_status,
            "CP1",
            1,
            status="Available",
            error_code="NoError",
            at=now,
        )
        self.lookups: list[list[str]] = []
        owners = self.node.presence.owners

        def counted(ids: Iterable[str]) -> Deferred[Any]:
            ids = list(ids)
            self.lookups.append(ids)
            return owners(ids)

        self.patch(self.node.presence, "owners", counted)
        # One at a time would be the cost this change avoids: never used.
        self.patch(self.node.presence, "owner", self.fail)

    def store_says(self, online: bool) -> None:
        self.node.database.run_sync(
            lambda conn: conn.execute(charge_points.update().values(online=online))
        )

    def request(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        code, content = self.inline.request(method, path, token, body)
        return code, json.loads(content)

    def shown(self, path: str) -> dict[str, Any]:
        token = self.customer if path.startswith("/api/c") and "cms" not in path else self.admin
        code, body = self.request("GET", path, token)
        self.assertEqual(code, 200, body)
        charger = SURFACES[path](body)
        self.assertEqual(charger["chargePointId"], "CP1")
        return dict(charger)

    def test_store_online_presence_nobody(self) -> None:
        """The store says online (a node killed with -9), no node holds it: offline everywhere."""
        self.store_says(True)
        for path in SURFACES:
            with self.subTest(path=path):
                charger = self.shown(path)
                self.assertEqual((charger["online"], charger["onlineSource"]), (False, "presence"))
        _, body = self.request("GET", "/api/stations", self.customer)
        self.assertEqual((body["items"][0]["online"], body["items"][0]["available"]), (False, 0))
        self.assertFalse(self.shown("/api/chargers/CP1")["available"])

    def test_store_offline_presence_holds(self) -> None:
        """The store has not caught up with a connect yet: presence says online, so does the API."""
        self.store_says(False)
        self.successResultOf(self.node.presence.claim("CP1"))
        for path in SURFACES:
            with self.subTest(path=path):
                charger = self.shown(path)
                self.assertEqual((charger["online"], charger["onlineSource"]), (True, "presence"))
        _, body = self.request("GET", "/api/stations", self.customer)
        self.assertEqual((body["items"][0]["online"], body["items"][0]["available"]), (True, 1))
        # The answer to a change shows presence's state too.
        code, body = self.request("PUT", "/api/cms/points/CP1", self.admin, {"tariffId": None})
        self.assertEqual((code, body["online"], body["onlineSource"]), (200, True, "presence"))

    def dashboard(self) -> dict[str, Any]:
        code, body = self.request("GET", "/api/cms/dashboard", self.admin)
        self.assertEqual(code, 200, body)
        return {key: body[key] for key in ("stations", "chargers", "onlineSource")}

    def test_dashboard_counts_follow_presence(self) -> None:
        """
        The dashboard reloads its counts on each live connect and disconnect,
        which may come before the processor has written ``charge_points.online``:
        its counts are presence's, so they are right at once, either way.
        """
        self.store_says(False)
        self.successResultOf(self.node.presence.claim("CP1"))
        self.assertEqual(
            self.dashboard(),
            {
                "stations": {"total": 1, "online": 1, "offline": 0},
                "chargers": {"total": 3, "online": 1, "offline": 2},
                "onlineSource": "presence",
            },
        )
        self.store_says(True)
        self.node.presence.release("CP1", self.successResultOf(self.node.presence.claim("CP1")))
        self.assertEqual(
            self.dashboard(),
            {
                "stations": {"total": 1, "online": 0, "offline": 1},
                "chargers": {"total": 3, "online": 0, "offline": 3},
                "onlineSource": "presence",
            },
        )
        # One lookup for every charger of the dashboard, not one per charger.
        self.assertEqual(self.lookups[-1], ["CP1", "CP2", "CP3"])

    def test_dashboard_counts_fall_back_to_the_store(self) -> None:
        """Presence down: the dashboard counts the store's flags, and says so."""
        self.store_says(True)
        self.patch(
            self.node.presence, "owners", lambda ids: fail(PresenceUnavailable("Redis is down"))
        )
        board = self.dashboard()
        self.assertEqual((board["chargers"]["online"], board["onlineSource"]), (3, "store"))

    def test_one_lookup_per_request(self) -> None:
        """A page asks presence once for all its chargers, not once per charger."""
        self.successResultOf(self.node.presence.claim("CP2"))
        self.request("GET", "/api/stations", self.customer)
        self.request("GET", "/api/cms/points?limit=2", self.admin)
        self.assertEqual(self.lookups, [["CP1", "CP2", "CP3"], ["CP1", "CP2"]])
        _, body = self.request("GET", "/api/cms/points", self.admin)
        self.assertEqual([p["online"] for p in body["items"]], [False, True, False])

    def test_customer_start_checks_presence(self) -> None:
        """409 charger_offline early when no node holds it, whatever the store says."""
        start = {"chargePointId": "CP1", "connectorId": 2}
        self.store_says(True)
        code, body = self.request("POST", "/api/user/charging/start", self.customer, start)
        self.assertEqual((code, body["error"]["code"]), (409, "charger_offline"))
        self.store_says(False)
        self.successResultOf(self.node.presence.claim("CP1"))
        code, body = self.request("POST", "/api/user/charging/start", self.customer, start)
        # Past the online check: connector 2 does not exist.
        self.assertEqual((code, body["error"]["code"]), (409, "connector_unavailable"))
        self.assertEqual(self.lookups, [["CP1"], ["CP1"]])

    def test_presence_unreachable_falls_back_to_the_store(self) -> None:
        """Presence down: the store's flag, marked as such, logged once; never a 500."""
        logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        self.store_says(True)
        self.patch(
            self.node.presence, "owners", lambda ids: fail(PresenceUnavailable("Redis is down"))
        )
        for path in SURFACES:
            with self.subTest(path=path):
                charger = self.shown(path)
                self.assertEqual((charger["online"], charger["onlineSource"]), (True, "store"))
        start = {"chargePointId": "CP1", "connectorId": 2}
        code, body = self.request("POST", "/api/user/charging/start", self.customer, start)
        self.assertEqual((code, body["error"]["code"]), (409, "connector_unavailable"))
        warnings = [e for e in logged if e.get("log_namespace") == ONLINE_LOG]
        self.assertEqual([e["log_level"] for e in warnings], [LogLevel.warn])
        self.assertIn("Redis is down", warnings[0]["reason"])

    def test_presence_back_after_fallback(self) -> None:
        """Presence back: its states again, and one line saying so."""
        logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        owners = self.node.presence.owners
        down = [True]

        def maybe_down(ids: Iterable[str]) -> Deferred[Any]:
            return fail(PresenceUnavailable("Redis is down")) if down[0] else owners(ids)

        self.patch(self.node.presence, "owners", maybe_down)
        self.store_says(True)
        self.assertEqual(self.shown("/api/chargers/CP1")["onlineSource"], "store")
        down[0] = False
        charger = self.shown("/api/chargers/CP1")
        self.assertEqual((charger["online"], charger["onlineSource"]), (False, "presence"))
        self.shown("/api/chargers/CP1")
        levels = [
            e["log_level"]
            for e in logged
            if e.get("log_namespace") == "ocppd.api.online.OnlineView"
        ]
        self.assertEqual(levels, [LogLevel.warn, LogLevel.info])

    def test_other_failures_are_not_hidden(self) -> None:
        """A bug in the lookup is a 500 and logged, not a silent fallback."""
        self.patch(self.node.presence, "owners", lambda ids: fail(RuntimeError("a bug")))
        code, body = self.request("GET", "/api/chargers/CP1", self.customer)
        self.assertEqual((code, body["error"]["code"]), (500, "internal_error"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class RedisOnlineTests(RedisPresenceMixin, TestCase):
    """With presence on Redis, a node that died shows its chargers offline within the lease."""

    def setUp(self) -> None:
        self.url = require_redis()

    @inlineCallbacks
    def test_dead_node_offline_within_lease(self) -> Generator[Deferred[Any], Any, None]:
        lease = 0.5
        dead = yield self.make_redis_presence("dead", lease, self.url)
        live = yield self.make_redis_presence("live", 30.0, self.url)
        yield dead.claim("CP1")  # and never renews: killed with -9
        record = ChargePointRecord(**_stored_online("CP1"))
        view = OnlineView(live)
        online = yield view.lookup(["CP1"])
        self.assertEqual(charger_json(record, [], online, None)["online"], True)

        @inlineCallbacks
        def offline() -> Generator[Deferred[Any], Any, bool]:
            online = yield view.lookup(["CP1"])
            shown = charger_json(record, [], online, None)
            return shown["online"] is False and shown["onlineSource"] == "presence"

        # Within the lease; the slack is for a loaded test machine.
        yield eventually(offline, timeout=lease + 2.0)


def _stored_online(charge_point_id: str) -> dict[str, Any]:
    """A stored charger the store still says is online."""
    fields = {field.name: None for field in attrs.fields(ChargePointRecord)}
    return {**fields, "charge_point_id": charge_point_id, "online": True}
