"""
The OpenAPI 3.1 document served at ``/api/openapi.json``.

Written as data next to the routes it describes; the test suite checks that
every Klein route is in it and validates live responses against it (OpenAPI
3.1 schemas are JSON Schema 2020-12).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from ocppd import __version__
from ocppd.api import openapi_lists as lists
from ocppd.api import openapi_people as people
from ocppd.api.cms import CONNECTOR_TYPES, MAX_KEY_LENGTH, MAX_POWER_W
from ocppd.api.command_forms import FILLED_BY_OCPPD as FILLED
from ocppd.api.commands import COMMANDS
from ocppd.bounds import INT32_MAX
from ocppd.credentials import MIN_CHARGER_KEY_LENGTH
from ocppd.ocpp.schemas import SchemaRegistry

_PLUG = {"enum": list(CONNECTOR_TYPES), "description": "the plug, as the operator recorded it"}
_MAX_POWER = {
    "type": "integer",
    "minimum": 1,
    "maximum": MAX_POWER_W,
    "description": "the most it delivers, in W, as the operator recorded it",
}
_BOOT_CLOSES = {
    "type": "boolean",
    "default": True,
    "description": "whether the charger's BootNotification closes the sessions still open on"
    " it (docs/ocpp.md, 'Sessions that cannot end'); false for a charger that boots on every"
    " reconnect while its sessions run on",
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}
ONLINE = {
    "type": "boolean",
    "description": "a node holds the charger's connection now (presence; docs/presence.md)",
}
ONLINE_SOURCE = {
    "enum": ["presence", "store"],
    "description": "where online was read: store only while presence is unreachable"
    " (the last state the store recorded, which may be stale)",
}


def obj(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def page_of(item: str) -> dict[str, Any]:
    return obj({"items": {"type": "array", "items": ref(item)}, "next": nullable(STRING)})


_SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": obj({"code": STRING, "message": STRING})}),
    "User": obj(
        {
            "id": INTEGER,
            "email": STRING,
            "role": {"enum": ["admin", "customer"]},
            "idTag": {"type": "string", "description": "customers only: app sessions' idTag"},
        },
        required=["id", "email", "role"],
    ),
    "Wallet": obj(
        {
            "balance": INTEGER,
            "held": {"type": "integer", "description": "held by app-started sessions"},
            "available": INTEGER,
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "minimumToStart": INTEGER,
            "topUpAvailable": {
                "type": "boolean",
                "description": "false while no payment provider is configured",
            },
        }
    ),
    "WalletTransaction": obj(
        {
            "id": INTEGER,
            "kind": {"enum": ["top_up", "debit", "refund", "adjustment"]},
            "amount": {"type": "integer", "description": "signed minor units"},
            "balance": {"type": "integer", "description": "the balance after it"},
            "currency": STRING,
            "sessionId": nullable(INTEGER),
            "reference": nullable(STRING),
            "at": TIME,
        }
    ),
    "TopUpRequest": {
        "type": "object",
        "properties": {"amount": {"type": "integer", "minimum": 1}},
        "required": ["amount"],
        "additionalProperties": False,
    },
    "StartRequest": {
        "type": "object",
        "properties": {
            "chargePointId": {"type": "string", "minLength": 1, "maxLength": 48},
            "connectorId": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
        "required": ["chargePointId", "connectorId"],
        "additionalProperties": False,
    },
    "StartAnswer": obj(
        {"commandId": STRING, "status": {"const": "Accepted"}, "sessionId": nullable(INTEGER)}
    ),
    "StopRequest": {
        "type": "object",
        "properties": {"sessionId": {"type": "integer", "minimum": 1}},
        "required": ["sessionId"],
        "additionalProperties": False,
    },
    "StopAnswer": obj({"status": {"const": "Accepted"}, "sessionId": INTEGER, "commandId": STRING}),
    "LoginRequest": obj({"email": STRING, "password": STRING}),
    "LoginResponse": obj({"token": STRING, "user": ref("User")}),
    "CommandRequest": {
        "type": "object",
        "description": "chargePointId plus the OCPP 1.6 request's own fields (camelCase).",
        "properties": {"chargePointId": STRING},
        "required": ["chargePointId"],
        "additionalProperties": True,
    },
    "CommandAnswer": {
        "type": "object",
        "description": "The charger's whole OCPP answer plus commandId (an extension).",
        "properties": {"commandId": STRING},
        "required": ["commandId"],
        "additionalProperties": True,
    },
    "CommandStatus": obj(
        {
            "commandId": STRING,
            "command": STRING,
            "chargePointId": STRING,
            "requestedBy": {"type": "object"},
            "requestedAt": TIME,
            "request": {"type": "object"},
            "outcome": {"enum": ["requested", "answered", "failed"]},
            "response": {"type": "object"},
            "error": {"type": "object"},
            "sessionId": nullable(INTEGER),
        },
        required=["commandId", "command", "chargePointId", "requestedAt", "outcome"],
    ),
    "Station": obj(
        {
            "id": INTEGER,
            "name": STRING,
            "address": nullable(STRING),
            "latitude": nullable({"type": "number"}),
            "longitude": nullable({"type": "number"}),
            "createdAt": TIME,
            "updatedAt": TIME,
            "chargers": {
                "type": "array",
                "description": "in the list only: its chargers, online as presence says",
                "items": obj({"chargePointId": STRING, "online": {"type": "boolean"}}),
            },
        },
        required=["id", "name", "address", "latitude", "longitude", "createdAt", "updatedAt"],
    ),
    "Tariff": obj(
        {
            "id": INTEGER,
            "name": STRING,
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "pricePerKwh": INTEGER,
            "pricePerMinute": INTEGER,
            "sessionFee": INTEGER,
            "sessionFeeAlways": {
                "type": "boolean",
                "description": "the fee also without energy delivered or time charged",
            },
            "createdAt": TIME,
            "updatedAt": TIME,
        }
    ),
    "Connector": obj(
        {
            "connectorId": INTEGER,
            "status": STRING,
            "errorCode": STRING,
            "info": nullable(STRING),
            "vendorErrorCode": nullable(STRING),
            "statusAt": TIME,
        }
    ),
    "Point": obj(
        {
            "chargePointId": STRING,
            "stationId": nullable(INTEGER),
            "tariffId": nullable(INTEGER),
            "registrationStatus": {"enum": ["Accepted", "Pending", "Rejected"]},
            "authorizationRequired": {"type": "boolean"},
            "vendor": nullable(STRING),
            "model": nullable(STRING),
            "serialNumber": nullable(STRING),
            "firmwareVersion": nullable(STRING),
            "online": ONLINE,
            "onlineSource": ONLINE_SOURCE,
            "lastSeenAt": nullable(TIME),
            "bootAt": nullable(TIME),
            "createdAt": TIME,
            "firmwareStatus": nullable(STRING),
            "firmwareStatusAt": nullable(TIME),
            "diagnosticsStatus": nullable(STRING),
            "diagnosticsStatusAt": nullable(TIME),
            "connectorType": nullable(_PLUG),
            "maxPowerW": nullable(_MAX_POWER),
            "bootClosesSessions": _BOOT_CLOSES,
            "connectors": {"type": "array", "items": ref("Connector")},
        }
    ),
    "Tag": obj(
        {
            "idTag": STRING,
            "status": {"enum": ["Accepted", "Blocked", "Expired", "Invalid"]},
            "expiresAt": nullable(TIME),
            "parentIdTag": nullable(STRING),
            "userId": nullable(INTEGER),
            "createdAt": TIME,
            "owner": nullable(
                obj(
                    {"userId": INTEGER, "email": STRING, "name": nullable(STRING)},
                )
            ),
        },
        # The owner's e-mail and name: in the lists (GET /api/cms/tags) only.
        required=["idTag", "status", "expiresAt", "parentIdTag", "userId", "createdAt"],
    ),
    "Session": obj(
        {
            "id": INTEGER,
            "transactionId": INTEGER,
            "chargePointId": STRING,
            "connectorId": INTEGER,
            "idTag": STRING,
            "userId": nullable(INTEGER),
            "status": {"enum": ["active", "completed"]},
            "startedAt": TIME,
            "stoppedAt": nullable(TIME),
            "meterStartWh": INTEGER,
            "meterStopWh": nullable(INTEGER),
            "energyWh": nullable(INTEGER),
            "cost": nullable(INTEGER),
            "currency": nullable(STRING),
            "stopReason": nullable(STRING),
            "chargerStopReason": nullable(
                {
                    **STRING,
                    "description": "the charger's own stop reason, when its StopTransaction"
                    " came after the central system closed the session (stopReason says why"
                    " it was closed); the session was billed again on its reading",
                }
            ),
            "idTagStatus": {
                "enum": ["Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"],
                "description": "what the start was answered; only Accepted starts are billed",
            },
            "review": nullable(ref("Review")),
            "customer": nullable(
                obj({"userId": INTEGER, "email": STRING, "name": nullable(STRING)})
            ),
        },
        # Who the customer is: in the CMS's lists (sessions, dashboard) only.
        required=[
            "id",
            "transactionId",
            "chargePointId",
            "connectorId",
            "idTag",
            "userId",
            "status",
            "startedAt",
            "stoppedAt",
            "meterStartWh",
            "meterStopWh",
            "energyWh",
            "cost",
            "currency",
            "stopReason",
            "chargerStopReason",
            "idTagStatus",
            "review",
        ],
    ),
    "Review": obj(
        {
            "status": {"enum": ["pending", "billed", "adjusted", "waived"]},
            "reasons": {"type": "array", "items": STRING},
            "computedCost": nullable({"type": "integer", "description": "minor units"}),
            "decidedBy": nullable(INTEGER),
            "decidedAt": nullable(TIME),
            "note": nullable(STRING),
        }
    ),
    "ReviewRequest": {
        "type": "object",
        "properties": {
            "decision": {"enum": ["bill_computed", "bill_amount", "waive"]},
            "amount": {
                "type": "integer",
                "minimum": 1,
                "maximum": INT32_MAX,
                "description": "minor units; bill_amount only",
            },
            "note": nullable({"type": "string", "maxLength": 500}),
        },
        "required": ["decision"],
        "additionalProperties": False,
    },
    "Counts": obj({"total": INTEGER, "online": INTEGER, "offline": INTEGER}),
    "Money": {
        "type": "object",
        "description": "minor units by ISO 4217 currency",
        "additionalProperties": INTEGER,
    },
    "Message": obj(
        {
            "id": INTEGER,
            "direction": {"enum": ["in", "out"]},
            "messageType": {"enum": ["CALL", "CALLRESULT", "CALLERROR"]},
            "action": nullable(STRING),
            "uniqueId": nullable(STRING),
            "payload": {},
            "at": TIME,
        }
    ),
    "UnmatchedStop": obj(
        {
            "id": INTEGER,
            "chargePointId": STRING,
            "transactionId": INTEGER,
            "meterStopWh": INTEGER,
            "stoppedAt": TIME,
            "reason": nullable(STRING),
            "idTag": nullable(STRING),
            "receivedAt": TIME,
        }
    ),
    "DiagnosticsUpload": obj(
        {
            "id": INTEGER,
            "chargePointId": STRING,
            "requestedBy": nullable(INTEGER),
            "createdAt": TIME,
            "expiresAt": TIME,
            "fileName": nullable(STRING),
            "size": nullable(INTEGER),
            "receivedAt": nullable(TIME),
        }
    ),
    "AuditEntry": obj(
        {
            "id": INTEGER,
            "at": TIME,
            "action": {"type": "string", "description": "command.reset, cms.tariff.updated, ..."},
            "outcome": {"enum": ["requested", "answered", "failed"]},
            "chargePointId": nullable(STRING),
            "commandId": nullable(STRING),
            "by": nullable(obj({"userId": INTEGER, "email": nullable(STRING)})),
            "detail": {"description": "what was asked and what came of it, as recorded"},
        }
    ),
}
_SCHEMAS["TopUpAnswer"] = obj(
    {
        "status": {"const": "credited"},
        "wallet": ref("Wallet"),
        "transaction": ref("WalletTransaction"),
    }
)
_SCHEMAS["Payment"] = obj(
    {
        "id": INTEGER,
        "provider": STRING,
        "reference": {"type": "string", "description": "the provider's id (a Checkout Session)"},
        "amount": INTEGER,
        "currency": STRING,
        "status": {"enum": ["pending", "paid"]},
        "refunded": {"type": "integer", "description": "minor units refunded so far"},
        "at": TIME,
    }
)
_SCHEMAS["PendingTopUp"] = obj(
    {
        "status": {
            "enum": ["pending", "paid"],
            "description": "paid: this key's payment is credited already",
        },
        "redirectUrl": {
            "anyOf": [{"type": "string", "format": "uri"}, {"type": "null"}],
            "description": "the provider's page where the customer pays (while pending)",
        },
        "payment": ref("Payment"),
        "wallet": ref("Wallet"),
    }
)
_SCHEMAS["Receipt"] = obj(
    {
        "number": STRING,
        "issuer": nullable(STRING),
        "customer": STRING,
        "session": obj(
            {
                "id": INTEGER,
                "chargePointId": STRING,
                "connectorId": INTEGER,
                "startedAt": TIME,
                "stoppedAt": TIME,
                "durationSeconds": INTEGER,
                "energyWh": INTEGER,
                "meterStartWh": INTEGER,
                "meterStopWh": nullable(INTEGER),
                "stopReason": nullable(STRING),
            }
        ),
        "station": nullable(obj({"id": INTEGER, "name": STRING, "address": nullable(STRING)})),
        "charger": obj({"id": STRING, "vendor": nullable(STRING), "model": nullable(STRING)}),
        "tariff": nullable(
            obj(
                {
                    "name": STRING,
                    "currency": STRING,
                    "pricePerKwh": INTEGER,
                    "pricePerMinute": INTEGER,
                    "sessionFee": INTEGER,
                }
            )
        ),
        "lines": {
            "type": "array",
            "description": "add up to total exactly; adjustment: billed other than computed",
            "items": obj(
                {
                    "kind": {"enum": ["fee", "energy", "time", "adjustment"]},
                    "quantity": {
                        "anyOf": [INTEGER, {"type": "null"}],
                        "description": "Wh (energy), seconds (time), 1 (fee)",
                    },
                    "unitPrice": {
                        "anyOf": [INTEGER, {"type": "null"}],
                        "description": "per kWh, per minute or per session",
                    },
                    "amount": INTEGER,
                }
            ),
        },
        "currency": STRING,
        "total": INTEGER,
        "vat": obj(
            {
                "rateBasisPoints": {"type": "integer", "description": "1900 = 19 %"},
                "amount": {
                    "type": "integer",
                    "description": "VAT included in total, rounded half up",
                },
                "net": INTEGER,
            }
        ),
    }
)
_SCHEMAS["WebhookAnswer"] = obj({"received": {"const": True}, "acted": {"type": "boolean"}})
_SCHEMAS["CloseRequest"] = {
    "type": "object",
    "properties": {"reason": {"type": "string", "minLength": 1, "maxLength": 500}},
    "required": ["reason"],
    "additionalProperties": False,
}
_SCHEMAS["CloseAnswer"] = obj({"session": ref("Session")})
_SCHEMAS["ReviewAnswer"] = obj(
    {"session": ref("Session"), "transaction": nullable(ref("WalletTransaction"))}
)
_SCHEMAS["Dashboard"] = obj(
    {
        "stations": ref("Counts"),
        "chargers": ref("Counts"),
        "onlineSource": ONLINE_SOURCE,
        "activeSessions": INTEGER,
        "energyWh": obj({"today": INTEGER, "month": INTEGER}),
        "revenue": obj({"today": ref("Money"), "month": ref("Money")}),
        "recentSessions": {"type": "array", "items": ref("Session")},
        "since": obj({"today": TIME, "month": TIME}),
    }
)
_SCHEMAS["Alert"] = obj(
    {
        "id": STRING,
        "key": STRING,
        "kind": {
            "enum": [
                "charger_offline",
                "connector_faulted",
                "session_long",
                "dead_letters",
                "lag",
            ]
        },
        "subject": STRING,
        "summary": STRING,
        "data": {"type": "object"},
        "since": nullable(TIME),
        "raisedAt": TIME,
        "resolvedAt": nullable(TIME),
        "node": STRING,
    }
)
_SCHEMAS["AlertList"] = obj({"alerts": {"type": "array", "items": ref("Alert")}})
_SCHEMAS["PublicCharger"] = obj(
    {
        "chargePointId": STRING,
        "stationId": nullable(INTEGER),
        "online": ONLINE,
        "onlineSource": ONLINE_SOURCE,
        "lastSeenAt": nullable(TIME),
        "vendor": nullable(STRING),
        "model": nullable(STRING),
        "available": {"type": "boolean"},
        "connectors": {"type": "array", "items": ref("Connector")},
        "connectorType": nullable(_PLUG),
        "maxPowerW": nullable(_MAX_POWER),
        "tariff": nullable(ref("Price")),
    }
)
_SCHEMAS["Price"] = {
    **obj(
        {
            "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "pricePerKwh": {"type": "integer", "minimum": 0, "description": "minor units"},
            "pricePerMinute": {"type": "integer", "minimum": 0, "description": "minor units"},
            "sessionFee": {"type": "integer", "minimum": 0, "description": "minor units"},
            "sessionFeeAlways": {
                "type": "boolean",
                "description": "the fee also for a session without energy or charged time",
            },
        }
    ),
    "description": "what a session costs (null: no tariff, sessions are not billed)",
}
_SCHEMAS["Live"] = obj(
    {
        "energyWh": INTEGER,
        "powerW": nullable(INTEGER),
        "socPercent": nullable({"type": "integer", "minimum": 0, "maximum": 100}),
        "cost": nullable({"type": "integer", "description": "minor units, running estimate"}),
        "currency": nullable(STRING),
        "at": TIME,
    }
)
_SCHEMAS["HistoryPoint"] = obj(
    {
        "at": TIME,
        "energyWh": nullable({"type": "integer", "description": "delivered since the start"}),
        "powerW": nullable(INTEGER),
        "socPercent": nullable(INTEGER),
    }
)
_SCHEMAS["SessionSnapshot"] = obj(
    {
        "session": ref("Session"),
        "tariff": nullable(ref("Price")),
        "live": nullable(ref("Live")),
        "history": {
            "type": "array",
            "items": ref("HistoryPoint"),
            "description": "thinned to at most 300 points of each measurand",
        },
    },
    required=["session", "tariff", "live"],
)
_SCHEMAS["RunningSessions"] = obj(
    {"items": {"type": "array", "items": ref("SessionSnapshot"), "maxItems": 20}}
)
_SCHEMAS["PublicStation"] = {
    "allOf": [
        ref("Station"),
        obj(
            {
                "online": {"type": "boolean"},
                "available": {"type": "integer", "description": "chargers available now"},
                "chargers": {"type": "array", "items": ref("PublicCharger")},
            }
        ),
    ]
}

_SCHEMAS["CommandForms"] = obj(
    {
        "commands": {
            "type": "array",
            "items": obj(
                {
                    "command": STRING,
                    "action": STRING,
                    "fields": {
                        "type": "array",
                        "description": "{name, type, required, enum?, maxLength?, format?,"
                        " minimum?, maximum?, fields? (object), items? (array), note?}"
                        " (ocppd/api/command_forms.py)",
                        "items": {"type": "object"},
                    },
                },
                required=["command", "action", "fields"],
            ),
        }
    },
    required=["commands"],
)
_METER_POINT = obj(
    {"at": TIME, "energyWh": nullable(INTEGER), "powerW": nullable(INTEGER)},
    required=["at", "energyWh", "powerW"],
)
_SCHEMAS["PointMeter"] = obj(
    {
        "chargePointId": STRING,
        "from": TIME,
        "to": TIME,
        "connectors": {
            "type": "array",
            "maxItems": 16,
            "items": obj(
                {
                    "connectorId": INTEGER,
                    "points": {"type": "array", "maxItems": 600, "items": _METER_POINT},
                },
                required=["connectorId", "points"],
            ),
        },
    },
    required=["chargePointId", "from", "to", "connectors"],
)

SCHEMAS: dict[str, Any] = {
    **_SCHEMAS,
    **people.SCHEMAS,
    **{
        f"{name}Page": page_of(name)
        for name in (
            "Station",
            "Tariff",
            "Point",
            "Tag",
            "Session",
            "Message",
            "AuditEntry",
            "DiagnosticsUpload",
            "UnmatchedStop",
            "PublicStation",
            "WalletTransaction",
        )
    },
}

CMS_KINDS = {"stations": "Station", "tariffs": "Tariff", "points": "Point", "tags": "Tag"}

#: Fields ocppd fills in when a command's body leaves them out (see docs/api.md).
FILLED_BY_OCPPD = {
    action: {field for (a, field) in FILLED if a == action} for (action, _) in FILLED
}

_CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$"}
_MONEY = {"type": "integer", "minimum": 0}
_ID_TAG = {"type": "string", "minLength": 1, "maxLength": 20}
#: What the CMS writes take: the writable fields (null clears an optional one on
#: update). Read-only fields of a fetched object are accepted and ignored.
_CMS_BODIES: dict[str, dict[str, Any]] = {
    "Station": {
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "address": nullable({"type": "string", "maxLength": 500}),
            "latitude": nullable({"type": "number", "minimum": -90, "maximum": 90}),
            "longitude": nullable({"type": "number", "minimum": -180, "maximum": 180}),
        },
        "required": ["name"],
    },
    "Tariff": {
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 100},
            "currency": _CURRENCY,
            "pricePerKwh": _MONEY,
            "pricePerMinute": _MONEY,
            "sessionFee": _MONEY,
            "sessionFeeAlways": {"type": "boolean"},
        },
        "required": ["name", "currency", "pricePerKwh"],
    },
    "Point": {
        "properties": {
            "chargePointId": {"type": "string", "pattern": "^[A-Za-z0-9._:+@~\\-]{1,48}$"},
            "authorizationKey": nullable(
                {"type": "string", "minLength": MIN_CHARGER_KEY_LENGTH, "maxLength": MAX_KEY_LENGTH}
            ),
            "stationId": nullable(INTEGER),
            "tariffId": nullable(INTEGER),
            "registrationStatus": {"enum": ["Accepted", "Pending", "Rejected"]},
            "connectorType": nullable(_PLUG),
            "maxPowerW": nullable(_MAX_POWER),
            "bootClosesSessions": _BOOT_CLOSES,
        },
        "required": ["chargePointId"],
    },
    "Tag": {
        "properties": {
            "idTag": _ID_TAG,
            "status": {"enum": ["Accepted", "Blocked", "Expired", "Invalid"]},
            "expiresAt": nullable(TIME),
            "parentIdTag": nullable(_ID_TAG),
            "userId": nullable(INTEGER),
        },
        "required": ["idTag"],
    },
}


def cms_body(schema: str, *, create: bool) -> dict[str, Any]:
    spec = _CMS_BODIES[schema]
    return {
        "type": "object",
        "properties": spec["properties"],
        # An update names only what changes, and the key is in the path.
        "required": spec["required"] if create else [],
        "additionalProperties": True,
    }


@cache
def _schemas() -> SchemaRegistry:
    return SchemaRegistry.load()


@cache
def command_body(action: str) -> dict[str, Any]:
    """
    The body of ``/api/charger/{command}``: the official OCPP 1.6 request
    schema of ``action`` (from the ``ocpp`` package) with the ranges ocppd
    adds to its integers (``ocppd.ocpp.schemas``), plus ``chargePointId``.
    """
    loaded = _schemas().request_schema(action)
    assert loaded is not None, action
    schema = {k: v for k, v in loaded.items() if k not in ("$schema", "id", "$id")}
    filled = FILLED_BY_OCPPD.get(action, set())
    return {
        **schema,
        "title": f"{action} for chargePointId",
        "properties": {"chargePointId": {"type": "string", "minLength": 1}, **schema["properties"]},
        "required": ["chargePointId", *(f for f in schema.get("required", []) if f not in filled)],
    }


def response(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


ERROR = response("Error", "see the error code")


def errors(*statuses: int) -> dict[str, Any]:
    return {str(status): ERROR for status in statuses}


def body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": ref(schema)}}}


SECURED: list[dict[str, list[str]]] = [{"bearer": []}]
PAGING = [
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
    {"name": "cursor", "in": "query", "schema": STRING},
]


def key_parameter(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        "/api/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": {"description": "OK"}}}
        },
        "/api/auth/login": {
            "post": {
                "summary": "Sign in; a bearer token",
                "requestBody": body("LoginRequest"),
                "responses": {"200": response("LoginResponse"), **errors(400, 401, 415, 429)},
            }
        },
        "/api/auth/logout": {
            "post": {
                "summary": "Revoke the token used",
                "security": SECURED,
                "responses": {"200": {"description": "revoked"}, **errors(401)},
            }
        },
        "/api/auth/me": {
            "get": {
                "summary": "The signed-in user",
                "security": SECURED,
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": obj({"user": ref("User")})}},
                    },
                    **errors(401),
                },
            }
        },
        "/api/stations": {
            "get": {
                "summary": "Stations with their chargers' live availability (any signed-in user)",
                "security": SECURED,
                "parameters": PAGING,
                "responses": {"200": response("PublicStationPage"), **errors(400, 401)},
            }
        },
        "/api/user/sessions": {
            "get": {
                "summary": "The signed-in user's own sessions, newest first",
                "security": SECURED,
                "parameters": [
                    *PAGING,
                    {"name": "chargePointId", "in": "query", "schema": STRING},
                    {"name": "status", "in": "query", "schema": {"enum": ["active", "completed"]}},
                    {"name": "from", "in": "query", "schema": TIME},
                    {"name": "to", "in": "query", "schema": TIME},
                ],
                "responses": {"200": response("SessionPage"), **errors(400, 401)},
            }
        },
        "/api/user/sessions/running": {
            "get": {
                "summary": "The signed-in user's running sessions with their live figures",
                "security": SECURED,
                "responses": {"200": response("RunningSessions"), **errors(401)},
            }
        },
        "/api/user/sessions/{sessionId}": {
            "get": {
                "summary": "One of the user's sessions: tariff, live figures, meter history",
                "security": SECURED,
                "parameters": [key_parameter("sessionId", STRING)],
                "responses": {"200": response("SessionSnapshot"), **errors(401, 404)},
            }
        },
        "/api/user/wallet": {
            "get": {
                "summary": "The signed-in user's wallet",
                "security": SECURED,
                "responses": {"200": response("Wallet"), **errors(401)},
            }
        },
        "/api/user/wallet/top-up": {
            "post": {
                "summary": "Top up through the payment provider (Idempotency-Key header honoured)",
                "security": SECURED,
                "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": STRING}],
                "requestBody": body("TopUpRequest"),
                "responses": {
                    "201": response("TopUpAnswer", "credited"),
                    "200": response("TopUpAnswer", "credited before (same Idempotency-Key)"),
                    "202": response(
                        "PendingTopUp",
                        "to be paid on the provider's page; credited by its webhook",
                    ),
                    **errors(400, 401, 402, 409, 415, 503),
                },
            }
        },
        "/api/user/sessions/{sessionId}/receipt": {
            "get": {
                "summary": "The receipt of one's own finished session (the printable page's data)",
                "security": SECURED,
                "parameters": [key_parameter("sessionId", STRING)],
                "responses": {"200": response("Receipt"), **errors(401, 404, 409)},
            }
        },
        "/api/user/sessions/{sessionId}/receipt.pdf": {
            "get": {
                "summary": "The receipt of one's own finished session as a PDF, in the"
                " reader's language: lang, else the first of Accept-Language the panel"
                " speaks, else English",
                "security": SECURED,
                "parameters": [
                    key_parameter("sessionId", STRING),
                    {
                        "name": "lang",
                        "in": "query",
                        "schema": {"type": "string"},
                        "description": "en, de or fr; another value is ignored",
                    },
                ],
                "responses": {
                    "200": {
                        "description": "the receipt (Content-Disposition: attachment)",
                        "content": {
                            "application/pdf": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    **errors(401, 404, 409),
                },
            }
        },
        "/api/payments/stripe/webhook": {
            "post": {
                "summary": "Stripe's webhook: signed events credit paid top-ups and debit"
                " refunds, once each (Stripe-Signature header; docs/payments.md)",
                "parameters": [{"name": "Stripe-Signature", "in": "header", "schema": STRING}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "responses": {
                    "200": response("WebhookAnswer", "received (acted: it changed a wallet)"),
                    **errors(400, 404),
                },
            }
        },
        "/api/user/wallet/transactions": {
            "get": {
                "summary": "The signed-in user's wallet transactions, newest first",
                "security": SECURED,
                "parameters": PAGING,
                "responses": {"200": response("WalletTransactionPage"), **errors(400, 401)},
            }
        },
        "/api/user/charging/start": {
            "post": {
                "summary": "Start charging on a connector (holds the wallet's available funds)",
                "security": SECURED,
                "requestBody": body("StartRequest"),
                "responses": {
                    "202": response("StartAnswer", "the charger accepted"),
                    **errors(400, 401, 402, 404, 409, 415, 502, 503, 504),
                },
            }
        },
        "/api/user/charging/stop": {
            "post": {
                "summary": "Stop one's own active session",
                "security": SECURED,
                "requestBody": body("StopRequest"),
                "responses": {
                    "202": response("StopAnswer", "the charger accepted"),
                    **errors(400, 401, 404, 409, 415, 502, 503, 504),
                },
            }
        },
        "/api/cms/dashboard": {
            "get": {
                "summary": "Stations and chargers online, active sessions, energy and revenue",
                "security": SECURED,
                "responses": {"200": response("Dashboard"), **errors(401, 403)},
            }
        },
        "/api/cms/alerts": {
            "get": {
                "summary": "The open alerts, newest first (docs/operations.md, Alerts)",
                "security": SECURED,
                "responses": {"200": response("AlertList"), **errors(401, 403)},
            }
        },
        "/api/chargers/{chargePointId}": {
            "get": {
                "summary": "One charger's live status (any signed-in user)",
                "security": SECURED,
                "parameters": [key_parameter("chargePointId", STRING)],
                "responses": {"200": response("PublicCharger"), **errors(401, 404)},
            }
        },
        "/api/charger/commands/{commandId}": {
            "get": {
                "summary": "A command's outcome; for a remote start, its session",
                "security": SECURED,
                "parameters": [key_parameter("commandId", STRING)],
                "responses": {"200": response("CommandStatus"), **errors(401, 403, 404)},
            }
        },
        "/api/cms/sessions": {
            "get": {
                "summary": "Sessions, newest first unless sorted, searched and filtered",
                "security": SECURED,
                "parameters": [*PAGING, *lists.FILTERS["sessions"]],
                "responses": {"200": response("SessionPage"), **errors(400, 401, 403)},
            }
        },
        "/api/cms/sessions/{sessionId}/review": {
            "post": {
                "summary": "Decide a session held for billing review: bill, bill an amount, waive",
                "security": SECURED,
                "parameters": [key_parameter("sessionId", STRING)],
                "requestBody": body("ReviewRequest"),
                "responses": {
                    "200": response("ReviewAnswer", "decided (or the same decision before)"),
                    **errors(400, 401, 403, 404, 409, 415),
                },
            }
        },
        "/api/cms/points/{chargePointId}/diagnostics": {
            "get": {
                "summary": "A point's diagnostics uploads (GetDiagnostics without a location),"
                " newest first",
                "security": SECURED,
                "parameters": [key_parameter("chargePointId", STRING), *PAGING],
                "responses": {
                    "200": response("DiagnosticsUploadPage"),
                    **errors(400, 401, 403, 404),
                },
            }
        },
        "/api/cms/points/{chargePointId}/unmatched-stops": {
            "get": {
                "summary": "A point's StopTransactions that changed no session (unknown, or"
                " after the session was closed), newest first",
                "security": SECURED,
                "parameters": [key_parameter("chargePointId", STRING), *PAGING],
                "responses": {
                    "200": response("UnmatchedStopPage"),
                    **errors(400, 401, 403),
                },
            }
        },
        "/api/cms/diagnostics/{uploadId}": {
            "delete": {
                "summary": "Delete an upload and its file (audited, audit.cms.diagnostics.deleted)",
                "security": SECURED,
                "parameters": [key_parameter("uploadId", STRING)],
                "responses": {
                    "200": {
                        "description": "what was deleted",
                        "content": {
                            "application/json": {
                                "schema": obj({"deleted": ref("DiagnosticsUpload")})
                            }
                        },
                    },
                    # 409: the file could not be deleted (it and its row are kept).
                    **errors(401, 403, 404, 409),
                },
            }
        },
        "/api/cms/diagnostics/{uploadId}/file": {
            "get": {
                "summary": "Download the file a charger uploaded",
                "security": SECURED,
                "parameters": [key_parameter("uploadId", STRING)],
                "responses": {
                    "200": {
                        "description": "the file, as uploaded",
                        "content": {"application/octet-stream": {"schema": {}}},
                    },
                    **errors(401, 403, 404),
                },
            }
        },
        "/api/cms/firmware": {
            "get": {
                "summary": "The firmware files served for UpdateFirmware ([files] firmware_dir)",
                "security": SECURED,
                "responses": {
                    "200": {
                        "description": "the files, by name",
                        "content": {
                            "application/json": {
                                "schema": obj(
                                    {
                                        "items": {
                                            "type": "array",
                                            "items": obj(
                                                {
                                                    "name": STRING,
                                                    "size": INTEGER,
                                                    "modifiedAt": TIME,
                                                    # None without [files] public_url.
                                                    "url": nullable(STRING),
                                                }
                                            ),
                                        }
                                    }
                                )
                            }
                        },
                    },
                    **errors(401, 403),
                },
            }
        },
        "/api/cms/audit": {
            "get": {
                "summary": "The audit log, newest first: commands, CMS changes, money decisions",
                "security": SECURED,
                "parameters": [
                    *PAGING,
                    {"name": "chargePointId", "in": "query", "schema": STRING},
                    {"name": "userId", "in": "query", "schema": INTEGER},
                    {
                        "name": "email",
                        "in": "query",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 254},
                        "description": "the actor's e-mail (any case)",
                    },
                    {
                        "name": "kind",
                        "in": "query",
                        "schema": {
                            "type": "string",
                            "maxLength": 64,
                            "pattern": r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$",
                        },
                        "description": "an action or its first words: command, cms.tariff",
                    },
                    {"name": "from", "in": "query", "schema": TIME},
                    {"name": "to", "in": "query", "schema": TIME},
                ],
                "responses": {"200": response("AuditEntryPage"), **errors(400, 401, 403)},
            }
        },
        "/api/cms/sessions/{sessionId}/close": {
            "post": {
                "summary": "Close a session that cannot end, by hand, with a reason (audited):"
                " on its last reading, billed as a stop",
                "security": SECURED,
                "parameters": [key_parameter("sessionId", STRING)],
                "requestBody": body("CloseRequest"),
                "responses": {
                    "200": response("CloseAnswer", "closed (or closed by hand before)"),
                    **errors(400, 401, 403, 404, 409, 415),
                },
            }
        },
        "/api/cms/commands": {
            "get": {
                "summary": "Each charger command's form: its request's fields, from the OCPP"
                " 1.6 schemas the API validates with (ranges included)",
                "security": SECURED,
                "responses": {"200": response("CommandForms"), **errors(401, 403)},
            }
        },
        "/api/cms/points/{chargePointId}/meter": {
            "get": {
                "summary": "A point's energy register and power per connector over a period"
                " (at most 31 days, default the last 24 hours), thinned to 300 points each",
                "security": SECURED,
                "parameters": [
                    key_parameter("chargePointId", STRING),
                    {"name": "from", "in": "query", "schema": TIME},
                    {"name": "to", "in": "query", "schema": TIME},
                ],
                "responses": {"200": response("PointMeter"), **errors(400, 401, 403, 404)},
            }
        },
        "/api/cms/points/{chargePointId}/messages": {
            "get": {
                "summary": "The OCPP message log of a point, newest first",
                "security": SECURED,
                "parameters": [key_parameter("chargePointId", STRING), *PAGING],
                "responses": {"200": response("MessagePage"), **errors(400, 401, 403, 404)},
            }
        },
    }
    # Imported here: it builds on this module's helpers.
    from ocppd.api.openapi_reports import report_paths

    paths.update(report_paths())
    for name, action in COMMANDS.items():
        paths[f"/api/charger/{name}"] = {
            "post": {
                "summary": f"Send {action} to a charger (admin)",
                "security": SECURED,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": command_body(action)}},
                },
                "responses": {
                    "200": response("CommandAnswer"),
                    **errors(400, 401, 403, 409, 502, 503, 504),
                },
            }
        }
    for kind, schema in CMS_KINDS.items():
        key = key_parameter("key", STRING)
        paths[f"/api/cms/{kind}"] = {
            "get": {
                "summary": f"List {kind}",
                "security": SECURED,
                "parameters": [*PAGING, *lists.FILTERS.get(kind, [])],
                "responses": {"200": response(f"{schema}Page"), **errors(400, 401, 403)},
            },
            "post": {
                "summary": f"Create one of {kind}",
                "security": SECURED,
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": cms_body(schema, create=True)}},
                },
                "responses": {"201": response(schema), **errors(400, 401, 403, 409)},
            },
        }
        paths[f"/api/cms/{kind}/{{key}}"] = {
            "get": {
                "security": SECURED,
                "parameters": [key],
                "responses": {"200": response(schema), **errors(401, 403, 404)},
            },
            "put": {
                "summary": "Update: the fields given replace, null clears",
                "security": SECURED,
                "parameters": [key],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": cms_body(schema, create=False)}},
                },
                "responses": {"200": response(schema), **errors(400, 401, 403, 404, 409)},
            },
            "delete": {
                "security": SECURED,
                "parameters": [key],
                "responses": {
                    "200": {
                        "description": "deleted",
                        "content": {"application/json": {"schema": obj({"deleted": ref(schema)})}},
                    },
                    **errors(401, 403, 404, 409),
                },
            },
        }
    paths.update(people.paths())
    paths.update(lists.paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "ocppd", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
