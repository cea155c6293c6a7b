"""
Customers, their cards and wallets in the operator CMS (admin only).

- ``GET /api/cms/users`` and ``GET /api/cms/tags``: searched (``q``, any
  case), filtered, sorted (``sort=email``, ``-email`` ...) and paged by
  keyset cursor; ``/api/cms/users.csv`` and ``/api/cms/tags.csv`` export the
  same list, whole, with the same filters and order.
- ``POST /api/cms/users``, ``GET|PUT /api/cms/users/{id}``: create, read,
  edit a user (name, role) and block or unblock them. A blocked account
  cannot sign in, its tokens are revoked at once (its push sessions end),
  and its id tags answer ``Blocked`` to chargers (``people.authorization_record``).
- ``GET /api/cms/users/{id}/wallet[/transactions]``: the customer's wallet.
- ``POST /api/cms/users/{id}/wallet/adjustments``: credit (positive) or
  debit (negative) by hand, with a reason, under a required
  ``Idempotency-Key``: a double click or a retried request posts once.

Every change is published as ``cms.<kind>.<verb>`` and audited
(``audit.cms.<kind>.<verb>``), like the other CMS changes (``ocppd.api.cms``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Generator, Iterable
from datetime import datetime
from typing import Any

import attrs
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import deferToThread

from ocppd.api.cms import CmsService, path_id
from ocppd.api.cms import tag_json as stored_tag_json
from ocppd.api.errors import ApiError, bad_request
from ocppd.api.http import no_other_fields, parse_decimal
from ocppd.api.pagination import decode_cursor, page
from ocppd.billing.money import format_amount
from ocppd.bounds import INT32_MAX
from ocppd.bus.outbox import Event, Outbox
from ocppd.config import BillingConfig
from ocppd.credentials import hash_password
from ocppd.logs import Logger
from ocppd.representations import iso_or_none, wallet_event, wallet_transaction_json
from ocppd.store import people, users, wallets
from ocppd.store.database import Database
from ocppd.store.errors import AlreadyExists
from ocppd.store.people import Order, TagFilters, TagRow, UserFilters, UserRow
from ocppd.store.records import UserRecord, WalletTransactionRecord
from ocppd.store.tables import ID_TAG_STATUSES, ROLES
from ocppd.timeutil import format_iso, parse_iso

MAX_QUERY = 100
MAX_NAME = 200
MAX_EMAIL = 254
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
#: A reason is kept with the wallet transaction (its ``reference`` column).
MAX_REASON = 128
MIN_REASON = 3
MAX_IDEMPOTENCY_KEY = 100
#: An export is the whole list; beyond this many rows, narrow it first.
MAX_EXPORT = 50_000
#: Not an address a person reads mail at: one ``@`` between non-blank parts.
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
#: Stored for an account made without a password: no password matches it.
NO_PASSWORD = "!no password"
#: Spreadsheets run a cell starting with these as a formula (CSV injection).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")

IDEMPOTENCY_CONFLICT = ApiError(
    409, "idempotency_conflict", "this Idempotency-Key was used for another adjustment"
)


# --- query arguments -------------------------------------------------------------


@attrs.frozen
class Listing:
    """One list's filters and order as the query gives them."""

    kind: str
    filters: Any
    order: Order


def parse_sort(text: str | None, sorts: Iterable[str], default: str) -> tuple[str, bool]:
    text = default if text is None else text
    name = text.removeprefix("-")
    if name not in sorts:
        choices = ", ".join(f"{s}, -{s}" for s in sorts)
        raise bad_request(f"one of {choices}", field="sort")
    return name, text.startswith("-")


def search_text(args: dict[str, str | None]) -> str | None:
    q = (args.get("q") or "").strip()
    if len(q) > MAX_QUERY:
        raise bad_request(f"at most {MAX_QUERY} characters", field="q")
    return q or None


def cursor_after(
    cursor: str | None, kind: str, value_type: type, key_type: type
) -> tuple[Any, Any] | None:
    """The (sort value, key) a cursor of list ``kind`` resumes after, or 400."""
    text = decode_cursor(cursor, kind, str)
    if text is None:
        return None
    invalid = bad_request("not a cursor of this list", field="cursor")
    try:
        value, key = json.loads(text)
        if value_type is datetime:
            value = parse_iso(value)
    except (ValueError, TypeError):
        raise invalid from None
    if not isinstance(value, value_type) or not isinstance(key, key_type):
        raise invalid
    if isinstance(value, bool) or isinstance(key, bool):
        raise invalid
    return value, key


def cursor_text(key: tuple[Any, Any]) -> str:
    value, unique = key
    return json.dumps(
        [format_iso(value) if isinstance(value, datetime) else value, unique],
        separators=(",", ":"),
    )


def user_listing(args: dict[str, str | None], cursor: str | None) -> Listing:
    sort, descending = parse_sort(args.get("sort"), people.USER_SORTS, "email")
    role = args.get("role")
    if role is not None and role not in ROLES:
        raise bad_request(f"one of {', '.join(ROLES)}", field="role")
    blocked = args.get("blocked")
    if blocked is not None and blocked not in ("true", "false"):
        raise bad_request("true or false", field="blocked")
    kind = f"users:{sort}:{'desc' if descending else 'asc'}"
    value_type = int if sort == "created" else str
    filters = UserFilters(
        q=search_text(args), role=role, blocked=None if blocked is None else blocked == "true"
    )
    return Listing(
        kind, filters, Order(sort, descending, cursor_after(cursor, kind, value_type, int))
    )


def tag_listing(args: dict[str, str | None], cursor: str | None) -> Listing:
    sort, descending = parse_sort(args.get("sort"), people.TAG_SORTS, "idTag")
    status = args.get("status")
    if status is not None and status not in ID_TAG_STATUSES:
        raise bad_request(f"one of {', '.join(ID_TAG_STATUSES)}", field="status")
    user_id = None
    if args.get("userId") is not None:
        user_id = parse_decimal(args["userId"] or "", maximum=INT32_MAX)
        if not user_id:
            raise bad_request("a positive integer", field="userId")
    kind = f"tags:{sort}:{'desc' if descending else 'asc'}"
    value_type = str if sort == "idTag" else datetime
    filters = TagFilters(q=search_text(args), status=status, user_id=user_id)
    return Listing(
        kind, filters, Order(sort, descending, cursor_after(cursor, kind, value_type, str))
    )


#: The query parameters of each list (the export takes the same, without paging).
USER_ARGS = ("q", "role", "blocked", "sort")
TAG_ARGS = ("q", "status", "userId", "sort")


# --- JSON and CSV --------------------------------------------------------------------


def user_json(row: UserRow) -> dict[str, Any]:
    user, wallet = row.user, row.wallet
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "blocked": user.blocked_at is not None,
        "blockedAt": iso_or_none(user.blocked_at),
        "createdAt": format_iso(user.created_at),
        "tags": row.tags,
        "wallet": None
        if wallet is None
        else {"balance": wallet.balance, "currency": wallet.currency},
    }


def tag_json(row: TagRow) -> dict[str, Any]:
    shown = stored_tag_json(row.tag)
    shown["owner"] = (
        None
        if row.owner is None
        else {"userId": row.tag.user_id, "email": row.owner[0], "name": row.owner[1]}
    )
    return shown


USER_COLUMNS = ("id", "email", "name", "role", "blocked", "blockedAt", "createdAt", "tags")
TAG_COLUMNS = ("idTag", "status", "expiresAt", "parentIdTag", "userId", "createdAt")


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA):
        # Shown as text by a spreadsheet, never run: names are the customers' words.
        return "'" + value
    return value


def csv_text(header: list[str], rows: Iterable[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def users_csv(rows: list[UserRow]) -> bytes:
    header = [*USER_COLUMNS, "balance", "currency"]

    def line(row: UserRow) -> list[Any]:
        shown = user_json(row)
        wallet = shown["wallet"] or {}
        return [shown[c] for c in USER_COLUMNS] + [wallet.get("balance"), wallet.get("currency")]

    return csv_text(header, (line(row) for row in rows))


def tags_csv(rows: list[TagRow]) -> bytes:
    header = [*TAG_COLUMNS, "ownerEmail", "ownerName"]

    def line(row: TagRow) -> list[Any]:
        shown = tag_json(row)
        owner = shown["owner"] or {}
        return [shown[c] for c in TAG_COLUMNS] + [owner.get("email"), owner.get("name")]

    return csv_text(header, (line(row) for row in rows))


def bounded_export(rows: list[Any]) -> list[Any]:
    if len(rows) > MAX_EXPORT:
        raise ApiError(
            413,
            "export_too_large",
            f"more than {MAX_EXPORT} rows match: narrow the search or filters first",
        )
    return rows


# --- bodies ----------------------------------------------------------------------------


def _name(body: dict[str, Any]) -> str | None:
    value = body.get("name")
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("a string or null", field="name")
    value = value.strip()
    if len(value) > MAX_NAME:
        raise bad_request(f"at most {MAX_NAME} characters", field="name")
    return value or None


def _role(body: dict[str, Any], default: str) -> str:
    role = body.get("role", default)
    if role not in ROLES:
        raise bad_request(f"one of {', '.join(ROLES)}", field="role")
    assert isinstance(role, str)
    return role


@attrs.frozen
class NewUser:
    email: str
    name: str | None
    role: str
    password: str | None


def new_user(body: dict[str, Any]) -> NewUser:
    no_other_fields(body, {"email", "name", "role", "password"})
    email = body.get("email")
    if not isinstance(email, str) or not EMAIL.fullmatch(email.strip()):
        raise bad_request("required, an e-mail address", field="email")
    if len(email.strip()) > MAX_EMAIL:
        raise bad_request(f"at most {MAX_EMAIL} characters", field="email")
    password = body.get("password")
    if password is not None and (
        not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD
    ):
        raise bad_request(
            f"{MIN_PASSWORD} to {MAX_PASSWORD} characters, or null (cannot sign in)",
            field="password",
        )
    return NewUser(email.strip(), _name(body), _role(body, "customer"), password)


#: What a PUT may change; the rest of a fetched user may be sent back and is ignored.
USER_FIELDS = {"name", "role", "blocked"}
USER_READ_ONLY = {"id", "email", "blockedAt", "createdAt", "tags", "wallet"}


@attrs.frozen
class Adjustment:
    amount: int
    reason: str


def adjustment(body: dict[str, Any], bound: int) -> Adjustment:
    no_other_fields(body, {"amount", "reason"})
    amount = body.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
        raise bad_request("required, a non-zero integer of minor units", field="amount")
    if abs(amount) > bound:
        raise bad_request(f"from -{bound} to {bound}, not 0", field="amount")
    reason = body.get("reason")
    if not isinstance(reason, str) or not MIN_REASON <= len(reason.strip()) <= MAX_REASON:
        raise bad_request(
            f"required, {MIN_REASON} to {MAX_REASON} characters saying why", field="reason"
        )
    return Adjustment(amount, reason.strip())


def idempotency_key(text: str | None) -> str:
    if text is None or not 0 < len(text) <= MAX_IDEMPOTENCY_KEY:
        raise ApiError(
            400,
            "bad_request",
            f"Idempotency-Key: required, 1 to {MAX_IDEMPOTENCY_KEY} characters "
            "(one per intended adjustment, so a repeated request posts once)",
        )
    return text


# --- transactions ----------------------------------------------------------------------


def _get_user(conn: Connection, user_id: int) -> UserRecord:
    record = users.get_user(conn, user_id)
    if record is None:
        raise ApiError(404, "not_found", f"no user {user_id}")
    return record


def _user_shown(conn: Connection, user_id: int) -> dict[str, Any]:
    row = people.get_user_row(conn, user_id)
    if row is None:
        raise ApiError(404, "not_found", f"no user {user_id}")
    return user_json(row)


def create_user_tx(
    conn: Connection, new: NewUser, password_hash: str, now: datetime
) -> dict[str, Any]:
    try:
        user_id = users.add_user(conn, new.email, password_hash, new.role, now=now)
    except AlreadyExists:
        raise ApiError(
            409, "conflict", f"an account uses {users.normalize_email(new.email)}"
        ) from None
    if new.name is not None:
        people.update_user(conn, user_id, name=new.name, role=new.role, blocked_at=None)
    return _user_shown(conn, user_id)


@attrs.frozen
class UserChange:
    before: dict[str, Any]
    after: dict[str, Any]
    #: Digests of the tokens revoked now (the account was just blocked).
    revoked: list[str]


def update_user_tx(
    conn: Connection, user_id: int, body: dict[str, Any], actor: UserRecord, now: datetime
) -> UserChange:
    for field in body:
        if field not in USER_FIELDS and field not in USER_READ_ONLY:
            raise bad_request("unknown field", field=field)
    record = _get_user(conn, user_id)
    before = _user_shown(conn, user_id)
    name = _name(body) if "name" in body else record.name
    role = _role(body, record.role)
    blocked = body.get("blocked", record.blocked_at is not None)
    if not isinstance(blocked, bool):
        raise bad_request("true or false", field="blocked")
    if user_id == actor.id and (blocked or role != "admin"):
        # Nobody else may be left to undo it.
        raise ApiError(409, "conflict", "you cannot block your own account or give up its role")
    blocked_at = (record.blocked_at or now) if blocked else None
    people.update_user(conn, user_id, name=name, role=role, blocked_at=blocked_at)
    revoked = people.revoke_user_tokens(conn, user_id, now=now) if blocked else []
    return UserChange(before, _user_shown(conn, user_id), revoked)


def user_detail_tx(conn: Connection, user_id: int, currency: str, now: datetime) -> dict[str, Any]:
    shown = _user_shown(conn, user_id)
    view = wallets.wallet_view(conn, user_id, currency=currency, now=now)
    shown["wallet"] = {
        "balance": view.balance,
        "held": view.held,
        "available": view.available,
        "currency": view.currency,
    }
    return shown


@attrs.frozen
class Adjusted:
    posted: bool
    transaction: WalletTransactionRecord
    answer: dict[str, Any]


def adjust_tx(
    conn: Connection,
    user_id: int,
    change: Adjustment,
    key: str,
    currency: str,
    now: datetime,
) -> Adjusted:
    _get_user(conn, user_id)
    # Locked first: the balance checked below stays true until this post.
    record = wallets.locked_wallet(conn, user_id, currency=currency, now=now)
    existing = wallets.find_transaction(conn, key)
    if existing is None:
        available = record.balance - wallets.held(conn, user_id)
        if change.amount < 0 and available + change.amount < 0:
            raise ApiError(
                409,
                "insufficient_funds",
                f"a debit of {format_amount(-change.amount, record.currency)} would take the "
                f"wallet below zero: {format_amount(available, record.currency)} is available",
            )
    posted, fresh = wallets.post_transaction(
        conn,
        user_id,
        kind="adjustment",
        amount=change.amount,
        currency=record.currency,
        idempotency_key=key,
        reference=change.reason,
        now=now,
    )
    if posted.amount != change.amount or posted.reference != change.reason:
        raise IDEMPOTENCY_CONFLICT
    answer = {
        "transaction": wallet_transaction_json(posted),
        "wallet": user_detail_tx(conn, user_id, currency, now)["wallet"],
    }
    return Adjusted(fresh, posted, answer)


def customers_tx(conn: Connection, user_ids: list[int]) -> dict[int, tuple[str, str | None]]:
    return people.users_named(conn, user_ids)


# --- the service ------------------------------------------------------------------------


def _hash_in_thread(password: str) -> Deferred[str]:
    return deferToThread(hash_password, password)


class CmsPeople:
    """Users, id tags and wallets for operators; each change one transaction plus its events."""

    log = Logger()

    def __init__(
        self,
        *,
        database: Database,
        outbox: Outbox,
        billing: BillingConfig,
        hash_password: Callable[[str], Deferred[str]] = _hash_in_thread,
        tag_changed: Callable[[str | None], object] = lambda id_tag: None,
        tokens_revoked: Callable[[str], object] = lambda digest: None,
    ) -> None:
        self._database = database
        self._outbox = outbox
        self._billing = billing
        self._hash = hash_password
        #: Told of a tag whose answer to chargers may have changed (None: any
        #: tag, e.g. a whole account's): the tag cache forgets it.
        self.tag_changed = tag_changed
        #: Told the digest of each token revoked by blocking its account.
        self._tokens_revoked = tokens_revoked

    def _now(self) -> datetime:
        return self._outbox.now()

    _changed = staticmethod(CmsService._changed)

    # -- lists ------------------------------------------------------------------------

    @inlineCallbacks
    def users(
        self, args: dict[str, str | None], limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        listing = user_listing(args, cursor)
        rows = yield self._database.run(
            people.list_users_page, listing.filters, listing.order, limit=limit + 1
        )
        sort = listing.order.sort
        return self._page(
            listing.kind, rows, limit, lambda r: people.user_sort_key(r, sort), user_json
        )

    @inlineCallbacks
    def tags(
        self, args: dict[str, str | None], limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        listing = tag_listing(args, cursor)
        rows = yield self._database.run(
            people.list_tags_page, listing.filters, listing.order, limit=limit + 1
        )
        sort = listing.order.sort
        return self._page(
            listing.kind, rows, limit, lambda r: people.tag_sort_key(r, sort), tag_json
        )

    @staticmethod
    def _page(
        kind: str,
        rows: list[Any],
        limit: int,
        key: Callable[[Any], tuple[Any, Any]],
        render: Callable[[Any], dict[str, Any]],
    ) -> dict[str, Any]:
        return page(kind, rows, limit, lambda r: cursor_text(key(r)), render)

    def users_csv(self, args: dict[str, str | None]) -> Deferred[bytes]:
        listing = user_listing(args, None)

        def export(conn: Connection) -> bytes:
            rows = people.list_users_page(
                conn, listing.filters, listing.order, limit=MAX_EXPORT + 1
            )
            return users_csv(bounded_export(rows))

        return self._database.run(export)

    def tags_csv(self, args: dict[str, str | None]) -> Deferred[bytes]:
        listing = tag_listing(args, None)

        def export(conn: Connection) -> bytes:
            rows = people.list_tags_page(conn, listing.filters, listing.order, limit=MAX_EXPORT + 1)
            return tags_csv(bounded_export(rows))

        return self._database.run(export)

    # -- one user ------------------------------------------------------------------------

    def user(self, key: str) -> Deferred[dict[str, Any]]:
        user_id = path_id(key, "user")
        return self._database.run(user_detail_tx, user_id, self._billing.currency, self._now())

    @inlineCallbacks
    def create_user(
        self, body: dict[str, Any], actor: UserRecord
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        new = new_user(body)
        password_hash = NO_PASSWORD if new.password is None else (yield self._hash(new.password))
        data = yield self._outbox.run(
            self._database,
            create_user_tx,
            lambda d: self._changed("user", "created", d["id"], actor, d),
            new,
            password_hash,
            self._now(),
        )
        return data

    @inlineCallbacks
    def update_user(
        self, key: str, body: dict[str, Any], actor: UserRecord
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        user_id = path_id(key, "user")
        if "blocked" in body:
            # Before the write too, as for a tag (``Api.cms_update``).
            self.tag_changed(None)
        change = yield self._outbox.run(
            self._database,
            update_user_tx,
            lambda c: self._changed("user", "updated", user_id, actor, c.after, before=c.before),
            user_id,
            body,
            actor,
            self._now(),
        )
        if change.before["blocked"] != change.after["blocked"]:
            # The account's tags answer otherwise now, on this node at once.
            self.tag_changed(None)
        for digest in change.revoked:
            self._tokens_revoked(digest)
        return change.after

    # -- wallet ---------------------------------------------------------------------------

    @inlineCallbacks
    def transactions(
        self, key: str, limit: int, cursor: str | None
    ) -> Generator[Deferred[Any], Any, dict[str, Any]]:
        user_id = path_id(key, "user")
        kind = f"wallet:{user_id}"
        before = decode_cursor(cursor, kind, int)

        def read(conn: Connection) -> list[WalletTransactionRecord]:
            _get_user(conn, user_id)
            return wallets.transactions_page(conn, user_id, before_id=before, limit=limit + 1)

        rows = yield self._database.run(read)
        return page(kind, rows, limit, lambda r: r.id, wallet_transaction_json)

    @inlineCallbacks
    def adjust(
        self, key: str, body: dict[str, Any], idempotency: str | None, actor: UserRecord
    ) -> Generator[Deferred[Any], Any, tuple[int, dict[str, Any]]]:
        """Credit or debit by hand; (201 posted now | 200 posted before, the answer)."""
        user_id = path_id(key, "user")
        change = adjustment(body, self._billing.max_top_up)
        stored_key = f"adjust:{user_id}:{idempotency_key(idempotency)}"

        def events(result: Adjusted) -> list[Event]:
            if not result.posted:
                return []
            record = result.transaction
            data = {
                "userId": user_id,
                "amount": record.amount,
                "currency": record.currency,
                "reason": change.reason,
                "balance": record.balance_after,
                "transactionId": record.id,
            }
            return [
                ("wallet.transaction", wallet_event(user_id, record), None),
                *self._changed("wallet", "adjusted", user_id, actor, data),
            ]

        result = yield self._outbox.run(
            self._database,
            adjust_tx,
            events,
            user_id,
            change,
            stored_key,
            self._billing.currency,
            self._now(),
        )
        return (201 if result.posted else 200), result.answer

    # -- sessions with their customers -------------------------------------------------------

    @inlineCallbacks
    def with_customers(
        self, sessions: list[dict[str, Any]]
    ) -> Generator[Deferred[Any], Any, list[dict[str, Any]]]:
        """
        Each session with ``customer`` ({userId, email, name}, or None for a
        session of no account): the CMS names people, not ids.
        """
        ids = sorted({s["userId"] for s in sessions if s.get("userId") is not None})
        found = yield self._database.run(customers_tx, ids)
        for session in sessions:
            owner = found.get(session.get("userId"))
            session["customer"] = (
                None
                if owner is None
                else {"userId": session["userId"], "email": owner[0], "name": owner[1]}
            )
        return sessions
