"""Billing review of implausible sessions, tariffs that charge their fee always, and
an index for the sweep that releases the funds of starts that never happened.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

Columns only, added in place: SQLite's ALTER TABLE ADD COLUMN takes a CHECK
and needs no copy of ``transactions`` (a copy would also lose its
AUTOINCREMENT, which keeps transaction ids from ever being reused).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

REVIEW_CHECK = "review_status IN ('pending', 'billed', 'adjusted', 'waived')"


def upgrade() -> None:
    op.add_column(
        "tariffs",
        sa.Column("session_fee_always", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    review_status = sa.Column(
        "review_status",
        sa.String(16),
        sa.CheckConstraint(REVIEW_CHECK, name=op.f("ck_transactions_review_status")),
        nullable=True,
    )
    op.add_column("transactions", review_status)
    op.add_column("transactions", sa.Column("review_reasons", sa.String(200), nullable=True))
    op.add_column("transactions", sa.Column("review_cost", sa.BigInteger(), nullable=True))
    op.add_column("transactions", sa.Column("reviewed_by", sa.Integer(), nullable=True))
    op.add_column("transactions", sa.Column("reviewed_at", sa.DateTime(), nullable=True))
    op.add_column("transactions", sa.Column("review_note", sa.String(500), nullable=True))
    op.create_index(op.f("ix_transactions_review_status"), "transactions", ["review_status"])
    op.create_index(
        op.f("ix_charging_requests_status_created_at"),
        "charging_requests",
        ["status", "created_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_charging_requests_status_created_at"), "charging_requests")
    op.drop_index(op.f("ix_transactions_review_status"), "transactions")
    for column in (
        "review_note",
        "reviewed_at",
        "reviewed_by",
        "review_cost",
        "review_reasons",
        "review_status",
    ):
        op.drop_column("transactions", column)
    op.drop_column("tariffs", "session_fee_always")
