"""
The receipt PDF's words, from the driver panel's own message catalogue
(``webroot/user/i18n/LANG.json``, ``webroot/shared/i18n/LANG.json``): the
``receipt.*`` keys the printable page shows, so the PDF and the page say the
same in the same language (docs/web.md, "Languages and formats").

Read once when the daemon starts, from the webroot it serves; each file
bounded in size. A word a language lacks is English's, a word English lacks
its key (as ``webroot/shared/i18n.js`` does), and a catalogue that cannot be
read is logged and left out.

Which language: the ``lang`` query parameter (the panel passes the one its
reader reads), else the first of ``Accept-Language`` the panel speaks, else
English. The header is read bounded: a longer one than anyone's browser
sends, or more entries than that, and English it is.
"""

from __future__ import annotations

import json
import os
import re

from ocppd.logs import Logger

log = Logger()

#: The languages the driver panel speaks in full (webroot/user/app.js).
LANGUAGES = ("en", "de", "fr")
ENGLISH = "en"
_FOLDERS = ("shared/i18n", "user/i18n")
#: Only these areas of the catalogue are kept: what the PDF shows.
_PREFIXES = ("receipt.",)
#: A catalogue file is some KB; more is not one.
MAX_FILE = 256 * 1024
#: Longer Accept-Language headers are not a browser's; English then.
MAX_ACCEPT_LANGUAGE = 512
MAX_RANGES = 16
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
#: One language range of Accept-Language: its primary tag, and its q if given.
_RANGE = re.compile(
    r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([0-9.]{1,5}))?\s*$"
)


def _read(path: str) -> dict[str, str]:
    try:
        if os.path.getsize(path) > MAX_FILE:
            raise ValueError(f"larger than {MAX_FILE} bytes")
        with open(path, encoding="utf-8") as f:
            entries = json.load(f)
        if not isinstance(entries, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as e:
        log.warn("receipt words: cannot read {path}: {error}", path=path, error=str(e))
        return {}
    return {
        key: value
        for key, value in entries.items()
        if isinstance(value, str) and key.startswith(_PREFIXES)
    }


class ReceiptWords:
    """The ``receipt.*`` entries of every language, English the fallback."""

    def __init__(self, catalogues: dict[str, dict[str, str]]) -> None:
        self._catalogues = catalogues

    @classmethod
    def load(cls, webroot: str) -> ReceiptWords:
        catalogues: dict[str, dict[str, str]] = {}
        for language in LANGUAGES:
            entries: dict[str, str] = {}
            for folder in _FOLDERS:
                entries.update(_read(os.path.join(webroot, folder, f"{language}.json")))
            catalogues[language] = entries
        return cls(catalogues)

    def text(self, language: str, key: str, **params: object) -> str:
        """The words of ``key`` in ``language``, ``{name}`` placeholders filled in."""
        entry = self._catalogues.get(language, {}).get(key)
        if entry is None:
            entry = self._catalogues.get(ENGLISH, {}).get(key, key)
        return _PLACEHOLDER.sub(
            lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), entry
        )


def choose_language(lang: str | None, accept_language: str | None) -> str:
    """``lang`` if the panel speaks it, else Accept-Language's first it speaks, else English."""
    if lang is not None and lang.lower() in LANGUAGES:
        return lang.lower()
    if accept_language is None or len(accept_language) > MAX_ACCEPT_LANGUAGE:
        return ENGLISH
    ranges = accept_language.split(",")
    if len(ranges) > MAX_RANGES:
        return ENGLISH
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(ranges):
        match = _RANGE.match(item)
        if match is None:
            continue
        try:
            quality = float(match.group(2)) if match.group(2) else 1.0
        except ValueError:
            continue
        language = match.group(1).lower()
        if quality > 0 and language in LANGUAGES:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else ENGLISH
