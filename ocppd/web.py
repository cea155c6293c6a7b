"""
The web listener's ``Site``: the Klein app at ``/`` and the front ends'
static folders the app serves, behind the limits and headers every response
of the listener shares.

- A request's head (request line and headers) must be complete within
  ``header_timeout`` seconds of its first byte, and the next one within as
  long of the previous answer on a keep-alive connection
  (:class:`WebChannel`): a client sending a byte now and then (slowloris)
  holds a connection for seconds, not for days.
- Twisted buffers a whole request body before the resource sees it and sets
  no limit of its own, so the body cap is enforced while the body arrives
  (:class:`WebRequest`).
- A URL whose path is not UTF-8 or whose Host header is not printable ASCII
  is answered 400, and a path holding NUL 404, before any route sees it
  (:func:`url_problem`).
- Every answer carries the :data:`SECURITY_HEADERS` and ``Server: ocppd``
  without a version (:class:`WebRequest`).
- Behind a trusted proxy, ``getClientAddress`` is the client's address from
  ``X-Forwarded-For`` (``ocppd.proxies``), for the sign-in limits and logs.
"""

from __future__ import annotations

import gzip
import json
import os
from collections import OrderedDict
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.http import HTTPChannel
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from twisted.web.static import File, getTypeAndEncoding

from ocppd.api.errors import ApiError
from ocppd.api.http import write_error
from ocppd.logs import Logger
from ocppd.proxies import TrustedProxies

log = Logger()


def content_security_policy(img_sources: tuple[str, ...] = ()) -> str:
    """
    What the pages load (docs/web.md): their own ES modules, autobahn-js,
    uPlot and Leaflet from /vendor/, their style sheets, fetch() to /api/ and
    the WebSocket to /push (CSP 3: 'self' covers ws:/wss: of the same host).
    No inline script or style, no eval, no frames, no plugins; images from
    elsewhere only from ``img_sources`` (the map's tile server, ``[web] map_tiles``).
    """
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            " ".join(["img-src 'self'", *img_sources]),
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(img_sources: tuple[str, ...] = ()) -> tuple[tuple[bytes, bytes], ...]:
    """
    On every answer of the web listener. The sign-in token lives in the page's
    localStorage, so whatever script runs in the page has it: the policy
    allows none but ocppd's own. No framing (clickjacking), no Referer to
    other sites, no content-type sniffing (a JSON answer is never a script).
    """
    return (
        (b"Content-Security-Policy", content_security_policy(img_sources).encode("ascii")),
        (b"X-Frame-Options", b"DENY"),
        (b"Referrer-Policy", b"no-referrer"),
        (b"X-Content-Type-Options", b"nosniff"),
        (b"Cross-Origin-Opener-Policy", b"same-origin"),
    )


#: The policy and headers of a listener without a map tile server.
CONTENT_SECURITY_POLICY = content_security_policy()
SECURITY_HEADERS = security_headers()
#: Twisted's default names its version; the push channel's upgrade says the same.
SERVER = b"ocppd"


def url_problem(request: IRequest) -> ApiError | None:
    """
    The answer for a URL that cannot name anything here, or None: 400 for a
    path that is not UTF-8 or a Host header that is not printable ASCII, 404
    for a path holding NUL (no name of ours has one, and no store can hold
    one: ``%00`` made ``File`` raise and would fail a PostgreSQL lookup). The
    query is left to the routes that read it (``ocppd.api.pagination.query_arg``).
    """
    try:
        path = unquote_to_bytes(request.path).decode("utf-8")
    except UnicodeDecodeError:
        return ApiError(400, "bad_request", "the path is not UTF-8")
    for host in request.requestHeaders.getRawHeaders(b"host") or ():
        if not host.isascii() or any(byte <= 0x20 or byte == 0x7F for byte in host):
            return ApiError(400, "bad_request", "the Host header is not printable ASCII")
    if "\x00" in path:
        return ApiError(404, "not_found", "no such resource")
    return None


class _Refused(Resource):
    isLeaf = True

    def __init__(self, error: ApiError) -> None:
        super().__init__()
        self._error = error

    def render(self, request: IRequest) -> bytes:
        return write_error(request, self._error)


class WebChannel(HTTPChannel):
    """
    HTTP/1.1 with a deadline for each request's head: ``header_timeout``
    seconds (the site's) from the first byte of a connection, and from the
    end of the previous answer on a keep-alive connection, to the end of the
    request's headers; then the connection is closed. The body that may
    follow is paced by the site's idle timeout, and a request being handled
    by neither (Twisted's idle timer is off meanwhile, and the push channel's
    WebSocket has its own timeouts).
    """

    _log = Logger()
    _head_deadline: IDelayedCall | None = None
    #: Before a request's headers are complete (not in its body, not while it is handled).
    _in_head = True
    _head_bytes = 0

    def _start_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_bytes = 0
        self._head_deadline = self.callLater(self.factory.header_timeout, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        deadline, self._head_deadline = self._head_deadline, None
        if deadline is not None and deadline.active():
            deadline.cancel()

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if self._head_bytes:
            self._log.info(
                "Closing the connection of {peer}: request headers not complete "
                "within {timeout} s ({received} bytes)",
                peer=str(self.transport.getPeer()) if self.transport else "?",
                timeout=self.factory.header_timeout,
                received=self._head_bytes,
            )
        # Twisted's idle-timeout path: close, and abort if the peer does not read.
        self.timeoutConnection()

    def dataReceived(self, data: bytes) -> None:
        if self._in_head:
            if self._head_deadline is None:
                self._start_head_deadline()
            self._head_bytes += len(data)
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:
        self._in_head = False
        self._cancel_head_deadline()
        super().allHeadersReceived()

    def requestDone(self, request: Request) -> None:
        if self.persistent:
            # Before the parent replays what the client pipelined meanwhile,
            # which may hold the next request's whole head already.
            self._in_head = True
            self._start_head_deadline()
        super().requestDone(request)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancel_head_deadline()
        super().connectionLost(reason)


#: The request paths of chargers' diagnostics uploads (``ocppd.diagnostics``).
UPLOAD_PATH = b"/diagnostics/"


class WebRequest(Request):
    """
    Refuses (413) a body larger than its site's ``max_body_size`` as it
    arrives, and gives every answer the listener's headers.
    """

    _received = 0
    _refused = False

    def _limit(self) -> int:
        site = self.channel.site  # type: ignore[attr-defined]
        # The request line's path (the channel's until the body is in): a
        # charger's diagnostics upload may be larger than any API body.
        path = getattr(self.channel, "_path", b"")
        if site.max_upload_size and path.startswith(UPLOAD_PATH):
            return int(site.max_upload_size)
        return int(site.max_body_size)

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self._limit():
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self._refused:
            return
        self._received += len(data)
        if self._received > self._limit():
            self._refuse()
            return
        super().handleContentChunk(data)

    def _refuse(self) -> None:
        self._refused = True
        body = json.dumps(
            {"error": {"code": "payload_too_large", "message": "the request body is too large"}}
        ).encode()
        site = getattr(self.channel, "site", None)
        site_headers = getattr(site, "security_headers", SECURITY_HEADERS)
        headers = b"".join(b"%s: %s\r\n" % header for header in site_headers)
        transport = self.channel.transport
        assert transport is not None
        transport.write(
            b"HTTP/1.1 413 Payload Too Large\r\nServer: %s\r\n%sContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
            % (SERVER, headers, len(body), body)
        )
        transport.loseConnection()

    def getClientAddress(self) -> IAddress:
        peer = super().getClientAddress()
        proxies: TrustedProxies = self.channel.site.trusted_proxies  # type: ignore[attr-defined]
        host = getattr(peer, "host", None)
        if not proxies or not isinstance(host, str):
            return peer
        client = proxies.client_address(host, self.requestHeaders.getRawHeaders(b"x-forwarded-for"))
        if client == host:
            return peer
        kind = IPv6Address if ":" in client else IPv4Address
        return kind("TCP", client, 0)  # the client's port is not forwarded

    def write(self, data: bytes) -> None:
        # The headers go out with the first write (``finish`` writes b"" if
        # nothing else did): the one moment every answer passes.
        if not self.startedWriting:
            headers = self.responseHeaders
            headers.setRawHeaders(b"server", [SERVER])
            site = getattr(self.channel, "site", None)
            for name, value in getattr(site, "security_headers", SECURITY_HEADERS):
                if not headers.hasHeader(name):
                    headers.setRawHeaders(name, [value])
        super().write(data)


class WebSite(Site):
    """The web listener's factory; see the module docstring."""

    protocol = WebChannel  # type: ignore[assignment]
    requestFactory = WebRequest

    def __init__(
        self,
        resource: IResource,
        *,
        max_body_size: int,
        max_upload_size: int = 0,
        header_timeout: float = 30.0,
        idle_timeout: float = 60.0,
        reactor: Any = None,
        trusted_proxies: TrustedProxies | None = None,
        img_sources: tuple[str, ...] = (),
    ) -> None:
        # Form bodies are not parsed into request.args: the API takes JSON,
        # and query parameters come from the URL only.
        super().__init__(
            resource, timeout=idle_timeout, reactor=reactor, parsePOSTFormSubmission=False
        )
        self.max_body_size = max_body_size
        #: Largest body of a diagnostics upload (``/diagnostics/``); 0: ``max_body_size``.
        self.max_upload_size = max_upload_size
        self.header_timeout = header_timeout
        self.trusted_proxies = trusted_proxies or TrustedProxies()
        self.displayTracebacks = False
        #: ``SECURITY_HEADERS``, with the map's tile server among the image sources.
        self.security_headers = security_headers(img_sources)

    def acceptableProtocols(self) -> list[bytes]:
        # WebChannel speaks HTTP/1.1 only: never offer h2 in TLS ALPN.
        return [b"http/1.1"]

    def getResourceFor(self, request: IRequest) -> IResource:
        refused = url_problem(request)
        if refused is not None:
            return _Refused(refused)
        return super().getResourceFor(request)


#: The web listener's static trees (first URL segment -> folder in ``[web] webroot``).
STATIC_TREES = {"cms": "cms", "user": "user", "shared": "shared", "vendor": "node_modules"}


#: Files sent gzip-compressed to a client that accepts it: text, which
#: compresses to a fraction (a cold load of the panel: docs/web.md).
COMPRESSIBLE = frozenset({".js", ".mjs", ".css", ".html", ".svg", ".json", ".map", ".txt"})
#: Larger files are sent as they are (the webroot's largest is some 150 KiB).
MAX_COMPRESSED_FILE = 2 * 1024 * 1024
#: Compressed files kept (least recently used dropped): the webroot's text files.
GZIP_CACHE_ENTRIES = 256


class _GzipCache:
    """
    Compressed bodies by (path, mtime, size): each file is read and compressed
    once (a few ms for the largest, on the reactor thread, bounded by
    :data:`MAX_COMPRESSED_FILE`) and again only when it changes on disk.
    """

    def __init__(self, entries: int = GZIP_CACHE_ENTRIES) -> None:
        self._entries = entries
        self._bodies: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()

    def get(self, path: str, mtime_ns: int, size: int) -> bytes:
        key = (path, mtime_ns, size)
        body = self._bodies.get(key)
        if body is None:
            with open(path, "rb") as f:
                # mtime=0: the same file always compresses to the same bytes.
                body = gzip.compress(f.read(MAX_COMPRESSED_FILE + 1), 6, mtime=0)
            self._bodies[key] = body
            while len(self._bodies) > self._entries:
                self._bodies.popitem(last=False)
        else:
            self._bodies.move_to_end(key)
        return body


_GZIP = _GzipCache()


def accepts_gzip(request: Any) -> bool:
    """Whether the request's Accept-Encoding takes gzip (``gzip;q=0`` refuses it)."""
    for header in request.requestHeaders.getRawHeaders(b"accept-encoding") or ():
        for item in header.split(b","):
            name, _, params = item.strip().partition(b";")
            if name.strip().lower() in (b"gzip", b"*"):
                q = params.strip().lower()
                return not (q.startswith(b"q=") and q[2:].strip().rstrip(b"0.") == b"")
    return False


class StaticFolder(File):
    """
    A front-end folder: ES modules as ``text/javascript`` (browsers refuse
    modules of another type), no directory listings. Every file is
    revalidated on each load (``no-cache``: an upgrade is never half-cached)
    against its ``ETag`` and ``Last-Modified``, so a reload costs a 304; text
    files go gzip-compressed to clients that accept it (``Vary:
    Accept-Encoding``).
    """

    contentTypes = {**File.contentTypes, ".js": "text/javascript", ".mjs": "text/javascript"}

    def directoryListing(self) -> Any:
        return self.childNotFound

    def getChild(self, path: bytes, request: Any) -> Any:
        # ``File`` passes NUL on to stat() (ValueError); "." would name the
        # folder itself. (".." and "/" it refuses already.)
        if b"\x00" in path or path in (b".", b".."):
            return self.childNotFound
        return super().getChild(path, request)

    def render(self, request: Any) -> Any:
        request.setHeader(b"cache-control", b"no-cache")
        self.restat(False)
        if not self.exists() or self.isdir():
            return super().render(request)
        try:
            stat = os.stat(self.path)
        except OSError:  # gone since restat: File answers that
            return super().render(request)
        request.setHeader(b"vary", b"Accept-Encoding")
        compress = (
            request.method in (b"GET", b"HEAD")
            and os.path.splitext(self.path)[1] in COMPRESSIBLE
            and stat.st_size <= MAX_COMPRESSED_FILE
            and request.getHeader(b"range") is None
            and accepts_gzip(request)
        )
        # One tag per version of the file and per encoding of its bytes.
        version = f"{stat.st_mtime_ns:x}-{stat.st_size:x}"
        etag = f'"{version}-gz"' if compress else f'"{version}"'
        if request.setETag(etag.encode("ascii")) is http.CACHED:
            return b""
        if not compress:
            return super().render(request)
        try:
            body = _GZIP.get(self.path, stat.st_mtime_ns, stat.st_size)
        except OSError:
            return super().render(request)
        if request.setLastModified(stat.st_mtime) is http.CACHED:
            return b""
        kind, _ = getTypeAndEncoding(
            self.basename(), self.contentTypes, self.contentEncodings, self.defaultType
        )
        request.setHeader(b"content-type", kind.encode("ascii"))
        request.setHeader(b"content-encoding", b"gzip")
        request.setHeader(b"content-length", b"%d" % len(body))
        return b"" if request.method == b"HEAD" else body


def static_trees(webroot: str) -> dict[str, IResource]:
    """The trees found under ``webroot``; a missing one is logged and answers 404."""
    trees: dict[str, IResource] = {}
    for tree, folder in STATIC_TREES.items():
        path = os.path.join(os.path.abspath(webroot), folder)
        if os.path.isdir(path):
            trees[tree] = StaticFolder(path)
        else:
            log.warn(
                "No {path}: /{tree}/ answers 404 (is [web] webroot right, "
                "and did `npm ci --prefix webroot` run?)",
                path=path,
                tree=tree,
            )
    return trees
