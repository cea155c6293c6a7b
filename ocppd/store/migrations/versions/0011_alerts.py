"""The alerts open now (ocppd.alerts): raised once, resolved once, kept across restarts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("summary", sa.String(500), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=True),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.CheckConstraint(
            "kind IN ('charger_offline', 'connector_faulted', 'session_long', "
            "'dead_letters', 'lag')",
            name=op.f("ck_alerts_kind"),
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_raised_at"), "alerts", ["raised_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_alerts_raised_at"), table_name="alerts")
    op.drop_table("alerts")
