"""
The web listener's ``Site``: the Klein app at ``/``, request bodies capped;
and the front ends' static folders the app serves.

Twisted buffers a whole request body before the resource sees it and sets
no limit of its own, so the cap is enforced while the body arrives. A URL
whose path is not UTF-8 text without control characters, or whose Host
header is not printable ASCII, is answered 400 before any route sees it
(:func:`url_problem`).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.logger import Logger
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site
from twisted.web.static import File

from ocppd.api.errors import ApiError
from ocppd.api.http import write_error

log = Logger()

#: C0 controls and DEL: no path of ours holds one (%00 made ``File`` raise).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def url_problem(request: IRequest) -> str | None:
    """
    Why ``request``'s URL cannot name anything here, or None. The query is
    left to the routes that read it (``ocppd.api.pagination.query_arg``).
    """
    try:
        path = unquote_to_bytes(request.path).decode("utf-8")
    except UnicodeDecodeError:
        return "the path is not UTF-8"
    if _CONTROL.search(path):
        return "the path holds a control character"
    for host in request.requestHeaders.getRawHeaders(b"host") or ():
        if not host.isascii() or any(byte <= 0x20 or byte == 0x7F for byte in host):
            return "the Host header is not printable ASCII"
    return None


class _BadUrl(Resource):
    isLeaf = True

    def __init__(self, problem: str) -> None:
        super().__init__()
        self._problem = problem

    def render(self, request: IRequest) -> bytes:
        return write_error(request, ApiError(400, "bad_request", self._problem))


class LimitedRequest(Request):
    """Refuses (413) a body larger than its site's ``max_body_size`` as it arrives."""

    _received = 0
    _refused = False

    def _limit(self) -> int:
        return int(self.channel.site.max_body_size)  # type: ignore[attr-defined]

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
        transport = self.channel.transport
        assert transport is not None
        transport.write(
            b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        transport.loseConnection()


class WebSite(Site):
    requestFactory = LimitedRequest

    def __init__(self, resource: IResource, *, max_body_size: int) -> None:
        # Form bodies are not parsed into request.args: the API takes JSON,
        # and query parameters come from the URL only.
        super().__init__(resource, parsePOSTFormSubmission=False)
        self.max_body_size = max_body_size
        self.displayTracebacks = False

    def getResourceFor(self, request: IRequest) -> IResource:
        problem = url_problem(request)
        if problem is not None:
            return _BadUrl(problem)
        return super().getResourceFor(request)


#: The web listener's static trees (first URL segment -> folder in ``[web] webroot``).
STATIC_TREES = {"cms": "cms", "user": "user", "shared": "shared", "vendor": "node_modules"}


class StaticFolder(File):
    """A front-end folder: ES modules as ``text/javascript`` (browsers refuse
    modules of another type), no directory listings, revalidated on each load
    so that an upgrade is never half-cached."""

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
        request.setHeader(b"x-content-type-options", b"nosniff")
        return super().render(request)


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
