"""
The receipt PDF's rendering, without a node: its words from the panel's
catalogue in the reader's language, the language chosen from ``lang`` and
Accept-Language, numbers, money and dates in that language's format, and text
Helvetica cannot print.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import attrs
from twisted.trial.unittest import SynchronousTestCase

from ocppd import localformat
from ocppd.api.receipt_pdf import money, render
from ocppd.api.receipt_words import MAX_ACCEPT_LANGUAGE, ReceiptWords, choose_language
from ocppd.api.receipts import Receipt
from ocppd.billing import Tariff
from ocppd.billing.receipt import receipt_money
from ocppd.store.records import StationRecord, TariffRecord, TransactionRecord
from tests.browser.browser import WEBROOT

T0 = datetime(2026, 11, 29, 10, tzinfo=UTC)
WORDS = ReceiptWords.load(WEBROOT)
NBSP = "\u00a0"


def receipt(station_name: str, issuer: str) -> Receipt:
    fields: dict[str, object] = {f.name: None for f in attrs.fields(TransactionRecord)}
    fields.update(
        id=42,
        charge_point_id="CP1",
        connector_id=1,
        id_tag="T",
        id_tag_status="Accepted",
        meter_start_wh=1000,
        started_at=T0,
        stopped_at=T0 + timedelta(seconds=2730),
        status="completed",
        confirmed=True,
        energy_wh=12345,
        meter_stop_wh=13345,
        created_at=T0,
        updated_at=T0,
        cost=672,
        currency="EUR",
    )
    session = TransactionRecord(**fields)  # type: ignore[arg-type]
    tariff = TariffRecord(1, "Standard AC", "EUR", 39, 2, 100, False, T0, T0)
    station = StationRecord(1, station_name, "ul. Piotrkowska 1", None, None, T0, T0)
    money_ = receipt_money(
        Tariff.from_record(tariff), energy_wh=12345, duration_seconds=2730, billed=672,
        vat_rate_bp=2300,
    )  # fmt: skip
    return Receipt(
        session=session,
        stopped_at=T0 + timedelta(seconds=2730),
        charger=None,
        station=station,
        tariff=tariff,
        customer="jo@example.com",
        currency="EUR",
        duration_seconds=2730,
        energy_wh=12345,
        money=money_,
        issuer=issuer,
    )


class RenderTests(SynchronousTestCase):
    def test_text_beyond_windows_1252(self) -> None:
        """Names in other scripts print as "?" instead of failing the download."""
        pdf = render(receipt("Łódź Kaliska 東京", "Ładowanie Sp. z o.o.\nNIP 123"), WORDS)
        self.assertTrue(pdf.startswith(b"%PDF-"))
        self.assertIn("?ód? Kaliska ??".encode("cp1252"), pdf)
        self.assertIn("€6.72".encode("cp1252"), pdf)
        self.assertIn(b"VAT included \\(23 %\\)", pdf)
        # The issuer's lines stay lines.
        self.assertIn(b"(?adowanie Sp. z o.o.) Tj", pdf)
        self.assertIn(b"(NIP 123) Tj", pdf)

    def test_deterministic(self) -> None:
        self.assertEqual(render(receipt("A", ""), WORDS), render(receipt("A", ""), WORDS))

    def test_german(self) -> None:
        """
        The catalogue's German words, German money and dates (UTC, labelled).
        fpdf2 writes the formatter's no-break spaces as spaces.
        """
        pdf = render(receipt("A", ""), WORDS, "de")
        for text in (
            "(Ladebeleg) Tj", "(Gesamt) Tj", "(Enthaltene MwSt. \\(23 %\\)) Tj", "(Beginn) Tj",
            "6,72 €", "12,345 kWh \u00d7 0,39 €/kWh", "29.11.2026 10:00 UTC",
            "CP1, Anschluss 1",
        ):  # fmt: skip
            self.assertIn(text.encode("cp1252"), pdf, text)
        self.assertNotIn(b"Total", pdf)
        self.assertNotIn("€6.72".encode("cp1252"), pdf)

    def test_french(self) -> None:
        pdf = render(receipt("A", ""), WORDS, "fr")
        for text in ("Reçu de recharge", "6,72 €", "29/11/2026 10:00 UTC", "TVA incluse"):
            self.assertIn(text.encode("cp1252"), pdf, text)

    def test_english_is_the_default(self) -> None:
        pdf = render(receipt("A", ""), WORDS)
        for text in ("(Charging receipt) Tj", "€6.72", "2026-11-29 10:00 UTC", "(Started) Tj"):
            self.assertIn(text.encode("cp1252"), pdf, text)

    def test_missing_words_fall_back_to_english_then_the_key(self) -> None:
        words = ReceiptWords(
            {"en": {"receipt.total": "Total", "receipt.vat": "VAT ({rate})"}, "de": {}}
        )
        self.assertEqual(words.text("de", "receipt.total"), "Total")
        self.assertEqual(words.text("de", "receipt.vat", rate="7 %"), "VAT (7 %)")
        self.assertEqual(words.text("fr", "receipt.net"), "receipt.net")

    def test_an_unreadable_catalogue_is_left_out(self) -> None:
        folder = self.mktemp()
        os.makedirs(os.path.join(folder, "user", "i18n"))
        with open(os.path.join(folder, "user", "i18n", "en.json"), "w") as f:
            f.write('{"receipt.total": "Sum", "app.title": "not kept"}')
        with open(os.path.join(folder, "user", "i18n", "de.json"), "w") as f:
            f.write("[1, 2]")
        words = ReceiptWords.load(folder)
        self.assertEqual(words.text("de", "receipt.total"), "Sum")
        self.assertEqual(words.text("en", "app.title"), "app.title")
        self.flushLoggedErrors()

    def test_money(self) -> None:
        self.assertEqual(money(672, "EUR"), "€6.72")
        self.assertEqual(money(-1500, "GBP"), "-£15.00")
        self.assertEqual(money(123456, "CHF"), "CHF 1,234.56")
        self.assertEqual(money(500, "JPY"), "JPY 500")
        self.assertEqual(money(1005, "KWD"), "KWD 1.005")
        self.assertEqual(money(1050, "EUR", "de"), f"10,50{NBSP}€")
        self.assertEqual(money(123456789, "EUR", "de"), f"1.234.567,89{NBSP}€")
        self.assertEqual(money(-1050, "CHF", "de"), f"-10,50{NBSP}CHF")
        self.assertEqual(money(123456, "EUR", "fr"), f"1{NBSP}234,56{NBSP}€")
        self.assertEqual(money(500, "JPY", "de"), f"500{NBSP}JPY")
        self.assertEqual(money(5, "EUR", "xx"), "€0.05")


class FormatTests(SynchronousTestCase):
    def test_numbers(self) -> None:
        self.assertEqual(localformat.kwh(12345), "12.345 kWh")
        self.assertEqual(localformat.kwh(1234567, "de"), "1.234,567 kWh")
        self.assertEqual(localformat.kwh(5, "fr"), "0,005 kWh")
        self.assertEqual(localformat.percent(1900), "19 %")
        self.assertEqual(localformat.percent(750, "de"), "7,5 %")
        self.assertEqual(localformat.percent(0), "0 %")
        self.assertEqual(localformat.percent(1025), "10.25 %")

    def test_times(self) -> None:
        when = datetime(2026, 12, 7, 10, 15, 59, tzinfo=UTC)
        self.assertEqual(localformat.utc_time(when), "2026-12-07 10:15 UTC")
        self.assertEqual(localformat.utc_time(when, "de"), "07.12.2026 10:15 UTC")
        self.assertEqual(localformat.utc_time(when, "fr"), "07/12/2026 10:15 UTC")
        self.assertEqual(localformat.utc_time(None), "-")
        self.assertEqual(localformat.duration(2730), "45 min 30 s")
        self.assertEqual(localformat.duration(4000), "1 h 06 min 40 s")


class LanguageTests(SynchronousTestCase):
    def test_lang_first(self) -> None:
        self.assertEqual(choose_language("de", "fr-FR,fr;q=0.9"), "de")
        self.assertEqual(choose_language("FR", None), "fr")
        # A language the panel does not speak is ignored, not an error.
        self.assertEqual(choose_language("pl", "de"), "de")
        self.assertEqual(choose_language("pl", None), "en")

    def test_accept_language(self) -> None:
        self.assertEqual(choose_language(None, "de-AT,de;q=0.9,en;q=0.8"), "de")
        self.assertEqual(choose_language(None, "pl-PL, fr;q=0.5, de;q=0.7"), "de")
        self.assertEqual(choose_language(None, "pl, ja"), "en")
        self.assertEqual(choose_language(None, "de;q=0, fr;q=0.1"), "fr")
        self.assertEqual(choose_language(None, "*"), "en")
        self.assertEqual(choose_language(None, "de;q=abc"), "en")
        self.assertEqual(choose_language(None, None), "en")

    def test_bounded(self) -> None:
        """A header longer than a browser's, or with more entries, is English, unread."""
        huge = "de," + "x" * MAX_ACCEPT_LANGUAGE
        self.assertEqual(choose_language(None, huge), "en")
        self.assertEqual(choose_language(None, "de" + ",x" * 100), "en")
