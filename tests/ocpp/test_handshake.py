"""Tests for ocppd.ocpp.handshake: path and Basic-auth parsing."""

from __future__ import annotations

import base64

from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp.handshake import (
    BasicCredentials,
    HandshakeError,
    charge_point_id_from_path,
    choose_subprotocol,
    parse_basic_auth,
)


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


class PathTests(SynchronousTestCase):
    def test_valid_ids(self) -> None:
        """The id is the last path segment, percent-decoded; a query string is ignored."""
        self.assertEqual(charge_point_id_from_path("/ocpp/CP-1"), "CP-1")
        self.assertEqual(charge_point_id_from_path("/ocpp/CP%3A1?x=1"), "CP:1")
        self.assertEqual(charge_point_id_from_path("/ocpp/" + "a" * 48), "a" * 48)

    def test_refused_with_404(self) -> None:
        """Any other path, an empty, too long or unsafe id gets HTTP 404."""
        for path in [
            "/",
            "/ocpp/",
            "/ocpp",
            "/other/CP1",
            "/ocpp/a/b",
            "/ocpp/" + "a" * 49,
            "/ocpp/CP%2F1",
            "/ocpp/CP%201",
            "/ocpp/%00",
            # "$" alone would let these through: it matches before a final newline.
            "/ocpp/CP3%0A",
            "/ocpp/CP3\n",
        ]:
            with self.assertRaises(HandshakeError) as caught:
                charge_point_id_from_path(path)
            self.assertEqual(caught.exception.status, 404, path)


class BasicAuthTests(SynchronousTestCase):
    def test_absent(self) -> None:
        """No header means no credentials (the caller decides whether that is allowed)."""
        self.assertIsNone(parse_basic_auth(None))

    def test_decoded(self) -> None:
        """The password is everything after the first colon, exactly as sent."""
        self.assertEqual(parse_basic_auth(basic("CP1:k:e y")), BasicCredentials("CP1", "k:e y"))

    def test_malformed_is_401(self) -> None:
        """Another scheme, bad base64, no colon or non-UTF-8 is refused with 401."""
        bad_utf8 = "Basic " + base64.b64encode(b"CP1:\xff").decode()
        for header in ["Bearer x", "Basic !!!", basic("no-colon"), bad_utf8, "Basic"]:
            with self.assertRaises(HandshakeError) as caught:
                parse_basic_auth(header)
            self.assertEqual(caught.exception.status, 401, header)


class SubprotocolTests(SynchronousTestCase):
    def test_choice(self) -> None:
        """ocpp1.6 is chosen when offered among others; otherwise none."""
        self.assertEqual(choose_subprotocol(["ocpp2.0.1", "ocpp1.6"]), "ocpp1.6")
        self.assertIsNone(choose_subprotocol([]))
        self.assertIsNone(choose_subprotocol(["ocpp2.0.1"]))
