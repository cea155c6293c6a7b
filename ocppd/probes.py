"""
The web listener of a ``processor`` node (``[ocppd] role = processor``): only
``GET /health`` and ``GET /ready``, answered as the full web listener answers
them (``ocppd.api.app``): the whole body to a client on the node's own host,
``status``, ``checks`` and ``problems`` to anyone else. Everything else is 404:
a processor serves no API, no pages and no push channel, but probes, load
balancers' health checks and ``ocppctl status`` find it where they look.
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ocppd.api.http import write_json
from ocppd.health import Health, is_local, public
from ocppd.logs import Logger

__all__ = ["ProbesResource"]


class ProbesResource(Resource):
    """``/health`` and ``/ready`` of a node without the web API (a leaf: it routes itself)."""

    isLeaf = True
    log = Logger()

    def __init__(self, health: Health) -> None:
        super().__init__()
        self._health = health

    def render_GET(self, request: Request) -> bytes | int:
        local = is_local(request.getClientAddress())
        if request.path == b"/health":
            return write_json(request, 200, self._health.alive(detailed=local))
        if request.path == b"/ready":
            return self._ready(request, local)
        return write_json(
            request, 404, {"error": "not_found", "message": "a processor node serves no API"}
        )

    def render_HEAD(self, request: Request) -> bytes | int:
        return self.render_GET(request)

    def _ready(self, request: Request, local: bool) -> int:
        def answer(result: tuple[bool, dict[str, Any]]) -> None:
            ok, body = result
            if request.finished or request._disconnected:
                return
            request.write(write_json(request, 200 if ok else 503, body if local else public(body)))
            request.finish()

        def failed(failure: Failure) -> None:
            self.log.failure("Readiness on the probes listener failed", failure)
            if not (request.finished or request._disconnected):
                request.setResponseCode(500)
                request.finish()

        self._health.ready().addCallback(answer).addErrback(failed)
        return NOT_DONE_YET
