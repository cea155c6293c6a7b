"""Users: operators (``admin``) and customers."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.errors import AlreadyExists
from ocppd.store.records import UserRecord, first_record
from ocppd.store.sql import insert_new
from ocppd.store.tables import ROLES, users


def normalize_email(email: str) -> str:
    """
    The stored form of an address: trimmed and lower-cased, so that sign-in
    and uniqueness ignore case (``Jo@Example.com`` is ``jo@example.com``).
    """
    return email.strip().lower()


def add_user(conn: Connection, email: str, password_hash: str, role: str, *, now: datetime) -> int:
    """Add a user; their id. Raises AlreadyExists for an address in use (in any case)."""
    if role not in ROLES:
        raise ValueError(f"role {role!r} is not one of {ROLES}")
    email = normalize_email(email)
    user_id = insert_new(
        conn,
        users,
        {"email": email, "password_hash": password_hash, "role": role, "created_at": now},
    )
    if user_id is None:
        raise AlreadyExists(f"user {email}")
    return int(user_id)


def get_user_by_email(conn: Connection, email: str) -> UserRecord | None:
    """The user with this address (in any case), or None."""
    return first_record(
        conn, UserRecord, sa.select(users).where(users.c.email == normalize_email(email))
    )


def get_user(conn: Connection, user_id: int) -> UserRecord | None:
    """The user, or None."""
    return first_record(conn, UserRecord, sa.select(users).where(users.c.id == user_id))
