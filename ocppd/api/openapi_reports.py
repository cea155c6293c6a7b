"""The OpenAPI operations of the reports (``ocppd.api.cms_reports``), for ``openapi.document``."""

from __future__ import annotations

from typing import Any

from ocppd.api.cms_reports import MAX_BUCKETS, MAX_DAYS
from ocppd.api.openapi import (
    INTEGER,
    SECURED,
    STRING,
    TIME,
    errors,
    key_parameter,
    nullable,
    obj,
)
from ocppd.store.connections import RECENT_CONNECTIONS
from ocppd.store.reports import PERIODS

_MONEY_BY_CURRENCY = {
    "type": "object",
    "description": "minor units billed, by ISO 4217 currency",
    "additionalProperties": {"type": "integer"},
}

_FIGURES = {
    "sessions": {"type": "integer", "minimum": 0},
    "energyWh": {"type": "integer", "description": "a running session's energy so far"},
    "revenue": _MONEY_BY_CURRENCY,
}

SESSIONS_REPORT = obj(
    {
        "period": {"enum": list(PERIODS)},
        "from": TIME,
        "to": TIME,
        "currencies": {"type": "array", "items": STRING},
        "buckets": {
            "type": "array",
            "maxItems": MAX_BUCKETS,
            "items": obj({"start": TIME, **_FIGURES}),
        },
        "totals": obj(_FIGURES),
    }
)

UTILISATION_REPORT = obj(
    {
        "from": TIME,
        "to": TIME,
        "items": {
            "type": "array",
            "items": obj(
                {
                    "stationId": nullable(INTEGER),
                    "name": nullable(STRING),
                    "connectors": INTEGER,
                    "busySeconds": INTEGER,
                    "utilisation": nullable(
                        {
                            "type": "number",
                            "minimum": 0,
                            "maximum": 1,
                            "description": "share of the connectors' time with a session"
                            " (null: no connectors known)",
                        }
                    ),
                }
            ),
        },
    }
)

FAULTS_REPORT = obj(
    {
        "from": TIME,
        "to": TIME,
        "chargers": {"type": "integer", "description": "how many chargers there are"},
        "items": {
            "type": "array",
            "items": obj(
                {
                    "chargePointId": STRING,
                    "stationId": nullable(INTEGER),
                    "faults": {
                        "type": "integer",
                        "description": "StatusNotification Faulted frames in the message log",
                    },
                    "lastFaultAt": nullable(TIME),
                    "boots": INTEGER,
                    "faultedConnectors": {"type": "integer", "description": "Faulted now"},
                    "online": {"type": "boolean"},
                    "lastSeenAt": nullable(TIME),
                    "offlineSeconds": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "seconds of the span (from the charger's creation, if"
                        " later) with no connection in its connection history",
                    },
                    "outages": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "stretches of offline time within the span",
                    },
                }
            ),
        },
    }
)

CONNECTIONS = obj(
    {
        "items": {
            "type": "array",
            "maxItems": RECENT_CONNECTIONS,
            "items": obj(
                {
                    "connectionId": STRING,
                    "node": nullable(STRING),
                    "connectedAt": TIME,
                    "disconnectedAt": nullable(TIME),
                    "durationSeconds": nullable(
                        {"type": "integer", "minimum": 0, "description": "null: still open"}
                    ),
                    "closeCode": nullable(INTEGER),
                    "closeReason": nullable(STRING),
                }
            ),
        }
    }
)

_SPAN = [
    {"name": "from", "in": "query", "schema": TIME},
    {"name": "to", "in": "query", "schema": TIME, "description": "default: now"},
]


def _report(summary: str, schema: dict[str, Any], parameters: list[Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "security": SECURED,
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {"application/json": {"schema": schema}},
                },
                **errors(400, 401, 403),
            },
        }
    }


def report_paths() -> dict[str, Any]:
    return {
        "/api/cms/reports/sessions": _report(
            f"Sessions, energy and revenue per UTC day, week (from Monday) or month,"
            f" by start; at most {MAX_BUCKETS} buckets",
            SESSIONS_REPORT,
            [{"name": "period", "in": "query", "schema": {"enum": list(PERIODS)}}, *_SPAN],
        ),
        "/api/cms/reports/utilisation": _report(
            f"Per station, the share of connector time with a session; at most {MAX_DAYS} days",
            UTILISATION_REPORT,
            _SPAN,
        ),
        "/api/cms/reports/faults": _report(
            f"Per charger, faults and boots logged, and offline time; at most {MAX_DAYS} days",
            FAULTS_REPORT,
            [
                *_SPAN,
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    "description": "the chargers in most trouble first (default 50)",
                },
            ],
        ),
        "/api/cms/points/{chargePointId}/connections": {
            "get": {
                "summary": f"A point's {RECENT_CONNECTIONS} newest connections, newest first",
                "security": SECURED,
                "parameters": [key_parameter("chargePointId", STRING)],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"application/json": {"schema": CONNECTIONS}},
                    },
                    **errors(401, 403),
                },
            }
        },
        "/api/cms/map": {
            "get": {
                "summary": "The station map's tile server ([web] map_tiles; null: no tiles)",
                "security": SECURED,
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "application/json": {
                                "schema": obj(
                                    {
                                        "tiles": nullable(
                                            {
                                                "type": "string",
                                                "description": "a Leaflet URL template",
                                            }
                                        ),
                                        "attribution": nullable(STRING),
                                    }
                                )
                            }
                        },
                    },
                    **errors(401, 403),
                },
            }
        },
    }
