"""
Storage: SQLAlchemy Core tables, alembic migrations and query functions.

Query functions live in one module per subject (``chargers``, ``stations``,
``tariffs``, ``users``, ``tags``, ``transactions``, ``messages``,
``processed``). Each takes a ``Connection`` first and works inside the
caller's transaction; run them with ``Database.run`` (off the reactor thread)
or ``Database.run_sync``. They return frozen records from ``records``.
SQLite is the embedded default; PostgreSQL serves several nodes.
"""

from ocppd.store.database import Database, default_sqlite_url
from ocppd.store.errors import AlreadyExists, NotFound, StoreError

__all__ = ["AlreadyExists", "Database", "NotFound", "StoreError", "default_sqlite_url"]
