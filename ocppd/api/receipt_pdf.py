"""
A session's receipt as a one-page PDF (fpdf2), the same facts as the panel's
printable receipt page.

Helvetica, a core PDF font, so no font file ships: its text is Windows-1252
(which has the euro sign); characters beyond it print as "?". Streams are
left uncompressed: the file is a few KB, and its text stays searchable as is.
Deterministic: the document's date is the session's stop, so the same
session in the same language gives the same bytes.

Its words are the printable page's (``receipt.*`` of the panel's message
catalogue, ``ocppd.api.receipt_words``), in the reader's language; numbers,
money and dates in that language's format (``ocppd.localformat``). Times
are UTC and labelled so (the page shows the browser's local time; a server
cannot know the reader's zone).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from fpdf import FPDF

from ocppd import localformat
from ocppd.api.receipt_words import ENGLISH, ReceiptWords
from ocppd.billing.receipt import ADJUSTMENT, ENERGY, FEE, TIME

if TYPE_CHECKING:
    from ocppd.api.receipts import Receipt


#: The multiplication sign (Windows-1252 0xD7), as the page writes between quantity and price.
TIMES = "\u00d7"


def money(amount: int, currency: str, language: str = ENGLISH) -> str:
    """``amount`` minor units as ``€12.34`` (en), ``12,34 €`` (de, fr): ``ocppd.localformat``."""
    return localformat.money(amount, currency, language)


def _text(value: str, *, lines: bool = False) -> str:
    """What Helvetica can print: Windows-1252, the rest as "?", no control characters."""
    printable = "".join(c if c.isprintable() or (lines and c == "\n") else " " for c in value)
    return printable.encode("cp1252", "replace").decode("cp1252")


def render(receipt: Receipt, words: ReceiptWords, language: str = ENGLISH) -> bytes:
    """The receipt in ``language``: the catalogue's words, its numbers, money and dates."""
    from ocppd.api.receipts import receipt_json

    def say(key: str, **params: object) -> str:
        return words.text(language, f"receipt.{key}", **params)

    def cash(amount: int) -> str:
        return _text(money(amount, currency, language))

    def kwh(wh: int) -> str:
        return localformat.kwh(wh, language)

    def when(value: datetime | None) -> str:
        return localformat.utc_time(value, language)

    data = receipt_json(receipt)
    currency = data["currency"]
    session = data["session"]
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_compression(False)
    pdf.set_creation_date(receipt.stopped_at)
    pdf.set_lang(language)
    pdf.set_title(_text(f"{say('number')} {data['number']}"))
    pdf.set_author(_text(receipt.issuer or "ocppd"))
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def row(label: str, value: str, *, bold: bool = False) -> None:
        pdf.set_font("helvetica", "B" if bold else "", 10)
        pdf.cell(width * 0.35, 6, _text(label))
        pdf.multi_cell(width * 0.65, 6, _text(value), new_x="LMARGIN", new_y="NEXT")

    pdf.set_font("helvetica", "B", 18)
    pdf.cell(width, 10, _text(say("heading")), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("helvetica", "", 10)
    if receipt.issuer:
        pdf.multi_cell(width, 5, _text(receipt.issuer, lines=True), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    row(say("number"), data["number"])
    row(say("customer"), data["customer"])
    station = data["station"]
    if station is not None:
        address = f", {station['address']}" if station["address"] else ""
        row(say("station"), station["name"] + address)
    charger = data["charger"]
    made = " ".join(part for part in (charger["vendor"], charger["model"]) if part)
    row(
        say("charger"),
        say("chargerConnector", charger=charger["id"], connector=session["connectorId"])
        + (f" ({made})" if made else ""),
    )
    row(say("started"), when(receipt.session.started_at))
    row(say("stopped"), when(receipt.stopped_at))
    row(say("duration"), localformat.duration(session["durationSeconds"]))
    row(say("energy"), kwh(session["energyWh"]))
    tariff = data["tariff"]
    if tariff is not None:
        row(say("tariff"), tariff["name"])
    pdf.ln(4)

    pdf.set_font("helvetica", "B", 10)
    pdf.cell(width * 0.35, 7, _text(say("item")), border="B")
    pdf.cell(width * 0.40, 7, _text(say("quantity")), border="B")
    pdf.cell(
        width * 0.25, 7, _text(say("amount")), border="B", align="R",
        new_x="LMARGIN", new_y="NEXT",
    )  # fmt: skip
    pdf.set_font("helvetica", "", 10)
    for line in data["lines"]:
        kind, quantity, price = line["kind"], line["quantity"], line["unitPrice"]
        if kind == ENERGY:
            detail = f"{kwh(quantity)} {TIMES} {money(price, currency, language)}/kWh"
        elif kind == TIME:
            detail = (
                f"{localformat.duration(quantity)} {TIMES} {money(price, currency, language)}/min"
            )
        elif kind == FEE:
            detail = f"1 {TIMES} " + money(price, currency, language)
        else:
            detail = ""  # why: the note below the lines, too long for this column
        pdf.cell(width * 0.35, 7, _text(say(f"lines.{kind}")))
        pdf.cell(width * 0.40, 7, _text(detail))
        pdf.cell(width * 0.25, 7, cash(line["amount"]), align="R", new_x="LMARGIN", new_y="NEXT")
    if not data["lines"]:
        pdf.cell(width, 7, _text(say("free")), new_x="LMARGIN", new_y="NEXT")
    if any(line["kind"] == ADJUSTMENT for line in data["lines"]):
        pdf.set_font("helvetica", "I", 9)
        pdf.multi_cell(width, 5, _text(say("differs")), new_x="LMARGIN", new_y="NEXT")
    vat = data["vat"]
    pdf.set_font("helvetica", "B", 11)
    pdf.cell(width * 0.75, 8, _text(say("total")), border="T")
    pdf.cell(
        width * 0.25, 8, cash(data["total"]), border="T", align="R",
        new_x="LMARGIN", new_y="NEXT",
    )  # fmt: skip
    pdf.set_font("helvetica", "", 10)
    if vat["rateBasisPoints"]:
        rate = localformat.percent(vat["rateBasisPoints"], language)
        pdf.cell(width * 0.75, 6, _text(say("net")))
        pdf.cell(width * 0.25, 6, cash(vat["net"]), align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.cell(width * 0.75, 6, _text(say("vat", rate=rate)))
        pdf.cell(width * 0.25, 6, cash(vat["amount"]), align="R", new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.cell(width, 6, _text(say("noVat")), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
