"""OpenAPI entries of the stations, points and sessions lists (``ocppd.api.cms_lists``)."""

from __future__ import annotations

from typing import Any

from ocppd.api.cms_people import MAX_QUERY
from ocppd.api.openapi_people import CSV, SECURED, error_responses, query_parameter, sort_enum
from ocppd.store.cms_lists import POINT_SORTS, SESSION_SORTS, STATION_SORTS
from ocppd.store.tables import REGISTRATION_STATUSES, REVIEW_STATUSES, TRANSACTION_STATUSES

STRING = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}


def _search(what: str) -> dict[str, Any]:
    return query_parameter(
        "q", {"type": "string", "maxLength": MAX_QUERY}, f"case-insensitive text in {what}"
    )


#: Each list's query parameters besides paging (its export takes the same).
FILTERS: dict[str, list[dict[str, Any]]] = {
    "stations": [
        _search("the name or address"),
        query_parameter(
            "sort", sort_enum(STATION_SORTS), "a minus sign sorts descending; default created"
        ),
    ],
    "points": [
        _search("the id, vendor, model, serial number or firmware"),
        query_parameter("stationId", {"type": "integer", "minimum": 1}),
        query_parameter("registrationStatus", {"enum": list(REGISTRATION_STATUSES)}),
        query_parameter(
            "sort", sort_enum(POINT_SORTS), "a minus sign sorts descending; default chargePointId"
        ),
    ],
    "sessions": [
        _search("the charger's id, the id tag or the customer's e-mail or name"),
        query_parameter("chargePointId", STRING, "one charger, its id in any case"),
        query_parameter("userId", {"type": "integer", "minimum": 1}),
        query_parameter("status", {"enum": list(TRANSACTION_STATUSES)}),
        query_parameter("review", {"enum": list(REVIEW_STATUSES)}),
        query_parameter("from", TIME),
        query_parameter("to", TIME),
        query_parameter(
            "sort", sort_enum(SESSION_SORTS), "a minus sign sorts descending; default -id"
        ),
    ],
}


def paths() -> dict[str, Any]:
    return {
        f"/api/cms/{kind}.csv": {
            "get": {
                "summary": f"Export the {kind} list with its filters and order, whole, as CSV",
                "security": SECURED,
                "parameters": parameters,
                "responses": {"200": CSV, **error_responses(400, 401, 403, 413)},
            }
        }
        for kind, parameters in FILTERS.items()
    }
