"""
The operator CMS in the reader's language (issue 18): a German browser reads
the dashboard, the charging points, a charging point and the customers in
German, energy and money as Germans write them ("1,50 kWh", "0,00 €"), with
`<html lang=de>`, no console error and none of the CMS's English words left
in what the pages show; a French browser the dashboard and a point in French;
the language switch in the CMS's header is remembered.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from twisted.internet.defer import inlineCallbacks

from tests.browser.base import ADMIN, CUSTOMER, TAGS, BrowserTestCase
from tests.browser.browser import WEBROOT
from tests.integration.daemon import poll

#: What a page says, one line per text node and per label a screen reader reads
#: (title, aria-label, placeholder): the title, the header and ``main``, without
#: what the charger or the server wrote in its own words (the OCPP log, JSON payloads).
SHOWN = """() => {
  const parts = [document.title];
  const raw = '[data-log], pre, code';
  for (const root of document.querySelectorAll('header.topbar, main')) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (!node.parentElement.closest(raw)) parts.push(node.nodeValue);
    }
    for (const el of root.querySelectorAll('[title], [aria-label], [placeholder]')) {
      if (el.closest(raw)) continue;
      for (const name of ['title', 'aria-label', 'placeholder']) {
        parts.push(el.getAttribute(name) || '');
      }
    }
  }
  return parts.join('\\n');
}"""


def catalogue_values(language: str) -> list[str]:
    """Every string of the shared and CMS catalogues in ``language`` (plural forms each)."""
    values: list[str] = []
    for folder in ("shared/i18n", "cms/i18n"):
        with open(os.path.join(WEBROOT, folder, f"{language}.json"), encoding="utf-8") as f:
            for entry in json.load(f).values():
                values.extend(entry.values() if isinstance(entry, dict) else [entry])
    return values


def english_words(language: str) -> list[str]:
    """
    The English entries (without placeholders, four characters or more) that
    ``language`` says otherwise: none of them may show on a page in it. An
    English entry that is also words of the other language ("Status",
    "Live", "Offline") is left out.
    """
    theirs = catalogue_values(language)
    found = []
    for value in set(catalogue_values("en")):
        if "{" in value or len(value.strip()) < 4:
            continue
        pattern = re.compile(rf"(?<![\w-]){re.escape(value.strip())}(?![\w-])")
        if not any(pattern.search(other) for other in theirs):
            found.append(value.strip())
    return sorted(found)


#: Every page of the CMS (a customer's is reached from the customers).
PAGES = (
    "/cms/#/",
    "/cms/#/stations",
    "/cms/#/points",
    "/cms/#/points/CP-1",
    "/cms/#/sessions",
    "/cms/#/customers",
    "/cms/#/tags",
    "/cms/#/tariffs",
    "/cms/#/audit",
    "/cms/#/reports",
    "/cms/#/map",
)


def narrow(page: Any, where: str) -> None:
    """``page`` is no wider than its 360 px screen (what sticks out is named)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 361).slice(0, 5)"
        ".map(e => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`)"
    )
    assert width <= 360, f"{where} is {width} px wide on a 360 px screen: {wide}"


class CmsLanguageTests(BrowserTestCase):
    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.require_push()
        # A station, a priced charger and one finished session: figures to format.
        self.charger_ = yield self.charger("CP-1", connectors=2, station="Hafenstraße")
        tariff = yield self.api_ok(
            "POST",
            "/api/cms/tariffs",
            {"name": "Standard", "currency": "EUR", "pricePerKwh": 30, "sessionFee": 100},
        )
        yield self.api_ok("PUT", "/api/cms/points/CP-1", {"tariffId": tariff["id"]})
        transaction = yield self.charger_.start(1, TAGS[CUSTOMER[0]], 10_000)
        yield self.charger_.stop(transaction, 11_500)
        yield poll(
            lambda: self.api_ok("GET", "/api/cms/sessions"),
            until=lambda page: bool(page["items"]) and page["items"][0]["status"] == "completed",
        )

    def assert_no_english(self, page: Any, language: str, where: str) -> Any:
        """None of the English entries that ``language`` words otherwise is on ``page``."""
        text = page.evaluate(SHOWN)
        left = [
            words
            for words in english_words(language)
            if re.search(rf"(?<![\w-]){re.escape(words)}(?![\w-])", text)
        ]
        self.assertEqual(left, [], f"{where}: English left in the {language} page:\n{text}")

    @inlineCallbacks
    def test_dashboard_points_point_and_people_in_german(self) -> Any:
        from playwright.sync_api import expect

        page = yield self.open(ADMIN, "/cms/#/", locale="de-DE")
        yield self.wait_live(page)

        def dashboard() -> None:
            expect(page.locator("html")).to_have_attribute("lang", "de")
            expect(page.locator("h1")).to_have_text("Übersicht")
            expect(page.get_by_role("link", name="Ladepunkte", exact=True)).to_be_visible()
            expect(page.locator("[data-figure=energy]")).to_have_text("1,50 kWh")
            expect(page.locator("[data-figure=revenue]")).to_have_text(
                re.compile(r"^\d+,\d\d\u00a0€$")
            )
            expect(page.locator("[data-figure=chargers]")).to_have_text("1 / 1")
            expect(page.locator("[data-field=stop-reason]")).to_have_text(" Am Ladepunkt beendet")
            expect(page.locator("[data-figure=alerts]")).to_have_count(1)
            expect(page.get_by_text("Keine offenen Warnungen.")).to_be_visible()
            expect(page.locator("select.language")).to_have_value("de")
            self.assert_no_english(page, "de", "dashboard")

        yield self.b(dashboard)
        yield self.screenshot(page, "cms-dashboard-de")

        yield self.b(lambda: page.goto(self.url("/cms/#/points")))

        def points() -> None:
            expect(page.locator("h1")).to_have_text("Ladepunkte")
            row = page.locator("tr[data-key='CP-1']")
            expect(row.locator("[data-status=Accepted]")).to_have_text("Angenommen")
            expect(row.locator("[data-field=connectors]")).to_have_text(
                re.compile(r"^1: Frei\s*2: Frei$")
            )
            expect(row).to_contain_text("Standard (0,30\u00a0€/kWh)")
            expect(page.get_by_role("search", name="Ladepunkte durchsuchen")).to_be_visible()
            self.assert_no_english(page, "de", "points")

        yield self.b(points)
        yield self.screenshot(page, "cms-points-de")

        yield self.b(lambda: page.goto(self.url("/cms/#/points/CP-1")))

        def point() -> None:
            expect(page.locator("h1")).to_have_text("CP-1")
            expect(page.get_by_role("heading", name="Befehle")).to_be_visible()
            expect(page.get_by_label("Befehl", exact=True)).to_be_visible()
            expect(page.locator("[data-field=online]")).to_contain_text("zuletzt gesehen")
            expect(page.get_by_role("heading", name="OCPP-Nachrichtenprotokoll")).to_be_visible()
            expect(page.locator("[data-connector='1'] h3")).to_have_text("Anschluss 1")
            self.assert_no_english(page, "de", "point")

        yield self.b(point)
        yield self.screenshot(page, "cms-point-de")

        yield self.b(lambda: page.goto(self.url("/cms/#/customers")))

        def people() -> None:
            expect(page.locator("h1")).to_have_text("Kunden")
            row = page.locator("tr", has=page.get_by_text(CUSTOMER[0], exact=True))
            expect(row).to_contain_text("Kunde")
            expect(row.locator("[data-status=Accepted]")).to_have_text("Aktiv")
            expect(page.get_by_role("button", name="Als CSV exportieren")).to_be_visible()
            self.assert_no_english(page, "de", "customers")

        yield self.b(people)
        yield self.screenshot(page, "cms-customers-de")

        # German words are longer: on a 360 px phone no page scrolls sideways.
        yield self.b(lambda: page.set_viewport_size({"width": 360, "height": 780}))
        for path in PAGES:
            yield self.b(page.goto, self.url(path))
            yield self.wait_live(page)
            yield self.expect(lambda: expect(page.locator("main h1")).to_be_visible())
            yield self.expect(lambda: expect(page.locator(".state--loading")).to_have_count(0))
            yield self.b(narrow, page, path)

    @inlineCallbacks
    def test_dashboard_and_point_in_french(self) -> Any:
        from playwright.sync_api import expect

        page = yield self.open(ADMIN, "/cms/#/", locale="fr-FR")
        yield self.wait_live(page)

        def dashboard() -> None:
            expect(page.locator("html")).to_have_attribute("lang", "fr")
            expect(page.locator("h1")).to_have_text("Tableau de bord")
            expect(page.locator("[data-figure=energy]")).to_have_text("1,50 kWh")
            expect(page.locator("[data-field=stop-reason]")).to_have_text(" Arrêtée à la borne")
            self.assert_no_english(page, "fr", "dashboard")

        yield self.b(dashboard)
        yield self.screenshot(page, "cms-dashboard-fr")

        yield self.b(lambda: page.goto(self.url("/cms/#/points/CP-1")))

        def point() -> None:
            expect(page.get_by_role("heading", name="Commandes")).to_be_visible()
            expect(page.locator("[data-connector='1'] h3")).to_have_text("Connecteur 1")
            self.assert_no_english(page, "fr", "point")

        yield self.b(point)

        # French words are long too: every page on a 360 px phone without sideways scrolling.
        yield self.b(lambda: page.set_viewport_size({"width": 360, "height": 780}))
        for path in PAGES:
            yield self.b(page.goto, self.url(path))
            yield self.wait_live(page)
            yield self.expect(lambda: expect(page.locator("main h1")).to_be_visible())
            yield self.expect(lambda: expect(page.locator(".state--loading")).to_have_count(0))
            yield self.b(narrow, page, path)

    @inlineCallbacks
    def test_every_other_page_in_german(self) -> Any:
        """Stations, sessions, a customer, id tags, tariffs, audit log, reports, map: no English."""
        from playwright.sync_api import expect

        customer = yield self.api_ok("GET", "/api/cms/users", None)
        customer_id = next(u["id"] for u in customer["items"] if u["email"] == CUSTOMER[0])
        page = yield self.open(ADMIN, "/cms/#/stations", locale="de-DE")
        yield self.wait_live(page)
        for path, heading in (
            ("/cms/#/stations", "Ladestationen"),
            ("/cms/#/sessions", "Ladevorgänge"),
            (f"/cms/#/customers/{customer_id}", CUSTOMER[0]),
            ("/cms/#/tags", "Ladekarten"),
            ("/cms/#/tariffs", "Tarife"),
            ("/cms/#/audit", "Protokoll"),
            ("/cms/#/reports", "Berichte"),
            ("/cms/#/map", "Stationskarte"),
        ):
            yield self.b(page.goto, self.url(path))
            yield self.wait_live(page)

            def german(path: str = path, heading: str = heading) -> None:
                expect(page.locator("main h1")).to_have_text(heading)
                expect(page.locator(".state--loading")).to_have_count(0)
                expect(page.locator("main .card").first).to_be_visible()
                self.assert_no_english(page, "de", path)

            yield self.b(german)
        # Leaflet's zoom buttons too.
        yield self.expect(
            lambda: expect(page.locator(".leaflet-control-zoom-in")).to_have_attribute(
                "title", "Vergrößern"
            )
        )

    @inlineCallbacks
    def test_an_alert_in_german(self) -> Any:
        """An alert's kind and subject in German, from its data (not the server's words)."""
        from playwright.sync_api import expect

        yield self.charger_.status(2, "Faulted", error_code="GroundFailure")
        yield poll(self.daemon.node.alerts.evaluate, until=bool)
        page = yield self.open(ADMIN, "/cms/#/", locale="de-DE")
        yield self.wait_live(page)
        item = page.locator("[data-alert='connector_faulted:CP-1/2']")

        def alert() -> None:
            expect(item.locator(".badge")).to_have_text("Gestört")
            expect(item).to_contain_text("Ladepunkt CP-1 Anschluss 2 gestört (GroundFailure)")
            expect(page.locator("[data-figure=alerts]")).to_have_text("1 offen")
            self.assert_no_english(page, "de", "dashboard with an alert")

        yield self.b(alert)

    @inlineCallbacks
    def test_a_command_asked_and_refused_in_german(self) -> Any:
        """A reset's question and the offline charger's refusal in German; OCPP's names kept."""
        from playwright.sync_api import expect

        page = yield self.open(ADMIN, "/cms/#/points/CP-1", locale="de-DE")
        yield self.wait_live(page)
        yield self.charger_.close()
        form = page.locator("form[data-command=reset]")

        def refused() -> None:
            page.get_by_label("Befehl", exact=True).select_option("reset")
            # Outside English a command is titled by its OCPP name, once.
            expect(form.locator("h3")).to_have_text("Reset")
            form.get_by_label("type").select_option("Soft")
            form.get_by_role("button", name="Senden").click()
            dialog = page.get_by_role("alertdialog")
            expect(dialog.locator("h2")).to_have_text("CP-1 neu starten?")
            expect(dialog).to_contain_text("sobald er seine Ladevorgänge beendet hat")
            dialog.get_by_role("button", name="Reset (Soft)").click()
            expect(page.locator("[data-answer=reset]")).to_have_text(
                "Der Ladepunkt ist nicht verbunden: Er erhält keine Befehle, bis er wieder da ist."
            )
            self.assert_no_english(page, "de", "point with a refused command")

        yield self.b(refused)

    @inlineCallbacks
    def test_decimals_typed_the_german_way(self) -> Any:
        """Coordinates "53,55" and a power "7,4" kW: stored as numbers, offered again so."""
        from playwright.sync_api import expect

        page = yield self.open(ADMIN, "/cms/#/stations", locale="de-DE")
        yield self.wait_live(page)
        row = page.locator("tbody tr").filter(has_text="Hafenstraße")

        def place() -> None:
            row.get_by_role("button", name="Hafenstraße bearbeiten").click()
            dialog = page.get_by_role("dialog")
            dialog.get_by_label("Breitengrad").fill("53,55")
            dialog.get_by_label("Längengrad").fill("9,993")
            dialog.get_by_role("button", name="Speichern").click()
            expect(row).to_contain_text("53,55; 9,993")
            row.get_by_role("button", name="Hafenstraße bearbeiten").click()
            expect(page.get_by_role("dialog").get_by_label("Breitengrad")).to_have_value("53,55")
            page.get_by_role("dialog").get_by_role("button", name="Abbrechen").click()

        yield self.b(place)
        stations = yield self.api_ok("GET", "/api/cms/stations")
        self.assertEqual(
            [(s["latitude"], s["longitude"]) for s in stations["items"]], [(53.55, 9.993)]
        )

        # A point's maximum power the same way: "7,4" kW is 7400 W, offered again as "7,4".
        yield self.b(page.goto, self.url("/cms/#/points"))
        point_row = page.locator("tr[data-key='CP-1']")

        def power() -> None:
            point_row.get_by_role("button", name="CP-1 bearbeiten").click()
            page.get_by_role("dialog").get_by_label("Höchstleistung (kW)").fill("7,4")
            page.get_by_role("dialog").get_by_role("button", name="Speichern").click()
            expect(page.get_by_role("dialog")).to_have_count(0)
            point_row.get_by_role("button", name="CP-1 bearbeiten").click()
            expect(page.get_by_role("dialog").get_by_label("Höchstleistung (kW)")).to_have_value(
                "7,4"
            )

        yield self.b(power)
        point = yield self.api_ok("GET", "/api/cms/points/CP-1")
        self.assertEqual(point["maxPowerW"], 7400)

    @inlineCallbacks
    def test_the_language_switch_is_remembered(self) -> Any:
        from playwright.sync_api import expect

        page = yield self.open(ADMIN, "/cms/#/", locale="en-US")
        yield self.wait_live(page)
        yield self.expect(lambda: expect(page.locator("h1")).to_have_text("Dashboard"))
        yield self.b(lambda: page.locator("select.language").select_option("de"))
        yield self.expect(lambda: expect(page.locator("h1")).to_have_text("Übersicht"))
        yield self.b(lambda: page.goto(self.url("/cms/#/tariffs")))
        yield self.expect(lambda: expect(page.locator("h1")).to_have_text("Tarife"))
        yield self.expect(lambda: expect(page.locator("html")).to_have_attribute("lang", "de"))
