"""Alert notices waiting for delivery: kept across restarts, sent by any node.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_notices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("alert_id", sa.String(32), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("alert", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notices")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_alert_notices_next_at"), "alert_notices", ["next_at"])
    op.create_index(
        op.f("ix_alert_notices_alert_id_channel"), "alert_notices", ["alert_id", "channel"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_notices_alert_id_channel"), "alert_notices")
    op.drop_index(op.f("ix_alert_notices_next_at"), "alert_notices")
    op.drop_table("alert_notices")
