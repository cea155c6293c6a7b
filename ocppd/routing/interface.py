# Zope interface methods take no self and have no body; mypy without the
# mypy-zope plugin reports both.
# mypy: disable-error-code="misc, empty-body"
"""
The command transport seam: a request to one node, and its reply.

Two implementations: ``ocppd.routing.local`` (in-process, for the embedded
daemon and tests) and ``ocppd.routing.amqp`` (RabbitMQ). Both pass
``tests/routing/contract.py``. Bodies are opaque bytes here
(``ocppd.routing.wire`` gives them meaning), bounded by the transport.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from zope.interface import Interface

#: What a node does with a request body it serves: fire with the reply body.
RequestHandler = Callable[[bytes], Deferred[bytes]]


class IServing(Interface):
    def stop() -> Deferred[None]:
        """Take no more requests for this node; fires at once (requests running finish)."""


class ICommandTransport(Interface):
    def request(node_id: str, body: bytes, timeout: float) -> Deferred[bytes]:
        """
        Deliver ``body`` to the handler serving ``node_id`` and fire with its
        reply. Fails with ``NodeUnreachable`` when no node of that id serves
        (nothing was delivered), ``TransportTimeout`` when no reply came
        within ``timeout`` seconds (the request expires undelivered, or the
        node died or was too slow: the caller cannot know whether it ran),
        and ``RoutingUnavailable`` when the transport itself is down.
        A request is handled at most once; it never waits longer than
        ``timeout``.
        """

    def serve(node_id: str, handler: RequestHandler) -> Deferred[IServing]:
        """Hand requests for ``node_id`` to ``handler`` until the returned serving stops."""
