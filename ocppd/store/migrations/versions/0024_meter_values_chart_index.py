"""A charger's samples by time: only those its meter charts read (issue 16).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-08

Every sample was an entry in the (charge_point_id, timestamp) index. Its one
reader is a charger's meter charts (``ocppd.store.meter_history``), which
read the phase-less energy register and active import power samples only; a
session's samples and the charger's cascade come by the unique sample key,
which leads with the charger. The index is now partial, those samples only:
fewer entries to insert, and fewer leaves a commit rewrites where each
charger's entries grow, half of them for a MeterValues of four measurands
(bench/pages.py --by-tree, bench/RESULTS.md).

Both engines build the new index from the table (a pass over the samples)
and drop the old one. The downgrade builds the full index back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

#: ``tables.CHART_SAMPLE`` as of this revision (a migration keeps its own copy).
CHART_SAMPLE = sa.text(
    "phase = '' AND measurand IN ('Energy.Active.Import.Register', 'Power.Active.Import')"
)


def upgrade() -> None:
    op.create_index(
        "ix_meter_values_chart",
        "meter_values",
        ["charge_point_id", "timestamp"],
        sqlite_where=CHART_SAMPLE,
        postgresql_where=CHART_SAMPLE,
    )
    op.drop_index(op.f("ix_meter_values_charge_point_id_timestamp"), "meter_values")


def downgrade() -> None:
    op.create_index(
        op.f("ix_meter_values_charge_point_id_timestamp"),
        "meter_values",
        ["charge_point_id", "timestamp"],
    )
    op.drop_index("ix_meter_values_chart", "meter_values")
