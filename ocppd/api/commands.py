"""
Operator commands to chargers: ``POST /api/charger/{command}``.

The body is ``{"chargePointId", ...}`` plus the OCPP request's own fields.
Every schema-valid command is forwarded and the charger decides; the reply is
the charger's whole answer. Each command is audited on the bus when requested
and when it ends (``command.<name>.requested`` / ``.answered`` / ``.failed``);
the audit consumer keeps them in the audit log.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime

from ocppd.api.errors import ApiError, bad_request
from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import IBus
from ocppd.ocpp.commands import (
    CallErrorReceived,
    ChargerDisconnected,
    ChargerNotConnected,
    CommandTimeout,
    InvalidCommand,
    InvalidReply,
)
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.store.records import UserRecord
from ocppd.timeutil import from_timestamp

#: REST name -> OCPP 1.6 action (DESIGN.md section 4: the short names are the contract).
COMMANDS: dict[str, str] = {
    "remote-start": "RemoteStartTransaction",
    "remote-stop": "RemoteStopTransaction",
    "change-configuration": "ChangeConfiguration",
    "reset": "Reset",
    "get-configuration": "GetConfiguration",
    "unlock-connector": "UnlockConnector",
    "change-availability": "ChangeAvailability",
    "clear-cache": "ClearCache",
    "trigger-message": "TriggerMessage",
    "data-transfer": "DataTransfer",
    "get-diagnostics": "GetDiagnostics",
    "update-firmware": "UpdateFirmware",
    "reserve-now": "ReserveNow",
    "cancel-reservation": "CancelReservation",
    "send-local-list": "SendLocalList",
    "get-local-list-version": "GetLocalListVersion",
    "set-charging-profile": "SetChargingProfile",
    "clear-charging-profile": "ClearChargingProfile",
    "get-composite-schedule": "GetCompositeSchedule",
}


class CommandService:
    def __init__(
        self,
        *,
        registry: ConnectionRegistry,
        schemas: SchemaRegistry,
        bus: IBus,
        clock: IReactorTime,
        node: str,
        timeout: float,
    ) -> None:
        self._registry = registry
        self._schemas = schemas
        self._bus = bus
        self._clock = clock
        self._node = node
        self._timeout = timeout

    def parse(self, name: str, body: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """(charge point id, OCPP action, OCPP payload) of a request, or 404/400."""
        action = COMMANDS.get(name)
        if action is None:
            raise ApiError(404, "not_found", f"no command {name!r}")
        charge_point_id = body.get("chargePointId")
        if not isinstance(charge_point_id, str) or not charge_point_id:
            raise bad_request("required, a non-empty string", field="chargePointId")
        payload = {k: v for k, v in body.items() if k != "chargePointId"}
        try:
            self._schemas.validate_request(action, payload)
        except OcppError as e:
            # The description already names the field (e.g. "type: must be one of ...").
            raise ApiError(400, "bad_request", e.description) from None
        return charge_point_id, action, payload

    def _publish(self, key: str, charge_point_id: str, payload: dict[str, Any]) -> Deferred[None]:
        envelope = Envelope.create(
            key,
            payload,
            node=self._node,
            charge_point_id=charge_point_id,
            now=from_timestamp(self._clock.seconds()),
        )
        return self._bus.publish(key, envelope)

    @inlineCallbacks
    def run(
        self, name: str, body: dict[str, Any], actor: UserRecord
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """Send the command; the charger's answer, or an ApiError."""
        charge_point_id, action, payload = self.parse(name, body)
        command_id = uuid.uuid4().hex
        audit = {
            "commandId": command_id,
            "command": name,
            "action": action,
            "by": {"userId": actor.id, "email": actor.email},
            "request": payload,
        }
        # Audited before it is sent: an operator's command is never unrecorded.
        yield self._publish(f"command.{name}.requested", charge_point_id, audit)
        try:
            answer = yield self._registry.call(
                charge_point_id, action, payload, timeout=self._timeout
            )
        except Exception as e:
            error = _api_error(e, charge_point_id)
            yield self._publish(
                f"command.{name}.failed",
                charge_point_id,
                {**audit, "error": error.body()["error"], "status": error.status},
            )
            raise error from None
        yield self._publish(
            f"command.{name}.answered", charge_point_id, {**audit, "response": answer}
        )
        return answer


def _api_error(error: Exception, charge_point_id: str) -> ApiError:
    if isinstance(error, ChargerNotConnected | ChargerDisconnected):
        return ApiError(409, "not_connected", f"{charge_point_id} is not connected")
    if isinstance(error, CommandTimeout):
        return ApiError(504, "timeout", f"{charge_point_id} did not answer in time")
    if isinstance(error, CallErrorReceived):
        return ApiError(502, error.code, error.description or f"{charge_point_id} refused")
    if isinstance(error, InvalidReply):
        return ApiError(
            502, error.error.code, f"{charge_point_id} answered outside the OCPP schema"
        )
    if isinstance(error, InvalidCommand):
        return ApiError(400, "bad_request", error.error.description)
    raise error
