"""The embedded bus's journal: what it accepted and its queues have not yet settled.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bus_journal",
        sa.Column("node", sa.Text(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("routing_key", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("dead_attempts", sa.Integer(), nullable=True),
        sa.Column("dead_reason", sa.Text(), nullable=True),
        sa.Column("dead_failed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("node", "seq", name=op.f("pk_bus_journal")),
    )


def downgrade() -> None:
    op.drop_table("bus_journal")
