"""
The operator CMS (admin only): stations, charge points, tariffs and id tags
(create, read, update, delete), the sessions list and a charger's OCPP
message log, under ``/api/cms/``.

Choices (docs/api.md states them for users):

- ``PUT`` merges: a field left out keeps its value, ``null`` clears an
  optional one. A point's ``authorizationKey`` is never returned, so a
  client could not send it back unchanged; omitting it must keep it.
- Every change is read, validated and written in one transaction, so two
  operators editing one row cannot lose each other's fields between a read
  and a write.
- Deleting what is still referenced is refused with 409 (a station with
  points, a tariff used by a point or an active session, a point with
  sessions) rather than nulling references: a charger silently losing its
  tariff would charge for free. Deleting an id tag is always allowed.
- Each change is published as ``cms.<kind>.<verb>`` (for listeners such as
  the push channel) and ``audit.cms.<kind>.<verb>`` (which the audit
  consumer keeps in the audit log), after the write committed, with who
  made it and the object as the API shows it: never a key or its hash.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.api.errors import ApiError, bad_request
from ocppd.api.http import parse_decimal
from ocppd.api.online import STORED, Online, OnlineView
from ocppd.api.pagination import decode_cursor, page
from ocppd.billing import Tariff
from ocppd.bounds import INT32_MAX
from ocppd.bus.outbox import Event, Outbox
from ocppd.credentials import charger_key_problem, hash_charger_key
from ocppd.logs import Logger
from ocppd.ocpp.handshake import CHARGE_POINT_ID
from ocppd.representations import session_json
from ocppd.store import chargers, dashboard, messages, stations, tags, tariffs, transactions, users
from ocppd.store.database import Database
from ocppd.store.errors import AlreadyExists, InUse, NotFound
from ocppd.store.records import (
    ChargePointRecord,
    ConnectorRecord,
    IdTagRecord,
    MessageRecord,
    StationRecord,
    TariffRecord,
    UserRecord,
)
from ocppd.store.tables import (
    ID_TAG_STATUSES,
    REGISTRATION_STATUSES,
    REVIEW_STATUSES,
    TRANSACTION_STATUSES,
)
from ocppd.timeutil import format_iso, parse_iso

#: Database ids are 32-bit on both engines; a larger one names nothing.
MAX_ID = INT32_MAX
MAX_KEY_LENGTH = 255
_MICRO = Decimal(10) ** 6


# --- JSON of the stored records ---------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return None if value is None else format_iso(value)


def _degrees(microdegrees: int | None) -> float | None:
    return None if microdegrees is None else float(Decimal(microdegrees) / _MICRO)


def station_json(record: StationRecord) -> dict[str, Any]:
    """A station as the API shows it; coordinates in decimal degrees."""
    return {
        "id": record.id,
        "name": record.name,
        "address": record.address,
        "latitude": _degrees(record.latitude),
        "longitude": _degrees(record.longitude),
        "createdAt": format_iso(record.created_at),
        "updatedAt": format_iso(record.updated_at),
    }


def tariff_json(record: TariffRecord) -> dict[str, Any]:
    """A tariff; prices in integer minor units of its currency."""
    return {
        "id": record.id,
        "name": record.name,
        "currency": record.currency,
        "pricePerKwh": record.price_per_kwh,
        "pricePerMinute": record.price_per_minute,
        "sessionFee": record.session_fee,
        "sessionFeeAlways": record.session_fee_always,
        "createdAt": format_iso(record.created_at),
        "updatedAt": format_iso(record.updated_at),
    }


def connector_json(record: ConnectorRecord) -> dict[str, Any]:
    return {
        "connectorId": record.connector_id,
        "status": record.status,
        "errorCode": record.error_code,
        "info": record.info,
        "vendorErrorCode": record.vendor_error_code,
        "statusAt": format_iso(record.status_at),
    }


def point_json(
    record: ChargePointRecord, connectors: list[ConnectorRecord], online: Online
) -> dict[str, Any]:
    """
    A charge point. Its key is never shown, only whether one is set
    (``authorizationRequired``): the hash would let anyone who reads the
    API try keys offline.
    """
    return {
        "chargePointId": record.charge_point_id,
        "stationId": record.station_id,
        "tariffId": record.tariff_id,
        "registrationStatus": record.registration_status,
        "authorizationRequired": record.key_hash is not None,
        "vendor": record.vendor,
        "model": record.model,
        "serialNumber": record.serial_number,
        "firmwareVersion": record.firmware_version,
        **online.fields(record),
        "lastSeenAt": _iso(record.last_seen_at),
        "bootAt": _iso(record.boot_at),
        "createdAt": format_iso(record.created_at),
        # What its last FirmwareStatusNotification / DiagnosticsStatusNotification said.
        "firmwareStatus": record.firmware_status,
        "firmwareStatusAt": _iso(record.firmware_status_at),
        "diagnosticsStatus": record.diagnostics_status,
        "diagnosticsStatusAt": _iso(record.diagnostics_status_at),
        "connectorType": record.connector_type,
        "maxPowerW": record.max_power_w,
        "bootClosesSessions": record.boot_closes_sessions,
        "connectors": [connector_json(c) for c in connectors],
    }


def tag_json(record: IdTagRecord) -> dict[str, Any]:
    return {
        "idTag": record.id_tag,
        "status": record.status,
        "expiresAt": _iso(record.expires_at),
        "parentIdTag": record.parent_id_tag,
        "userId": record.user_id,
        "createdAt": format_iso(record.created_at),
    }


def message_json(record: MessageRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "direction": record.direction,
        "messageType": record.message_type,
        "action": record.action,
        "uniqueId": record.unique_id,
        "payload": record.payload,
        "at": format_iso(record.created_at),
    }


# --- Body validation ---------------------------------------------------------


def _merge(
    body: dict[str, Any], current: dict[str, Any], writable: set[str], read_only: set[str]
) -> dict[str, Any]:
    """
    ``current`` overlaid with ``body``. Read-only fields (as a GET shows
    them) are ignored so that a fetched object can be sent back; any other
    unknown field is a 400, as it is most likely a misspelt one.
    """
    for name in body:
        if name not in writable and name not in read_only:
            raise bad_request("unknown field", field=name)
    return {**current, **{k: v for k, v in body.items() if k in writable}}


def _string(fields: dict[str, Any], name: str, max_length: int, *, required: bool) -> str | None:
    value = fields.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad_request(
            "required, a non-empty string" if required else "a non-empty string or null",
            field=name,
        )
    if len(value) > max_length:
        raise bad_request(f"at most {max_length} characters", field=name)
    return value


def _choice(fields: dict[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = fields.get(name)
    if value not in choices:
        raise bad_request(f"one of {', '.join(choices)}", field=name)
    assert isinstance(value, str)
    return value


def _microdegrees(fields: dict[str, Any], name: str, bound: int) -> int | None:
    """
    Decimal degrees (a JSON number) as integer microdegrees, the store's
    exact unit; rounded half-even to 6 decimals (about 0.1 m).
    """
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise bad_request("a number of decimal degrees or null", field=name)
    try:
        micro = int((Decimal(str(value)) * _MICRO).to_integral_value(ROUND_HALF_EVEN))
    except (InvalidOperation, ValueError):
        raise bad_request("a finite number", field=name) from None
    if abs(micro) > bound * 10**6:
        raise bad_request(f"from -{bound} to {bound}", field=name)
    return micro


def _reference(fields: dict[str, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
        raise bad_request("a positive integer id or null", field=name)
    return value


def _time(fields: dict[str, Any], name: str) -> datetime | None:
    value = fields.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("an ISO-8601 time or null", field=name)
    try:
        return parse_iso(value)
    except ValueError:
        raise bad_request("an ISO-8601 time or null", field=name) from None


def path_id(text: str, what: str) -> int:
    """A numeric id from the URL; 404 for anything that cannot name a row."""
    row_id = parse_decimal(text, maximum=MAX_ID)
    if not row_id:
        raise ApiError(404, "not_found", f"no {what} {text!r}")
    return row_id


def _not_found(what: str, key: object) -> ApiError:
    return ApiError(404, "not_found", f"no {what} {key!r}")


def _conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def _check_exists(
    conn: Connection, getter: Callable[[Connection, int], Any], value: int | None, field: str
) -> None:
    if value is not None and getter(conn, value) is None:
        raise bad_request(f"no such id {value}", field=field)


# --- Stations ------------------------------------------------------------------

STATION_FIELDS = {"name", "address", "latitude", "longitude"}
STATION_READ_ONLY = {"id", "createdAt", "updatedAt", "chargers"}


def _station_values(body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    fields = _merge(body, current, STATION_FIELDS, STATION_READ_ONLY)
    return {
        "name": _string(fields, "name", 200, required=True),
        "address": _string(fields, "address", 500, required=False),
        "latitude": _microdegrees(fields, "latitude", 90),
        "longitude": _microdegrees(fields, "longitude", 180),
    }


def _get_station(conn: Connection, station_id: int) -> StationRecord:
    record = stations.get_station(conn, station_id)
    if record is None:
        raise _not_found("station", station_id)
    return record


def create_station_tx(conn: Connection, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    values = _station_values(body, {})
    try:
        station_id = stations.add_station(conn, values.pop("name"), **values, now=now)
    except AlreadyExists:
        raise _conflict(f"a station is called {body.get('name')!r}") from None
    return station_json(_get_station(conn, station_id))


def update_station_tx(
    conn: Connection, station_id: int, body: dict[str, Any], now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    before = station_json(_get_station(conn, station_id))
    values = _station_values(body, before)
    try:
        stations.update_station(conn, station_id, **values, now=now)
    except AlreadyExists:
        raise _conflict(f"another station is called {values['name']!r}") from None
    return before, station_json(_get_station(conn, station_id))


def delete_station_tx(conn: Connection, station_id: int) -> dict[str, Any]:
    before = station_json(_get_station(conn, station_id))
    try:
        stations.delete_station(conn, station_id)
    except InUse as e:
        raise _conflict(f"{e}: move or delete them first") from None
    return before


# --- Tariffs -------------------------------------------------------------------

TARIFF_FIELDS = {
    "name",
    "currency",
    "pricePerKwh",
    "pricePerMinute",
    "sessionFee",
    "sessionFeeAlways",
}
TARIFF_READ_ONLY = {"id", "createdAt", "updatedAt"}
_TARIFF_ATTRIBUTES = {
    "currency": "currency",
    "price_per_kwh": "pricePerKwh",
    "price_per_minute": "pricePerMinute",
    "session_fee": "sessionFee",
    "session_fee_always": "sessionFeeAlways",
}


def _column_sized(fields: dict[str, Any], names: tuple[str, ...]) -> None:
    """400 for an integer beyond the store's 32-bit columns (the billing type checks the rest)."""
    for name in names:
        value = fields.get(name)
        if isinstance(value, int) and abs(value) > INT32_MAX:
            raise bad_request(f"at most {INT32_MAX}", field=name)


def _tariff_values(body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    fields = _merge(body, current, TARIFF_FIELDS, TARIFF_READ_ONLY)
    _column_sized(fields, ("pricePerKwh", "pricePerMinute", "sessionFee"))
    name = _string(fields, "name", 100, required=True)
    if "pricePerKwh" not in fields:
        raise bad_request("required, an integer of minor units", field="pricePerKwh")
    try:
        # The billing value type is the one place a price is validated.
        tariff = Tariff(
            currency=fields.get("currency"),  # type: ignore[arg-type]
            price_per_kwh=fields.get("pricePerKwh"),  # type: ignore[arg-type]
            price_per_minute=fields.get("pricePerMinute", 0),
            session_fee=fields.get("sessionFee", 0),
            session_fee_always=fields.get("sessionFeeAlways", False),
        )
    except ValueError as e:
        message = str(e)
        for attribute, field in _TARIFF_ATTRIBUTES.items():
            if message.startswith(attribute + " "):
                raise bad_request(message[len(attribute) + 1 :], field=field) from None
        raise bad_request(message) from None
    return {
        "name": name,
        "currency": tariff.currency,
        "price_per_kwh": tariff.price_per_kwh,
        "price_per_minute": tariff.price_per_minute,
        "session_fee": tariff.session_fee,
        "session_fee_always": tariff.session_fee_always,
    }


def _get_tariff(conn: Connection, tariff_id: int) -> TariffRecord:
    record = tariffs.get_tariff(conn, tariff_id)
    if record is None:
        raise _not_found("tariff", tariff_id)
    return record


def create_tariff_tx(conn: Connection, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    values = _tariff_values(body, {})
    try:
        tariff_id = tariffs.add_tariff(conn, values.pop("name"), **values, now=now)
    except AlreadyExists:
        raise _conflict(f"a tariff is called {body.get('name')!r}") from None
    return tariff_json(_get_tariff(conn, tariff_id))


def update_tariff_tx(
    conn: Connection, tariff_id: int, body: dict[str, Any], now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    before = tariff_json(_get_tariff(conn, tariff_id))
    values = _tariff_values(body, before)
    try:
        tariffs.update_tariff(conn, tariff_id, **values, now=now)
    except AlreadyExists:
        raise _conflict(f"another tariff is called {values['name']!r}") from None
    return before, tariff_json(_get_tariff(conn, tariff_id))


def delete_tariff_tx(conn: Connection, tariff_id: int) -> dict[str, Any]:
    before = tariff_json(_get_tariff(conn, tariff_id))
    try:
        tariffs.delete_tariff(conn, tariff_id)
    except InUse as e:
        raise _conflict(str(e)) from None
    return before


# --- Charge points -------------------------------------------------------------

POINT_FIELDS = {
    "stationId",
    "tariffId",
    "registrationStatus",
    "connectorType",
    "maxPowerW",
    "bootClosesSessions",
}
#: Plugs an operator may record for a charger (shown to drivers before they start).
CONNECTOR_TYPES = ("Type1", "Type2", "CCS1", "CCS2", "CHAdeMO", "Tesla", "Domestic")
#: The most power a charger may be said to deliver: 1 MW (W; a 32-bit column).
MAX_POWER_W = 1_000_000
POINT_READ_ONLY = {
    "chargePointId",
    "authorizationRequired",
    "vendor",
    "model",
    "serialNumber",
    "firmwareVersion",
    "online",
    "onlineSource",
    "lastSeenAt",
    "bootAt",
    "createdAt",
    "firmwareStatus",
    "firmwareStatusAt",
    "diagnosticsStatus",
    "diagnosticsStatusAt",
    "connectors",
}
#: Taken out of the body before merging: write-only, handled on its own.
KEY_FIELD = "authorizationKey"


def authorization_key(body: dict[str, Any], *, required: bool) -> tuple[bool, str | None]:
    """
    (whether ``body`` sets the key, the new key): a string, or None for no
    authentication (security profile 0). Creating a point needs the field,
    so that running a charger without authentication is always a decision,
    never an omission; an update without it keeps the key.
    """
    if KEY_FIELD not in body:
        if required:
            raise bad_request("required, a string or null (no authentication)", field=KEY_FIELD)
        return False, None
    key = body[KEY_FIELD]
    if key is None:
        return True, None
    if not isinstance(key, str) or not key:
        raise bad_request("a non-empty string or null", field=KEY_FIELD)
    if len(key) > MAX_KEY_LENGTH:
        raise bad_request(f"at most {MAX_KEY_LENGTH} characters", field=KEY_FIELD)
    problem = charger_key_problem(key)
    if problem is not None:
        raise bad_request(problem, field=KEY_FIELD)
    return True, key


def _point_values(
    conn: Connection, body: dict[str, Any], current: dict[str, Any]
) -> dict[str, Any]:
    fields = _merge(body, current, POINT_FIELDS | {KEY_FIELD}, POINT_READ_ONLY)
    station_id = _reference(fields, "stationId")
    tariff_id = _reference(fields, "tariffId")
    status = _choice(fields, "registrationStatus", REGISTRATION_STATUSES)
    _check_exists(conn, stations.get_station, station_id, "stationId")
    _check_exists(conn, tariffs.get_tariff, tariff_id, "tariffId")
    connector_type = fields.get("connectorType")
    if connector_type is not None and connector_type not in CONNECTOR_TYPES:
        raise bad_request(f"null or one of {', '.join(CONNECTOR_TYPES)}", field="connectorType")
    max_power_w = fields.get("maxPowerW")
    if max_power_w is not None and (
        not isinstance(max_power_w, int)
        or isinstance(max_power_w, bool)
        or not 0 < max_power_w <= MAX_POWER_W
    ):
        raise bad_request(f"null or an integer of W from 1 to {MAX_POWER_W}", field="maxPowerW")
    boot_closes = fields.get("bootClosesSessions", True)
    if not isinstance(boot_closes, bool):
        raise bad_request("true or false", field="bootClosesSessions")
    return {
        "station_id": station_id,
        "tariff_id": tariff_id,
        "registration_status": status,
        "connector_type": connector_type,
        "max_power_w": max_power_w,
        "boot_closes_sessions": boot_closes,
    }


def _get_point(
    conn: Connection, charge_point_id: str
) -> tuple[ChargePointRecord, list[ConnectorRecord]]:
    record = chargers.get_charge_point(conn, charge_point_id)
    if record is None:
        raise _not_found("charge point", charge_point_id)
    return record, chargers.list_connectors(conn, charge_point_id)


def _point_json(conn: Connection, charge_point_id: str) -> dict[str, Any]:
    """A point as its write's events carry it: online as the store says (STORED)."""
    return point_json(*_get_point(conn, charge_point_id), STORED)


def create_point_tx(
    conn: Connection, body: dict[str, Any], key_hash: str | None, now: datetime
) -> dict[str, Any]:
    charge_point_id = body.get("chargePointId")
    if not isinstance(charge_point_id, str) or not CHARGE_POINT_ID.fullmatch(charge_point_id):
        raise bad_request("required, 1 to 48 of A-Z a-z 0-9 . _ : + @ ~ -", field="chargePointId")
    values = _point_values(
        conn,
        {k: v for k, v in body.items() if k != "chargePointId"},
        {"registrationStatus": "Accepted"},
    )
    try:
        chargers.add_charge_point(conn, charge_point_id, key_hash, **values, now=now)
    except AlreadyExists:
        raise _conflict(f"charge point {charge_point_id!r} exists") from None
    return _point_json(conn, charge_point_id)


def update_point_tx(
    conn: Connection,
    charge_point_id: str,
    body: dict[str, Any],
    new_key: tuple[bool, str | None],
) -> tuple[dict[str, Any], dict[str, Any]]:
    before = _point_json(conn, charge_point_id)
    values = _point_values(conn, body, before)
    chargers.update_charge_point(conn, charge_point_id, **values)
    if new_key[0]:
        chargers.set_charge_point_key(conn, charge_point_id, new_key[1])
    return before, _point_json(conn, charge_point_id)


def delete_point_tx(conn: Connection, charge_point_id: str) -> dict[str, Any]:
    before = _point_json(conn, charge_point_id)
    try:
        chargers.delete_charge_point(conn, charge_point_id)
    except InUse as e:
        raise _conflict(f"{e}: sessions are billing history and are kept") from None
    return before


# --- Id tags -------------------------------------------------------------------

TAG_FIELDS = {"status", "expiresAt", "parentIdTag", "userId"}
TAG_READ_ONLY = {"idTag", "createdAt"}
ID_TAG_LENGTH = 20  # OCPP 1.6 IdToken: CiString20Type


def _tag_values(conn: Connection, body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    fields = _merge(body, current, TAG_FIELDS, TAG_READ_ONLY)
    values = {
        "status": _choice(fields, "status", ID_TAG_STATUSES),
        "expires_at": _time(fields, "expiresAt"),
        "parent_id_tag": _string(fields, "parentIdTag", ID_TAG_LENGTH, required=False),
    }
    user_id = _reference(fields, "userId")
    _check_exists(conn, users.get_user, user_id, "userId")
    return {**values, "user_id": user_id}


def _get_tag(conn: Connection, id_tag: str) -> IdTagRecord:
    record = tags.get_id_tag(conn, id_tag) if len(id_tag) <= ID_TAG_LENGTH else None
    if record is None:
        raise _not_found("id tag", id_tag)
    return record


def create_tag_tx(conn: Connection, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    id_tag = _string(body, "idTag", ID_TAG_LENGTH, required=True)
    assert id_tag is not None
    values = _tag_values(
        conn, {k: v for k, v in body.items() if k != "idTag"}, {"status": "Accepted"}
    )
    if values["parent_id_tag"] is not None and (
        tags.canonical_id_tag(values["parent_id_tag"]) == tags.canonical_id_tag(id_tag)
    ):
        raise bad_request("a tag cannot be its own parent", field="parentIdTag")
    try:
        tags.add_id_tag(conn, id_tag, **values, now=now)
    except AlreadyExists:
        raise _conflict(f"id tag {tags.canonical_id_tag(id_tag)!r} exists") from None
    return tag_json(_get_tag(conn, id_tag))


def update_tag_tx(
    conn: Connection, id_tag: str, body: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    before = tag_json(_get_tag(conn, id_tag))
    values = _tag_values(conn, body, body_defaults(before))
    if values["parent_id_tag"] is not None and (
        tags.canonical_id_tag(values["parent_id_tag"]) == before["idTag"]
    ):
        raise bad_request("a tag cannot be its own parent", field="parentIdTag")
    tags.update_id_tag(conn, id_tag, **values)
    return before, tag_json(_get_tag(conn, id_tag))


def body_defaults(shown: dict[str, Any]) -> dict[str, Any]:
    """The writable fields of a shown tag, as a body would carry them."""
    return {name: shown[name] for name in TAG_FIELDS}


def delete_tag_tx(conn: Connection, id_tag: str) -> dict[str, Any]:
    before = tag_json(_get_tag(conn, id_tag))
    try:
        tags.delete_id_tag(conn, id_tag)
    except NotFound:
        raise _not_found("id tag", id_tag) from None
    return before


# --- Sessions and messages -----------------------------------------------------


def session_filters(args: dict[str, str | None]) -> dict[str, Any]:
    """The sessions list's query filters as store arguments; 400 naming a bad one."""
    filters: dict[str, Any] = {}
    if args.get("chargePointId") is not None:
        filters["charge_point_id"] = args["chargePointId"]
    user_id = args.get("userId")
    if user_id is not None:
        filters["user_id"] = parse_decimal(user_id, maximum=MAX_ID)
        if not filters["user_id"]:
            raise bad_request("a positive integer", field="userId")
    status = args.get("status")
    if status is not None:
        if status not in TRANSACTION_STATUSES:
            raise bad_request(f"one of {', '.join(TRANSACTION_STATUSES)}", field="status")
        filters["status"] = status
    review = args.get("review")
    if review is not None:
        if review not in REVIEW_STATUSES:
            raise bad_request(f"one of {', '.join(REVIEW_STATUSES)}", field="review")
        filters["review_status"] = review
    for name, store_name in (("from", "started_from"), ("to", "started_before")):
        text = args.get(name)
        if text is not None:
            try:
                filters[store_name] = parse_iso(text)
            except ValueError:
                raise bad_request("an ISO-8601 time", field=name) from None
    return filters


def list_messages_tx(
    conn: Connection, charge_point_id: str, before_id: int | None, limit: int
) -> list[MessageRecord]:
    """
    A charger's log page. The log outlives a deleted charger, so a point is
    unknown (404) only when neither it nor any message of it exists.
    """
    rows = messages.list_messages(conn, charge_point_id, limit=limit, before_id=before_id)
    if not rows and before_id is None and chargers.get_charge_point(conn, charge_point_id) is None:
        raise _not_found("charge point", charge_point_id)
    return rows


# --- The service ---------------------------------------------------------------


class CmsService:
    """The CMS operations, each one store transaction plus its events."""

    log = Logger()

    def __init__(
        self,
        *,
        database: Database,
        outbox: Outbox,
        online: OnlineView,
        charger_changed: Callable[[str], object] = lambda charge_point_id: None,
    ) -> None:
        self._database = database
        self._outbox = outbox
        self._online = online
        #: Told the id of a charger whose key, status or existence an operator
        #: changed (the admission cache forgets it).
        self._charger_changed = charger_changed

    def _now(self) -> datetime:
        return self._outbox.now()

    @staticmethod
    def _changed(
        kind: str,
        verb: str,
        key: int | str,
        actor: UserRecord,
        data: dict[str, Any],
        *,
        before: dict[str, Any] | None = None,
        charge_point_id: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> list[Event]:
        """
        ``cms.<kind>.<verb>`` and ``audit.cms.<kind>.<verb>``, staged in the
        transaction of the change (``Outbox.run``): no event announces a
        change that was rolled back, and none is lost when the bus is away.
        """
        payload: dict[str, Any] = {
            "kind": kind,
            "verb": verb,
            "id": key,
            "by": {"userId": actor.id, "email": actor.email},
            "data": data,
        }
        if before is not None:
            payload["before"] = before
        payload.update(extra or {})
        return [
            (routing_key, payload, charge_point_id)
            for routing_key in (f"cms.{kind}.{verb}", f"audit.cms.{kind}.{verb}")
        ]

    def _write(
        self, func: Callable[..., Any], events: Callable[[Any], list[Event]], *args: Any
    ) -> Deferred[Any]:
        return self._outbox.run(self._database, func, events, *args)

    @inlineCallbacks
    def dashboard(self) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        figures = yield self._database.run(dashboard.dashboard, now=self._now())
        fleet = figures.pop("fleet")
        online = yield self._online.lookup(fleet.charge_point_ids)
        figures.update(fleet.counts(online.of))
        figures["onlineSource"] = online.source
        figures["recentSessions"] = [session_json(r) for r in figures["recentSessions"]]
        figures["since"] = {name: format_iso(at) for name, at in figures["since"].items()}
        return dict(figures)

    # -- lists --------------------------------------------------------------------

    @inlineCallbacks
    def list(
        self, kind: str, limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """
        A page of tariffs or id tags in key order (stations, points and
        sessions are searched and sorted by ``ocppd.api.cms_lists``).
        """
        if kind == "tariffs":
            after = decode_cursor(cursor, kind, int)
            rows = yield self._database.run(
                tariffs.list_tariffs_page, after_id=after, limit=limit + 1
            )
            return page(kind, rows, limit, lambda r: r.id, tariff_json)
        after = decode_cursor(cursor, "tags", str)
        rows = yield self._database.run(tags.list_id_tags_page, after_id_tag=after, limit=limit + 1)
        return page("tags", rows, limit, lambda r: r.id_tag, tag_json)

    @inlineCallbacks
    def sessions(
        self, args: dict[str, str | None], limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """Sessions newest first, filtered (see ``session_filters``)."""
        filters = session_filters(args)
        before = decode_cursor(cursor, "sessions", int)
        rows = yield self._database.run(
            transactions.list_sessions_page, **filters, before_id=before, limit=limit + 1
        )
        return page("sessions", rows, limit, lambda r: r.id, session_json)

    @inlineCallbacks
    def messages(
        self, charge_point_id: str, limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """A charger's OCPP message log, newest first."""
        # Keyed by frame id (``messages.frame_id``) since revision 0023, under
        # a kind of its own: a cursor of row ids from before is refused (400),
        # not read as a frame id far back.
        kind = f"frames:{charge_point_id}"
        before = decode_cursor(cursor, kind, int)
        rows = yield self._database.run(list_messages_tx, charge_point_id, before, limit + 1)
        return page(kind, rows, limit, lambda r: r.id, message_json)

    # -- one object -----------------------------------------------------------

    @inlineCallbacks
    def _point(self, charge_point_id: str) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        record, connectors = yield self._database.run(_get_point, charge_point_id)
        online = yield self._online.lookup([charge_point_id])
        return point_json(record, connectors, online)

    @inlineCallbacks
    def _shown(self, point: dict[str, Any]) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """A point written (its JSON built in the transaction), online as presence says."""
        online = yield self._online.lookup([point["chargePointId"]])
        return online.shown(point)

    def get(self, kind: str, key: str) -> Deferred[dict[str, Any]]:
        """One object by its id in the URL, or 404."""
        if kind == "stations":
            station_id = path_id(key, "station")
            return self._database.run(lambda c: station_json(_get_station(c, station_id)))
        if kind == "tariffs":
            tariff_id = path_id(key, "tariff")
            return self._database.run(lambda c: tariff_json(_get_tariff(c, tariff_id)))
        if kind == "points":
            return self._point(key)
        return self._database.run(lambda c: tag_json(_get_tag(c, key)))

    @inlineCallbacks
    def create(
        self, kind: str, body: dict[str, Any], actor: UserRecord
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """Create an object from ``body``; it as shown by GET."""
        now = self._now()
        if kind == "stations":
            data = yield self._write(
                create_station_tx,
                lambda d: self._changed("station", "created", d["id"], actor, d),
                body,
                now,
            )
        elif kind == "tariffs":
            data = yield self._write(
                create_tariff_tx,
                lambda d: self._changed("tariff", "created", d["id"], actor, d),
                body,
                now,
            )
        elif kind == "points":
            _, key = authorization_key(body, required=True)
            key_hash = None if key is None else hash_charger_key(key)
            rest = {k: v for k, v in body.items() if k != KEY_FIELD}
            data = yield self._write(
                create_point_tx,
                lambda d: self._changed(
                    "point",
                    "created",
                    d["chargePointId"],
                    actor,
                    d,
                    charge_point_id=d["chargePointId"],
                ),
                rest,
                key_hash,
                now,
            )
            data = yield self._shown(data)
        else:
            data = yield self._write(
                create_tag_tx,
                lambda d: self._changed("tag", "created", d["idTag"], actor, d),
                body,
                now,
            )
        return data

    @inlineCallbacks
    def update(
        self, kind: str, key: str, body: dict[str, Any], actor: UserRecord
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """Merge ``body`` into an object (see the module doc); it as shown by GET."""
        now = self._now()
        if kind == "stations":
            station_id = path_id(key, "station")
            _, data = yield self._write(
                update_station_tx,
                lambda r: self._changed("station", "updated", station_id, actor, r[1], before=r[0]),
                station_id,
                body,
                now,
            )
        elif kind == "tariffs":
            tariff_id = path_id(key, "tariff")
            _, data = yield self._write(
                update_tariff_tx,
                lambda r: self._changed("tariff", "updated", tariff_id, actor, r[1], before=r[0]),
                tariff_id,
                body,
                now,
            )
        elif kind == "points":
            given, new_key = authorization_key(body, required=False)
            key_hash = None if new_key is None else hash_charger_key(new_key)
            rest = {k: v for k, v in body.items() if k != KEY_FIELD}
            _, data = yield self._write(
                update_point_tx,
                lambda r: self._changed(
                    "point",
                    "updated",
                    r[1]["chargePointId"],
                    actor,
                    r[1],
                    before=r[0],
                    charge_point_id=r[1]["chargePointId"],
                    extra={"authorizationKeyChanged": given},
                ),
                key,
                rest,
                (given, key_hash),
            )
            self._charger_changed(key)
            data = yield self._shown(data)
        else:
            _, data = yield self._write(
                update_tag_tx,
                lambda r: self._changed("tag", "updated", r[1]["idTag"], actor, r[1], before=r[0]),
                key,
                body,
            )
        return data

    @inlineCallbacks
    def delete(
        self, kind: str, key: str, actor: UserRecord
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        """Delete an object (409 while referenced); what it was."""
        if kind == "stations":
            station_id = path_id(key, "station")
            data = yield self._write(
                delete_station_tx,
                lambda d: self._changed("station", "deleted", station_id, actor, d),
                station_id,
            )
        elif kind == "tariffs":
            tariff_id = path_id(key, "tariff")
            data = yield self._write(
                delete_tariff_tx,
                lambda d: self._changed("tariff", "deleted", tariff_id, actor, d),
                tariff_id,
            )
        elif kind == "points":
            data = yield self._write(
                delete_point_tx,
                lambda d: self._changed(
                    "point",
                    "deleted",
                    d["chargePointId"],
                    actor,
                    d,
                    charge_point_id=d["chargePointId"],
                ),
                key,
            )
            self._charger_changed(key)
        else:
            data = yield self._write(
                delete_tag_tx,
                lambda d: self._changed("tag", "deleted", d["idTag"], actor, d),
                key,
            )
        return data
