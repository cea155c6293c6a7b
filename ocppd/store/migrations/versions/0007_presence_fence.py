"""The presence fence of a charger's current connection (docs/presence.md).

Connect events from different nodes are ordered by their fence, which every
node gets from the shared presence, instead of by the time each node's clock
gave them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("charge_points", sa.Column("connection_fence", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("charge_points", "connection_fence")
