"""
A session's receipt as a one-page PDF (fpdf2), the same facts as the panel's
printable receipt page.

Helvetica, a core PDF font, so no font file ships: its text is Windows-1252
(which has the euro sign); characters beyond it print as "?". Streams are
left uncompressed: the file is a few KB, and its text stays searchable as is.
Deterministic: the document's date is the session's stop, so the same
session gives the same bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fpdf import FPDF

from ocppd.billing.receipt import ADJUSTMENT, ENERGY, FEE, TIME

if TYPE_CHECKING:
    from ocppd.api.receipts import Receipt

#: ISO 4217 currencies whose minor unit is not 1/100.
_DIGITS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip
_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}
LABELS = {FEE: "Session fee", ENERGY: "Energy", TIME: "Time", ADJUSTMENT: "Adjustment"}


def money(amount: int, currency: str) -> str:
    """``amount`` minor units as ``€12.34`` (``CHF 12.34`` without a symbol)."""
    digits = _DIGITS.get(currency, 2)
    sign = "-" if amount < 0 else ""
    whole, minor = divmod(abs(amount), 10**digits)
    number = f"{whole:,}" + (f".{minor:0{digits}d}" if digits else "")
    symbol = _SYMBOLS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{currency} {number}"


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _kwh(wh: int) -> str:
    return f"{wh / 1000:,.3f} kWh"


def _text(value: str, *, lines: bool = False) -> str:
    """What Helvetica can print: Windows-1252, the rest as "?", no control characters."""
    printable = "".join(c if c.isprintable() or (lines and c == "\n") else " " for c in value)
    return printable.encode("cp1252", "replace").decode("cp1252")


def _time(value: str | None) -> str:
    """``2026-11-29T10:00:00.000Z`` as ``2026-11-29 10:00:00 UTC``."""
    return "-" if value is None else value[:19].replace("T", " ") + " UTC"


def render(receipt: Receipt) -> bytes:
    from ocppd.api.receipts import receipt_json

    data = receipt_json(receipt)
    currency = data["currency"]
    session = data["session"]
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_compression(False)
    pdf.set_creation_date(receipt.stopped_at)
    pdf.set_title(f"Receipt {data['number']}")
    pdf.set_author(_text(receipt.issuer or "ocppd"))
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def row(label: str, value: str, *, bold: bool = False) -> None:
        pdf.set_font("helvetica", "B" if bold else "", 10)
        pdf.cell(width * 0.35, 6, _text(label))
        pdf.multi_cell(width * 0.65, 6, _text(value), new_x="LMARGIN", new_y="NEXT")

    pdf.set_font("helvetica", "B", 18)
    pdf.cell(width, 10, "Charging receipt", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    if receipt.issuer:
        pdf.multi_cell(width, 5, _text(receipt.issuer, lines=True), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    row("Receipt", data["number"])
    row("Customer", data["customer"])
    station = data["station"]
    if station is not None:
        row("Station", station["name"] + (f", {station['address']}" if station["address"] else ""))
    charger = data["charger"]
    made = " ".join(part for part in (charger["vendor"], charger["model"]) if part)
    row(
        "Charger",
        f"{charger['id']}, connector {session['connectorId']}" + (f" ({made})" if made else ""),
    )
    row("Started", _time(session["startedAt"]))
    row("Stopped", _time(session["stoppedAt"]))
    row("Duration", _duration(session["durationSeconds"]))
    row("Energy", _kwh(session["energyWh"]))
    tariff = data["tariff"]
    if tariff is not None:
        row("Tariff", tariff["name"])
    pdf.ln(4)

    pdf.set_font("helvetica", "B", 10)
    pdf.cell(width * 0.35, 7, "Item", border="B")
    pdf.cell(width * 0.40, 7, "Quantity x price", border="B")
    pdf.cell(width * 0.25, 7, "Amount", border="B", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    for line in data["lines"]:
        kind, quantity, price = line["kind"], line["quantity"], line["unitPrice"]
        if kind == ENERGY:
            detail = f"{_kwh(quantity)} x {money(price, currency)}/kWh"
        elif kind == TIME:
            detail = f"{_duration(quantity)} x {money(price, currency)}/min"
        elif kind == FEE:
            detail = "1 x " + money(price, currency)
        else:
            detail = "as billed"
        pdf.cell(width * 0.35, 7, LABELS.get(kind, kind))
        pdf.cell(width * 0.40, 7, _text(detail))
        pdf.cell(
            width * 0.25, 7, _text(money(line["amount"], currency)), align="R",
            new_x="LMARGIN", new_y="NEXT",
        )  # fmt: skip
    vat = data["vat"]
    pdf.set_font("helvetica", "B", 11)
    pdf.cell(width * 0.75, 8, "Total", border="T")
    pdf.cell(
        width * 0.25, 8, _text(money(data["total"], currency)), border="T", align="R",
        new_x="LMARGIN", new_y="NEXT",
    )  # fmt: skip
    pdf.set_font("helvetica", "", 10)
    if vat["rateBasisPoints"]:
        rate = f"{vat['rateBasisPoints'] / 100:g} %"
        pdf.cell(width * 0.75, 6, "Net")
        pdf.cell(
            width * 0.25,
            6,
            _text(money(vat["net"], currency)),
            align="R",
            new_x="LMARGIN",
            new_y="NEXT",
        )
        pdf.cell(width * 0.75, 6, f"VAT included ({rate})")
        pdf.cell(
            width * 0.25,
            6,
            _text(money(vat["amount"], currency)),
            align="R",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    else:
        pdf.cell(width, 6, "No VAT shown.", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
