"""The OpenAPI entries of customers, id tags and wallets in the CMS (``ocppd.api.cms_people``)."""

from __future__ import annotations

from typing import Any

from ocppd.api.cms_people import (
    MAX_IDEMPOTENCY_KEY,
    MAX_NAME,
    MAX_PASSWORD,
    MAX_QUERY,
    MAX_REASON,
    MIN_PASSWORD,
    MIN_REASON,
)
from ocppd.store.people import TAG_SORTS, USER_SORTS

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
TIME = {"type": "string", "format": "date-time"}
BOOLEAN = {"type": "boolean"}
ROLE = {"enum": ["admin", "customer"]}
NAME = {"anyOf": [{"type": "string", "maxLength": MAX_NAME}, {"type": "null"}]}
SECURED: list[dict[str, list[str]]] = [{"bearer": []}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(properties: dict[str, Any], *, required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
    }


def _json(schema: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def error_responses(*statuses: int) -> dict[str, Any]:
    return {str(s): _json("Error", "see the error code") for s in statuses}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def sort_enum(names: Any) -> dict[str, Any]:
    return {"enum": [f"{sign}{name}" for name in names for sign in ("", "-")]}


def query_parameter(
    name: str, schema: dict[str, Any], description: str | None = None
) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


PAGING = [
    query_parameter("limit", {"type": "integer", "minimum": 1, "maximum": 200}),
    query_parameter("cursor", STRING),
]
SEARCH = query_parameter(
    "q",
    {"type": "string", "maxLength": MAX_QUERY},
    "case-insensitive text in the e-mail, name or id tags",
)
USER_FILTERS = [
    SEARCH,
    query_parameter("role", ROLE),
    query_parameter("blocked", {"enum": ["true", "false"]}),
    query_parameter("sort", sort_enum(USER_SORTS), "a minus sign sorts descending; default email"),
]
TAG_FILTERS = [
    SEARCH,
    query_parameter("status", {"enum": ["Accepted", "Blocked", "Expired", "Invalid"]}),
    query_parameter("userId", {"type": "integer", "minimum": 1}, "the owner's tags only"),
    query_parameter("sort", sort_enum(TAG_SORTS), "a minus sign sorts descending; default idTag"),
]
USER_ID = {"name": "userId", "in": "path", "required": True, "schema": STRING}
CSV = {"description": "the whole list as CSV", "content": {"text/csv": {"schema": STRING}}}

SCHEMAS: dict[str, Any] = {
    "Customer": _obj(
        {
            "id": INTEGER,
            "email": STRING,
            "name": _nullable(STRING),
            "role": ROLE,
            "blocked": BOOLEAN,
            "blockedAt": _nullable(TIME),
            "createdAt": TIME,
            "tags": {"type": "integer", "description": "how many id tags are theirs"},
            "wallet": _nullable(
                {
                    "type": "object",
                    "description": "held and available only on GET /api/cms/users/{userId}",
                    "properties": {
                        "balance": INTEGER,
                        "held": INTEGER,
                        "available": INTEGER,
                        "currency": STRING,
                    },
                    "required": ["balance", "currency"],
                }
            ),
        }
    ),
    "CustomerPage": _obj(
        {"items": {"type": "array", "items": _ref("Customer")}, "next": _nullable(STRING)}
    ),
    "CustomerCreate": {
        "type": "object",
        "properties": {
            "email": {"type": "string", "maxLength": 254},
            "name": NAME,
            "role": ROLE,
            "password": _nullable(
                {"type": "string", "minLength": MIN_PASSWORD, "maxLength": MAX_PASSWORD}
            ),
        },
        "required": ["email"],
        "additionalProperties": False,
    },
    "CustomerUpdate": {
        "type": "object",
        "description": "the fields given replace; read-only fields of a GET are ignored",
        "properties": {"name": NAME, "role": ROLE, "blocked": BOOLEAN},
        "additionalProperties": True,
    },
    "WalletAdjustment": {
        "type": "object",
        "properties": {
            "amount": {"type": "integer", "description": "signed minor units, not 0"},
            "reason": {"type": "string", "minLength": MIN_REASON, "maxLength": MAX_REASON},
        },
        "required": ["amount", "reason"],
        "additionalProperties": False,
    },
    "WalletAdjusted": _obj(
        {
            "transaction": _ref("WalletTransaction"),
            "wallet": _obj(
                {"balance": INTEGER, "held": INTEGER, "available": INTEGER, "currency": STRING}
            ),
        }
    ),
}


def paths() -> dict[str, Any]:
    return {
        "/api/cms/users": {
            "get": {
                "summary": "Users: searched, filtered, sorted, in keyset pages",
                "security": SECURED,
                "parameters": [*PAGING, *USER_FILTERS],
                "responses": {"200": _json("CustomerPage"), **error_responses(400, 401, 403)},
            },
            "post": {
                "summary": "Create a user (without a password: cannot sign in)",
                "security": SECURED,
                "requestBody": _body("CustomerCreate"),
                "responses": {"201": _json("Customer"), **error_responses(400, 401, 403, 409, 415)},
            },
        },
        "/api/cms/users.csv": {
            "get": {
                "summary": "Export the users list with its filters and order, whole, as CSV",
                "security": SECURED,
                "parameters": USER_FILTERS,
                "responses": {"200": CSV, **error_responses(400, 401, 403, 413)},
            }
        },
        "/api/cms/tags.csv": {
            "get": {
                "summary": "Export the id tags list with its filters and order, whole, as CSV",
                "security": SECURED,
                "parameters": TAG_FILTERS,
                "responses": {"200": CSV, **error_responses(400, 401, 403, 413)},
            }
        },
        "/api/cms/users/{userId}": {
            "get": {
                "summary": "A user with their wallet",
                "security": SECURED,
                "parameters": [USER_ID],
                "responses": {"200": _json("Customer"), **error_responses(401, 403, 404)},
            },
            "put": {
                "summary": "Edit a user's name or role; block or unblock them (audited)",
                "security": SECURED,
                "parameters": [USER_ID],
                "requestBody": _body("CustomerUpdate"),
                "responses": {
                    "200": _json("Customer"),
                    **error_responses(400, 401, 403, 404, 409, 415),
                },
            },
        },
        "/api/cms/users/{userId}/wallet/transactions": {
            "get": {
                "summary": "A user's wallet transactions, newest first",
                "security": SECURED,
                "parameters": [USER_ID, *PAGING],
                "responses": {
                    "200": _json("WalletTransactionPage"),
                    **error_responses(400, 401, 403, 404),
                },
            }
        },
        "/api/cms/users/{userId}/wallet/adjustments": {
            "post": {
                "summary": "Credit (positive) or debit (negative) a wallet by hand, with a"
                " reason (audited); once per Idempotency-Key",
                "security": SECURED,
                "parameters": [
                    USER_ID,
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": True,
                        "schema": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_IDEMPOTENCY_KEY,
                        },
                    },
                ],
                "requestBody": _body("WalletAdjustment"),
                "responses": {
                    "201": _json("WalletAdjusted", "posted"),
                    "200": _json("WalletAdjusted", "posted before under this key"),
                    **error_responses(400, 401, 403, 404, 409, 415),
                },
            }
        },
    }
