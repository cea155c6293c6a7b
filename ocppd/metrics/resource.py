"""
What the metrics listener (``[metrics] listen``) answers: ``GET /metrics``
in Prometheus' text format (or OpenMetrics when the scraper asks for it),
and ``GET /health`` and ``GET /ready`` as the web listener does
(``ocppd.health``), for probes that must not go through the public port.
Anything else is 404; methods other than GET and HEAD 405.

The listener is the operator's (loopback, or a monitoring network), so
``/ready`` gives its whole body here, as the web listener does to its own
host. A scrape's work is bounded: the families have bounded label sets,
and they are built from counts already kept.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from ocppd.api.http import write_json
from ocppd.health import Health
from ocppd.logs import Logger
from ocppd.web import WebSite

__all__ = ["MetricsResource", "MetricsSite"]


class MetricsSite(WebSite):
    """
    The metrics listener's site: the web listener's limits, without its
    access log (a scrape every 15 s would be a line every 15 s for nothing).
    """

    def log(self, request: http.Request) -> None:
        pass


class MetricsResource(Resource):
    """The whole metrics listener (a leaf: it routes its three paths itself)."""

    isLeaf = True
    log = Logger()

    def __init__(self, registry: CollectorRegistry, health: Health | None = None) -> None:
        super().__init__()
        self._registry = registry
        self._health = health

    def render_GET(self, request: Request) -> bytes | int:
        path = request.path
        if path == b"/metrics":
            return self._metrics(request)
        if path == b"/health" and self._health is not None:
            return write_json(request, 200, self._health.alive())
        if path == b"/ready" and self._health is not None:
            return self._ready(request)
        return write_json(request, 404, {"error": "not_found", "message": "no such resource"})

    def render_HEAD(self, request: Request) -> bytes | int:
        return self.render_GET(request)

    def _metrics(self, request: Request) -> bytes:
        accept = request.getHeader("accept")
        encoder, content_type = choose_encoder(accept or "")
        body: bytes = encoder(self._registry)
        request.setHeader("Content-Type", content_type)
        request.setHeader("Cache-Control", "no-store")
        return body

    def _ready(self, request: Request) -> int:
        def answer(result: tuple[bool, dict[str, Any]]) -> None:
            ok, body = result
            if request.finished or request._disconnected:
                return
            request.write(write_json(request, 200 if ok else 503, body))
            request.finish()

        def failed(failure: Failure) -> None:
            self.log.failure("Readiness on the metrics listener failed", failure)
            if not (request.finished or request._disconnected):
                request.setResponseCode(500)
                request.finish()

        self._health.ready().addCallback(answer).addErrback(failed)  # type: ignore[union-attr]
        return NOT_DONE_YET
