"""Customers in the CMS: a user's name and blocking; wallet adjustments by hand.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

Two nullable columns added in place, and one more wallet transaction kind
(``adjustment``): its CHECK constraint is replaced, on SQLite by copying the
table (batch mode), on PostgreSQL in place.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_KINDS_BEFORE = "kind IN ('top_up', 'debit', 'refund')"
_KINDS_AFTER = "kind IN ('top_up', 'debit', 'refund', 'adjustment')"


def _replace_kinds(condition: str) -> None:
    with op.batch_alter_table("wallet_transactions") as batch:
        # op.f: the name as it is, not put through the naming convention again.
        batch.drop_constraint(op.f("ck_wallet_transactions_kind"), type_="check")
        batch.create_check_constraint(op.f("ck_wallet_transactions_kind"), condition)


def upgrade() -> None:
    op.add_column("users", sa.Column("name", sa.String(200), nullable=True))
    op.add_column("users", sa.Column("blocked_at", sa.DateTime(), nullable=True))
    _replace_kinds(_KINDS_AFTER)


def downgrade() -> None:
    op.execute("DELETE FROM wallet_transactions WHERE kind = 'adjustment'")
    _replace_kinds(_KINDS_BEFORE)
    with op.batch_alter_table("users") as batch:
        batch.drop_column("blocked_at")
        batch.drop_column("name")
