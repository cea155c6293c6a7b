"""
The alembic environment.

``ocppd.store.migrate`` hands in an open connection (inside its transaction)
through ``config.attributes["connection"]``. For a developer's own alembic
commands (``alembic -c ocppd/store/alembic.ini -x url=sqlite:///dev.sqlite3
revision --autogenerate -m ...``), a URL may be given instead, and
``--sql`` prints the DDL without a database.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from ocppd.store.database import create_engine, normalize_url
from ocppd.store.migrate import include_object
from ocppd.store.tables import metadata
from ocppd.store.types import UTCDateTime

config = context.config


def _render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Autogenerate writes ``UTCDateTime`` as ``sa.DateTime()``: a revision
    must not import application code that may change after it was written."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        compare_server_default=True,
        render_item=_render_item,
        include_object=include_object,
        # SQLite alters tables by copying them: autogenerate must say so.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database with -x url=... (or sqlalchemy.url)")
    return url


if context.is_offline_mode():
    context.configure(url=normalize_url(_url()), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    _configure(config.attributes["connection"])
else:
    engine = create_engine(_url(), max_threads=1)
    try:
        with engine.begin() as connection:
            _configure(connection)
    finally:
        engine.dispose()
