"""
Tests for ocppd.web: the web listener's URL checks, on a StringTransport
(no sockets).
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ocppd.web import StaticFolder, WebSite


class Answers(Resource):
    """``/`` answers at once; ``/slow`` only when the test finishes it; ``/boom`` raises."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[Any] = []

    def render(self, request: Any) -> Any:
        if request.path == b"/slow":
            self.waiting.append(request)
            return NOT_DONE_YET
        if request.path == b"/boom":
            raise RuntimeError("a bug")
        return b"hello"


class WebSiteTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.answers = Answers()
        self.site = WebSite(self.answers, max_body_size=100)

    def connect(self) -> tuple[Any, StringTransport]:
        channel = self.site.buildProtocol(IPv4Address("TCP", "10.0.0.1", 40000))
        transport = StringTransport()
        channel.makeConnection(transport)
        self.addCleanup(self._close, channel, transport)
        return channel, transport

    def _close(self, channel: Any, transport: StringTransport) -> None:
        if not transport.disconnected:
            channel.connectionLost(Exception("test over"))

    def response(self, transport: StringTransport) -> tuple[int, dict[bytes, bytes], bytes]:
        """The status, headers (lower-cased names) and body of the first answer written."""
        head, _, body = transport.value().partition(b"\r\n\r\n")
        status_line, *lines = head.split(b"\r\n")
        headers = dict(line.split(b": ", 1) for line in lines)
        return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body

    def get(self, path: bytes, *headers: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        channel, transport = self.connect()
        extra = b"".join(header + b"\r\n" for header in headers)
        channel.dataReceived(b"GET %s HTTP/1.1\r\nHost: ocppd.test\r\n%s\r\n" % (path, extra))
        return self.response(transport)


class UrlTests(WebSiteTestCase):
    def assertBadRequest(self, answer: tuple[int, dict[bytes, bytes], bytes], text: str) -> None:
        status, headers, body = answer
        self.assertEqual((status, headers[b"content-type"]), (400, b"application/json"))
        error = json.loads(body.split(b"\r\n")[1] if b"transfer-encoding" in headers else body)
        self.assertEqual(error["error"]["code"], "bad_request")
        self.assertIn(text, error["error"]["message"])

    def test_nul_in_the_path(self) -> None:
        """%00 (and any control character) in the path: 400 before any resource sees it."""
        self.assertBadRequest(self.get(b"/user/%00"), "control character")
        self.assertBadRequest(self.get(b"/a%0Ab"), "control character")

    def test_path_not_utf8(self) -> None:
        """A path whose percent-escapes are not UTF-8: 400."""
        self.assertBadRequest(self.get(b"/cms/%ff"), "not UTF-8")
        self.assertBadRequest(self.get(b"/cms/%ed%a0%80"), "not UTF-8")  # an encoded surrogate

    def test_host_not_ascii(self) -> None:
        """A Host header with other bytes: 400 (Klein would log a traceback and answer text)."""
        channel, transport = self.connect()
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: \xff\xfe\r\n\r\n")
        self.assertBadRequest(self.response(transport), "Host")

    def test_good_urls_pass(self) -> None:
        """Unicode paths and queries in UTF-8 reach the resource."""
        for path in (b"/", b"/caf%C3%A9", b"/x?limit=%E2%91%A0"):
            self.assertEqual(self.get(path)[0], 200, path)


class StaticFolderTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(self.root, "modules"))
        with open(os.path.join(self.root, "index.html"), "w") as f:
            f.write("<!doctype html>")
        self.folder = StaticFolder(self.root)

    def test_odd_segments_are_not_found(self) -> None:
        """NUL (stat() would raise), "." and ".." name nothing; "" is the index."""
        for segment in (b"a\x00b", b"\x00", b".", b".."):
            self.assertIs(self.folder.getChild(segment, None), self.folder.childNotFound, segment)
        self.assertTrue(self.folder.getChild(b"", None).path.endswith("index.html"))
        self.assertTrue(self.folder.getChild(b"index.html", None).path.endswith("index.html"))

    def test_children_are_checked_too(self) -> None:
        """A subfolder is a StaticFolder as well, with the same refusals."""
        modules = self.folder.getChild(b"modules", None)
        self.assertIsInstance(modules, StaticFolder)
        self.assertIs(modules.getChild(b"x\x00", None), modules.childNotFound)
