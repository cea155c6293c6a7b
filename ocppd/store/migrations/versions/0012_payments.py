"""Top-ups paid on a payment provider's page, and the provider events acted on.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("idempotency_key", sa.String(160), nullable=False),
        sa.Column("reference", sa.String(128), nullable=False),
        sa.Column("settlement", sa.String(128), nullable=True),
        sa.Column("redirect_url", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("refunded", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_payments_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payments")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_payments_idempotency_key")),
        sa.UniqueConstraint("provider", "reference", name=op.f("uq_payments_provider_reference")),
        sa.CheckConstraint("status IN ('pending', 'paid')", name=op.f("ck_payments_status")),
    )
    op.create_index(op.f("ix_payments_provider_settlement"), "payments", ["provider", "settlement"])
    op.create_index(op.f("ix_payments_user_id_id"), "payments", ["user_id", "id"])
    op.create_table(
        "payment_events",
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("provider", "event_id", name=op.f("pk_payment_events")),
    )


def downgrade() -> None:
    op.drop_table("payment_events")
    op.drop_index(op.f("ix_payments_user_id_id"), "payments")
    op.drop_index(op.f("ix_payments_provider_settlement"), "payments")
    op.drop_table("payments")
