"""
What a page of the CMS's Customers and Id tags lists costs with many rows
(issue 18, item 6: lists that scale): ``people.list_users_page`` and
``people.list_tags_page`` (one page of 50, the extra row included) on a
fresh database of N users with one id tag each, first pages and deep pages
(resumed from a cursor half-way), sorted and searched, against the reference
measured in the same run: the first page by e-mail, which walks the unique
index on ``users.email``.

    .venv/bin/python bench/people_lists.py [--users 100000] [--url postgresql://...|sqlite]

Prints a markdown table of milliseconds per page (median of 15) and each
ratio to the reference. On PostgreSQL the tables live in a fresh schema,
dropped at the end; ``sqlite`` uses a temporary file.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import sqlalchemy as sa  # noqa: E402
from scratch import analyze, median_ms, scratch_database  # noqa: E402  (bench/ is on sys.path)

from ocppd.store import people  # noqa: E402
from ocppd.store.people import Order, TagFilters, UserFilters  # noqa: E402
from ocppd.store.tables import id_tags, users  # noqa: E402

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ROUNDS = 15
PAGE = 50
FIRST = ("Ann", "Bob", "Chloé", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivo", "Jun")


def seed(conn: Any, n: int) -> None:
    rows = [
        {
            "email": f"driver{i:07d}@fleet{i % 97}.example",
            "password_hash": "!",
            "role": "customer",
            "created_at": T0 + timedelta(seconds=i),
            "name": None if i % 10 == 0 else f"{FIRST[i % 10]} Driver {i * 7919 % n:07d}",
        }
        for i in range(n)
    ]
    for start in range(0, n, 5000):
        conn.execute(users.insert(), rows[start : start + 5000])
    ids = [row[0] for row in conn.execute(sa.select(users.c.id).order_by(users.c.id))]
    tags = [
        {
            "id_tag": f"CARD{secrets.token_hex(6).upper()}",
            "status": "Accepted",
            "user_id": user_id,
            "created_at": T0 + timedelta(seconds=i),
            "expires_at": None,
            "parent_id_tag": None,
        }
        for i, user_id in enumerate(ids)
    ]
    for start in range(0, n, 5000):
        conn.execute(id_tags.insert(), tags[start : start + 5000])


def halfway_user(conn: Any, sort: str) -> tuple[Any, Any]:
    """The (sort value, id) of the middle row in ``sort``: where a deep page resumes."""
    count = conn.execute(sa.select(sa.func.count()).select_from(users)).scalar()
    row = conn.execute(
        people.ordered(
            people._user_query(UserFilters()), people.USER_SORTS[sort], users.c.id, Order(sort)
        )
        .offset(count // 2)
        .limit(1)
    ).first()
    return people.user_sort_key(people._user_row(row), sort)


def cases(conn: Any) -> list[tuple[str, Callable[[Any], Any]]]:
    deep_name = halfway_user(conn, "name")
    deep_email = halfway_user(conn, "email")

    def users_page(filters: UserFilters, order: Order) -> Callable[[Any], Any]:
        return lambda c: people.list_users_page(c, filters, order, limit=PAGE + 1)

    def tags_page(filters: TagFilters, order: Order) -> Callable[[Any], Any]:
        return lambda c: people.list_tags_page(c, filters, order, limit=PAGE + 1)

    return [
        ("users by e-mail, first page (reference)", users_page(UserFilters(), Order("email"))),
        (
            "users by e-mail, half-way page",
            users_page(UserFilters(), Order("email", after=deep_email)),
        ),
        ("users by name, first page", users_page(UserFilters(), Order("name"))),
        ("users by name, half-way page", users_page(UserFilters(), Order("name", after=deep_name))),
        ("users newest first", users_page(UserFilters(), Order("created", True))),
        (
            "users searched 'driver 00123' (10 match)",
            users_page(UserFilters(q="driver 00123"), Order("email")),
        ),
        ("users searched 'zzz' (none match)", users_page(UserFilters(q="zzz"), Order("email"))),
        (
            "users searched 'example' (every one matches)",
            users_page(UserFilters(q="example"), Order("email")),
        ),
        ("tags by id, first page", tags_page(TagFilters(), Order("idTag"))),
        ("tags newest first", tags_page(TagFilters(), Order("created", True))),
        (
            "tags searched 'fleet7.' (owner, ~1 %)",
            tags_page(TagFilters(q="fleet7."), Order("idTag")),
        ),
        (
            "tags searched 'card' (every one matches)",
            tags_page(TagFilters(q="card"), Order("idTag")),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with scratch_database(args.url) as (engine, label):
        with engine.begin() as conn:
            seed(conn, args.users)
        analyze(engine, label)
        if label == "PostgreSQL":
            # As autovacuum leaves them in a running database: the trigram (GIN)
            # indexes' pending lists, which the seeding filled, merged into them.
            with engine.connect() as conn:
                autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
                autocommit.execute(sa.text("VACUUM users, id_tags"))
        with engine.connect() as conn:
            # Closed before timing: SQLite's write lock is taken at BEGIN (ocppd.store.database).
            planned = cases(conn)
        measured = [(name, median_ms(engine, call, ROUNDS)) for name, call in planned]
        reference = measured[0][1]
        print(f"\n{label}, {args.users:,} users with one id tag each, pages of {PAGE}\n")
        print("| list | ms per page (median of 15) | x reference |")
        print("| --- | ---: | ---: |")
        for name, ms in measured:
            print(f"| {name} | {ms:.2f} | {ms / reference:.1f} |")


if __name__ == "__main__":
    main()
