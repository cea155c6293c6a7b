"""
Operator commands to chargers: ``POST /api/charger/{command}``.

The body is ``{"chargePointId", ...}`` plus the OCPP request's own fields.
Every schema-valid command is forwarded and the charger decides; the reply is
the charger's whole answer plus ``commandId`` (an extension of the contract:
no OCPP response has that field), under which ``GET
/api/charger/commands/{commandId}`` tells its outcome and, for a remote
start, the session it led to. Each command is audited on the bus when
requested and when it ends (``command.<name>.requested`` / ``.answered`` /
``.failed``); the audit consumer keeps them in the audit log.

A ChangeConfiguration of ``AuthorizationKey`` rotates the charger's Basic-auth
key: the value is checked like any key, redacted from the audit trail and the
answer (``ocpp.authorization_key``), and the stored key follows the charger's
answer (``settle_key_change``; docs/ocpp.md "Rotating a key").
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred

from ocppd.api.command_forms import describe_command
from ocppd.api.errors import ApiError, bad_request
from ocppd.bounds import INT32_MAX
from ocppd.bus.outbox import Outbox
from ocppd.credentials import charger_key_problem, hash_charger_key
from ocppd.diagnostics import DiagnosticsFiles
from ocppd.logs import Logger
from ocppd.ocpp.authorization_key import new_authorization_key, redact
from ocppd.ocpp.commands import (
    CallErrorReceived,
    ChargerDisconnected,
    ChargerNotConnected,
    CommandTimeout,
    InvalidCommand,
    InvalidReply,
)
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.handshake import CHARGE_POINT_ID
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.ocpp.tagcache import id_tag_info
from ocppd.routing.errors import BadRoutedReply, RoutingUnavailable
from ocppd.routing.router import CommandRouter
from ocppd.store import audit, chargers, people, reservations, transactions
from ocppd.store.database import Database
from ocppd.store.records import UserRecord
from ocppd.timeutil import format_iso, parse_iso

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


#: Fields ocppd keeps in 32-bit columns (the reservations it allocates and follows).
_STORED_INTEGERS = {
    "ReserveNow": ("connectorId", "reservationId"),
    "CancelReservation": ("reservationId",),
}


class CommandService:
    log = Logger()

    def __init__(
        self,
        *,
        database: Database,
        router: CommandRouter,
        schemas: SchemaRegistry,
        outbox: Outbox,
        timeout: float,
        charger_changed: Callable[[str], object] = lambda charge_point_id: None,
        diagnostics: DiagnosticsFiles | None = None,
    ) -> None:
        self._database = database
        self._router = router
        self._schemas = schemas
        self._outbox = outbox
        self._timeout = timeout
        #: Told the id of a charger whose key changed (the admission cache forgets it).
        self._charger_changed = charger_changed
        #: Upload URLs for a GetDiagnostics sent without a location.
        self._diagnostics = diagnostics
        self._forms: list[dict[str, Any]] | None = None

    def forms(self) -> list[dict[str, Any]]:
        """Every command's form, from its request schema (``ocppd.api.command_forms``)."""
        if self._forms is None:
            forms = []
            for name, action in COMMANDS.items():
                schema = self._schemas.request_schema(action)
                if schema is not None:
                    forms.append(describe_command(name, action, schema))
            self._forms = forms
        return self._forms

    def parse(self, name: str, body: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        """(charge point id, OCPP action, OCPP payload) of a request, or 404/400."""
        action = COMMANDS.get(name)
        if action is None:
            raise ApiError(404, "not_found", f"no command {name!r}")
        charge_point_id = body.get("chargePointId")
        # What names no charger cannot be one connected (and must not reach the store).
        if not isinstance(charge_point_id, str) or not CHARGE_POINT_ID.fullmatch(charge_point_id):
            raise bad_request(
                "required, 1 to 48 of A-Z a-z 0-9 . _ : + @ ~ -", field="chargePointId"
            )
        payload = {k: v for k, v in body.items() if k != "chargePointId"}
        checked = payload
        if action == "ReserveNow" and "reservationId" not in payload:
            checked = {**payload, "reservationId": 0}  # run() allocates the real one
        if action == "GetDiagnostics" and "location" not in payload:
            checked = {**payload, "location": "http://ocppd.invalid/"}  # run() gives ours
        try:
            self._schemas.validate_request(action, checked)
        except OcppError as e:
            # The description already names the field (e.g. "type: must be one of ...").
            raise ApiError(400, "bad_request", e.description) from None
        new_key = new_authorization_key(action, payload)
        problem = None if new_key is None else charger_key_problem(new_key)
        if problem is not None:
            raise bad_request(problem, field="value")
        for field in _STORED_INTEGERS.get(action, ()):
            value = payload.get(field, 0)
            if not -INT32_MAX - 1 <= value <= INT32_MAX:
                raise bad_request(f"at most {INT32_MAX} in size (kept by ocppd)", field=field)
        return charge_point_id, action, payload

    def _publish(self, key: str, charge_point_id: str, payload: dict[str, Any]) -> Deferred[None]:
        """
        Record a ``command.*`` audit event: written to the outbox (durable at
        once, published by the relay), so a command is audited also while the
        bus is away, and an answered command never fails for want of a bus.
        """
        return self._outbox.run(
            self._database, _no_change, lambda _: [(key, payload, charge_point_id)]
        )

    @inlineCallbacks
    def run(
        self,
        name: str,
        body: dict[str, Any],
        actor: UserRecord,
        *,
        command_id: str | None = None,
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """
        Send the command; the charger's answer, or an ApiError. ``command_id``
        lets a caller that records the command first (a customer's start)
        choose the id the audit trail carries.
        """
        charge_point_id, action, payload = self.parse(name, body)
        if action == "SendLocalList" and "localAuthorizationList" not in payload:
            payload["localAuthorizationList"] = yield self._database.run(
                local_authorization_list, now=self._outbox.now()
            )
        if action == "GetDiagnostics" and "location" not in payload:
            if self._diagnostics is None:
                raise bad_request("required", field="location")
            payload["location"] = yield self._diagnostics.location_for(charge_point_id, actor.id)
        command_id = command_id or new_command_id()
        now = self._outbox.now()
        if action == "ReserveNow" and "reservationId" not in payload:
            payload["reservationId"] = yield self._database.run(
                reservations.allocate_reservation,
                charge_point_id=charge_point_id,
                connector_id=payload["connectorId"],
                id_tag=payload["idTag"],
                expires_at=parse_iso(payload["expiryDate"]),
                command_id=command_id,
                now=now,
            )
        audit = {
            "commandId": command_id,
            "command": name,
            "action": action,
            "by": {"userId": actor.id, "email": actor.email},
            "request": redact(payload),
        }
        # Audited before it is sent: an operator's command is never unrecorded.
        yield self._publish(f"command.{name}.requested", charge_point_id, audit)
        new_key = new_authorization_key(action, payload)
        new_key_hash = None
        if new_key is not None:
            # Stored before it is sent: from the moment the charger may hold
            # it, it can log in with it (docs/ocpp.md "Rotating a key").
            new_key_hash = hash_charger_key(new_key)
            yield self._database.run(chargers.set_pending_key, charge_point_id, new_key_hash)
        try:
            # Wherever the charger is connected (ocppd/routing/router.py).
            answer = yield self._router.call(
                charge_point_id, action, payload, timeout=self._timeout
            )
        except Exception as e:
            if new_key_hash is not None:
                yield self._settle_key_change(charge_point_id, new_key_hash, _never_sent(e))
            error = _api_error(e, charge_point_id)
            if action == "ReserveNow":
                yield self._database.run(
                    reservations.set_reservation_status,
                    payload["reservationId"],
                    "failed",
                    now=self._outbox.now(),
                )
            yield self._publish(
                f"command.{name}.failed",
                charge_point_id,
                {**audit, "error": error.body()["error"], "status": error.status},
            )
            raise error from None
        if new_key_hash is not None:
            yield self._settle_key_change(charge_point_id, new_key_hash, answer["status"])
        answer = redact(answer)
        yield self._publish(
            f"command.{name}.answered", charge_point_id, {**audit, "response": answer}
        )
        yield maybeDeferred(self._remember_reservation, action, payload, answer)
        return {**answer, "commandId": command_id}

    def _settle_key_change(
        self, charge_point_id: str, key_hash: str, outcome: str
    ) -> Deferred[None]:
        """Apply and log what became of a new AuthorizationKey (see settle_key_change)."""
        if outcome == "Accepted":
            self.log.info(
                "Charge point {charge_point_id} accepted a new authorization key; "
                "the old one no longer admits it",
                charge_point_id=charge_point_id,
            )
        elif outcome not in _KEY_CHANGE_OUTCOMES:
            self.log.warn(
                "Charge point {charge_point_id} may or may not use the new authorization key "
                "({outcome}): both keys admit it until it logs in with the new one",
                charge_point_id=charge_point_id,
                outcome=outcome,
            )
        settled = self._database.run(settle_key_change, charge_point_id, key_hash, outcome)

        def changed(_: None) -> None:
            self._charger_changed(charge_point_id)

        return settled.addCallback(changed)

    def _remember_reservation(
        self, action: str, payload: dict[str, Any], answer: dict[str, Any]
    ) -> Deferred[Any] | None:
        """Keep what the charger made of a reservation of ours (others are ignored)."""
        if action == "ReserveNow":
            status = str(answer["status"]).lower()
        elif action == "CancelReservation" and answer["status"] == "Accepted":
            status = "cancelled"
        else:
            return None
        return self._database.run(
            reservations.set_reservation_status,
            payload["reservationId"],
            status,
            now=self._outbox.now(),
        )

    @inlineCallbacks
    def describe(self, command_id: str) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """A command's record from the audit log; for a remote start, its session."""
        entries = yield self._database.run(audit.list_audit_entries, command_id=command_id)
        if not entries:
            raise ApiError(404, "not_found", f"no command {command_id!r} (yet)")
        first, last = entries[0], entries[-1]
        detail = first.detail
        result: dict[str, Any] = {
            "commandId": command_id,
            "command": detail.get("command"),
            "chargePointId": first.charge_point_id,
            "requestedBy": detail.get("by"),
            "requestedAt": format_iso(first.at),
            "request": detail.get("request"),
            "outcome": last.outcome,
        }
        if last.outcome == "answered":
            result["response"] = last.detail.get("response")
        elif last.outcome == "failed":
            result["error"] = last.detail.get("error")
        if detail.get("command") == "remote-start" and last.outcome == "answered":
            request = detail.get("request") or {}
            session = yield self._database.run(
                transactions.session_started_after,
                charge_point_id=first.charge_point_id,
                id_tag=request.get("idTag", ""),
                connector_id=request.get("connectorId"),
                since=first.at,
            )
            result["sessionId"] = session.id if session is not None else None
        return result


def new_command_id() -> str:
    return uuid.uuid4().hex


#: What becomes of a key sent with ChangeConfiguration AuthorizationKey, by the
#: charger's answer. Accepted: the charger now uses it, the old key stops
#: working. Rejected, NotSupported, or never sent: the charger keeps its key,
#: the new one is forgotten. Anything else (RebootRequired, a CALLERROR, no
#: answer in time, a lost connection) leaves it unknown which key the charger
#: holds, so both stay valid until it logs in with the new one (then the old
#: one stops working) or an operator sets a key.
_KEY_CHANGE_OUTCOMES = {
    "Accepted": chargers.key_confirmed,
    "Rejected": chargers.drop_pending_key,
    "NotSupported": chargers.drop_pending_key,
    "never sent": chargers.drop_pending_key,
}


def settle_key_change(conn: Connection, charge_point_id: str, key_hash: str, outcome: str) -> None:
    """Apply the ``outcome`` of a key change (an answer's status, or "never sent")."""
    settle = _KEY_CHANGE_OUTCOMES.get(outcome)
    if settle is not None:
        settle(conn, charge_point_id, key_hash)


def _never_sent(error: Exception) -> str:
    """ "never sent" if ``error`` proves the command never reached the charger, else "unknown"."""
    never = ChargerNotConnected | InvalidCommand | RoutingUnavailable
    return "never sent" if isinstance(error, never) else "unknown"


def local_authorization_list(conn: Connection, *, now: datetime) -> list[dict[str, Any]]:
    """
    The id tags table as an OCPP 1.6 local authorization list, statuses as of
    ``now``, as Authorize answers them (a blocked account's tags Blocked).
    """
    return [
        {"idTag": record.id_tag, "idTagInfo": id_tag_info(record, now).to_ocpp()}
        for record in people.authorization_records(conn)
    ]


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
    if isinstance(error, RoutingUnavailable):
        # Never sent: where the charger is could not be known or reached now.
        return ApiError(503, "unavailable", f"cannot reach {charge_point_id} now: {error}")
    if isinstance(error, BadRoutedReply):
        return ApiError(502, "bad_gateway", f"{charge_point_id}'s node answered nonsense")
    raise error


def _no_change(conn: Connection) -> None:
    """An audit event's transaction holds only the event itself."""
