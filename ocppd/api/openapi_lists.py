"""OpenAPI entries of the stations, points and sessions lists (``ocppd.api.cms_lists``)."""

from __future__ import annotations

from typing import Any

from ocppd.api.cms_people import MAX_QUERY
from ocppd.api.openapi_people import CSV, SECURED, _errors, _query, _sorts
from ocppd.store.cms_lists import POINT_SORTS, SESSION_SORTS, STATION_SORTS
from ocppd.store.tables import REGISTRATION_STATUSES, REVIEW_STATUSES, TRANSACTION_STATUSES

STRING = {"type": "string"}
TIME = {"type": "string", "format": "date-time"}


def _search(what: str) -> dict[str, Any]:
    return _query(
        "q", {"type": "string", "maxLength": MAX_QUERY}, f"case-insensitive text in {what}"
    )


#: Each list's query parameters besides paging (its export takes the same).
FILTERS: dict[str, list[dict[str, Any]]] = {
    "stations": [
        _search("the name or address"),
        _query("sort", _sorts(STATION_SORTS), "a minus sign sorts descending; default created"),
    ],
    "points": [
        _search("the id, vendor, model, serial number or firmware"),
        _query("stationId", {"type": "integer", "minimum": 1}),
        _query("registrationStatus", {"enum": list(REGISTRATION_STATUSES)}),
        _query("sort", _sorts(POINT_SORTS), "a minus sign sorts descending; default chargePointId"),
    ],
    "sessions": [
        _search("the charger's id, the id tag or the customer's e-mail or name"),
        _query("chargePointId", STRING, "one charger, its id in any case"),
        _query("userId", {"type": "integer", "minimum": 1}),
        _query("status", {"enum": list(TRANSACTION_STATUSES)}),
        _query("review", {"enum": list(REVIEW_STATUSES)}),
        _query("from", TIME),
        _query("to", TIME),
        _query("sort", _sorts(SESSION_SORTS), "a minus sign sorts descending; default -id"),
    ],
}


def paths() -> dict[str, Any]:
    return {
        f"/api/cms/{kind}.csv": {
            "get": {
                "summary": f"Export the {kind} list with its filters and order, whole, as CSV",
                "security": SECURED,
                "parameters": parameters,
                "responses": {"200": CSV, **_errors(400, 401, 403, 413)},
            }
        }
        for kind, parameters in FILTERS.items()
    }
