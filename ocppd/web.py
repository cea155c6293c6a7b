"""
The web listener's ``Site``: the Klein app at ``/``, request bodies capped;
and the front ends' static folders the app serves.

Twisted buffers a whole request body before the resource sees it and sets
no limit of its own, so the cap is enforced while the body arrives.
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.logger import Logger
from twisted.web.resource import IResource
from twisted.web.server import Request, Site
from twisted.web.static import File

log = Logger()


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
        super().__init__(resource)
        self.max_body_size = max_body_size
        self.displayTracebacks = False


#: The web listener's static trees (first URL segment -> folder in ``[web] webroot``).
STATIC_TREES = {"cms": "cms", "user": "user", "shared": "shared", "vendor": "node_modules"}


class StaticFolder(File):
    """A front-end folder: ES modules as ``text/javascript`` (browsers refuse
    modules of another type), no directory listings, revalidated on each load
    so that an upgrade is never half-cached."""

    contentTypes = {**File.contentTypes, ".js": "text/javascript", ".mjs": "text/javascript"}

    def directoryListing(self) -> Any:
        return self.childNotFound

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
