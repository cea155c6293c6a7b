"""
OCPP id tags (RFID cards, app tokens): who may charge.

The request path reads them through ``ocppd.ocpp.tagcache``; an expired
``Accepted`` tag is reported as ``Expired`` there, at the time of the question.
"""

from __future__ import annotations

import secrets
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.errors import AlreadyExists, NotFound
from ocppd.store.records import IdTagRecord, all_records, first_record
from ocppd.store.sql import insert_new
from ocppd.store.tables import ID_TAG_STATUSES, id_tags


def canonical_id_tag(id_tag: str) -> str:
    """
    The one spelling an idTag is stored and compared in. OCPP 1.6 IdToken is
    case-insensitive, and readers differ in the case of the hex UIDs they
    send; upper case keeps comparisons plain, indexed equality.

    Character by character, never longer than the tag: ``"ß".upper()`` is
    ``"SS"``, and twenty of them would not fit the 20-character column
    (PostgreSQL refuses what SQLite stores). A character whose upper case is
    longer stays as it is.
    """
    upper = id_tag.upper()
    if len(upper) == len(id_tag):
        # No character grew (none ever shrinks), so each maps to one.
        return upper
    return "".join(upper if len(upper := char.upper()) == 1 else char for char in id_tag)


def add_id_tag(
    conn: Connection,
    id_tag: str,
    *,
    status: str = "Accepted",
    expires_at: datetime | None = None,
    parent_id_tag: str | None = None,
    user_id: int | None = None,
    now: datetime,
) -> None:
    """Add a tag. Raises AlreadyExists, or ValueError for an unknown status."""
    if status not in ID_TAG_STATUSES:
        raise ValueError(f"id tag status {status!r} is not one of {ID_TAG_STATUSES}")
    id_tag = canonical_id_tag(id_tag)
    values = {
        "id_tag": id_tag,
        "status": status,
        "expires_at": expires_at,
        "parent_id_tag": None if parent_id_tag is None else canonical_id_tag(parent_id_tag),
        "user_id": user_id,
        "created_at": now,
    }
    if insert_new(conn, id_tags, values) is None:
        raise AlreadyExists(f"id tag {id_tag}")


def get_id_tag(conn: Connection, id_tag: str) -> IdTagRecord | None:
    """The tag, or None (an unknown tag is ``Invalid`` to the charger)."""
    return first_record(
        conn, IdTagRecord, sa.select(id_tags).where(id_tags.c.id_tag == canonical_id_tag(id_tag))
    )


def list_id_tags(conn: Connection) -> list[IdTagRecord]:
    """Every tag, in id order (the local authorization list is built from these)."""
    return all_records(conn, IdTagRecord, sa.select(id_tags).order_by(id_tags.c.id_tag))


def list_id_tags_page(
    conn: Connection, *, after_id_tag: str | None = None, limit: int
) -> list[IdTagRecord]:
    """Up to ``limit`` tags in id order, after ``after_id_tag`` (keyset pagination)."""
    query = sa.select(id_tags)
    if after_id_tag is not None:
        query = query.where(id_tags.c.id_tag > canonical_id_tag(after_id_tag))
    return all_records(conn, IdTagRecord, query.order_by(id_tags.c.id_tag).limit(limit))


def update_id_tag(
    conn: Connection,
    id_tag: str,
    *,
    status: str,
    expires_at: datetime | None,
    parent_id_tag: str | None,
    user_id: int | None,
) -> None:
    """Replace a tag's fields. Raises NotFound, or ValueError for an unknown status."""
    if status not in ID_TAG_STATUSES:
        raise ValueError(f"id tag status {status!r} is not one of {ID_TAG_STATUSES}")
    result = conn.execute(
        id_tags.update()
        .where(id_tags.c.id_tag == canonical_id_tag(id_tag))
        .values(
            status=status,
            expires_at=expires_at,
            parent_id_tag=None if parent_id_tag is None else canonical_id_tag(parent_id_tag),
            user_id=user_id,
        )
    )
    if result.rowcount == 0:
        raise NotFound(f"id tag {id_tag}")


def delete_id_tag(conn: Connection, id_tag: str) -> None:
    """
    Delete a tag. Raises NotFound. Sessions keep the idTag as text (no
    foreign key), and a child naming it as parent keeps that group id: in
    OCPP 1.6 a parent is a group identifier, not necessarily a tag of its own.
    """
    result = conn.execute(id_tags.delete().where(id_tags.c.id_tag == canonical_id_tag(id_tag)))
    if result.rowcount == 0:
        raise NotFound(f"id tag {id_tag}")


def user_id_tag(conn: Connection, user_id: int, *, now: datetime) -> str:
    """
    The idTag app-started sessions of this user carry: their oldest
    ``Accepted`` tag, or a new random one issued to them now (every customer
    has one). Random, not derived from the user id: an idTag is what a cloned
    card would present, so it must not be guessable.
    """
    existing = conn.execute(
        sa.select(id_tags.c.id_tag)
        .where(id_tags.c.user_id == user_id, id_tags.c.status == "Accepted")
        .order_by(id_tags.c.created_at, id_tags.c.id_tag)
        .limit(1)
    ).scalar()
    if existing is not None:
        return str(existing)
    while True:
        # 20 characters: the whole of OCPP 1.6's CiString20Type.
        candidate = secrets.token_hex(10).upper()
        values = {"id_tag": candidate, "status": "Accepted", "user_id": user_id, "created_at": now}
        if insert_new(conn, id_tags, values) is not None:
            return candidate
