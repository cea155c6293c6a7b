"""
Bad input on the web listener is a 400 (or 404) with the JSON error body,
never a 500 or a logged traceback: issue 13's list, one test per case, over
real HTTP against a whole node. Requests are written byte for byte, so that
no client library tidies the odd ones (``//``, ``%00``, raw header bytes).
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import inlineCallbacks

from tests.api.test_api import ADMIN, ApiTestCase
from tests.browser.browser import WEBROOT
from tests.integration.clients import raw_request
from tests.logs import logged_errors


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        length = int(size, 16)
        if not length:
            break
        out, body = out + rest[:length], rest[length + 2 :]
    return out


class BadInputTests(ApiTestCase):
    overrides = (f"web.webroot={WEBROOT}",)

    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        self.token = yield self.login(ADMIN)
        self.logged = logged_errors(self)

    @inlineCallbacks
    def raw(self, method: bytes, target: bytes, *headers: bytes, body: bytes | None = None) -> Any:
        """(status, lower-cased headers, body) of one request written as given."""
        lines = [b"%s %s HTTP/1.1" % (method, target), b"Host: 127.0.0.1", b"Connection: close"]
        lines += headers
        if body is not None:
            lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
        request = b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")
        data = yield raw_request(self.daemon.web_port, request)
        head, _, payload = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.split(b"\r\n")
        answer_headers = {
            name.lower(): value for name, value in (h.split(b": ", 1) for h in header_lines)
        }
        if answer_headers.get(b"transfer-encoding") == b"chunked":
            payload = _dechunk(payload)
        return int(status_line.split()[1]), answer_headers, payload

    @inlineCallbacks
    def assertRefused(
        self, status: int, method: bytes, target: bytes, *headers: bytes, body: bytes | None = None
    ) -> Any:
        """The request gets ``status`` with the JSON error body; nothing is logged as an error."""
        code, answer_headers, payload = yield self.raw(method, target, *headers, body=body)
        self.assertEqual(code, status, payload)
        self.assertEqual(answer_headers[b"content-type"], b"application/json")
        error = json.loads(payload)["error"]
        self.assertIsInstance(error["code"], str)
        self.assertIsInstance(error["message"], str)
        self.assertEqual(self.logged, [])
        return error

    def admin(self) -> bytes:
        return f"Authorization: Bearer {self.token}".encode()

    def test_empty_segment_in_an_api_path(self) -> Any:
        """GET /api//auth/me: no such resource (werkzeug redirected, which gave a 500)."""
        return self.assertRefused(404, b"GET", b"/api//auth/me", self.admin())

    def test_empty_segment_in_a_static_path(self) -> Any:
        """GET /cms//index.html: no such file."""
        return self.assertRefused(404, b"GET", b"/cms//index.html")

    def test_nul_in_a_static_path(self) -> Any:
        """GET /user/%00: a path with a control character names nothing (stat() raised)."""
        return self.assertRefused(404, b"GET", b"/user/%00")

    @inlineCallbacks
    def test_lone_surrogate_in_the_login_email(self) -> Any:
        """A lone surrogate in the sign-in email: 400 naming the field."""
        error = yield self.assertRefused(
            400, b"POST", b"/api/auth/login", body=b'{"email": "\\ud800", "password": "x"}'
        )
        self.assertIn("email", error["message"])

    @inlineCallbacks
    def test_lone_surrogate_in_the_login_password(self) -> Any:
        """A lone surrogate in the password: 400 naming the field."""
        error = yield self.assertRefused(
            400,
            b"POST",
            b"/api/auth/login",
            body=b'{"email": "ops@example.com", "password": "\\udfff"}',
        )
        self.assertIn("password", error["message"])

    @inlineCallbacks
    def test_lone_surrogate_in_a_station_name(self) -> Any:
        """... in a station's name (the store could not encode it)."""
        error = yield self.assertRefused(
            400, b"POST", b"/api/cms/stations", self.admin(), body=b'{"name": "Depot \\ud800"}'
        )
        self.assertIn("name", error["message"])

    @inlineCallbacks
    def test_lone_surrogate_in_a_charge_point_id(self) -> Any:
        """... in a chargePointId, for the CMS and for a charger command alike."""
        for path, body in [
            (b"/api/cms/points", b'{"chargePointId": "\\ud800", "authorizationKey": null}'),
            (b"/api/charger/reset", b'{"chargePointId": "CP\\ud800", "type": "Soft"}'),
        ]:
            error = yield self.assertRefused(400, b"POST", path, self.admin(), body=body)
            self.assertIn("chargePointId", error["message"])

    @inlineCallbacks
    def test_authorization_header_not_ascii(self) -> Any:
        """Authorization: Bearer \\xff\\xfe: 400 naming the header (Twisted raised decoding it)."""
        error = yield self.assertRefused(
            400, b"GET", b"/api/auth/me", b"Authorization: Bearer \xff\xfe"
        )
        self.assertIn("Authorization", error["message"])

    @inlineCallbacks
    def test_limit_in_other_digits(self) -> Any:
        """?limit=① and ?limit=² look like digits to str.isdigit, not to int: 400."""
        for limit in (b"%E2%91%A0", b"%C2%B2", b"%D9%A3"):
            error = yield self.assertRefused(
                400, b"GET", b"/api/cms/stations?limit=" + limit, self.admin()
            )
            self.assertIn("limit", error["message"])

    @inlineCallbacks
    def test_price_beyond_64_bits(self) -> Any:
        """pricePerKwh: 2**63 fits no column: 400 (and 2**31 neither, on PostgreSQL)."""
        for price in (2**63, 2**31):
            body = b'{"name": "Huge", "currency": "EUR", "pricePerKwh": %d}' % price
            yield self.assertRefused(400, b"POST", b"/api/cms/tariffs", self.admin(), body=body)

    def test_station_id_in_other_digits(self) -> Any:
        """GET /api/cms/stations/①: names no station, 404."""
        return self.assertRefused(404, b"GET", b"/api/cms/stations/%E2%91%A0", self.admin())
