"""
Access to the real services (RabbitMQ, Redis, PostgreSQL) for integration tests.

On CI (``CI=true``) a test that needs a service fails when it is unreachable;
on a laptop without it, the test is skipped with the reason.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.trial.unittest import SkipTest

POSTGRES_URL = os.environ.get(
    "OCPPD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RABBITMQ_URL = os.environ.get("OCPPD_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
REDIS_URL = os.environ.get("OCPPD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(name: str, host: str, port: int) -> None:
    """
    Fail (on CI) or skip (elsewhere) unless ``host:port`` accepts TCP connections.
    """
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as e:
        reason = f"{name} is not reachable at {host}:{port}: {e}"
        if on_ci():
            raise AssertionError(f"CI requires {reason}") from e
        raise SkipTest(reason) from e


def require_postgres() -> str:
    """The SQLAlchemy URL of the test PostgreSQL, once it is known to be reachable."""
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    require_service("PostgreSQL", url.host or "127.0.0.1", url.port or 5432)
    return POSTGRES_URL


def install_shared_extensions(conn: Any) -> None:
    """
    Install in ``public`` the extensions migrations use when they may
    (revision 0021's ``pg_trgm``), before a test migrates a schema of its own.
    A migration creates a missing extension in its first ``search_path``
    schema: a test's, dropped with CASCADE after it, which would take the
    extension along, and with it every other running test's indexes on it.
    """
    import sqlalchemy as sa

    installed = "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'"
    if conn.execute(sa.text(installed)).first() is not None:
        return
    try:
        with conn.begin_nested():
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
    except sa.exc.IntegrityError:
        pass  # another test process installed it at the same moment
