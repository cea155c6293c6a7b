"""A charger's connections as a history, for offline time in the reports.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

The chargers online at the upgrade get an open row from their recorded
connect, so the history starts with what the store knew; time before the
upgrade has no history and counts as offline (docs/api.md, "Reports").
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "charger_connections",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("connection_id", sa.String(64), nullable=False),
        sa.Column("node", sa.String(255), nullable=True),
        sa.Column("connected_at", sa.DateTime(), nullable=False),
        sa.Column("disconnected_at", sa.DateTime(), nullable=True),
        sa.Column("close_code", sa.Integer(), nullable=True),
        sa.Column("close_reason", sa.String(123), nullable=True),
        sa.ForeignKeyConstraint(
            ["charge_point_id"],
            ["charge_points.charge_point_id"],
            name=op.f("fk_charger_connections_charge_point_id_charge_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charger_connections")),
        sa.UniqueConstraint(
            "charge_point_id",
            "connection_id",
            name=op.f("uq_charger_connections_charge_point_id_connection_id"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_charger_connections_charge_point_id_connected_at"),
        "charger_connections",
        ["charge_point_id", "connected_at"],
    )
    op.create_index(
        op.f("ix_charger_connections_disconnected_at"), "charger_connections", ["disconnected_at"]
    )
    op.execute(
        "INSERT INTO charger_connections (charge_point_id, connection_id, node, connected_at) "
        "SELECT charge_point_id, connection_id, node, connected_at FROM charge_points "
        "WHERE online AND connection_id IS NOT NULL AND connected_at IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_charger_connections_disconnected_at"), "charger_connections")
    op.drop_index(
        op.f("ix_charger_connections_charge_point_id_connected_at"), "charger_connections"
    )
    op.drop_table("charger_connections")
