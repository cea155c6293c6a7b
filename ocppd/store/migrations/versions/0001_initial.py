"""The initial schema.

Stations, tariffs, users, charge points and their connectors, id tags,
charging sessions (transactions), unmatched stops, meter values, the OCPP
message log and the consumers' processed messages.

Written out by hand and checked against ``ocppd.store.tables`` by the test
suite (alembic's ``compare_metadata`` must find no difference). Plain
SQLAlchemy types only: ``UTCDateTime`` is ``sa.DateTime()`` in DDL.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# BIGINT surrogate key; SQLite auto-numbers only an INTEGER PRIMARY KEY.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("latitude", sa.Integer(), nullable=True),
        sa.Column("longitude", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
        sa.UniqueConstraint("name", name=op.f("uq_stations_name")),
        sa.CheckConstraint(
            "latitude BETWEEN -90000000 AND 90000000", name=op.f("ck_stations_latitude")
        ),
        sa.CheckConstraint(
            "longitude BETWEEN -180000000 AND 180000000", name=op.f("ck_stations_longitude")
        ),
    )

    op.create_table(
        "tariffs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("price_per_kwh", sa.Integer(), nullable=False),
        sa.Column("price_per_minute", sa.Integer(), nullable=False),
        sa.Column("session_fee", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tariffs")),
        sa.UniqueConstraint("name", name=op.f("uq_tariffs_name")),
        sa.CheckConstraint(
            "price_per_kwh >= 0 AND price_per_minute >= 0 AND session_fee >= 0",
            name=op.f("ck_tariffs_prices"),
        ),
    )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.CheckConstraint("role IN ('admin', 'customer')", name=op.f("ck_users_role")),
    )

    op.create_table(
        "charge_points",
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("key_hash", sa.String(255), nullable=True),
        sa.Column("registration_status", sa.String(16), nullable=False),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.Column("tariff_id", sa.Integer(), nullable=True),
        sa.Column("vendor", sa.String(20), nullable=True),
        sa.Column("model", sa.String(20), nullable=True),
        sa.Column("serial_number", sa.String(25), nullable=True),
        sa.Column("charge_box_serial_number", sa.String(25), nullable=True),
        sa.Column("firmware_version", sa.String(50), nullable=True),
        sa.Column("iccid", sa.String(20), nullable=True),
        sa.Column("imsi", sa.String(20), nullable=True),
        sa.Column("meter_type", sa.String(25), nullable=True),
        sa.Column("meter_serial_number", sa.String(25), nullable=True),
        sa.Column("boot_at", sa.DateTime(), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("connection_id", sa.String(64), nullable=True),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("connected_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("charge_point_id", name=op.f("pk_charge_points")),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_charge_points_station_id_stations"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tariff_id"],
            ["tariffs.id"],
            name=op.f("fk_charge_points_tariff_id_tariffs"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "registration_status IN ('Accepted', 'Pending', 'Rejected')",
            name=op.f("ck_charge_points_registration"),
        ),
    )
    op.create_index(op.f("ix_charge_points_station_id"), "charge_points", ["station_id"])

    op.create_table(
        "connectors",
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("connector_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error_code", sa.String(30), nullable=False),
        sa.Column("info", sa.String(50), nullable=True),
        sa.Column("vendor_error_code", sa.String(255), nullable=True),
        sa.Column("status_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("charge_point_id", "connector_id", name=op.f("pk_connectors")),
        sa.ForeignKeyConstraint(
            ["charge_point_id"],
            ["charge_points.charge_point_id"],
            name=op.f("fk_connectors_charge_point_id_charge_points"),
            ondelete="CASCADE",
        ),
    )

    op.create_table(
        "id_tags",
        sa.Column("id_tag", sa.String(20), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("parent_id_tag", sa.String(20), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id_tag", name=op.f("pk_id_tags")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_id_tags_user_id_users"), ondelete="SET NULL"
        ),
        sa.CheckConstraint(
            "status IN ('Accepted', 'Blocked', 'Expired', 'Invalid')",
            name=op.f("ck_id_tags_status"),
        ),
    )
    op.create_index(op.f("ix_id_tags_user_id"), "id_tags", ["user_id"])

    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(20), nullable=False),
        sa.Column("id_tag_status", sa.String(16), nullable=False),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("meter_start_wh", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("meter_stop_wh", sa.BigInteger(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.Column("stop_reason", sa.String(20), nullable=True),
        sa.Column("stop_id_tag", sa.String(20), nullable=True),
        sa.Column("energy_wh", sa.BigInteger(), nullable=True),
        sa.Column("last_meter_wh", sa.BigInteger(), nullable=True),
        sa.Column("last_meter_at", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("tariff_id", sa.Integer(), nullable=True),
        sa.Column("cost", sa.Integer(), nullable=True),
        sa.Column("currency", sa.CHAR(3), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.ForeignKeyConstraint(
            ["charge_point_id"],
            ["charge_points.charge_point_id"],
            name=op.f("fk_transactions_charge_point_id_charge_points"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_transactions_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tariff_id"],
            ["tariffs.id"],
            name=op.f("fk_transactions_tariff_id_tariffs"),
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "status IN ('active', 'completed')", name=op.f("ck_transactions_status")
        ),
        sa.CheckConstraint(
            "id_tag_status IN ('Accepted', 'Blocked', 'Expired', 'Invalid', 'ConcurrentTx')",
            name=op.f("ck_transactions_id_tag_status"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("uq_transactions_start"),
        "transactions",
        ["charge_point_id", "connector_id", "id_tag", "meter_start_wh", "started_at"],
        unique=True,
    )
    op.create_index(op.f("ix_transactions_id_tag_status"), "transactions", ["id_tag", "status"])
    op.create_index(
        op.f("ix_transactions_charge_point_id_status"),
        "transactions",
        ["charge_point_id", "status"],
    )
    op.create_index(
        op.f("ix_transactions_user_id_started_at"), "transactions", ["user_id", "started_at"]
    )
    op.create_index(op.f("ix_transactions_started_at"), "transactions", ["started_at"])

    op.create_table(
        "unmatched_stops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("meter_stop_wh", sa.BigInteger(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.String(20), nullable=True),
        sa.Column("id_tag", sa.String(20), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unmatched_stops")),
        sa.ForeignKeyConstraint(
            ["charge_point_id"],
            ["charge_points.charge_point_id"],
            name=op.f("fk_unmatched_stops_charge_point_id_charge_points"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "charge_point_id",
            "transaction_id",
            "stopped_at",
            name=op.f("uq_unmatched_stops_charge_point_id_transaction_id_stopped_at"),
        ),
    )

    op.create_table(
        "meter_values",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.DateTime(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_wh", sa.BigInteger(), nullable=True),
        sa.Column("measurand", sa.String(50), nullable=False),
        sa.Column("phase", sa.String(10), nullable=False),
        sa.Column("unit", sa.String(20), nullable=True),
        sa.Column("context", sa.String(30), nullable=False),
        sa.Column("location", sa.String(10), nullable=False),
        sa.Column("format", sa.String(20), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_values")),
        sa.ForeignKeyConstraint(
            ["charge_point_id"],
            ["charge_points.charge_point_id"],
            name=op.f("fk_meter_values_charge_point_id_charge_points"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "charge_point_id",
            "connector_id",
            "transaction_id",
            "timestamp",
            "measurand",
            "phase",
            "location",
            "context",
            name=op.f("uq_meter_values_sample"),
        ),
    )
    op.create_index(
        op.f("ix_meter_values_transaction_id_timestamp"),
        "meter_values",
        ["transaction_id", "timestamp"],
    )
    op.create_index(
        op.f("ix_meter_values_charge_point_id_timestamp"),
        "meter_values",
        ["charge_point_id", "timestamp"],
    )

    op.create_table(
        "message_log",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("message_type", sa.String(10), nullable=False),
        sa.Column("action", sa.Text(), nullable=True),
        sa.Column("unique_id", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_log")),
        sa.UniqueConstraint("message_id", name=op.f("uq_message_log_message_id")),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_message_log_direction")),
        sa.CheckConstraint(
            "message_type IN ('CALL', 'CALLRESULT', 'CALLERROR')",
            name=op.f("ck_message_log_message_type"),
        ),
    )
    op.create_index(
        op.f("ix_message_log_charge_point_id_id"), "message_log", ["charge_point_id", "id"]
    )

    op.create_table(
        "processed_messages",
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("processed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "message_id", name=op.f("pk_processed_messages")),
    )
    op.create_index(
        op.f("ix_processed_messages_processed_at"), "processed_messages", ["processed_at"]
    )


def downgrade() -> None:
    for table in (
        "processed_messages",
        "message_log",
        "meter_values",
        "unmatched_stops",
        "transactions",
        "id_tags",
        "connectors",
        "charge_points",
        "users",
        "tariffs",
        "stations",
    ):
        op.drop_table(table)
