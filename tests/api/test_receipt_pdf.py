"""The receipt PDF's rendering, without a node: money formats and text Helvetica cannot print."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
from twisted.trial.unittest import SynchronousTestCase

from ocppd.api.receipt_pdf import money, render
from ocppd.api.receipts import Receipt
from ocppd.billing import Tariff
from ocppd.billing.receipt import receipt_money
from ocppd.store.records import StationRecord, TariffRecord, TransactionRecord

T0 = datetime(2026, 11, 29, 10, tzinfo=UTC)


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
        pdf = render(receipt("Łódź Kaliska 東京", "Ładowanie Sp. z o.o.\nNIP 123"))
        self.assertTrue(pdf.startswith(b"%PDF-"))
        self.assertIn("?ód? Kaliska ??".encode("cp1252"), pdf)
        self.assertIn("€6.72".encode("cp1252"), pdf)
        self.assertIn(b"VAT included \\(23 %\\)", pdf)
        # The issuer's lines stay lines.
        self.assertIn(b"(?adowanie Sp. z o.o.) Tj", pdf)
        self.assertIn(b"(NIP 123) Tj", pdf)

    def test_deterministic(self) -> None:
        self.assertEqual(render(receipt("A", "")), render(receipt("A", "")))

    def test_money(self) -> None:
        self.assertEqual(money(672, "EUR"), "€6.72")
        self.assertEqual(money(-1500, "GBP"), "-£15.00")
        self.assertEqual(money(123456, "CHF"), "CHF 1,234.56")
        self.assertEqual(money(500, "JPY"), "JPY 500")
        self.assertEqual(money(1005, "KWD"), "KWD 1.005")
