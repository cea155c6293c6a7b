"""REST bearer tokens: issued at login, checked on every call, revoked at logout."""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.records import UserRecord, first_record
from ocppd.store.tables import api_tokens, users


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256, hex (tokens are 256-bit random)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_token(
    conn: Connection, token: str, user_id: int, *, now: datetime, expires_at: datetime
) -> None:
    conn.execute(
        api_tokens.insert().values(
            token_hash=token_hash(token), user_id=user_id, created_at=now, expires_at=expires_at
        )
    )


def user_for_token(conn: Connection, token: str, *, now: datetime) -> UserRecord | None:
    """The user a live token belongs to; None if unknown, expired, revoked, or its user blocked."""
    t = api_tokens.c
    return first_record(
        conn,
        UserRecord,
        sa.select(users)
        .join(api_tokens, t.user_id == users.c.id)
        .where(
            t.token_hash == token_hash(token),
            t.expires_at > now,
            t.revoked_at.is_(None),
            users.c.blocked_at.is_(None),
        ),
    )


def revoke_token(conn: Connection, token: str, *, now: datetime) -> bool:
    """Revoke a token; whether it was live."""
    t = api_tokens.c
    result = conn.execute(
        api_tokens.update()
        .where(t.token_hash == token_hash(token), t.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)
