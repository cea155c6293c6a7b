"""
The message catalogues of the driver panel and the operator CMS (``webroot/shared/i18n/``,
``webroot/user/i18n/``, ``webroot/cms/i18n/``): every language has every key, with the
same placeholders and plural forms as English; every ``TEXT.name`` a module reads is in
the catalogue; and no module of either front end shows a word of its own (a user-visible
literal left outside the catalogue).

Read as text, no browser: these are the checks that fail when someone adds a
string in English only, or a key to one language and not the others.
"""

from __future__ import annotations

import json
import os
import re

from twisted.trial.unittest import SynchronousTestCase

WEBROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "webroot")
CATALOGUES = ("shared/i18n", "user/i18n", "cms/i18n")
#: The languages both front ends speak in full (LANGUAGES of webroot/user/app.js and cms/app.js).
LANGUAGES = ("en", "de", "fr")
#: Every module of the CMS's pages: their words are in the catalogue (cms/i18n/).
CMS_MODULES = sorted(
    name for name in os.listdir(os.path.join(WEBROOT, "cms/modules")) if name.endswith(".js")
)
#: The modules whose words a driver or an operator reads: the panel's, the CMS's and the
#: shared ones they draw with.
MODULES = (
    "user/app.js",
    *(f"user/modules/{name}" for name in sorted(os.listdir(os.path.join(WEBROOT, "user/modules")))),
    "shared/shell.js",
    "shared/dom.js",
    "shared/push.js",
    "shared/chart.js",
    "shared/sessions.js",
    "shared/chargers.js",
    # The operator CMS: its shell and every module of its pages.
    "cms/app.js",
    *(f"cms/modules/{name}" for name in CMS_MODULES),
)
#: Literals that look like words but are codes the API or OCPP defines (badge
#: statuses, OCPP enum values, HTTP header names, a library's name); what a person reads of
#: them goes through the catalogue ("status.*", "cms.tags.statuses.*", ...).
CODES = {
    "Available",
    "Offline",
    "Online",
    "Unknown",
    "Preparing",
    "Accepted",
    "Pending",
    "Rejected",
    "Blocked",
    "Expired",
    "Invalid",
    "Faulted",
    "Charging",
    "Reserved",
    "Unavailable",
    "Finishing",
    "Leaflet",
    "Hard",
    "Inoperative",
    "NoError",
    "Bearer",
    "Idempotency-Key",
    "Content-Type",
    "Authorization",
}
#: Technical details, not sentences: why the push channel failed, shown after
#: "Live updates are off:" in the indicator's tooltip (push.offBecause).
DETAILS = {"`cannot load ${AUTOBAHN_URL}`", "`unexpected challenge ${method}`"}
FORMAT_URL = "file://" + os.path.join(WEBROOT, "shared/format.js")
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
    if (
        re.fullmatch(r"[A-Z][a-z]+[.!?…]?", body)
        or re.search(r"\b[A-Z][a-z]*[:,]?\s+\S", body)
        or re.search(r"\s.*[a-z][.!?…]$", body)
    ):
        return body
    # Words beside a value: `${title}: no values yet`, `${a} at ${b}`.
    if (
        literal.startswith("`")
        and "--" not in body
        and re.search(r"[:,]\s*[a-z]{2,}|[a-z]{2,}\s+[a-z]{2,}", body)
    ):
        return body
    return None


class CatalogueTests(SynchronousTestCase):
    def test_every_language_has_every_key(self) -> None:
        """Each language has exactly English's keys, placeholders and plural shapes."""
        for folder in CATALOGUES:
            english = catalogue(folder, "en")
            for language in LANGUAGES[1:]:
                other = catalogue(folder, language)
                self.assertEqual(
                    sorted(set(english) - set(other)), [], f"{folder}/{language}.json lacks these"
                )
                self.assertEqual(
                    sorted(set(other) - set(english)),
                    [],
                    f"{folder}/{language}.json has extra keys",
                )
                for key, entry in english.items():
                    theirs = other[key]
                    self.assertEqual(
                        isinstance(theirs, dict),
                        isinstance(entry, dict),
                        f"{language} {key}: plural or not",
                    )
                    if isinstance(theirs, dict):
                        self.assertIn("other", theirs, f"{language} {key}")
                    self.assertEqual(
                        placeholders(theirs), placeholders(entry), f"{language} {key}: placeholders"
                    )
                    self.assertTrue(
                        str(theirs).strip() or not str(entry).strip(), f"{language} {key} is empty"
                    )

    def test_no_key_twice_across_folders(self) -> None:
        """
        A front end's words never shadow the shared ones. The panel and the CMS
        are never loaded together: each words the API's error codes
        (``error.CODE``, read by ``describeError``) for its own readers.
        """
        shared, user, cms = (set(catalogue(folder, "en")) for folder in CATALOGUES)
        self.assertEqual(shared & user, set())
        self.assertEqual(shared & cms, set())
        self.assertEqual({key for key in user & cms if not key.startswith("error.")}, set())

    def test_every_text_a_module_reads_is_in_the_catalogue(self) -> None:
        """Each ``TEXT.name`` (and ``SESSION_TEXT.name``) names an entry or a group of entries."""
        keys = {key for folder in CATALOGUES for key in catalogue(folder, "en")}
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
                    self.assertTrue(
                        key in keys or key in groups, f"{module}: {key} is not in the catalogue"
                    )

    def test_no_module_shows_words_of_its_own(self) -> None:
        """A user-visible literal in a panel or CMS module fails: its words go in a catalogue."""
        found = []
        for module in MODULES:
            with open(os.path.join(WEBROOT, module), encoding="utf-8") as f:
                source = without_comments(f.read())
            # Imports and the catalogue's own keys are code.
            source = re.sub(r"^import .*$", "", source, flags=re.M)
            for literal in LITERAL.findall(source):
                words = visible_words(literal)
                if words and literal not in DETAILS:
                    found.append(f"{module}: {literal}")
        self.assertEqual(found, [])

    def test_the_check_finds_words(self) -> None:
        """The literal check is not blind: a sentence, a label, words around a value."""
        for literal in (
            "'Sign out'",
            "'Wallet'",
            "`Charger ${id}`",
            "'Loading…'",
            '"Try again."',
            "`${title}: no values yet`",
            "`Latest: ${a} at ${b}`",
        ):
            self.assertIsNotNone(visible_words(literal), literal)
        for literal in (
            "'/api/user/wallet'",
            "'data-field'",
            "'button primary'",
            "`#/session/${id}`",
            "'Available'",
            "'session.stopped'",
            "`badge badge--${kind}`",
            "`${a}:${b}`",
            "`status.${s}`",
        ):
            self.assertIsNone(visible_words(literal), literal)


def theme_colours(css: str, dark: bool) -> dict[str, str]:
    """The ``--name: #rrggbb`` variables of the light theme, or of it overridden by the dark one."""
    light = css.split("@media screen and (prefers-color-scheme: dark)")[0]
    colours = dict(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", light.split("}")[0]))
    if dark:
        block = css.split("@media screen and (prefers-color-scheme: dark)")[1]
        colours.update(re.findall(r"(--[\w-]+):\s*(#[0-9a-fA-F]{6})\s*;", block))
    return colours


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours."""

    def luminance(colour: str) -> float:
        channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, bl = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * bl

    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


#: Text colour on background colour, as the stylesheet pairs them.
PAIRS = [
    ("--text", "--bg"),
    ("--text", "--surface"),
    ("--muted", "--surface"),
    ("--muted", "--bg"),
    ("--primary", "--surface"),
    ("--primary", "--bg"),
    ("--on-primary", "--primary"),
    ("--on-primary", "--primary-dark"),
    ("--on-bad", "--bad-strong"),
    ("--ok", "--ok-soft"),
    ("--ok", "--surface"),
    ("--live", "--live-soft"),
    ("--warn", "--warn-soft"),
    ("--bad", "--bad-soft"),
    ("--bad", "--surface"),
    ("--muted", "--muted-soft"),
    ("--text", "--input-bg"),
    ("--text", "--hover"),
]


class ThemeTests(SynchronousTestCase):
    def setUp(self) -> None:
        with open(os.path.join(WEBROOT, "shared/style.css"), encoding="utf-8") as f:
            self.css = f.read()

    def test_both_themes_read_at_aa(self) -> None:
        """Every text colour on the background it is used on reaches 4.5:1, light and dark."""
        for dark in (False, True):
            colours = theme_colours(self.css, dark)
            for text, background in PAIRS:
                ratio = contrast(colours[text], colours[background])
                self.assertGreaterEqual(
                    ratio,
                    4.5,
                    f"{'dark' if dark else 'light'}: {text} on {background} is {ratio:.2f}:1",
                )

    def test_dark_theme_overrides_every_colour(self) -> None:
        """A colour left to the light theme would be a light patch in the dark one."""
        light, dark = theme_colours(self.css, False), theme_colours(self.css, True)
        self.assertEqual(
            sorted(
                name
                for name in light
                if light[name] == dark[name] and name not in {"--bad-strong", "--on-bad"}
            ),
            [],
        )

    def test_contrast_arithmetic(self) -> None:
        self.assertAlmostEqual(contrast("#000000", "#ffffff"), 21.0, places=1)
        self.assertAlmostEqual(contrast("#777777", "#ffffff"), 4.48, places=2)


class MoneyInputTests(SynchronousTestCase):
    """``parseMoney`` (shared/format.js) in node: a typed amount in the reader's locale."""

    def parse(self, cases: list[tuple[str, str, str]]) -> list[int | None]:
        import shutil
        import subprocess

        from twisted.trial.unittest import SkipTest

        node = shutil.which("node")
        if not node:
            raise SkipTest("node is not installed")
        script = (
            f"import {{ parseMoney }} from {json.dumps(FORMAT_URL)};"
            f"const cases = {json.dumps(cases)};"
            "console.log(JSON.stringify(cases.map(([t, c, l]) => parseMoney(t, c, l))));"
        )
        out = subprocess.run(
            [node, "--no-warnings", "--input-type=module", "-e", script],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        result = json.loads(out.stdout)
        assert isinstance(result, list)
        return result

    def test_locale_decimal_marks(self) -> None:
        cases = [
            ("10,50", "EUR", "de-DE", 1050),
            ("10.50", "EUR", "de-DE", 1050),
            ("1.250,00", "EUR", "de-DE", 125000),
            ("1.500", "EUR", "de-DE", 150000),
            ("20", "EUR", "de-DE", 2000),
            ("10.50", "EUR", "en-US", 1050),
            ("10,50", "EUR", "en-US", 1050),
            ("1,250.00", "EUR", "en-US", 125000),
            ("1 250,50", "EUR", "fr-FR", 125050),
            ("1\u202f250,50", "EUR", "fr-FR", 125050),
            ("1000", "JPY", "ja-JP", 1000),
        ]
        self.assertEqual(self.parse([c[:3] for c in cases]), [c[3] for c in cases])

    def test_not_amounts(self) -> None:
        """Bounded: at most 9 integer digits and the currency's decimals; no stray marks."""
        cases = [
            ("10,505", "EUR", "de-DE"),
            ("12,5,0", "EUR", "de-DE"),
            ("12.50,00", "EUR", "de-DE"),
            ("1234567890", "EUR", "de-DE"),
            ("-5", "EUR", "de-DE"),
            ("abc", "EUR", "en-US"),
            ("10.5", "JPY", "ja-JP"),
            ("1" * 40, "EUR", "en-US"),
            ("", "EUR", "en-US"),
        ]
        self.assertEqual(self.parse(cases), [None] * len(cases))
