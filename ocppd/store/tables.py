"""
The schema, as SQLAlchemy Core tables.

This module is the reference the migrations must reproduce: the test suite runs
the migrations on an empty database and checks with alembic's
``compare_metadata`` that the result is exactly ``metadata``. A change here
therefore needs a new revision in ``migrations/versions/``.

Conventions:

- Times are ``UTCDateTime`` (see ``types.py``); money is an integer number of
  minor units (cents), energy an integer number of Wh: never floats.
- Enumerations are short strings with a CHECK constraint rather than native
  enum types, so adding a value is a one-line migration on both engines.
- Optional text columns that take part in a unique key are NOT NULL with ``''``
  for "absent" (and ``meter_values.transaction_id`` uses 0 for "none"), because
  both engines treat NULLs as distinct in unique indices, which would let a
  resent sample in twice. The query functions translate back to ``None``.
- Constraint and index names follow ``NAMING_CONVENTION`` so that migrations can
  refer to them by a predictable name on both engines.
"""

from __future__ import annotations

import sqlalchemy as sa

from ocppd import measurands
from ocppd.store.types import UTCDateTime, big_id

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

CHARGE_POINT_ID = sa.String(48)  # OCPP-J: the last path segment; ocppd allows 48 characters
ID_TAG = sa.String(20)  # OCPP 1.6 IdToken is CiString20Type

REGISTRATION_STATUSES = ("Accepted", "Pending", "Rejected")
ROLES = ("admin", "customer")
ID_TAG_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")
#: What a StartTransaction.conf may answer: the tag statuses plus ConcurrentTx.
AUTHORIZATION_STATUSES = (*ID_TAG_STATUSES, "ConcurrentTx")
TRANSACTION_STATUSES = ("active", "completed")
#: A session held for an operator's review (``pending``), and the decisions:
#: billed as computed, billed another amount, or waived (ocppd.billing.settlement).
REVIEW_STATUSES = ("pending", "billed", "adjusted", "waived")
DIRECTIONS = ("in", "out")
MESSAGE_TYPES = ("CALL", "CALLRESULT", "CALLERROR")


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK constraint body limiting ``column`` to ``values``."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


stations = sa.Table(
    "stations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("address", sa.String(500), nullable=True),
    # Microdegrees (degrees * 10**6): exact, and about 0.1 m of resolution.
    sa.Column("latitude", sa.Integer, nullable=True),
    sa.Column("longitude", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("name"),
    sa.CheckConstraint("latitude BETWEEN -90000000 AND 90000000", name="latitude"),
    sa.CheckConstraint("longitude BETWEEN -180000000 AND 180000000", name="longitude"),
)

tariffs = sa.Table(
    "tariffs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),  # ISO 4217, e.g. EUR
    sa.Column("price_per_kwh", sa.Integer, nullable=False),  # minor units
    sa.Column("price_per_minute", sa.Integer, nullable=False),  # minor units
    sa.Column("session_fee", sa.Integer, nullable=False),  # minor units
    # The fee even for a session without energy or charged time (billing.cost).
    sa.Column("session_fee_always", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("name"),
    sa.CheckConstraint(
        "price_per_kwh >= 0 AND price_per_minute >= 0 AND session_fee >= 0", name="prices"
    ),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(254), nullable=False),  # stored lower-cased
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # What operators call the customer (the CMS shows it instead of an id).
    sa.Column("name", sa.String(200), nullable=True),
    # Set while an operator has blocked the account: it cannot sign in, its
    # tokens are revoked, and its id tags answer Blocked (ocppd.store.people).
    sa.Column("blocked_at", UTCDateTime, nullable=True),
    sa.UniqueConstraint("email"),
    sa.CheckConstraint(one_of("role", ROLES), name="role"),
)
#: The CMS's customers sorted by name (ocppd.store.people.USER_SORTS): a page is
#: an index walk, not a sort of every user (bench/people_lists.py).
USER_NAME_SORT = sa.func.lower(sa.func.coalesce(users.c.name, sa.literal_column("''")))
sa.Index("ix_users_name_sort", USER_NAME_SORT, users.c.id)

charge_points = sa.Table(
    "charge_points",
    metadata,
    sa.Column("charge_point_id", CHARGE_POINT_ID, primary_key=True),
    sa.Column("key_hash", sa.String(255), nullable=True),  # None: no Basic auth (profile 0)
    # A key sent with ChangeConfiguration AuthorizationKey that the charger has
    # not yet confirmed (docs/ocpp.md "Rotating a key"): valid besides key_hash.
    sa.Column("pending_key_hash", sa.String(255), nullable=True),
    sa.Column("registration_status", sa.String(16), nullable=False),
    sa.Column(
        "station_id", sa.Integer, sa.ForeignKey("stations.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column(
        "tariff_id", sa.Integer, sa.ForeignKey("tariffs.id", ondelete="SET NULL"), nullable=True
    ),
    # BootNotification.req, with the OCPP 1.6 maximum lengths.
    sa.Column("vendor", sa.String(20), nullable=True),
    sa.Column("model", sa.String(20), nullable=True),
    sa.Column("serial_number", sa.String(25), nullable=True),
    sa.Column("charge_box_serial_number", sa.String(25), nullable=True),
    sa.Column("firmware_version", sa.String(50), nullable=True),
    sa.Column("iccid", sa.String(20), nullable=True),
    sa.Column("imsi", sa.String(20), nullable=True),
    sa.Column("meter_type", sa.String(25), nullable=True),
    sa.Column("meter_serial_number", sa.String(25), nullable=True),
    sa.Column("boot_at", UTCDateTime, nullable=True),
    sa.Column("last_seen_at", UTCDateTime, nullable=True),
    # Presence as last reported by the node holding the socket; the connection
    # id tells a replaced socket's late disconnect from the current one's, and
    # the presence fence (else connected_at) a late connect event from a newer one.
    sa.Column("online", sa.Boolean, nullable=False),
    sa.Column("connection_id", sa.String(64), nullable=True),
    sa.Column("node", sa.String(255), nullable=True),
    sa.Column("connected_at", UTCDateTime, nullable=True),
    sa.Column("connection_fence", sa.BigInteger, nullable=True),
    # Liveness: when the node holding the socket last vouched for it (renewed
    # periodically); an online charger not vouched for within [ocpp]
    # liveness_timeout is marked offline by any node's sweep (its node died).
    sa.Column("alive_at", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # What the charger's last FirmwareStatusNotification and
    # DiagnosticsStatusNotification said, and when we received it.
    sa.Column("firmware_status", sa.String(32), nullable=True),
    sa.Column("firmware_status_at", UTCDateTime, nullable=True),
    sa.Column("diagnostics_status", sa.String(32), nullable=True),
    sa.Column("diagnostics_status_at", UTCDateTime, nullable=True),
    # What a driver is shown before starting, as the operator recorded it
    # (OCPP 1.6 chargers do not report them): the plug, and the most it delivers.
    sa.Column("connector_type", sa.String(16), nullable=True),
    sa.Column("max_power_w", sa.Integer, nullable=True),
    # Whether its BootNotification closes the sessions still open on it
    # (ocppd.consumers.closing): false for a charger that boots on every
    # reconnect while its sessions run on.
    sa.Column("boot_closes_sessions", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.CheckConstraint(one_of("registration_status", REGISTRATION_STATUSES), name="registration"),
    sa.Index(None, "station_id"),
)

connectors = sa.Table(
    "connectors",
    metadata,
    sa.Column(
        "charge_point_id",
        CHARGE_POINT_ID,
        sa.ForeignKey("charge_points.charge_point_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("connector_id", sa.Integer, primary_key=True, autoincrement=False),  # 0: charger
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("error_code", sa.String(30), nullable=False),
    sa.Column("info", sa.String(50), nullable=True),
    sa.Column("vendor_error_code", sa.String(255), nullable=True),
    sa.Column("status_at", UTCDateTime, nullable=False),
)

id_tags = sa.Table(
    "id_tags",
    metadata,
    sa.Column("id_tag", ID_TAG, primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=True),
    # A group identifier in OCPP 1.6, not necessarily a tag of its own: no foreign key.
    sa.Column("parent_id_tag", ID_TAG, nullable=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("status", ID_TAG_STATUSES), name="status"),
    sa.Index(None, "user_id"),
    # The CMS's id tags newest first (ocppd.store.people.TAG_SORTS).
    sa.Index(None, "created_at", "id_tag"),
)

#: The columns identifying one StartTransaction.req, so that a resend maps to
#: the same session (and transactionId).
START_FINGERPRINT = ("charge_point_id", "connector_id", "id_tag", "meter_start_wh", "started_at")

transactions = sa.Table(
    "transactions",
    metadata,
    # The OCPP transactionId (a 32-bit integer); AUTOINCREMENT on SQLite so
    # that an id is never handed out twice, even after the newest row is deleted.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "charge_point_id",
        CHARGE_POINT_ID,
        sa.ForeignKey("charge_points.charge_point_id"),
        nullable=False,
    ),
    sa.Column("connector_id", sa.Integer, nullable=False),
    # No foreign key: an offline start with an unknown tag is still a session.
    sa.Column("id_tag", ID_TAG, nullable=False),
    sa.Column("id_tag_status", sa.String(16), nullable=False),  # as answered at start
    sa.Column("reservation_id", sa.Integer, nullable=True),
    sa.Column("meter_start_wh", sa.BigInteger, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("meter_stop_wh", sa.BigInteger, nullable=True),
    sa.Column("stopped_at", UTCDateTime, nullable=True),
    sa.Column("stop_reason", sa.String(20), nullable=True),
    sa.Column("stop_id_tag", ID_TAG, nullable=True),
    sa.Column("energy_wh", sa.BigInteger, nullable=True),
    sa.Column("last_meter_wh", sa.BigInteger, nullable=True),
    sa.Column("last_meter_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    # False from the allocation of a start's id until the bus has taken the
    # StartTransaction (``transactions.confirm_transaction``): a start refused
    # with InternalError leaves only an unconfirmed row, which no reader of
    # sessions sees and a resend of the same start finds again.
    sa.Column("confirmed", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    sa.Column(
        "tariff_id", sa.Integer, sa.ForeignKey("tariffs.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("cost", sa.Integer, nullable=True),  # minor units
    sa.Column("currency", sa.CHAR(3), nullable=True),
    # Review: NULL for a session never held. While ``pending``, ``cost`` is
    # NULL (nothing billed) and ``review_cost`` is what the tariff computed
    # (BIGINT: an implausible meter can compute far beyond ``cost``'s range).
    sa.Column("review_status", sa.String(16), nullable=True),
    sa.Column("review_reasons", sa.String(200), nullable=True),  # comma-separated codes
    sa.Column("review_cost", sa.BigInteger, nullable=True),
    # No foreign key, as in the audit log: a decision outlives its operator.
    sa.Column("reviewed_by", sa.Integer, nullable=True),
    sa.Column("reviewed_at", UTCDateTime, nullable=True),
    sa.Column("review_note", sa.String(500), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # A session the central system closed (ocppd.billing.closing): the tariff
    # it was billed with (``tariff_json``), so the charger's own stop, if it
    # comes after all, is billed again at the same prices
    # (ocppd.billing.late_stop); that stop's reason, beside ``stop_reason``
    # (why it was closed); and when it was applied (once: NULL until then).
    sa.Column("billed_tariff", sa.String(200), nullable=True),
    sa.Column("charger_stop_reason", sa.String(20), nullable=True),
    sa.Column("late_stop_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(one_of("status", TRANSACTION_STATUSES), name="status"),
    sa.CheckConstraint(one_of("review_status", REVIEW_STATUSES), name="review_status"),
    sa.CheckConstraint(one_of("id_tag_status", AUTHORIZATION_STATUSES), name="id_tag_status"),
    sa.Index("uq_transactions_start", *START_FINGERPRINT, unique=True),
    sa.Index(None, "id_tag", "status"),
    sa.Index(None, "charge_point_id", "status"),
    sa.Index(None, "user_id", "started_at"),
    sa.Index(None, "started_at"),
    sa.Index(None, "review_status"),
    sa.Index(None, "confirmed", "created_at"),
    sqlite_autoincrement=True,
)

unmatched_stops = sa.Table(
    "unmatched_stops",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "charge_point_id",
        CHARGE_POINT_ID,
        sa.ForeignKey("charge_points.charge_point_id", ondelete="CASCADE"),
        nullable=False,
    ),
    # As reported: possibly no session of ours at all, so BIGINT and no foreign key.
    sa.Column("transaction_id", sa.BigInteger, nullable=False),
    sa.Column("meter_stop_wh", sa.BigInteger, nullable=False),
    sa.Column("stopped_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(20), nullable=True),
    sa.Column("id_tag", ID_TAG, nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("charge_point_id", "transaction_id", "stopped_at"),
)

meter_values = sa.Table(
    "meter_values",
    metadata,
    sa.Column("id", big_id(), primary_key=True),
    sa.Column(
        "charge_point_id",
        CHARGE_POINT_ID,
        sa.ForeignKey("charge_points.charge_point_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("connector_id", sa.Integer, nullable=False),
    # As reported, 0 when the MeterValues carried none; no foreign key (an
    # unknown id is kept as sent).
    sa.Column("transaction_id", sa.BigInteger, nullable=False),
    sa.Column("timestamp", UTCDateTime, nullable=False),
    sa.Column("value", sa.Text, nullable=False),  # exactly as sent
    sa.Column("value_wh", sa.BigInteger, nullable=True),  # energy measurands in Wh/kWh only
    sa.Column("measurand", sa.String(50), nullable=False),
    sa.Column("phase", sa.String(10), nullable=False),  # '' when absent
    sa.Column("unit", sa.String(20), nullable=True),
    sa.Column("context", sa.String(30), nullable=False),  # '' when absent
    sa.Column("location", sa.String(10), nullable=False),  # '' when absent
    sa.Column("format", sa.String(20), nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
    # What makes a sample the same one, in an order that also serves a
    # session's samples (its id and its own charger, in time order): no
    # (transaction_id, timestamp) index to maintain beside it (revision 0022).
    sa.UniqueConstraint(
        "charge_point_id",
        "transaction_id",
        "timestamp",
        "connector_id",
        "measurand",
        "phase",
        "location",
        "context",
        name="uq_meter_values_sample",
    ),
)

#: The measurands a charger's meter charts show (``ocppd.store.meter_history``).
CHART_MEASURANDS = (measurands.ENERGY_REGISTER, measurands.POWER_IMPORT)

#: The samples a charger's meter charts read: phase-less :data:`CHART_MEASURANDS`.
#: The only reader of a charger's samples by time, so the only ones its index
#: holds. Its values are written into the SQL (``literal_execute``): SQLite
#: uses a partial index only where the query's terms are the index's own
#: constants, never bound parameters.
CHART_SAMPLE = sa.and_(
    meter_values.c.phase == sa.literal("", literal_execute=True),
    meter_values.c.measurand.in_(
        sa.bindparam("chart_measurands", CHART_MEASURANDS, expanding=True, literal_execute=True)
    ),
)

# A charger's chart samples over a period, whatever the session (its meter
# history). Partial (revision 0024): every sample was an entry here, and each
# commit rewrote the leaf where each charger's entries grow, and the
# neighbours a full leaf spills into (bench/pages.py --by-tree).
sa.Index(
    "ix_meter_values_chart",
    meter_values.c.charge_point_id,
    meter_values.c.timestamp,
    sqlite_where=CHART_SAMPLE,
    postgresql_where=CHART_SAMPLE,
)

message_log = sa.Table(
    "message_log",
    metadata,
    sa.Column("id", big_id(), primary_key=True),
    sa.Column("message_id", sa.String(128), nullable=False),  # idempotency key
    # No foreign key: the log outlives a deleted charger, and is written first.
    sa.Column("charge_point_id", CHARGE_POINT_ID, nullable=False),
    sa.Column("direction", sa.String(3), nullable=False),
    sa.Column("message_type", sa.String(10), nullable=False),
    # Text: a rejected frame's action and id are whatever the charger sent.
    sa.Column("action", sa.Text, nullable=True),
    sa.Column("unique_id", sa.Text, nullable=True),
    sa.Column("payload", sa.JSON, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    # An inbound exchange is one row: the charger's CALL above and ocppd's
    # answer here (CALLRESULT or CALLERROR, sent at the call's time), read
    # back as two frames (``ocppd.store.messages``). NULL for a row of one
    # frame: a command, a charger's reply to one, or a row written before
    # revision 0023 (which logged the answer as a row of its own).
    sa.Column("answer_type", sa.String(10), nullable=True),
    sa.Column("answer_payload", sa.JSON(none_as_null=True), nullable=True),
    sa.UniqueConstraint("message_id"),
    sa.CheckConstraint(one_of("direction", DIRECTIONS), name="direction"),
    sa.CheckConstraint(one_of("message_type", MESSAGE_TYPES), name="message_type"),
    sa.Index(None, "charge_point_id", "id"),
)

processed_messages = sa.Table(
    "processed_messages",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("message_id", sa.String(128), primary_key=True),
    sa.Column("processed_at", UTCDateTime, nullable=False),
    sa.Index(None, "processed_at"),
)

# Domain events written in the same transaction as the change they describe,
# published by ``ocppd.bus.relay`` once committed (docs/bus.md, "Outbox").
# ``envelope`` is the envelope's JSON as the bus carries it; its id is fixed
# here, so a row published twice is deduplicated by the consumers.
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", big_id(), primary_key=True),
    sa.Column("node", sa.String(64), nullable=False),
    sa.Column("routing_key", sa.String(255), nullable=False),
    sa.Column("envelope", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "node", "id"),
    sqlite_autoincrement=True,
)

# The embedded bus's journal (ocppd.bus.journal): one row per message and
# durable queue, from its publication until that queue acknowledges it; the
# dead_* columns are set while it is a dead letter. ``seq`` is the bus's own
# numbering (its replay order), per node: each node's embedded bus is its own.
bus_journal = sa.Table(
    "bus_journal",
    metadata,
    sa.Column("node", sa.Text, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("queue", sa.Text, nullable=False),
    sa.Column("routing_key", sa.Text, nullable=False),
    sa.Column("message_id", sa.String(128), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("dead_attempts", sa.Integer, nullable=True),
    sa.Column("dead_reason", sa.Text, nullable=True),
    sa.Column("dead_failed_at", UTCDateTime, nullable=True),
)

# A REST bearer token, stored as its SHA-256: the token itself is a random
# 256-bit secret, so a fast hash suffices and a leaked table grants nothing.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime, nullable=True),
    sa.Index(None, "user_id"),
)

AUDIT_OUTCOMES = ("requested", "answered", "failed")

# Who asked a charger to do what, and what came of it (commands, CMS changes).
# A GetDiagnostics sent without a location gets ours: an upload URL with a
# token of its own (stored hashed), valid until ``expires_at``, used once.
diagnostics_uploads = sa.Table(
    "diagnostics_uploads",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "charge_point_id",
        CHARGE_POINT_ID,
        sa.ForeignKey("charge_points.charge_point_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    # No foreign key, as in the audit log: the request outlives its operator.
    sa.Column("requested_by", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("file_name", sa.String(255), nullable=True),
    sa.Column("size", sa.BigInteger, nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=True),
    sa.Index(None, "charge_point_id", "id"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", big_id(), primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor_user_id", sa.Integer, nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("charge_point_id", CHARGE_POINT_ID, nullable=True),
    sa.Column("command_id", sa.String(32), nullable=True),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.CheckConstraint(one_of("outcome", AUDIT_OUTCOMES), name="outcome"),
    sa.Index(None, "charge_point_id", "id"),
    sa.Index(None, "command_id"),
)

#: ReserveNow.conf statuses (lower-cased), plus what ocppd itself knows.
RESERVATION_STATUSES = (
    "requested",
    "accepted",
    "faulted",
    "occupied",
    "rejected",
    "unavailable",
    "failed",
    "cancelled",
)

# Reservations made through ocppd. ``id`` is the OCPP reservationId when
# ocppd allocated it (a ReserveNow without one).
reservations = sa.Table(
    "reservations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("charge_point_id", CHARGE_POINT_ID, nullable=False),
    sa.Column("connector_id", sa.Integer, nullable=False),
    sa.Column("id_tag", ID_TAG, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("command_id", sa.String(32), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("status", RESERVATION_STATUSES), name="status"),
    sa.Index(None, "charge_point_id", "status"),
)

#: ``adjustment``: an operator's credit or debit by hand, with a reason (ocppd.api.cms_people).
WALLET_TRANSACTION_KINDS = ("top_up", "debit", "refund", "adjustment")

# A customer's prepaid wallet, one per user, in one currency. ``balance`` is
# what the wallet holds; what app-started sessions hold back is in
# ``charging_requests`` (see ocppd.store.wallets).
wallets = sa.Table(
    "wallets",
    metadata,
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("balance", sa.BigInteger, nullable=False),  # minor units
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Every change of a wallet's balance. ``idempotency_key`` makes each one
# happen once: ``debit:<session id>`` for a session's bill, the payment
# provider's reference (or the client's Idempotency-Key) for a top-up.
wallet_transactions = sa.Table(
    "wallet_transactions",
    metadata,
    sa.Column("id", big_id(), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),  # signed minor units
    sa.Column("balance_after", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("session_id", sa.Integer, nullable=True),
    sa.Column("reference", sa.String(128), nullable=True),
    sa.Column("idempotency_key", sa.String(160), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("kind", WALLET_TRANSACTION_KINDS), name="kind"),
    sa.UniqueConstraint("idempotency_key"),
    sa.Index(None, "user_id", "id"),
)

CHARGING_REQUEST_STATUSES = ("requested", "started", "completed", "failed")

# A customer's "start charging" from the app, and the funds it holds: from the
# request until its session stops (or the start fails), ``hold`` of the
# wallet's balance is spoken for, and the session is stopped remotely when its
# running cost reaches it.
charging_requests = sa.Table(
    "charging_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("charge_point_id", CHARGE_POINT_ID, nullable=False),
    sa.Column("connector_id", sa.Integer, nullable=False),
    sa.Column("id_tag", ID_TAG, nullable=False),
    sa.Column("command_id", sa.String(32), nullable=False),
    sa.Column("hold", sa.BigInteger, nullable=False),  # minor units of the wallet
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("session_id", sa.Integer, nullable=True),
    sa.Column("stop_requested", sa.String(16), nullable=True),  # why we asked: user|funds
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("status", CHARGING_REQUEST_STATUSES), name="status"),
    sa.Index(None, "user_id", "status"),
    sa.Index(None, "charge_point_id", "connector_id", "status"),
    sa.Index(None, "session_id"),
    # The sweep that releases starts the charger never made (wallets.expire_requests).
    sa.Index(None, "status", "created_at"),
)

ALERT_KINDS = ("charger_offline", "connector_faulted", "session_long", "dead_letters", "lag")

# The alerts open now (ocppd.alerts): one row per condition that holds, keyed
# by what it is about, so that a condition is raised once however many nodes
# evaluate it (an INSERT that finds the key does nothing) and resolved once
# (the DELETE that removes the row is the only one that returns it). A row
# outlives a restart: the next evaluation neither raises it again nor forgets it.
alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    # This occurrence's id: a raise and its resolve carry the same one.
    sa.Column("id", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("summary", sa.String(500), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    # When the condition began, as far as the store tells (None: unknown).
    sa.Column("since", UTCDateTime, nullable=True),
    sa.Column("raised_at", UTCDateTime, nullable=False),
    sa.Column("node", sa.String(64), nullable=False),
    sa.CheckConstraint(one_of("kind", ALERT_KINDS), name="kind"),
    sa.Index(None, "raised_at"),
)

PAYMENT_STATUSES = ("pending", "paid")

# Top-ups paid on a provider's page (Stripe Checkout): created when the
# customer asks (``idempotency_key`` is the top-up's, so a retried request
# finds its payment), credited to the wallet when the provider's signed
# webhook says it is paid. ``reference`` is the provider's id of what the
# customer pays (a Checkout Session), ``settlement`` the id refunds name (a
# PaymentIntent), ``refunded`` what refunds have debited so far.
payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("provider", sa.String(16), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),  # minor units
    sa.Column("currency", sa.CHAR(3), nullable=False),
    sa.Column("idempotency_key", sa.String(160), nullable=False),
    sa.Column("reference", sa.String(128), nullable=False),
    sa.Column("settlement", sa.String(128), nullable=True),
    sa.Column("redirect_url", sa.Text, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("refunded", sa.BigInteger, nullable=False),  # minor units
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(one_of("status", PAYMENT_STATUSES), name="status"),
    sa.UniqueConstraint("idempotency_key"),
    sa.UniqueConstraint("provider", "reference"),
    sa.Index(None, "provider", "settlement"),
    sa.Index(None, "user_id", "id"),
)

# Every provider event acted on, by the provider's event id: a replayed
# delivery (same id) is recognised and changes nothing.
payment_events = sa.Table(
    "payment_events",
    metadata,
    sa.Column("provider", sa.String(16), primary_key=True),
    sa.Column("event_id", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("payment_id", sa.Integer, nullable=True),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

# Raises and resolves waiting to be delivered (ocppd.alerts.delivery), one row
# per notice and channel, written in the evaluation's transaction: a notice
# survives its node's restart or death, and any node sends it. A node sending
# one holds it until ``claimed_until``; a failed try sets ``next_at`` (the
# back-off); a delivered (or given up) notice is deleted.
alert_notices = sa.Table(
    "alert_notices",
    metadata,
    sa.Column("id", big_id(), primary_key=True),
    sa.Column("alert_id", sa.String(32), nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    # The alert as the notice shows it (``Alert.to_json``).
    sa.Column("alert", sa.JSON, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_at", UTCDateTime, nullable=False),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index(None, "next_at"),
    sa.Index(None, "alert_id", "channel"),
    sqlite_autoincrement=True,
)

#: A charger's connections, one row per socket (``connection_id``), written
#: from ``charger.connected`` / ``charger.disconnected``: the history the
#: reports' offline time and a point page's "connection history" read.
#: ``disconnected_at`` is None while the socket is open (or its disconnect is
#: still on its way); close code and reason as the node saw them.
charger_connections = sa.Table(
    "charger_connections",
    metadata,
    sa.Column("id", big_id(), primary_key=True),
    sa.Column(
        "charge_point_id",
        CHARGE_POINT_ID,
        sa.ForeignKey("charge_points.charge_point_id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("connection_id", sa.String(64), nullable=False),
    # None: the disconnect was stored first (it does not name the node).
    sa.Column("node", sa.String(255), nullable=True),
    sa.Column("connected_at", UTCDateTime, nullable=False),
    sa.Column("disconnected_at", UTCDateTime, nullable=True),
    sa.Column("close_code", sa.Integer, nullable=True),
    sa.Column("close_reason", sa.String(123), nullable=True),
    # One row per socket: a redelivered event finds its row.
    sa.UniqueConstraint("charge_point_id", "connection_id"),
    sa.Index(None, "charge_point_id", "connected_at"),
    sa.Index(None, "disconnected_at"),
    sqlite_autoincrement=True,
)
