"""A charger key being rotated in; AuthorizationKey values redacted from the logs.

Before this revision a ChangeConfiguration of AuthorizationKey was kept in
clear in the message log and the audit log: those values are redacted here,
as ocppd now does when it writes them (ocppd.ocpp.authorization_key).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from ocppd.ocpp.authorization_key import redact

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_message_log = sa.table(
    "message_log", sa.column("id"), sa.column("action"), sa.column("payload", sa.JSON)
)
_audit_log = sa.table(
    "audit_log", sa.column("id"), sa.column("action"), sa.column("detail", sa.JSON)
)


def _redacted_detail(detail: Any) -> Any:
    if not isinstance(detail, dict):
        return detail
    return {key: redact(value) for key, value in detail.items()}


def _redact(table: Any, column: str, actions: tuple[str, ...], clean: Any) -> None:
    conn = op.get_bind()
    # Only the few rows of these actions are read; their updates go by primary key.
    rows = conn.execute(
        sa.select(table.c.id, table.c[column]).where(table.c.action.in_(actions))
    ).all()
    for row_id, value in rows:
        cleaned = clean(value)
        if cleaned != value:
            conn.execute(table.update().where(table.c.id == row_id).values({column: cleaned}))


def upgrade() -> None:
    op.add_column("charge_points", sa.Column("pending_key_hash", sa.String(255), nullable=True))
    _redact(_message_log, "payload", ("ChangeConfiguration", "GetConfiguration"), redact)
    _redact(
        _audit_log,
        "detail",
        ("command.change-configuration", "command.get-configuration"),
        _redacted_detail,
    )


def downgrade() -> None:
    # The redacted values are gone for good: that is the point.
    with op.batch_alter_table("charge_points") as batch:
        batch.drop_column("pending_key_hash")
