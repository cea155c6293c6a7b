"""Indexes for the CMS's customer and id tag lists sorted by name and by creation.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07

Without them a page of 50 sorted so sorted every row first: ~100 ms at 100,000
users on PostgreSQL, against ~1 ms for the page by e-mail (bench/people_lists.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_users_name_sort",
        "users",
        [sa.text("lower(coalesce(name, ''))"), "id"],
    )
    op.create_index(op.f("ix_id_tags_created_at_id_tag"), "id_tags", ["created_at", "id_tag"])


def downgrade() -> None:
    op.drop_index(op.f("ix_id_tags_created_at_id_tag"), "id_tags")
    op.drop_index("ix_users_name_sort", "users")
