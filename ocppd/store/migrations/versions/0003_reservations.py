"""Reservations made through ocppd (ReserveNow with an ocppd-allocated id).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(20), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("command_id", sa.String(32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
        sa.CheckConstraint(
            "status IN ('requested', 'accepted', 'faulted', 'occupied', 'rejected', "
            "'unavailable', 'failed', 'cancelled')",
            name=op.f("ck_reservations_status"),
        ),
    )
    op.create_index(
        op.f("ix_reservations_charge_point_id_status"),
        "reservations",
        ["charge_point_id", "status"],
    )


def downgrade() -> None:
    op.drop_table("reservations")
