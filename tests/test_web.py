"""
Tests for ocppd.web: the web listener's deadlines, URL checks and headers,
on a Clock and a StringTransport (no sockets, no real time).
"""

from __future__ import annotations

import gzip
import json
import os
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from ocppd.web import CONTENT_SECURITY_POLICY, StaticFolder, WebSite, accepts_gzip

HEADER_TIMEOUT = 30.0


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
        self.clock = Clock()
        self.answers = Answers()
        self.site = WebSite(
            self.answers,
            max_body_size=100,
            header_timeout=HEADER_TIMEOUT,
            idle_timeout=600,
            reactor=self.clock,
        )

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


class HeaderDeadlineTests(WebSiteTestCase):
    def test_slow_head_is_cut_at_the_deadline(self) -> None:
        """A client sending a header byte now and then is closed header_timeout after its first."""
        channel, transport = self.connect()
        channel.dataReceived(b"GET / HTTP/1.1\r\n")
        for _ in range(5):
            self.clock.advance(5)
            channel.dataReceived(b"X")
        self.assertFalse(transport.disconnecting)
        self.clock.advance(HEADER_TIMEOUT - 25 - 0.001)
        self.assertFalse(transport.disconnecting)
        self.clock.advance(0.001)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"", "nothing was answered")

    def test_normal_request_is_unaffected(self) -> None:
        """Headers in time: the answer may take longer than the deadline and still arrives."""
        channel, transport = self.connect()
        channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: ocppd.test\r\n\r\n")
        self.clock.advance(HEADER_TIMEOUT * 3)
        self.assertFalse(transport.disconnecting)
        [request] = self.answers.waiting
        request.write(b"late")
        request.finish()
        status, _, body = self.response(transport)
        self.assertEqual(status, 200)
        self.assertIn(b"late", body)
        self.assertFalse(transport.disconnecting)

    def test_body_is_not_cut_by_the_head_deadline(self) -> None:
        """The body that follows complete headers is paced by the idle timeout only."""
        channel, transport = self.connect()
        channel.dataReceived(b"POST / HTTP/1.1\r\nHost: ocppd.test\r\nContent-Length: 4\r\n\r\n")
        for byte in (b"a", b"b", b"c"):
            self.clock.advance(HEADER_TIMEOUT)
            channel.dataReceived(byte)
        self.assertFalse(transport.disconnecting)
        channel.dataReceived(b"d")
        self.assertEqual(self.response(transport)[0], 200)

    def test_keep_alive_next_head_within_the_deadline(self) -> None:
        """On a kept-alive connection the next head is due header_timeout after the answer."""
        channel, transport = self.connect()
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: ocppd.test\r\n\r\n")
        self.assertEqual(self.response(transport)[0], 200)
        transport.clear()
        self.clock.advance(HEADER_TIMEOUT - 1)
        channel.dataReceived(b"GET / HTTP/1.1\r\n")
        self.assertFalse(transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.value(), b"")

    def test_keep_alive_requests_in_time_are_served(self) -> None:
        """Requests that each come within the deadline keep the connection."""
        channel, transport = self.connect()
        for _ in range(3):
            transport.clear()
            channel.dataReceived(b"GET / HTTP/1.1\r\nHost: ocppd.test\r\n\r\n")
            self.assertEqual(self.response(transport)[0], 200)
            self.clock.advance(HEADER_TIMEOUT - 1)
        self.assertFalse(transport.disconnecting)


class UrlTests(WebSiteTestCase):
    def assertRefused(
        self, answer: tuple[int, dict[bytes, bytes], bytes], status: int, code: str
    ) -> str:
        """The answer is ``status`` with the JSON error body of ``code``; its message."""
        status_seen, headers, body = answer
        self.assertEqual((status_seen, headers[b"content-type"]), (status, b"application/json"))
        error = json.loads(body.split(b"\r\n")[1] if b"transfer-encoding" in headers else body)
        self.assertEqual(error["error"]["code"], code)
        return str(error["error"]["message"])

    def assertBadRequest(self, answer: tuple[int, dict[bytes, bytes], bytes], text: str) -> None:
        self.assertIn(text, self.assertRefused(answer, 400, "bad_request"))

    def test_nul_in_the_path(self) -> None:
        """%00 in the path names nothing: 404 before any resource (other controls pass)."""
        for path in (b"/user/%00", b"/a%00b/c"):
            self.assertRefused(self.get(path), 404, "not_found")
        self.assertEqual(self.get(b"/a%0Ab")[0], 200)

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


class HeadersTests(WebSiteTestCase):
    def assertSecurityHeaders(self, headers: dict[bytes, bytes]) -> None:
        self.assertEqual(headers[b"server"], b"ocppd")
        self.assertEqual(headers[b"content-security-policy"], CONTENT_SECURITY_POLICY.encode())
        self.assertIn(b"frame-ancestors 'none'", headers[b"content-security-policy"])
        self.assertEqual(headers[b"x-frame-options"], b"DENY")
        self.assertEqual(headers[b"referrer-policy"], b"no-referrer")
        self.assertEqual(headers[b"x-content-type-options"], b"nosniff")

    def test_every_answer(self) -> None:
        """A success, a failing resource and a refused URL all carry the headers, no version."""
        for path in (b"/", b"/boom", b"/%00"):
            _, headers, _ = self.get(path)
            self.assertSecurityHeaders(headers)
        self.flushLoggedErrors(RuntimeError)

    def test_refused_body(self) -> None:
        """The 413 written while a body arrives carries them too."""
        channel, transport = self.connect()
        channel.dataReceived(b"POST / HTTP/1.1\r\nHost: ocppd.test\r\nContent-Length: 1000\r\n\r\n")
        status, headers, _ = self.response(transport)
        self.assertEqual(status, 413)
        self.assertSecurityHeaders(headers)

    def test_a_resource_may_set_its_own(self) -> None:
        """A header a resource set is kept (the listener's are defaults), except Server."""

        class Framed(Resource):
            isLeaf = True

            def render(self, request: Any) -> bytes:
                request.setHeader(b"x-frame-options", b"SAMEORIGIN")
                request.setHeader(b"server", b"TwistedWeb/1.0")
                return b""

        self.site.resource = Framed()
        _, headers, _ = self.get(b"/")
        self.assertEqual(
            (headers[b"x-frame-options"], headers[b"server"]), (b"SAMEORIGIN", b"ocppd")
        )


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

    def test_a_changed_file_is_compressed_again(self) -> None:
        """The compressed body follows the file: a new version, a new body and ETag."""
        from twisted.web.test.requesthelper import DummyRequest

        def fetch() -> tuple[bytes, bytes]:
            request = DummyRequest([b"index.html"])
            tags: list[bytes] = []
            request.setETag = lambda tag: tags.append(tag)  # type: ignore[method-assign]
            request.requestHeaders.setRawHeaders(b"accept-encoding", [b"gzip"])
            child = self.folder.getChild(b"index.html", request)
            body = child.render(request)
            self.assertEqual(request.responseHeaders.getRawHeaders(b"content-encoding"), [b"gzip"])
            return gzip.decompress(body), tags[0]

        first, tag = fetch()
        self.assertEqual(first, b"<!doctype html>")
        path = os.path.join(self.root, "index.html")
        with open(path, "w") as f:
            f.write("<!doctype html><title>new</title>")
        stat = os.stat(path)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        second, new_tag = fetch()
        self.assertEqual(second, b"<!doctype html><title>new</title>")
        self.assertNotEqual(new_tag, tag)


class AcceptsGzipTests(SynchronousTestCase):
    def test_accept_encoding(self) -> None:
        """gzip or * accepted unless q=0; absent or other encodings are not."""
        from twisted.web.test.requesthelper import DummyRequest

        cases = {
            b"gzip, deflate, br": True,
            b"br;q=1.0, gzip;q=0.5": True,
            b"*": True,
            b"gzip;q=0": False,
            b"gzip;q=0.000": False,
            b"br": False,
            b"identity": False,
        }
        for header, expected in cases.items():
            request = DummyRequest([b""])
            request.requestHeaders.setRawHeaders(b"accept-encoding", [header])
            self.assertEqual(accepts_gzip(request), expected, header)
        self.assertFalse(accepts_gzip(DummyRequest([b""])))
