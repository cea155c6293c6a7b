"""
Immutable records returned by the query functions.

A record has one attribute per column of its table, named as the column, so
callers never see SQLAlchemy rows (which would tie them to a connection's
lifetime). Records are frozen: the store is the only place that changes data.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

import attrs
from attrs import AttrsInstance
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import Executable

R = TypeVar("R", bound=AttrsInstance)


@functools.cache
def _field_names(cls: type[AttrsInstance]) -> tuple[str, ...]:
    # attrs.fields() checks its argument on every call: once per row was
    # a fifth of building a session read on every MeterValues.
    return tuple(field.name for field in attrs.fields(cls))


def from_mapping(cls: type[R], mapping: Mapping[Any, Any]) -> R:
    """Build ``cls`` from a row's mapping, taking the attributes ``cls`` declares."""
    factory: Callable[..., R] = cls
    return factory(**{name: mapping[name] for name in _field_names(cls)})


def first_record(
    conn: Connection, cls: type[R], query: Executable, parameters: Mapping[str, Any] | None = None
) -> R | None:
    """The first row of ``query`` (with its bound ``parameters``) as a ``cls``, or None."""
    row = conn.execute(query, parameters).first()
    return None if row is None else from_mapping(cls, row._mapping)


def all_records(conn: Connection, cls: type[R], query: Executable) -> list[R]:
    """Every row of ``query`` as a ``cls``."""
    return [from_mapping(cls, row._mapping) for row in conn.execute(query)]


@attrs.frozen
class StationRecord:
    id: int
    name: str
    address: str | None
    latitude: int | None  # microdegrees
    longitude: int | None  # microdegrees
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class TariffRecord:
    id: int
    name: str
    currency: str
    price_per_kwh: int  # minor units
    price_per_minute: int  # minor units
    session_fee: int  # minor units
    session_fee_always: bool
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class UserRecord:
    id: int
    email: str
    password_hash: str = attrs.field(repr=False)
    role: str
    created_at: datetime
    name: str | None = None
    blocked_at: datetime | None = None


@attrs.frozen
class ChargePointRecord:
    charge_point_id: str
    key_hash: str | None = attrs.field(repr=False)
    pending_key_hash: str | None = attrs.field(repr=False)
    registration_status: str
    station_id: int | None
    tariff_id: int | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    charge_box_serial_number: str | None
    firmware_version: str | None
    iccid: str | None
    imsi: str | None
    meter_type: str | None
    meter_serial_number: str | None
    boot_at: datetime | None
    last_seen_at: datetime | None
    online: bool
    connection_id: str | None
    node: str | None
    connected_at: datetime | None
    #: The presence fence of the current connection (docs/presence.md).
    connection_fence: int | None
    alive_at: datetime | None
    created_at: datetime
    #: The last FirmwareStatusNotification's and DiagnosticsStatusNotification's status.
    firmware_status: str | None = None
    firmware_status_at: datetime | None = None
    diagnostics_status: str | None = None
    diagnostics_status_at: datetime | None = None
    #: The plug (``CONNECTOR_TYPES``) and the most it delivers (W), as the operator recorded them.
    connector_type: str | None = None
    max_power_w: int | None = None
    boot_closes_sessions: bool = True  # whether a BootNotification closes its open sessions


@attrs.frozen
class ConnectorRecord:
    charge_point_id: str
    connector_id: int  # 0 is the charger itself
    status: str
    error_code: str
    info: str | None
    vendor_error_code: str | None
    status_at: datetime


@attrs.frozen
class IdTagRecord:
    id_tag: str
    status: str
    expires_at: datetime | None
    parent_id_tag: str | None
    user_id: int | None
    created_at: datetime


@attrs.frozen
class Allocation:
    """The answer of ``allocate_transaction`` to a StartTransaction."""

    #: The OCPP transactionId, the same for every resend of one start.
    transaction_id: int
    #: False when this start was seen before (a resend).
    created: bool
    #: The tag had an Accepted active session on another connector when this
    #: session was created: the charger is to be answered ``ConcurrentTx``.
    concurrent: bool


@attrs.frozen
class TransactionRecord:
    """A charging session; ``id`` is its OCPP transactionId."""

    id: int
    charge_point_id: str
    connector_id: int
    id_tag: str
    id_tag_status: str
    reservation_id: int | None
    meter_start_wh: int
    started_at: datetime
    meter_stop_wh: int | None
    stopped_at: datetime | None
    stop_reason: str | None
    stop_id_tag: str | None
    energy_wh: int | None
    last_meter_wh: int | None
    last_meter_at: datetime | None
    status: str
    confirmed: bool  # False until the bus has taken its StartTransaction
    user_id: int | None
    tariff_id: int | None
    cost: int | None  # minor units
    currency: str | None
    review_status: str | None  # None: never held for review
    review_reasons: str | None  # comma-separated codes
    review_cost: int | None  # what the tariff computed, minor units
    reviewed_by: int | None
    reviewed_at: datetime | None
    review_note: str | None
    created_at: datetime
    updated_at: datetime
    billed_tariff: str | None  # a closed session's tariff, as ``tariff_json``
    charger_stop_reason: str | None  # the charger's late stop's, beside ``stop_reason``
    late_stop_at: datetime | None  # when the charger's late stop was applied

    @property
    def review_reason_list(self) -> list[str]:
        return self.review_reasons.split(",") if self.review_reasons else []


class SessionMeter(NamedTuple):
    """
    A session as one MeterValues of a run left it, without a record of 32
    fields made for each message (~29k instructions; the processor's
    ``session.updated`` reads the meter and ``session``'s other fields):
    ``session`` as the run read it, and its meter after this message.
    """

    session: TransactionRecord
    last_meter_wh: int | None
    last_meter_at: datetime | None
    energy_wh: int | None
    updated_at: datetime

    @classmethod
    def of(cls, record: TransactionRecord) -> SessionMeter:
        """A session's record as its own meter."""
        return cls(
            record, record.last_meter_wh, record.last_meter_at, record.energy_wh, record.updated_at
        )

    @property
    def meter_start_wh(self) -> int:
        return self.session.meter_start_wh

    @property
    def started_at(self) -> datetime:
        return self.session.started_at

    def record(self) -> TransactionRecord:
        """The session's record as this message left it."""
        session = self.session
        if all(mine is its for mine, its in zip(self, SessionMeter.of(session), strict=True)):
            return session  # not moved since it was read
        return attrs.evolve(
            session,
            last_meter_wh=self.last_meter_wh,
            last_meter_at=self.last_meter_at,
            energy_wh=self.energy_wh,
            updated_at=self.updated_at,
        )


@attrs.frozen
class UnmatchedStopRecord:
    """A StopTransaction that named no session of the charger that sent it."""

    id: int
    charge_point_id: str
    transaction_id: int
    meter_stop_wh: int
    stopped_at: datetime
    reason: str | None
    id_tag: str | None
    received_at: datetime


@attrs.frozen
class MeterValueRecord:
    """A stored sample; absent optional fields are ``None`` as in the OCPP message."""

    id: int
    charge_point_id: str
    connector_id: int
    transaction_id: int | None
    timestamp: datetime
    value: str
    value_wh: int | None
    measurand: str
    phase: str | None
    unit: str | None
    context: str | None
    location: str | None
    format: str | None
    received_at: datetime


@attrs.frozen
class MessageRecord:
    """
    One OCPP frame in the message log: a row of ``message_log`` but its
    answer's columns, which are a frame of their own (``messages.row_frames``).
    """

    id: int
    message_id: str
    charge_point_id: str
    direction: str
    message_type: str
    action: str | None
    unique_id: str | None
    payload: Any
    created_at: datetime


@attrs.frozen
class WalletRecord:
    user_id: int
    currency: str
    balance: int  # minor units
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class WalletTransactionRecord:
    id: int
    user_id: int
    kind: str
    amount: int  # signed minor units
    balance_after: int
    currency: str
    session_id: int | None
    reference: str | None
    idempotency_key: str
    created_at: datetime


@attrs.frozen
class ChargingRequestRecord:
    id: int
    user_id: int
    charge_point_id: str
    connector_id: int
    id_tag: str
    command_id: str
    hold: int  # minor units of the wallet
    status: str
    session_id: int | None
    stop_requested: str | None
    created_at: datetime
    updated_at: datetime


@attrs.frozen
class PaymentRecord:
    """A top-up paid on a provider's page (``tables.payments``)."""

    id: int
    provider: str
    user_id: int
    amount: int  # minor units
    currency: str
    idempotency_key: str
    reference: str
    settlement: str | None
    redirect_url: str | None
    status: str
    refunded: int  # minor units debited for refunds so far
    created_at: datetime
    updated_at: datetime
