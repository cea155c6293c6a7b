"""
The driver panel's message catalogue (``webroot/shared/i18n/``, ``webroot/user/i18n/``):
every language has every key, with the same placeholders and plural forms as English;
every ``TEXT.name`` a module reads is in the catalogue; and no module of the panel
shows a word of its own (a user-visible literal left outside the catalogue).

Read as text, no browser: these are the checks that fail when someone adds a
string in English only, or a key to one language and not the others.
"""

from __future__ import annotations

import json
import os
import re

from twisted.trial.unittest import SynchronousTestCase

WEBROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "webroot")
CATALOGUES = ("shared/i18n", "user/i18n")
#: The languages the driver panel speaks in full (webroot/user/app.js's LANGUAGES).
LANGUAGES = ("en", "de")
#: The modules whose words a driver reads: the panel's and the shared ones it draws with.
MODULES = (
    "user/app.js",
    *(f"user/modules/{name}" for name in sorted(os.listdir(os.path.join(WEBROOT, "user/modules")))),
    "shared/shell.js",
    "shared/dom.js",
    "shared/push.js",
    "shared/chart.js",
    "shared/sessions.js",
    "shared/chargers.js",
)
#: Literals that look like words but are codes the API or OCPP defines (badge
#: statuses, HTTP header names); what a driver reads of them goes through "status.*".
CODES = {
    "Available",
    "Offline",
    "Online",
    "Unknown",
    "Preparing",
    "Accepted",
    "NoError",
    "Bearer",
    "Idempotency-Key",
    "Content-Type",
    "Authorization",
}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalogue(folder: str, language: str) -> dict[str, object]:
    with open(os.path.join(WEBROOT, folder, f"{language}.json"), encoding="utf-8") as f:
        entries = json.load(f)
    assert isinstance(entries, dict)
    return entries


def placeholders(entry: object) -> set[str]:
    forms = entry.values() if isinstance(entry, dict) else [entry]
    return {name for form in forms for name in PLACEHOLDER.findall(str(form))}


def without_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)
    return re.sub(r"(^|\s)//[^\n]*", r"\1", source)


#: String literals: '...', "..." and `...` (escapes allowed, no nesting of backticks).
LITERAL = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`""")


def visible_words(literal: str) -> str | None:
    """The words a literal would show a person, or None if it is code (a path, a class, a key)."""
    body = literal[1:-1]
    if literal.startswith("`"):
        body = re.sub(r"\$\{[^}]*\}", " ", body)
    body = body.strip()
    if not re.search(r"[A-Za-z]", body) or body in CODES:
        return None
    # A word as a label ("Wallet"), words starting with a capital ("Sign out",
    # "Charger ${id}"), or a sentence ("… try again."). Lower-case words without
    # an end are code: classes ("button primary"), paths, keys, event types.
    if re.fullmatch(r"[A-Z][a-z]+[.!?…]?", body) or re.search(r"\b[A-Z][a-z]*\s+\S", body) or re.search(r"\s.*[a-z][.!?…]$", body):
        return body
    return None


class CatalogueTests(SynchronousTestCase):
    def test_every_language_has_every_key(self) -> None:
        """de and fr have exactly English's keys, each with English's placeholders and plural shape."""
        for folder in CATALOGUES:
            english = catalogue(folder, "en")
            for language in LANGUAGES[1:]:
                other = catalogue(folder, language)
                self.assertEqual(sorted(set(english) - set(other)), [], f"{folder}/{language}.json lacks these")
                self.assertEqual(sorted(set(other) - set(english)), [], f"{folder}/{language}.json has extra keys")
                for key, entry in english.items():
                    theirs = other[key]
                    self.assertEqual(isinstance(theirs, dict), isinstance(entry, dict), f"{language} {key}: plural or not")
                    if isinstance(theirs, dict):
                        self.assertIn("other", theirs, f"{language} {key}")
                    self.assertEqual(placeholders(theirs), placeholders(entry), f"{language} {key}: placeholders")
                    self.assertTrue(str(theirs).strip() or not str(entry).strip(), f"{language} {key} is empty")

    def test_no_key_twice_across_folders(self) -> None:
        shared, user = (set(catalogue(folder, "en")) for folder in CATALOGUES)
        self.assertEqual(shared & user, set())

    def test_every_text_a_module_reads_is_in_the_catalogue(self) -> None:
        """Each ``TEXT.name`` (and ``SESSION_TEXT.name``) names an entry or a group of entries."""
        keys = set(catalogue(CATALOGUES[0], "en")) | set(catalogue(CATALOGUES[1], "en"))
        groups = {key.rsplit(".", n)[0] for key in keys for n in range(1, key.count(".") + 1)}
        for module in MODULES:
            with open(os.path.join(WEBROOT, module), encoding="utf-8") as f:
                source = without_comments(f.read())
            areas = dict(re.findall(r"const (\w*TEXT) = messages\('([\w.]+)'\)", source))
            if "SESSION_TEXT" in source:
                areas["SESSION_TEXT"] = "sessions"
            for name, area in areas.items():
                for used in re.findall(rf"\b{name}\.(\w+)", source):
                    key = f"{area}.{used}"
                    self.assertTrue(key in keys or key in groups, f"{module}: {key} is not in the catalogue")

    def test_no_module_shows_words_of_its_own(self) -> None:
        """A user-visible literal in a panel module fails: its words belong in the catalogue."""
        found = []
        for module in MODULES:
            with open(os.path.join(WEBROOT, module), encoding="utf-8") as f:
                source = without_comments(f.read())
            # Imports and the catalogue's own keys are code.
            source = re.sub(r"^import .*$", "", source, flags=re.M)
            for literal in LITERAL.findall(source):
                words = visible_words(literal)
                if words:
                    found.append(f"{module}: {literal}")
        self.assertEqual(found, [])

    def test_the_check_finds_words(self) -> None:
        """The literal check is not blind: a sentence, a label, words around a value."""
        for literal in ("'Sign out'", "'Wallet'", "`Charger ${id}`", "'Loading…'", '"Try again."'):
            self.assertIsNotNone(visible_words(literal), literal)
        for literal in ("'/api/user/wallet'", "'data-field'", "'button primary'", "`#/session/${id}`", "'Available'", "'session.stopped'"):
            self.assertIsNone(visible_words(literal), literal)
