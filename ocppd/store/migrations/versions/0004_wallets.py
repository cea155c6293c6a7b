"""Prepaid wallets, their transactions, and app-started charging requests.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# BIGINT surrogate key; SQLite auto-numbers only an INTEGER PRIMARY KEY.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "wallets",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _user_fk("wallets"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_wallets")),
    )
    op.create_table(
        "wallet_transactions",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("reference", sa.String(128), nullable=True),
        sa.Column("idempotency_key", sa.String(160), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        _user_fk("wallet_transactions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_transactions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_wallet_transactions_idempotency_key")),
        sa.CheckConstraint(
            "kind IN ('top_up', 'debit', 'refund')", name=op.f("ck_wallet_transactions_kind")
        ),
    )
    op.create_index(
        op.f("ix_wallet_transactions_user_id_id"), "wallet_transactions", ["user_id", "id"]
    )
    op.create_table(
        "charging_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("charge_point_id", sa.String(48), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(20), nullable=False),
        sa.Column("command_id", sa.String(32), nullable=False),
        sa.Column("hold", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("stop_requested", sa.String(16), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        _user_fk("charging_requests"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charging_requests")),
        sa.CheckConstraint(
            "status IN ('requested', 'started', 'completed', 'failed')",
            name=op.f("ck_charging_requests_status"),
        ),
    )
    op.create_index(
        op.f("ix_charging_requests_user_id_status"), "charging_requests", ["user_id", "status"]
    )
    op.create_index(
        op.f("ix_charging_requests_charge_point_id_connector_id_status"),
        "charging_requests",
        ["charge_point_id", "connector_id", "status"],
    )
    op.create_index(op.f("ix_charging_requests_session_id"), "charging_requests", ["session_id"])


def downgrade() -> None:
    op.drop_table("charging_requests")
    op.drop_table("wallet_transactions")
    op.drop_table("wallets")
