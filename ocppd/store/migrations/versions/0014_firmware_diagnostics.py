"""A charger's firmware and diagnostics states; the diagnostics uploads asked for.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("charge_points", sa.Column("firmware_status", sa.String(32), nullable=True))
    op.add_column("charge_points", sa.Column("firmware_status_at", sa.DateTime(), nullable=True))
    op.add_column("charge_points", sa.Column("diagnostics_status", sa.String(32), nullable=True))
    op.add_column("charge_points", sa.Column("diagnostics_status_at", sa.DateTime(), nullable=True))
    op.create_table(
        "diagnostics_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["charge_point_id"],
            ["charge_points.charge_point_id"],
            name=op.f("fk_diagnostics_uploads_charge_point_id_charge_points"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostics_uploads")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_diagnostics_uploads_token_hash")),
    )
    op.create_index(
        op.f("ix_diagnostics_uploads_charge_point_id_id"),
        "diagnostics_uploads",
        ["charge_point_id", "id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_diagnostics_uploads_charge_point_id_id"), "diagnostics_uploads")
    op.drop_table("diagnostics_uploads")
    with op.batch_alter_table("charge_points") as batch:
        batch.drop_column("diagnostics_status_at")
        batch.drop_column("diagnostics_status")
        batch.drop_column("firmware_status_at")
        batch.drop_column("firmware_status")
