"""A charger's late StopTransaction after the central system closed its session (issue 18).

The tariff a closed session was billed with (so a late stop is billed again
with the same prices), the charger's own stop reason kept beside the closing
reason, and when that late stop was applied (once per session).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("transactions", sa.Column("billed_tariff", sa.String(200), nullable=True))
    op.add_column("transactions", sa.Column("charger_stop_reason", sa.String(20), nullable=True))
    op.add_column("transactions", sa.Column("late_stop_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transactions") as batch:
        batch.drop_column("late_stop_at")
        batch.drop_column("charger_stop_reason")
        batch.drop_column("billed_tariff")
