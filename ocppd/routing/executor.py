"""
The owning node's half of a routed command: a request off the command
transport, sent through this node's ``ConnectionRegistry``, its outcome
encoded as the reply (``ocppd.routing.wire``).

The request is hostile: a malformed one is logged and answered ``failed``;
the charger's node validates the payload against the OCPP schema as for
any command (``InvalidCommand``). The timeout is capped at this node's
``[ocpp] call_timeout``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.logs import Logger
from ocppd.ocpp.commands import CommandError
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.routing.wire import (
    MAX_BODY,
    WireError,
    decode_request,
    encode_answer,
    encode_failure,
)


class CommandExecutor:
    log = Logger()

    def __init__(
        self, registry: ConnectionRegistry, *, max_timeout: float, max_size: int = MAX_BODY
    ) -> None:
        self._registry = registry
        self._max_timeout = max_timeout
        self._max_size = max_size

    @inlineCallbacks
    def handle(self, body: bytes) -> Generator[Deferred[Any], Any, bytes]:
        """The reply to one request; never fails."""
        try:
            request = decode_request(body, max_timeout=self._max_timeout, max_size=self._max_size)
        except WireError as e:
            self.log.warn("Refused a routed command: {error}", error=str(e))
            return encode_failure(e)
        try:
            answer = yield self._registry.call(
                request.charge_point_id, request.action, request.payload, timeout=request.timeout
            )
        except CommandError as e:
            return encode_failure(e)
        except Exception as e:
            self.log.failure(
                "Routed {action} to {charge_point_id} failed",
                action=request.action,
                charge_point_id=request.charge_point_id,
            )
            return encode_failure(e)
        try:
            return encode_answer(answer)
        except (TypeError, ValueError) as e:
            return encode_failure(e)
