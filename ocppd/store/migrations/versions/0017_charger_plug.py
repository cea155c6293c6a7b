"""A charger's plug and maximum power, as the operator records them for drivers.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("charge_points", sa.Column("connector_type", sa.String(16), nullable=True))
    op.add_column("charge_points", sa.Column("max_power_w", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("charge_points") as batch:
        batch.drop_column("max_power_w")
        batch.drop_column("connector_type")
