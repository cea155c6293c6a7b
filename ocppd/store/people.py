"""
Customers and their cards as operators list them: search, sort and keyset
pages over users and id tags; a user's name and blocking.

Search is case-insensitive substring matching (``LIKE`` on lower-cased
text, its wildcards escaped): e-mail addresses are stored lower-cased and
id tags upper-cased (``tags.canonical_id_tag``), so only names need
``lower()``; how it is found fast is ``people_search``'s job. Pages are
keyset pages on (sort value, unique key): the sort value alone is not unique
(two customers share a name), the pair is, so a page neither repeats nor
skips a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ocppd.store.people_search import matching_tags, matching_users, tags_walk, users_walk
from ocppd.store.records import IdTagRecord, UserRecord, WalletRecord, first_record, from_mapping
from ocppd.store.tables import USER_NAME_SORT, api_tokens, id_tags, users, wallets
from ocppd.store.tags import get_id_tag

_u = users.c
_t = id_tags.c

#: Where a tag that never expires sorts by expiry: after every one that does.
NEVER = datetime(9999, 12, 31, tzinfo=UTC)

#: A user's sort orders: the value compared, besides the id that breaks ties.
USER_SORTS: dict[str, sa.ColumnElement[Any]] = {
    "email": _u.email,
    # The indexed expression itself (tables.USER_NAME_SORT), so a page walks the index.
    "name": USER_NAME_SORT,
    "created": _u.id,
}
#: An id tag's sort orders; its id (the tag itself) breaks ties.
TAG_SORTS: dict[str, sa.ColumnElement[Any]] = {
    "idTag": _t.id_tag,
    "created": _t.created_at,
    "expires": sa.func.coalesce(_t.expires_at, sa.literal(NEVER, _t.expires_at.type)),
}


@attrs.frozen
class Order:
    """A list's order: the sort's name and direction, and where the page resumes."""

    sort: str
    descending: bool = False
    #: (sort value, unique key) of the previous page's last row; None for the first page.
    after: tuple[Any, Any] | None = None


def ordered(
    query: sa.Select[Any], value: sa.ColumnElement[Any], key: sa.ColumnElement[Any], order: Order
) -> sa.Select[Any]:
    columns = (value, key) if value is not key else (key,)
    if order.after is not None:
        after = order.after if value is not key else order.after[1:]
        # Bound as the columns' types: a time is compared as the store keeps it.
        right = sa.tuple_(*(sa.literal(v, c.type) for v, c in zip(after, columns, strict=True)))
        left = sa.tuple_(*columns)
        query = query.where(left < right if order.descending else left > right)
    direction = (lambda c: c.desc()) if order.descending else (lambda c: c.asc())
    return query.order_by(*(direction(c) for c in columns))


# --- users ---------------------------------------------------------------------


@attrs.frozen
class UserFilters:
    #: Matched in the e-mail, the name and the user's id tags, in any case.
    q: str | None = None
    role: str | None = None
    blocked: bool | None = None


@attrs.frozen
class UserRow:
    """A user as the list shows it: with their wallet (None before its first use)."""

    user: UserRecord
    wallet: WalletRecord | None
    tags: int


def _user_query(
    filters: UserFilters, search: sa.ColumnElement[bool] | None = None
) -> sa.Select[Any]:
    """Users matching ``filters``; ``search`` is how ``filters.q`` is found (the walk if None)."""
    tag_count = (
        sa.select(sa.func.count())
        .where(_t.user_id == _u.id)
        .correlate(users)
        .scalar_subquery()
        .label("tag_count")
    )
    query = sa.select(
        users,
        wallets.c.currency.label("wallet_currency"),
        wallets.c.balance.label("wallet_balance"),
        wallets.c.created_at.label("wallet_created_at"),
        wallets.c.updated_at.label("wallet_updated_at"),
        tag_count,
    ).select_from(users.outerjoin(wallets, wallets.c.user_id == _u.id))
    if filters.q:
        query = query.where(users_walk(filters.q) if search is None else search)
    if filters.role is not None:
        query = query.where(_u.role == filters.role)
    if filters.blocked is not None:
        query = query.where(
            _u.blocked_at.isnot(None) if filters.blocked else _u.blocked_at.is_(None)
        )
    return query


def _user_row(row: Any) -> UserRow:
    mapping = row._mapping
    wallet = None
    if mapping["wallet_currency"] is not None:
        wallet = WalletRecord(
            user_id=mapping["id"],
            currency=mapping["wallet_currency"],
            balance=mapping["wallet_balance"],
            created_at=mapping["wallet_created_at"],
            updated_at=mapping["wallet_updated_at"],
        )
    return UserRow(from_mapping(UserRecord, mapping), wallet, int(mapping["tag_count"]))


def users_page_query(
    filters: UserFilters,
    order: Order,
    *,
    limit: int,
    search: sa.ColumnElement[bool] | None = None,
) -> sa.Select[Any]:
    """The query of ``list_users_page``, ``search`` found as ``_user_query`` says."""
    return ordered(_user_query(filters, search), USER_SORTS[order.sort], _u.id, order).limit(limit)


def list_users_page(
    conn: Connection, filters: UserFilters, order: Order, *, limit: int
) -> list[UserRow]:
    """Up to ``limit`` users matching ``filters`` in ``order``, after ``order.after``."""
    search = matching_users(conn, filters.q) if filters.q else None
    query = users_page_query(filters, order, limit=limit, search=search)
    return [_user_row(row) for row in conn.execute(query)]


def get_user_row(conn: Connection, user_id: int) -> UserRow | None:
    row = conn.execute(_user_query(UserFilters()).where(_u.id == user_id)).first()
    return None if row is None else _user_row(row)


def user_sort_key(row: UserRow, sort: str) -> tuple[Any, Any]:
    """The (sort value, id) a page resumes after, as ``list_users_page`` compares it."""
    user = row.user
    value = {"email": user.email, "name": (user.name or "").lower(), "created": user.id}[sort]
    return value, user.id


def update_user(
    conn: Connection, user_id: int, *, name: str | None, role: str, blocked_at: datetime | None
) -> None:
    conn.execute(
        users.update().where(_u.id == user_id).values(name=name, role=role, blocked_at=blocked_at)
    )


def revoke_user_tokens(conn: Connection, user_id: int, *, now: datetime) -> list[str]:
    """Revoke every live token of a user; their hashes (the push channel's ticket digests)."""
    t = api_tokens.c
    live = [
        str(h)
        for h in conn.execute(
            sa.select(t.token_hash).where(
                t.user_id == user_id, t.revoked_at.is_(None), t.expires_at > now
            )
        ).scalars()
    ]
    if live:
        conn.execute(api_tokens.update().where(t.token_hash.in_(live)).values(revoked_at=now))
    return live


def users_named(conn: Connection, user_ids: Sequence[int]) -> dict[int, tuple[str, str | None]]:
    """(e-mail, name) of each of these users that exists."""
    if not user_ids:
        return {}
    rows = conn.execute(sa.select(_u.id, _u.email, _u.name).where(_u.id.in_(set(user_ids))))
    return {row.id: (row.email, row.name) for row in rows}


# --- id tags ---------------------------------------------------------------------


@attrs.frozen
class TagFilters:
    #: Matched in the tag, its parent and its owner's e-mail and name, in any case.
    q: str | None = None
    status: str | None = None
    user_id: int | None = None


@attrs.frozen
class TagRow:
    tag: IdTagRecord
    #: The owner's (e-mail, name), None for a tag of nobody.
    owner: tuple[str, str | None] | None


def tags_page_query(
    filters: TagFilters,
    order: Order,
    *,
    limit: int,
    search: sa.ColumnElement[bool] | None = None,
) -> sa.Select[Any]:
    """The query of ``list_tags_page``; ``search`` is how ``filters.q`` is found (the walk)."""
    query = sa.select(id_tags, _u.email.label("owner_email"), _u.name.label("owner_name"))
    query = query.select_from(id_tags.outerjoin(users, _u.id == _t.user_id))
    if filters.q:
        query = query.where(tags_walk(filters.q) if search is None else search)
    if filters.status is not None:
        query = query.where(_t.status == filters.status)
    if filters.user_id is not None:
        query = query.where(_t.user_id == filters.user_id)
    return ordered(query, TAG_SORTS[order.sort], _t.id_tag, order).limit(limit)


def list_tags_page(
    conn: Connection, filters: TagFilters, order: Order, *, limit: int
) -> list[TagRow]:
    """Up to ``limit`` tags matching ``filters`` in ``order``, after ``order.after``."""
    search = matching_tags(conn, filters.q) if filters.q else None
    rows = []
    for row in conn.execute(tags_page_query(filters, order, limit=limit, search=search)):
        mapping = row._mapping
        email = mapping["owner_email"]
        owner = None if email is None else (email, mapping["owner_name"])
        rows.append(TagRow(from_mapping(IdTagRecord, mapping), owner))
    return rows


def tag_sort_key(row: TagRow, sort: str) -> tuple[Any, Any]:
    tag = row.tag
    value = {
        "idTag": tag.id_tag,
        "created": tag.created_at,
        "expires": tag.expires_at or NEVER,
    }[sort]
    return value, tag.id_tag


def _as_answered(record: IdTagRecord, owner_blocked: bool) -> IdTagRecord:
    if owner_blocked and record.status == "Accepted":
        return attrs.evolve(record, status="Blocked")
    return record


def authorization_records(conn: Connection) -> list[IdTagRecord]:
    """Every tag in id order as Authorize answers it (``authorization_record``): the local list."""
    rows = conn.execute(
        sa.select(id_tags, _u.blocked_at.label("owner_blocked_at"))
        .select_from(id_tags.outerjoin(users, _u.id == _t.user_id))
        .order_by(_t.id_tag)
    )
    return [
        _as_answered(
            from_mapping(IdTagRecord, row._mapping), row._mapping["owner_blocked_at"] is not None
        )
        for row in rows
    ]


def authorization_record(conn: Connection, id_tag: str) -> IdTagRecord | None:
    """
    The tag as Authorize and StartTransaction answer it: ``Blocked`` while
    its owner's account is blocked, whatever the tag's own status (which is
    kept, so unblocking the account restores it).
    """
    record = get_id_tag(conn, id_tag)
    if record is None or record.user_id is None or record.status != "Accepted":
        return record
    owner = first_record(conn, UserRecord, sa.select(users).where(_u.id == record.user_id))
    return _as_answered(record, owner is not None and owner.blocked_at is not None)
