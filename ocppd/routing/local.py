"""
The in-process command transport: the embedded daemon's, and every node of a
test that runs several routers in one process.

Nodes that share one ``LocalCommandTransport`` reach each other; a request
goes through ``callLater(0)`` (never re-entering the caller), with the same
size bound and the same timeout behaviour as on RabbitMQ.
"""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.defer import Deferred, fail, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from ocppd.logs import Logger
from ocppd.routing.errors import NodeUnreachable, RoutingUnavailable, TransportTimeout
from ocppd.routing.interface import ICommandTransport, IServing, RequestHandler
from ocppd.routing.wire import MAX_BODY


@implementer(IServing)
class _Serving:
    def __init__(self, transport: LocalCommandTransport, node_id: str) -> None:
        self._transport = transport
        self.node_id = node_id

    def stop(self) -> Deferred[None]:
        if self._transport._handlers.get(self.node_id, (None, None))[1] is self:
            del self._transport._handlers[self.node_id]
        return succeed(None)


@implementer(ICommandTransport)
class LocalCommandTransport:
    log = Logger()

    def __init__(self, clock: IReactorTime, *, max_size: int = MAX_BODY) -> None:
        self._clock = clock
        self._max_size = max_size
        self._handlers: dict[str, tuple[RequestHandler, _Serving]] = {}

    def request(self, node_id: str, body: bytes, timeout: float) -> Deferred[bytes]:
        if len(body) > self._max_size:
            return fail(RoutingUnavailable(f"a command of {len(body)} bytes is too big to route"))
        if node_id not in self._handlers:
            return fail(NodeUnreachable(f"no node {node_id!r} takes commands"))
        handler = self._handlers[node_id][0]
        reply: Deferred[bytes] = Deferred()

        def expire() -> None:
            if not reply.called:
                reply.errback(TransportTimeout(f"no reply from node {node_id} in {timeout}s"))

        expiry = self._clock.callLater(timeout, expire)

        def handle() -> None:
            maybeDeferred(handler, body).addBoth(answered)

        def answered(result: Any) -> None:
            if reply.called:
                return  # the caller gave up: as on a broker, the reply is dropped
            if expiry.active():
                expiry.cancel()
            if isinstance(result, Failure):
                # A handler never fails (it encodes failures): this one broke.
                self.log.failure(
                    "Command handler of node {node_id} failed", result, node_id=node_id
                )
                reply.errback(TransportTimeout(f"node {node_id} did not reply"))
            elif len(result) > self._max_size:
                reply.errback(TransportTimeout(f"node {node_id}'s reply is too big"))
            else:
                reply.callback(result)

        self._clock.callLater(0, handle)
        return reply

    def serve(self, node_id: str, handler: RequestHandler) -> Deferred[IServing]:
        if node_id in self._handlers:
            return fail(ValueError(f"node {node_id!r} is already served"))
        serving = _Serving(self, node_id)
        self._handlers[node_id] = (handler, serving)
        return succeed(cast(IServing, serving))


__all__ = ["LocalCommandTransport"]
