"""Whether a charger's BootNotification closes its open sessions (issue 18).

True keeps the rule as it was: a boot proves every session that began
before it over. A charger that boots on every reconnect (its sessions run
on) is set to false by an operator.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "charge_points",
        sa.Column("boot_closes_sessions", sa.Boolean(), nullable=False, server_default=sa.true()),
    )


def downgrade() -> None:
    with op.batch_alter_table("charge_points") as batch:
        batch.drop_column("boot_closes_sessions")
