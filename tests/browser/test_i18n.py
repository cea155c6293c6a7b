"""
The driver panel in the reader's language and formats (issue 17, item 6): a
German browser reads German words and German numbers ("10,00 €") on the
dashboard, the live session and the wallet, and tops up "10,50" as €10.50;
the language switch is remembered; the dark theme follows the system's
setting with no console error.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks, succeed

from tests.browser.base import CUSTOMER
from tests.browser.test_driver import DriverTestCase
from tests.integration.daemon import poll

GERMAN = {"locale": "de-DE"}


class GermanTests(DriverTestCase):
    @inlineCallbacks
    def test_dashboard_session_and_wallet_in_german(self) -> Any:
        """German words, money and energy as Germans write them, and `<html lang=de>`."""
        from playwright.sync_api import expect

        charger = yield self.priced_charger("CP-1")
        yield self.top_up(1000)
        page = yield self.open(CUSTOMER, "/user/#/", **GERMAN)
        yield self.wait_live(page)

        def dashboard() -> None:
            expect(page.locator("html")).to_have_attribute("lang", "de")
            expect(page.locator("h1")).to_have_text("Hallo")
            expect(page.locator("[data-figure=balance]")).to_have_text("10,00\u00a0€")
            expect(page.get_by_role("link", name="Übersicht")).to_be_visible()
            expect(page.get_by_role("link", name="Guthaben", exact=True)).to_be_visible()
            expect(page.locator("[data-card=charge]")).to_contain_text("Bereit zum Laden?")
            expect(page.locator("[data-push-state=online]")).to_have_text("Live")

        yield self.b(dashboard)
        yield self.screenshot(page, "user-dashboard-de")

        # The charger page: German prices, and Start under its German name.
        yield self.b(lambda: page.goto(self.url("/user/#/chargers/CP-1")))
        yield self.wait_live(page)
        yield self.expect(
            lambda: expect(page.locator("[data-card=price] li")).to_have_text(
                ["0,30\u00a0€ pro kWh", "0,02\u00a0€ pro Minute", "1,00\u00a0€ pro Ladevorgang"]
            )
        )
        started: list[int] = []
        charger.on_remote_start = lambda connector, tag: charger.start(
            connector, tag, 10_000
        ).addCallback(started.append)
        yield self.b(
            lambda: page.get_by_role("button", name="Laden an Anschluss 1 starten").click()
        )
        yield poll(lambda: succeed(started), until=bool)

        def live_session() -> None:
            expect(page.locator("[data-session-state=active]")).to_contain_text("Lädt an CP-1")
            expect(page.locator("[data-figure=energy]")).to_have_text("0,00 kWh")
            expect(page.locator("[data-figure=cost]")).to_have_text("0,00\u00a0€")
            expect(page.get_by_text("Kosten bisher")).to_be_visible()
            expect(page.get_by_role("button", name="Laden beenden")).to_be_visible()

        yield self.b(live_session)
        yield self.wait_live(page)
        yield charger.meter(1, started[0], 11_500, 7_400)
        yield self.expect(
            lambda: expect(page.locator("[data-figure=energy]")).to_have_text("1,50 kWh")
        )
        yield self.expect(
            lambda: expect(page.locator("[data-figure=power]")).to_have_text("7,4 kW")
        )
        yield self.screenshot(page, "user-session-de")

        # The wallet: a German amount typed with a decimal comma is €10.50.
        yield self.b(lambda: page.goto(self.url("/user/#/wallet")))
        yield self.wait_live(page)

        def wallet() -> None:
            expect(page.locator("h1")).to_have_text("Guthaben")
            expect(page.locator("[data-figure=balance]")).to_have_text("10,00\u00a0€")
            expect(page.get_by_role("button", name="+ 10,00\u00a0€")).to_be_visible()
            expect(page.get_by_text("Anderer Betrag (EUR)")).to_be_visible()
            page.locator("#topup-amount").fill("10,50")
            page.get_by_role("button", name="Aufladen", exact=True).click()
            expect(page.locator("[data-figure=balance]")).to_have_text("20,50\u00a0€")
            expect(page.locator("tbody tr").first).to_contain_text("Aufladung")
            expect(page.locator("tbody tr").first).to_contain_text("+10,50\u00a0€")

        yield self.b(wallet)
        wallet_api = yield self.api_ok("GET", "/api/user/wallet", who=CUSTOMER)
        self.assertEqual(wallet_api["balance"], 2050)
        yield self.screenshot(page, "user-wallet-de")

    @inlineCallbacks
    def test_an_amount_that_is_not_one_is_refused_in_german(self) -> Any:
        """A malformed amount credits nothing and says so with German examples."""
        from playwright.sync_api import expect

        page = yield self.open(CUSTOMER, "/user/#/wallet", **GERMAN)
        yield self.wait_live(page)

        def refused() -> None:
            page.locator("#topup-amount").fill("10,505")
            page.get_by_role("button", name="Aufladen", exact=True).click()
            expect(page.locator(".form-error")).to_have_text(
                "Geben Sie einen Betrag wie 20,00 oder 12,50 ein (EUR)."
            )
            expect(page.locator("[data-figure=balance]")).to_have_text("0,00\u00a0€")

        yield self.b(refused)
        wallet = yield self.api_ok("GET", "/api/user/wallet", who=CUSTOMER)
        self.assertEqual(wallet["balance"], 0)

    @inlineCallbacks
    def test_the_language_switch_is_remembered(self) -> Any:
        """An English browser switched to Deutsch stays German after a reload, numbers too."""
        from playwright.sync_api import expect

        yield self.top_up(1000)
        page = yield self.open(CUSTOMER, "/user/#/wallet")
        yield self.wait_live(page)
        yield self.expect(lambda: expect(page.locator("h1")).to_have_text("Wallet"))
        yield self.expect(
            lambda: expect(page.locator("[data-figure=balance]")).to_have_text("€10.00")
        )
        yield self.b(lambda: page.get_by_label("Language").select_option("de"))
        yield self.expect(lambda: expect(page.locator("h1")).to_have_text("Guthaben"))
        yield self.b(lambda: page.reload())

        def german() -> None:
            expect(page.locator("h1")).to_have_text("Guthaben")
            expect(page.locator("html")).to_have_attribute("lang", "de")
            expect(page.locator("[data-figure=balance]")).to_have_text("10,00\u00a0€")
            expect(page.get_by_label("Sprache")).to_have_value("de")

        yield self.b(german)
        stored = yield self.b(lambda: page.evaluate("localStorage.getItem('ocppd.language')"))
        self.assertEqual(stored, "de")


class DarkThemeTests(DriverTestCase):
    @inlineCallbacks
    def test_dark_scheme_pages_without_console_errors(self) -> Any:
        """
        With the system set to dark the panel is dark (dashboard, charger,
        wallet, history), with no console error.
        """
        from playwright.sync_api import expect

        charger = yield self.priced_charger("CP-1")
        yield self.top_up(1000)
        page = yield self.open(CUSTOMER, "/user/#/", color_scheme="dark")
        yield self.wait_live(page)
        for path, shot in (
            ("/user/#/", "user-dashboard-dark"),
            ("/user/#/chargers/CP-1", "user-charger-detail-dark"),
            ("/user/#/wallet", "user-wallet-dark"),
            ("/user/#/sessions", "user-sessions-dark"),
        ):
            yield self.b(lambda path=path: page.goto(self.url(path)))
            yield self.wait_live(page)
            yield self.expect(lambda: expect(page.locator("main h1")).to_be_visible())
            colours = yield self.b(
                lambda: page.evaluate(
                    "[getComputedStyle(document.documentElement).backgroundColor,"
                    " getComputedStyle(document.querySelector('main h1')).color]"
                )
            )
            self.assertEqual(colours, ["rgb(14, 20, 27)", "rgb(230, 237, 243)"], path)
            yield self.screenshot(page, shot)
        # The live session: its chart takes the dark theme's colours.
        yield self.b(lambda: page.goto(self.url("/user/#/chargers/CP-1")))
        yield self.wait_live(page)
        yield self.started_from_the_panel(page, charger)
        yield self.expect(lambda: expect(page.locator(".chart")).to_be_visible())
        stroke = yield self.b(
            lambda: page.evaluate(
                "getComputedStyle(document.documentElement).getPropertyValue('--chart-line').trim()"
            )
        )
        self.assertEqual(stroke, "#6cb2ff")
        yield self.screenshot(page, "user-active-session-dark")
        self.assertEqual(self.console_errors, [])
        self.assertEqual(self.page_errors, [])

    @inlineCallbacks
    def test_light_scheme_stays_light(self) -> Any:
        """With the system set to light the page keeps the light colours."""
        from playwright.sync_api import expect

        page = yield self.open(CUSTOMER, "/user/#/", color_scheme="light")
        yield self.expect(lambda: expect(page.locator("main h1")).to_be_visible())
        background = yield self.b(
            lambda: page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        )
        self.assertEqual(background, "rgb(244, 246, 249)")


class ErrorsAndFrenchTests(DriverTestCase):
    @inlineCallbacks
    def test_a_refused_start_in_german(self) -> Any:
        """The charger's refusal (code charger_rejected) is a German sentence."""

        from playwright.sync_api import expect

        charger = yield self.priced_charger("CP-1")
        yield self.top_up(2000)
        page = yield self.open(CUSTOMER, "/user/#/chargers/CP-1", **GERMAN)
        yield self.wait_live(page)
        self.refuse_remote_starts(charger)

        def refused() -> None:
            page.get_by_role("button", name="Laden an Anschluss 1 starten").click()
            expect(page.locator(".start-message")).to_have_text(
                "Die Ladestation hat den Start abgelehnt. Versuchen Sie es erneut"
                " oder an einem anderen Anschluss."
            )

        yield self.b(refused)

    @inlineCallbacks
    def test_error_codes_in_words_with_the_servers_sentence_as_fallback(self) -> Any:
        """describeError: a code the catalogue names in German; another keeps the server's words."""
        page = yield self.open(CUSTOMER, "/user/#/", **GERMAN)
        yield self.wait_live(page)
        said = yield self.b(
            lambda: page.evaluate(
                "import('/shared/dom.js').then((dom) => ["
                " dom.describeError({status: 409, code: 'session_not_active',"
                "   message: 'Session 7 has stopped already.'}),"
                " dom.describeError({status: 409, code: 'new_code', message: 'Server words.'}),"
                " dom.describeError({status: 0, code: 'network', message: 'x'})])"
            )
        )
        self.assertEqual(
            said,
            [
                "Dieser Ladevorgang ist schon beendet.",
                "Server words.",
                "Der Server ist nicht erreichbar. Prüfen Sie Ihre Verbindung"
                " und versuchen Sie es erneut.",
            ],
        )

    @inlineCallbacks
    def test_french_browser(self) -> Any:
        """The third language: French words and French money ("10,00 €" with its narrow space)."""
        from playwright.sync_api import expect

        yield self.top_up(1000)
        page = yield self.open(CUSTOMER, "/user/#/wallet", locale="fr-FR")
        yield self.wait_live(page)

        def french() -> None:
            expect(page.locator("html")).to_have_attribute("lang", "fr")
            expect(page.locator("h1")).to_have_text("Porte-monnaie")
            expect(page.locator("[data-figure=balance]")).to_have_text("10,00\u00a0€")
            expect(page.get_by_role("link", name="Historique")).to_be_visible()
            page.locator("#topup-amount").fill("2,50")
            page.get_by_role("button", name="Recharger", exact=True).click()
            expect(page.locator("[data-figure=balance]")).to_have_text("12,50\u00a0€")

        yield self.b(french)

    @inlineCallbacks
    def test_an_unspoken_language_falls_back_to_english(self) -> Any:
        """A Japanese browser reads English words, with Japanese number formats."""
        from playwright.sync_api import expect

        page = yield self.open(CUSTOMER, "/user/#/wallet", locale="ja-JP")
        yield self.wait_live(page)
        yield self.expect(lambda: expect(page.locator("h1")).to_have_text("Wallet"))
        yield self.expect(lambda: expect(page.locator("html")).to_have_attribute("lang", "en"))


class CatalogueLoadTests(DriverTestCase):
    @inlineCallbacks
    def test_a_catalogue_that_fails_to_load_is_asked_for_again(self) -> Any:
        """The daemon restarting while the words load: the page draws once they come."""
        from playwright.sync_api import expect

        page = yield self.open(CUSTOMER, "/user/#/wallet")
        yield self.expect(lambda: expect(page.locator("h1")).to_have_text("Wallet"))
        failed: list[str] = []

        def refuse(route: Any) -> None:
            failed.append(route.request.url)
            route.abort()

        # Chromium notes the aborted fetch on the console: that is the failure made here.
        self.allow_console_error("Failed to load resource")
        yield self.b(lambda: page.route("**/shared/i18n/en.json", refuse))
        yield self.b(lambda: page.reload(wait_until="commit"))

        # Route handlers run while the browser thread is in a Playwright call.
        def refused_twice() -> None:
            for _ in range(100):
                if len(failed) >= 2:
                    return
                page.wait_for_timeout(100)
            raise AssertionError(f"the catalogue was asked for {len(failed)} times")

        yield self.b(refused_twice)
        yield self.b(lambda: page.unroute("**/shared/i18n/en.json"))
        yield self.expect(lambda: expect(page.locator("h1")).to_have_text("Wallet"))
        yield self.expect(
            lambda: expect(page.locator("[data-figure=balance]")).to_have_text("€0.00")
        )
