"""
Numbers, money and times written the way a language's readers expect, for
documents the server renders (the receipt PDF); the browser has ``Intl`` for
the same (``webroot/shared/format.js``).

Pure and small: the three languages the driver panel speaks, no locale data
from the system (``locale`` is process-wide and depends on what the host
installed). Money is integer minor units with the currency's own digits.
Times are UTC and say so: a server cannot know the reader's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ocppd.billing.money import minor_digits

_SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}
#: No-break space: Windows-1252 has it (0xA0), unlike the narrow one French prefers.
NBSP = "\u00a0"


class _Style:
    def __init__(self, decimal: str, group: str, symbol_after: bool, date: str) -> None:
        self.decimal = decimal
        self.group = group
        self.symbol_after = symbol_after
        self.date = date


_STYLES = {
    "en": _Style(".", ",", False, "%Y-%m-%d %H:%M"),
    "de": _Style(",", ".", True, "%d.%m.%Y %H:%M"),
    "fr": _Style(",", NBSP, True, "%d/%m/%Y %H:%M"),
}


def _style(language: str) -> _Style:
    return _STYLES.get(language, _STYLES["en"])


def decimal(value: int, digits: int, language: str) -> str:
    """``value / 10**digits``: 123456, 2 -> "1,234.56" (en), "1.234,56" (de)."""
    style = _style(language)
    sign = "-" if value < 0 else ""
    whole, fraction = divmod(abs(value), 10**digits)
    number = f"{whole:,}".replace(",", style.group)
    return sign + number + (f"{style.decimal}{fraction:0{digits}d}" if digits else "")


def money(amount: int, currency: str, language: str = "en") -> str:
    """
    ``amount`` minor units: 1050 EUR is "€10.50" (en), "10,50 €" (de, fr);
    a currency without a symbol here by its code ("CHF 10.50", "10,50 CHF").
    """
    style = _style(language)
    sign = "-" if amount < 0 else ""
    number = decimal(abs(amount), minor_digits(currency), language)
    symbol = _SYMBOLS.get(currency)
    if style.symbol_after:
        return f"{sign}{number}{NBSP}{symbol or currency}"
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{currency} {number}"


def kwh(wh: int, language: str = "en") -> str:
    """Wh as kWh with three decimals (every Wh billed shows): 12345 -> "12.345 kWh" (en)."""
    return decimal(wh, 3, language) + " kWh"


def percent(basis_points: int, language: str = "en") -> str:
    """1900 -> "19 %", 750 -> "7.5 %" (en), "7,5 %" (de)."""
    text = decimal(basis_points, 2, language).rstrip("0")
    return text.rstrip(".,") + " %"


def duration(seconds: int) -> str:
    """2730 -> "45 min 30 s", 4000 -> "1 h 06 min 40 s" (the same in every language)."""
    hours, rest = divmod(max(0, seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def utc_time(value: datetime | None, language: str = "en") -> str:
    """A time in UTC, labelled so: "2026-12-07 10:15 UTC" (en), "07.12.2026 10:15 UTC" (de)."""
    if value is None:
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime(_style(language).date) + " UTC"
