"""Unconfirmed sessions (a start whose StartTransaction the bus has not taken yet)
and the outbox of domain events.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

``transactions.confirmed`` is added in place (every existing session was
answered, so confirmed): SQLite's ALTER TABLE ADD COLUMN needs no copy of
``transactions``, which would lose its AUTOINCREMENT.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "transactions",
        sa.Column("confirmed", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.create_index(
        op.f("ix_transactions_confirmed_created_at"), "transactions", ["confirmed", "created_at"]
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("node", sa.String(64), nullable=False),
        sa.Column("routing_key", sa.String(255), nullable=False),
        sa.Column("envelope", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_outbox_node_id"), "outbox", ["node", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_outbox_node_id"), "outbox")
    op.drop_table("outbox")
    op.drop_index(op.f("ix_transactions_confirmed_created_at"), "transactions")
    op.drop_column("transactions", "confirmed")
