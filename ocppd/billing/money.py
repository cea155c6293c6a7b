"""
Amounts for reading: integer minor units written in the currency's major
units ("5.00 EUR"), for messages that people read (API errors), never for
arithmetic. The pages format money themselves, in the reader's locale.
"""

from __future__ import annotations

#: ISO 4217 currencies whose minor unit is not a hundredth (all others: 2 digits).
_DIGITS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(),
        0,
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}


def minor_digits(currency: str) -> int:
    """Digits after the decimal point of ``currency`` (EUR 2, JPY 0, KWD 3)."""
    return _DIGITS.get(currency, 2)


def format_amount(minor: int, currency: str) -> str:
    """``minor`` units as major units and the code: 500, "EUR" -> "5.00 EUR"; exact, no float."""
    digits = minor_digits(currency)
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    text = f"{whole}.{fraction:0{digits}d}" if digits else str(whole)
    return f"{sign}{text} {currency}"
