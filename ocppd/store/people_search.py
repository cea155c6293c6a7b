"""
What an operator's search of customers and id tags matches, and how it is
found: a substring of the e-mail, the name (any case) or an id tag (the
user's own; for a tag, itself, its parent or its owner's e-mail or name).

A substring is no B-tree's business: as one ``OR`` over the rows, the search
reads rows in the list's order until a page is full. That is quick when many
match and a read of every row when few or none do (80 to 120 ms at 100,000
users). On PostgreSQL, revision 0021's trigram indexes (``pg_trgm``) find the
few: each searched column is first looked up alone (one ``LIKE`` per select,
a seek each; an ``OR`` of them, or one reaching into another table, is
planned as a scan, as the planner prices ``LIKE`` at a fraction of its cost),
at most ``SEEK_LIMIT`` rows; if that many or fewer match, the page is read by
their keys. More than that, matches are dense and the ``OR`` walk is quick.
SQLite has no such index: its search is the walk (docs/operations.md).
Without ``pg_trgm`` the lookups are scans too, only slower, never wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.tables import id_tags, users
from ocppd.store.tags import canonical_id_tag

_u = users.c
_t = id_tags.c

#: Matching rows up to which a PostgreSQL search reads its page by key.
SEEK_LIMIT = 2000


def contains(column: sa.ColumnElement[Any], text: str) -> sa.ColumnElement[bool]:
    return column.contains(text, autoescape=True)


# --- the walk: one OR, row by row ------------------------------------------------


def users_walk(text: str) -> sa.ColumnElement[bool]:
    """Users whose e-mail, name or one of whose tags holds ``text``, as a filter of users."""
    lower = text.lower()
    owns = sa.exists().where(_t.user_id == _u.id, contains(_t.id_tag, canonical_id_tag(text)))
    return sa.or_(contains(_u.email, lower), contains(sa.func.lower(_u.name), lower), owns)


def tags_walk(text: str) -> sa.ColumnElement[bool]:
    """Tags holding ``text`` (tag, parent, owner), as a filter of tags joined to their owners."""
    upper, lower = canonical_id_tag(text), text.lower()
    return sa.or_(
        contains(_t.id_tag, upper),
        contains(_t.parent_id_tag, upper),
        contains(_u.email, lower),
        contains(sa.func.lower(_u.name), lower),
    )


# --- the seek: each column alone, a few keys ---------------------------------------


def _bounded(*selects: sa.Select[Any]) -> sa.Select[Any]:
    # UNION ALL, so rows stream and the LIMIT stops the lookups early.
    return sa.select(sa.union_all(*selects).subquery()).limit(SEEK_LIMIT + 1)


def _owner_selects(text: str) -> list[sa.Select[Any]]:
    lower = text.lower()
    return [
        sa.select(_u.id).where(contains(_u.email, lower)),
        sa.select(_u.id).where(contains(sa.func.lower(_u.name), lower)),
    ]


def owners_lookup(text: str) -> sa.Select[Any]:
    """User ids whose e-mail or name holds ``text`` (repeats possible), bounded."""
    return _bounded(*_owner_selects(text))


def users_lookup(text: str) -> sa.Select[Any]:
    """``owners_lookup`` and the owners of tags holding ``text``, bounded."""
    tags = sa.select(_t.user_id).where(
        contains(_t.id_tag, canonical_id_tag(text)), _t.user_id.isnot(None)
    )
    return _bounded(*_owner_selects(text), tags)


def tags_lookup(text: str, owners: Sequence[int]) -> sa.Select[Any]:
    """Tags holding ``text`` themselves or as their parent, and the tags of ``owners``."""
    upper = canonical_id_tag(text)
    return _bounded(
        sa.select(_t.id_tag).where(contains(_t.id_tag, upper)),
        sa.select(_t.id_tag).where(contains(_t.parent_id_tag, upper)),
        sa.select(_t.id_tag).where(_t.user_id.in_(owners)),
    )


def _few(conn: Connection, lookup: sa.Select[Any]) -> list[Any] | None:
    """The distinct keys ``lookup`` finds, or None if more than ``SEEK_LIMIT`` rows."""
    # A lookup takes a few ms: starting parallel workers for it (as the planner
    # would, for the Append) cost 20 to 30 ms more. For this transaction only.
    conn.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
    keys = conn.execute(lookup).scalars().all()
    return None if len(keys) > SEEK_LIMIT else sorted(set(keys))


def _seeks(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def matching_users(conn: Connection, text: str) -> sa.ColumnElement[bool]:
    """The filter of users matching ``text``: by their ids when few match, else the walk."""
    if _seeks(conn):
        ids = _few(conn, users_lookup(text))
        if ids is not None:
            return _u.id.in_(ids)
    return users_walk(text)


def matching_tags(conn: Connection, text: str) -> sa.ColumnElement[bool]:
    """The filter of tags matching ``text``: by the tags when few match, else the walk."""
    if _seeks(conn):
        owners = _few(conn, owners_lookup(text))
        if owners is not None:
            tags = _few(conn, tags_lookup(text, owners))
            if tags is not None:
                return _t.id_tag.in_(tags)
    return tags_walk(text)
