"""One index fewer per stored meter sample (issue 16).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07

Every sample was an entry in three indexes: the sample's unique key
(charger, connector, transaction, time, ...), (transaction, time) and
(charger, time). The unique key now leads with (charger, transaction, time),
so it also answers a session's samples (``list_meter_values``,
``session_meter_history``: both ask for the session's id *and* its own
charger), and the (transaction, time) index, which nothing else read, is
gone: one B-tree page fewer that a commit rewrites per charger
(bench/pages.py). The key's columns, and so what counts as the same
sample, are unchanged.

SQLite cannot alter a table's constraint: the table is copied (196,000
samples in 5.5 s on a loaded 2-core machine, and the table's size again in
free disk space, which the file keeps for its next rows). PostgreSQL
rebuilds the unique index.
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

SAMPLE_KEY = [
    "charge_point_id",
    "transaction_id",
    "timestamp",
    "connector_id",
    "measurand",
    "phase",
    "location",
    "context",
]
OLD_SAMPLE_KEY = [
    "charge_point_id",
    "connector_id",
    "transaction_id",
    "timestamp",
    "measurand",
    "phase",
    "location",
    "context",
]


def upgrade() -> None:
    op.drop_index(op.f("ix_meter_values_transaction_id_timestamp"), "meter_values")
    with op.batch_alter_table("meter_values") as batch:
        batch.drop_constraint("uq_meter_values_sample", type_="unique")
        batch.create_unique_constraint("uq_meter_values_sample", SAMPLE_KEY)


def downgrade() -> None:
    with op.batch_alter_table("meter_values") as batch:
        batch.drop_constraint("uq_meter_values_sample", type_="unique")
        batch.create_unique_constraint("uq_meter_values_sample", OLD_SAMPLE_KEY)
    op.create_index(
        op.f("ix_meter_values_transaction_id_timestamp"),
        "meter_values",
        ["transaction_id", "timestamp"],
    )
