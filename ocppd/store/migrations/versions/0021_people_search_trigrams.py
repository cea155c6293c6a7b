"""Trigram indexes for the CMS's customer and id tag search, on PostgreSQL.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07

A search is a substring match in any case (``LIKE '%...%'``, ocppd.store.people):
no B-tree helps, so every search read every user (80 to 120 ms at 100,000 users,
bench/people_lists.py). A GIN index of trigrams (``pg_trgm``) answers ``LIKE``
with a seek. ``pg_trgm`` is a trusted extension since PostgreSQL 13: a database
owner, or any role with CREATE on the database, installs it. If it is there
already it is used wherever it lives; if this role may not create it (or the
server lacks it), the refusal is logged in one line and the upgrade goes on
without these indexes: searches stay correct, only slower. Re-run nothing: a
later ``CREATE EXTENSION pg_trgm`` by a superuser and this revision's indexes
created by hand (the statements below) give the same schema.

SQLite has no such index: its searches stay a scan (docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ocppd.logs import Logger

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

log = Logger(namespace="ocppd.store.migrations")

#: (index, table, indexed expression): exactly the expressions the searches match
#: (``ocppd.store.people``), as ``LIKE`` is answered by an index of the same expression.
TRIGRAM_INDEXES = (
    ("ix_users_email_trgm", "users", "email"),
    ("ix_users_name_trgm", "users", "lower(name)"),
    ("ix_id_tags_id_tag_trgm", "id_tags", "id_tag"),
    ("ix_id_tags_parent_id_tag_trgm", "id_tags", "parent_id_tag"),
)


def _trigram_schema(conn: sa.Connection) -> str | None:
    """The schema ``pg_trgm`` lives in, installing it if this role may; None if not."""
    found = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
    schema = conn.execute(sa.text(found)).scalar()
    if schema is not None:
        return str(schema)
    try:
        # In a savepoint: a refusal aborts only it, not the upgrade's transaction.
        with conn.begin_nested():
            conn.execute(sa.text("CREATE EXTENSION pg_trgm"))
    except sa.exc.DBAPIError as e:
        diagnostic = getattr(e.orig, "diag", None)
        reason = getattr(diagnostic, "message_primary", None) or str(e.orig).splitlines()[0]
        log.warn(
            "Customer and id tag search without trigram indexes: cannot create the "
            "pg_trgm extension ({reason}); a superuser's CREATE EXTENSION pg_trgm, then "
            "the indexes of revision 0021, make it fast",
            reason=reason,
        )
        return None
    return str(conn.execute(sa.text(found)).scalar())


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    schema = _trigram_schema(conn)
    if schema is None:
        return
    # Qualified: the extension may live outside this connection's search_path.
    # (regnamespace's text is already quoted where a name needs it.)
    ops = f"{schema}.gin_trgm_ops"
    for name, table, expression in TRIGRAM_INDEXES:
        op.execute(f"CREATE INDEX {name} ON {table} USING gin (({expression}) {ops})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # The extension stays: something else may use it, and it costs nothing unused.
    for name, _table, _expression in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
