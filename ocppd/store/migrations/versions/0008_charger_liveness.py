"""Charger liveness: when the node holding a charger's socket last vouched for it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

One nullable column, added in place. Rows online before the upgrade have none;
the sweep then counts from ``connected_at`` (``chargers.expire_liveness``), so
a charger left online by a crash before the upgrade goes offline too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("charge_points", sa.Column("alive_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("charge_points") as batch:
        batch.drop_column("alive_at")
