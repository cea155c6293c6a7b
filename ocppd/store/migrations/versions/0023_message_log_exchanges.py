"""One message-log row per inbound exchange (issue 16).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07

A charger's CALL and ocppd's answer to it (CALLRESULT or CALLERROR, sent
at the call's time) were two rows of ``message_log``, ``<envelope>:call``
and ``<envelope>:answer``, each a row and two index entries for every
MeterValues. The processor now writes them as one row, the answer in two
new nullable columns; ``ocppd.store.messages`` reads a row back as its one
or two frames. Rows written before stay as they are (a frame each) and read
as before; adding nullable columns rewrites no row.

The downgrade loses nothing: it splits each combined row back into its
call and its answer (``<envelope>:answer``, direction ``out``). To keep
the answer right after its call, every row is renumbered as the listing
numbers frames since this revision (row ``n``'s call ``2n``, its answer
``2n + 1``), so the ids seen in the API stay the same; PostgreSQL's
sequence is moved past them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("message_log", sa.Column("answer_type", sa.String(10), nullable=True))
    op.add_column("message_log", sa.Column("answer_payload", sa.JSON(), nullable=True))


_log = sa.table(
    "message_log",
    sa.column("id", sa.BigInteger),
    sa.column("message_id", sa.String),
    sa.column("charge_point_id", sa.String),
    sa.column("direction", sa.String),
    sa.column("message_type", sa.String),
    sa.column("action", sa.Text),
    sa.column("unique_id", sa.Text),
    sa.column("payload", sa.JSON),
    sa.column("created_at", sa.DateTime),
    sa.column("answer_type", sa.String),
    sa.column("answer_payload", sa.JSON),
)


def _answer_id(message_id: sa.ColumnElement[str]) -> sa.ColumnElement[str]:
    """``ocppd.store.messages.answer_message_id`` in SQL (both dialects)."""
    stem = sa.case(
        (
            message_id.endswith(":call"),
            sa.func.substr(message_id, 1, sa.func.length(message_id) - 5),
        ),
        else_=message_id,
    )
    return stem + ":answer"


def downgrade() -> None:
    # Negative first: no renumbered id meets one not renumbered yet
    # (PostgreSQL checks the primary key row by row).
    op.execute(_log.update().values(id=-2 * _log.c.id))
    exchange = _log.alias("exchange")
    logged = _log.alias("logged")
    answer_id = _answer_id(exchange.c.message_id)
    answers = sa.select(
        1 - exchange.c.id,
        answer_id,
        exchange.c.charge_point_id,
        sa.literal("out"),
        exchange.c.answer_type,
        exchange.c.action,
        exchange.c.unique_id,
        exchange.c.answer_payload,
        exchange.c.created_at,
    ).where(
        exchange.c.answer_type.is_not(None),
        # An answer whose id is logged already (its envelope's old answer
        # row, kept when the call's row was pruned and the envelope came
        # again) is not logged twice.
        ~sa.exists().where(logged.c.message_id == answer_id),
    )
    columns = [
        "id",
        "message_id",
        "charge_point_id",
        "direction",
        "message_type",
        "action",
        "unique_id",
        "payload",
        "created_at",
    ]
    op.execute(_log.insert().from_select(columns, answers))
    op.execute(_log.update().where(_log.c.id < 0).values(id=-_log.c.id))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('message_log', 'id'), max(id))"
            " FROM message_log HAVING count(*) > 0"
        )
    with op.batch_alter_table("message_log") as batch:
        batch.drop_column("answer_payload")
        batch.drop_column("answer_type")
