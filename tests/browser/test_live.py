"""
Live updates: a simulated charger or an API call changes state and the open
pages follow without a reload, over the real push channel (/push, WAMP).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.store import messages
from tests.browser.base import ADMIN, ADMIN2, CUSTOMER, CUSTOMER2, TAGS, BrowserTestCase
from tests.integration.daemon import poll


class LiveTestCase(BrowserTestCase):
    # The pages top up through the test provider, which must be chosen explicitly.
    overrides = ("billing.payment_provider=test",)

    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.require_push()

    def allow_autobahn_goodbye_race(self) -> None:
        """
        The node's GOODBYE makes autobahn-js (22.11.1) queue its GOODBYE
        answer (its send is async) and close the socket before that answer
        is sent; Chromium logs the late send. The library's doing, harmless:
        the node closes on the socket's close as it would on the GOODBYE.
        """
        self.allow_console_error("WebSocket is already in CLOSING or CLOSED state.")

    @inlineCallbacks
    def priced_charger(self, charge_point_id: str) -> Any:
        """A connected charger whose point has a tariff: €0.30/kWh plus €1.00 a session."""
        charger = yield self.charger(charge_point_id, station="Main Street")
        tariff = yield self.api_ok(
            "POST",
            "/api/cms/tariffs",
            {"name": "Standard", "currency": "EUR", "pricePerKwh": 30, "sessionFee": 100},
        )
        yield self.api_ok("PUT", f"/api/cms/points/{charge_point_id}", {"tariffId": tariff["id"]})
        return charger


class CustomerLiveTests(LiveTestCase):
    @inlineCallbacks
    def test_availability_and_charger_status(self) -> Any:
        """Stations and charger pages follow connector status and the charger going offline."""
        from playwright.sync_api import expect

        charger = yield self.charger("CP-1", station="Main Street")
        # Start is offered only with the minimum in the wallet (else disabled, saying why).
        yield self.api_ok("POST", "/api/user/wallet/top-up", {"amount": 1000}, who=CUSTOMER)
        stations = yield self.open(CUSTOMER, "/user/#/stations")
        detail = yield self.open(CUSTOMER, "/user/#/chargers/CP-1")
        for page in (stations, detail):
            yield self.wait_live(page)
        yield self.expect(
            lambda: expect(
                detail.get_by_role("button", name="Start charging on connector 1")
            ).to_be_enabled()
        )
        yield charger.status(1, "Charging")

        def charging() -> None:
            card = stations.locator("[data-station]")
            expect(card.locator("[data-charger=CP-1] .badge")).to_have_text("1: Charging")
            expect(card.locator(".availability")).to_have_text("0 of 1 charger available")
            expect(detail.locator("[data-connector='1'] .badge")).to_have_text("Charging")
            expect(
                detail.get_by_role("button", name="Start charging on connector 1")
            ).to_be_disabled()

        yield self.b(charging)
        yield charger.close()

        def offline() -> None:
            expect(stations.locator("[data-station] .card-head .badge")).to_have_text("Offline")
            expect(detail.locator(".charger-online")).to_have_text("Not connected")

        yield self.b(offline)

    @inlineCallbacks
    def test_charging_from_the_panel(self) -> Any:
        """
        Top up, start on the charger's page, watch energy and power climb, stop:
        the session, history, dashboard and wallet pages follow live, and the
        other customer's pages never show any of it.
        """
        from playwright.sync_api import expect

        charger = yield self.priced_charger("CP-1")
        transactions: list[int] = []
        charger.on_remote_start = lambda connector, tag: charger.start(
            connector, tag, 10_000
        ).addCallback(transactions.append)
        charger.on_remote_stop = lambda tx: charger.stop(tx, 12_000, "Remote")

        history = yield self.open(CUSTOMER, "/user/#/sessions")
        dashboard = yield self.open(CUSTOMER, "/user/#/")
        wallet = yield self.open(CUSTOMER, "/user/#/wallet")
        other = yield self.open(CUSTOMER2, "/user/#/sessions")
        for page in (history, dashboard, wallet, other):
            yield self.wait_live(page)

        def top_up() -> None:
            expect(wallet.locator("[data-figure=balance]")).to_have_text("€0.00")
            wallet.get_by_label("Other amount (EUR)").fill("25")
            wallet.get_by_role("button", name="Top up", exact=True).click()
            expect(wallet.locator("[data-figure=balance]")).to_have_text("€25.00")
            expect(wallet.locator("tbody tr")).to_have_count(1)
            expect(dashboard.locator("[data-figure=balance]")).to_have_text("€25.00")

        yield self.b(top_up)
        page = yield self.open(CUSTOMER, "/user/#/chargers/CP-1")
        yield self.wait_live(page)

        def start() -> None:
            page.get_by_role("button", name="Start charging on connector 1").click()
            expect(page.locator("[data-session-state=active]")).to_contain_text("Charging at CP-1")
            expect(dashboard.locator("[data-session-state=active]")).to_contain_text(
                "Charging at CP-1"
            )
            expect(history.locator("tbody tr")).to_have_count(1)
            expect(history.locator("tbody tr .badge")).to_have_text("Charging")

        yield self.b(start)
        yield poll(lambda: _done(transactions), until=bool)
        yield self.wait_live(page)
        yield charger.meter(1, transactions[0], 10_800, 7_200)
        yield charger.meter(1, transactions[0], 11_500, 7_400)

        def climbing() -> None:
            expect(page.locator("[data-figure=energy]")).to_have_text("1.50 kWh")
            expect(page.locator("[data-figure=power]")).to_have_text("7.4 kW")
            expect(page.locator(".chart")).to_have_attribute("data-points", "2")
            expect(history.locator("tbody tr [data-field=energy]")).to_have_text("1.50 kWh")
            expect(dashboard.locator("[data-session-state=active]")).to_contain_text("1.50 kWh")

        yield self.b(climbing)
        yield self.screenshot(page, "user-active-session")
        yield self.screenshot(dashboard, "user-dashboard")

        def stop() -> None:
            page.get_by_role("button", name="Stop charging").click()
            notice = page.locator("[data-session-state=stopped]")
            expect(notice).to_contain_text("Charging has stopped")
            expect(notice).to_contain_text("2.00 kWh")
            expect(notice).to_contain_text("€1.60")
            expect(history.locator("tbody tr .badge")).to_have_text("Completed")
            expect(history.locator("tbody tr [data-field=cost]")).to_have_text("€1.60")
            expect(wallet.locator("[data-figure=balance]")).to_have_text("€23.40")
            expect(wallet.locator("tbody tr")).to_have_count(2)
            expect(wallet.locator("tbody tr").first).to_contain_text("-€1.60")
            expect(dashboard.locator("[data-session-state=stopped]")).to_contain_text(
                "Charging stopped at CP-1"
            )
            expect(page.locator(".toast").filter(has_text="Charging stopped")).to_contain_text(
                "€1.60"
            )

        yield self.b(stop)
        yield self.screenshot(page, "user-session-stopped")
        yield self.screenshot(wallet, "user-wallet")
        yield self.screenshot(history, "user-sessions")
        yield self.phone_screenshot(wallet, "user-wallet-phone")
        yield self.phone_screenshot(history, "user-sessions-phone")

        def nothing_for_kim() -> None:
            expect(other.locator(".state--empty")).to_contain_text("No charging sessions yet")
            expect(other.locator("tbody tr")).to_have_count(0)
            other.goto(other.url.split("#")[0] + f"#/session/{transactions[0]}")
            expect(other.locator(".state--error")).to_contain_text("not one of yours")
            expect(other.locator("[data-figure=energy]")).to_have_count(0)

        yield self.b(nothing_for_kim)

    @inlineCallbacks
    def test_autobahn_js_ticket_and_authorization(self) -> Any:
        """
        autobahn-js (npm autobahn-browser) on its own, without our client:
        ticket sign-in, an event on a permitted topic, another customer's topic refused.
        """
        charger = yield self.charger("CP-1")
        page = yield self.open(CUSTOMER2, "/user/#/stations")
        yield self.wait_live(page)
        jo = self.user_ids[CUSTOMER[0]]
        token = yield self.token(CUSTOMER2)
        # Started here, awaited at the end: the browser thread must stay free meanwhile.
        script = """
            ([token, jo]) => {
              const ab = window.autobahn;
              const result = {};
              let subscribed;
              window.__subscribed = new Promise((resolve) => { subscribed = resolve; });
              window.__interop = new Promise((resolve, reject) => {
                const connection = new ab.Connection({
                  url: `ws://${location.host}/push`, realm: 'ocppd', authmethods: ['ticket'],
                  onchallenge: () => token, max_retries: 0,
                });
                connection.onopen = async (session, details) => {
                  result.authmethod = details.authmethod;
                  try {
                    await session.subscribe(`ocppd.user.${jo}.session`, () => {});
                    result.foreign = 'subscribed';
                  } catch (e) { result.foreign = e.error; }
                  await session.subscribe('ocppd.chargers.status', (args) => {
                    if (args[0].type === 'connector.status' && !result.event) {
                      result.event = args[0];
                      resolve(result);
                      connection.close();
                    }
                  });
                  subscribed(true);
                };
                connection.onclose = (reason) => { if (!result.event) reject(new Error(reason)); };
                connection.open();
              });
            }
        """
        yield self.b(lambda: page.evaluate(script, [token, jo]))
        # Awaited through evaluate, not polled with wait_for_function: that
        # evaluates a string in the page, which the page's CSP forbids.
        yield self.b(lambda: page.evaluate("window.__subscribed"))
        yield charger.status(1, "Unavailable")
        result = yield self.b(lambda: page.evaluate("window.__interop"))
        self.assertEqual(result["authmethod"], "ticket")
        self.assertEqual(result["foreign"], "wamp.error.not_authorized")
        self.assertEqual(result["event"]["data"]["status"], "Unavailable")
        self.assertEqual(result["event"]["data"]["chargePointId"], "CP-1")


def _done(values: list[int]) -> Any:
    from twisted.internet.defer import succeed

    return succeed(values)


class CmsLiveTests(LiveTestCase):
    @inlineCallbacks
    def test_point_detail_meter_and_log(self) -> Any:
        """Connector status, meter values (chart) and OCPP log lines appear as the charger sends."""
        from playwright.sync_api import expect

        charger = yield self.charger("CP-1")
        yield self.daemon.wait_for(
            messages.list_messages, "CP-1", until=lambda rows: len(rows) >= 4
        )
        page = yield self.open(ADMIN, "/cms/#/points/CP-1")
        yield self.wait_live(page)
        yield self.expect(lambda: expect(page.locator("[data-log] li")).to_have_count(4))
        other = yield self.charger("CP-2")
        tx = yield charger.start(1, TAGS[CUSTOMER[0]], 1_000_000)
        yield charger.status(1, "Charging")
        for energy, power in [(1_000_400, 6_900), (1_001_100, 7_100), (1_002_000, 11_000)]:
            # Another charger's meter values, pushed before each of CP-1's: the
            # page's topics are CP-1's own (the broker filters), so none shows.
            yield other.meter(1, 7, energy, 22_000)
            yield charger.meter(1, tx, energy, power)

        def live() -> None:
            expect(page.locator("[data-field=connectors] .badge").first).to_have_text("1: Charging")
            expect(page.locator(".chart").first).to_have_attribute("data-points", "3")
            expect(page.locator("[data-field=meter]")).to_contain_text("11.0 kW")
            expect(page.locator("[data-log] li[data-action=MeterValues]")).to_have_count(6)
            expect(page.locator("[data-log] li").first).to_contain_text("MeterValues")

        yield self.b(live)
        yield self.screenshot(page, "cms-point-detail")
        yield other.close()
        yield charger.close()
        yield self.expect(
            lambda: expect(page.locator("[data-field=online]")).to_contain_text("Offline")
        )

    @inlineCallbacks
    def test_sessions_and_dashboard(self) -> Any:
        """A session appears in the sessions list and the dashboard, climbs, and completes, live."""
        from playwright.sync_api import expect

        charger = yield self.priced_charger("CP-1")
        sessions = yield self.open(ADMIN, "/cms/#/sessions")
        dashboard = yield self.open(ADMIN2, "/cms/#/")
        for page in (sessions, dashboard):
            yield self.wait_live(page)

        def before() -> None:
            expect(dashboard.locator("[data-figure=chargers]")).to_have_text("1 / 1")
            expect(dashboard.locator("[data-figure=active]")).to_have_text("0")
            expect(sessions.locator(".state--empty")).to_be_visible()

        yield self.b(before)
        # The card session is debited; without funds it would wait for review.
        yield self.api_ok("POST", "/api/user/wallet/top-up", {"amount": 1000}, who=CUSTOMER)
        tx = yield charger.start(1, TAGS[CUSTOMER[0]], 50_000)
        yield charger.meter(1, tx, 52_500, 7_000)

        def running() -> None:
            expect(sessions.locator("tbody tr")).to_have_count(1)
            expect(sessions.locator("tbody tr [data-field=energy]")).to_contain_text("2.50 kWh")
            expect(dashboard.locator("[data-figure=active]")).to_have_text("1")
            expect(dashboard.locator("tbody tr [data-field=energy]")).to_contain_text("2.50 kWh")

        yield self.b(running)
        yield self.screenshot(sessions, "cms-sessions")
        yield charger.stop(tx, 54_000)

        def stopped() -> None:
            expect(sessions.locator("tbody tr .badge")).to_have_text("Completed")
            expect(sessions.locator("tbody tr [data-field=cost]")).to_have_text("€2.20")
            expect(dashboard.locator("[data-figure=active]")).to_have_text("0")
            expect(dashboard.locator("[data-figure=revenue]")).to_have_text("€2.20")
            expect(dashboard.locator("[data-figure=energy]")).to_have_text("4.00 kWh")

        yield self.b(stopped)
        yield self.screenshot(dashboard, "cms-dashboard")
        yield charger.close()
        yield self.expect(
            lambda: expect(dashboard.locator("[data-figure=chargers]")).to_have_text("0 / 1")
        )

    @inlineCallbacks
    def test_edits_seen_by_a_second_operator(self) -> Any:
        """What one operator creates or edits appears on another operator's open pages."""
        from playwright.sync_api import expect

        yield self.charger("CP-1", station="Main Street")
        editor = yield self.open(ADMIN, "/cms/#/tariffs")
        points = yield self.open(ADMIN2, "/cms/#/points")
        tariffs = yield self.open(ADMIN2, "/cms/#/tariffs")
        stations = yield self.open(ADMIN2, "/cms/#/stations")
        for page in (editor, points, tariffs, stations):
            yield self.wait_live(page)

        def edits() -> None:
            editor.get_by_role("button", name="New tariff").click()
            dialog = editor.get_by_role("dialog")
            dialog.get_by_label("Name").fill("Night")
            dialog.get_by_label("Price per kWh").fill("0.19")
            dialog.get_by_role("button", name="Create tariff").click()
            expect(tariffs.locator("tbody tr")).to_contain_text(["Night"])
            editor.get_by_role("link", name="Charging points").click()
            editor.get_by_role("button", name="Edit CP-1").click()
            editor.get_by_role("dialog").get_by_label("Tariff").select_option(
                label="Night (€0.19/kWh)"
            )
            editor.get_by_role("dialog").get_by_role("button", name="Save").click()
            expect(points.locator("tr[data-key=CP-1]")).to_contain_text("Night")
            editor.get_by_role("link", name="Stations").click()
            editor.get_by_role("button", name="Edit Main Street").click()
            editor.get_by_role("dialog").get_by_label("Name").fill("Main Street North")
            editor.get_by_role("dialog").get_by_role("button", name="Save").click()
            expect(stations.locator("tbody tr")).to_contain_text(["Main Street North"])
            expect(points.locator("tr[data-key=CP-1]")).to_contain_text("Main Street North")

        yield self.b(edits)

    @inlineCallbacks
    def test_reconnects_and_resubscribes(self) -> Any:
        """The indicator shows a dropped push channel; after the reconnect, events flow again."""
        from playwright.sync_api import expect

        self.allow_autobahn_goodbye_race()
        charger = yield self.charger("CP-1")
        page = yield self.open(ADMIN, "/cms/#/points")
        yield self.wait_live(page)
        yield self.daemon.node.push.close_all()
        yield self.expect(
            lambda: expect(page.locator(".push-indicator")).not_to_have_attribute(
                "data-push-state", "online"
            )
        )
        yield self.wait_live(page)
        yield charger.status(1, "Faulted", "GroundFailure")
        yield self.expect(
            lambda: expect(page.locator("tr[data-key=CP-1] [data-field=connectors]")).to_have_text(
                "1: Faulted"
            )
        )

    @inlineCallbacks
    def test_a_stale_reload_does_not_hide_a_push(self) -> Any:
        """
        After a reconnect the page reloads its snapshot; a push that arrives
        while that snapshot (read before the event was stored) is on its way
        is shown after it, not overwritten by it.
        """
        from playwright.sync_api import expect

        self.allow_autobahn_goodbye_race()
        charger = yield self.charger("CP-1")
        page = yield self.open(ADMIN, "/cms/#/points")
        yield self.wait_live(page)
        held: list[tuple[Any, Any]] = []

        def hold(route: Any) -> None:
            # The snapshot is read now, before the status below is stored.
            held.append((route, route.fetch()))

        def points_list(url: str) -> bool:
            return "/api/cms/points?" in url

        yield self.b(lambda: page.route(points_list, hold))
        yield self.daemon.node.push.close_all()
        yield poll(lambda: self.b(lambda: page.wait_for_timeout(50) or len(held)), until=bool)
        yield charger.status(1, "Faulted", "GroundFailure")
        # Long enough for the push to reach the page while the reload is held.
        yield self.b(lambda: page.wait_for_timeout(1000))

        def release() -> None:
            for route, response in held:
                route.fulfill(response=response)
            page.unroute(points_list)

        yield self.b(release)
        yield self.expect(
            lambda: expect(page.locator("tr[data-key=CP-1] [data-field=connectors]")).to_have_text(
                "1: Faulted"
            )
        )
