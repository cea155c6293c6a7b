"""The map's tile server template (``ocppd.maptiles``) and the policy letting pages load it."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.config import ConfigError, WebConfig
from ocppd.maptiles import tile_problem, tile_source, tile_sources
from ocppd.web import CONTENT_SECURITY_POLICY, content_security_policy


class TileTemplateTests(SynchronousTestCase):
    def test_accepted(self) -> None:
        """Leaflet's templates, with or without {s} and a port; the source the policy needs."""
        for template, source in (
            ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
            ("https://{s}.tiles.example.org/{z}/{x}/{y}.png?key=a1", "https://*.tiles.example.org"),
            ("http://127.0.0.1:8081/t/{z}/{x}/{y}.png", "http://127.0.0.1:8081"),
        ):
            self.assertIsNone(tile_problem(template), template)
            self.assertEqual(tile_source(template), source)
        self.assertIsNone(tile_problem(""))
        self.assertEqual(tile_sources(""), ())
        # Leaflet's blank image for a tile it stopped loading is a data: URL.
        self.assertEqual(
            tile_sources("https://t.example/{z}/{x}/{y}.png"), ("https://t.example", "data:")
        )

    def test_refused(self) -> None:
        """Nothing that could add to the policy header, nor a template Leaflet cannot fill."""
        for template in (
            "https://a.example;script-src */{z}/{x}/{y}.png",
            "https://a.example /{z}/{x}/{y}.png",
            "https://a.example/{z}/{x}/{y}.png;img-src *",
            "https://a.example/{z}/{x}/{y} .png",
            "https://a.example/{z}/{x}.png",
            "javascript://a.example/{z}/{x}/{y}",
            "//a.example/{z}/{x}/{y}.png",
            "https://*.example/{z}/{x}/{y}.png",
            "https://a.example/" + "x" * 500 + "{z}/{x}/{y}",
        ):
            self.assertIsNotNone(tile_problem(template), template)
            self.assertIsNone(tile_source(template))

    def test_policy(self) -> None:
        """Only img-src grows; without tiles the policy is the default one."""
        self.assertEqual(content_security_policy(), CONTENT_SECURITY_POLICY)
        policy = content_security_policy(("https://*.tiles.example.org",))
        self.assertEqual(
            policy,
            CONTENT_SECURITY_POLICY.replace(
                "img-src 'self'", "img-src 'self' https://*.tiles.example.org"
            ),
        )

    def test_config(self) -> None:
        """``[web] map_tiles`` is checked as the configuration is read."""
        convert = WebConfig.OPTIONS["map_tiles"]("web.map_tiles")
        self.assertEqual(
            convert(" https://t.example/{z}/{x}/{y}.png "), "https://t.example/{z}/{x}/{y}.png"
        )
        self.assertEqual(convert(""), "")
        with self.assertRaises(ConfigError) as caught:
            convert("https://t.example;x/{z}/{x}/{y}.png")
        self.assertIn("web.map_tiles", str(caught.exception))
