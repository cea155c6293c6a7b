"""
The ``CommandRouter``: a CALL to a charger, wherever it is connected.

Every caller that sends a charger a command (the REST commands, customers'
start and stop, reservations, the funds guard) goes through it. It asks the
owner lookup (presence) which node holds the charger's socket, then

- this node: sends it through the local ``ConnectionRegistry``;
- another node: sends it over the command transport to that node, whose
  ``CommandExecutor`` sends it through its registry and replies;
- nobody: ``ChargerNotConnected``.

The outcome is the same either way: the charger's answer, or the local
errors (``ChargerNotConnected``, ``CommandTimeout``, ``CallErrorReceived``,
``InvalidReply``, ``InvalidCommand``), plus ``RoutingUnavailable`` when the
lookup or the transport is down. A routed command never waits longer than its
timeout plus ``reply_grace`` (the trip back), also when the owner dies.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from twisted.internet.defer import (
    Deferred,
    TimeoutError,
    fail,
    inlineCallbacks,
    maybeDeferred,
    succeed,
)
from twisted.internet.interfaces import IReactorTime

from ocppd.logs import Logger
from ocppd.ocpp.commands import ChargerNotConnected, CommandTimeout, InvalidReply
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.routing.errors import (
    NodeUnreachable,
    RoutingUnavailable,
    TransportTimeout,
)
from ocppd.routing.interface import ICommandTransport
from ocppd.routing.wire import CommandRequest, decode_reply, encode_request

#: Which node holds a charger's socket now (None: no node).
OwnerLookup = Callable[[str], Deferred[str | None]]


def local_owner(registry: ConnectionRegistry, node_id: str) -> OwnerLookup:
    """The embedded lookup: this node if its registry holds the charger, else nobody."""

    def owner(charge_point_id: str) -> Deferred[str | None]:
        return succeed(node_id if charge_point_id in registry else None)

    return owner


class CommandRouter:
    log = Logger()

    def __init__(
        self,
        *,
        node_id: str,
        registry: ConnectionRegistry,
        owner_of: OwnerLookup,
        transport: ICommandTransport,
        schemas: SchemaRegistry,
        clock: IReactorTime,
        reply_grace: float = 2.0,
        lookup_timeout: float = 5.0,
    ) -> None:
        self.node_id = node_id
        self._registry = registry
        self._owner_of = owner_of
        self._transport = transport
        self._schemas = schemas
        self._clock = clock
        self._reply_grace = reply_grace
        self._lookup_timeout = lookup_timeout

    def call(
        self, charge_point_id: str, action: str, payload: dict[str, Any], *, timeout: float
    ) -> Deferred[dict[str, Any]]:
        """Send ``action`` to the charger wherever it is; fire with its CALLRESULT payload."""
        return self._call(charge_point_id, action, payload, timeout)

    @inlineCallbacks
    def _call(
        self, charge_point_id: str, action: str, payload: dict[str, Any], timeout: float
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        owner = yield self._owner(charge_point_id)
        try:
            answer = yield self._send(owner, charge_point_id, action, payload, timeout)
        except ChargerNotConnected:
            # The charger may have moved between the lookup and the send (a
            # reconnection to another node): one more look, one more try.
            moved = yield self._owner(charge_point_id)
            if moved is None or moved == owner:
                raise
            answer = yield self._send(moved, charge_point_id, action, payload, timeout)
        return answer

    def _send(
        self,
        owner: str | None,
        charge_point_id: str,
        action: str,
        payload: dict[str, Any],
        timeout: float,
    ) -> Deferred[dict[str, Any]]:
        if owner is None:
            return fail(ChargerNotConnected(f"{charge_point_id} is not connected"))
        if owner == self.node_id:
            return self._registry.call(charge_point_id, action, payload, timeout=timeout)
        return self._remote(owner, CommandRequest(charge_point_id, action, payload, timeout))

    @inlineCallbacks
    def _owner(self, charge_point_id: str) -> Generator[Deferred[Any], Any, str | None]:
        lookup = maybeDeferred(self._owner_of, charge_point_id)
        lookup.addTimeout(self._lookup_timeout, self._clock)
        try:
            owner = yield lookup
        except TimeoutError:
            raise RoutingUnavailable("the charger's node could not be looked up in time") from None
        except RoutingUnavailable:
            raise
        except Exception as e:
            self.log.warn(
                "Owner lookup of {charge_point_id} failed: {error}",
                charge_point_id=charge_point_id,
                error=f"{type(e).__name__}: {e}",
            )
            raise RoutingUnavailable(f"the charger's node could not be looked up: {e}") from None
        if owner is not None and not isinstance(owner, str):
            raise RoutingUnavailable("the owner lookup answered nonsense")
        return owner

    @inlineCallbacks
    def _remote(
        self, owner: str, request: CommandRequest
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        try:
            body = encode_request(request)
        except (TypeError, ValueError) as e:
            raise RoutingUnavailable(f"the command cannot be sent: {e}") from None
        try:
            reply = yield self._transport.request(owner, body, request.timeout + self._reply_grace)
        except NodeUnreachable:
            # Presence still names a node that is gone: the charger is
            # connected nowhere we can reach (its lease runs out soon).
            raise ChargerNotConnected(
                f"{request.charge_point_id} is not connected (its node {owner} is gone)"
            ) from None
        except TransportTimeout as e:
            raise CommandTimeout(f"{request.action} via node {owner}: {e}") from None
        answer = decode_reply(reply)
        # The owner validated it already; checked again, as anything from the bus.
        try:
            self._schemas.validate_response(request.action, answer)
        except OcppError as e:
            raise InvalidReply(e, answer) from None
        return answer


__all__ = ["CommandRouter", "OwnerLookup", "local_owner"]
