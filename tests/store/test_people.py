"""Users and id tags as operators list them (ocppd.store.people), on both engines."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
from alembic import command
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from ocppd.store import migrate, people, people_search, tags, users, wallets
from ocppd.store.database import Database, create_engine, normalize_url
from ocppd.store.people import Order, TagFilters, UserFilters
from tests.services import require_postgres
from tests.store.fixtures import (
    make_postgres_database,
    make_sqlite_database,
    postgres_url,
    sqlite_url,
)

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)

if TYPE_CHECKING:
    _Base = TestCase
else:
    _Base = object

#: (e-mail, name): two share a name, one has none, cases differ.
PEOPLE = [
    ("zoe@example.com", "Zoë Adams"),
    ("ann@example.com", "ann lee"),
    ("bob@example.com", None),
    ("carl@example.com", "Ann Lee"),
    ("dana@example.org", "Dana 100% Smith"),
]


class PeopleTestsMixin(_Base):
    database: Database

    def make_database(self) -> Database:
        raise NotImplementedError

    def empty_database_url(self) -> str:
        raise NotImplementedError

    def setUp(self) -> None:
        self.database = self.make_database()
        self.query = self.database.run_sync
        self.ids = {}
        for n, (email, name) in enumerate(PEOPLE):
            user_id = self.query(users.add_user, email, "x", "customer", now=T0)
            self.query(people.update_user, user_id, name=name, role="customer", blocked_at=None)
            self.query(
                tags.add_id_tag,
                f"tag-{email[:3]}",
                user_id=user_id,
                now=T0 + timedelta(minutes=n),
            )
            self.ids[email] = user_id

    def emails(self, filters: UserFilters, sort: str, descending: bool = False) -> list[str]:
        """Every page of 2, following the keys, in order."""
        seen: list[str] = []
        after = None
        while True:
            rows = self.query(
                people.list_users_page, filters, Order(sort, descending, after), limit=2
            )
            seen += [r.user.email for r in rows]
            if len(rows) < 2:
                return seen
            after = people.user_sort_key(rows[-1], sort)

    def test_users_sorted_and_paged(self) -> None:
        """Each order over pages of 2: every user once; ties on the name broken by id."""
        everyone = UserFilters()
        self.assertEqual(
            self.emails(everyone, "email"),
            sorted(e for e, _ in PEOPLE),
        )
        self.assertEqual(
            self.emails(everyone, "email", True), sorted((e for e, _ in PEOPLE), reverse=True)
        )
        self.assertEqual(
            self.emails(everyone, "name"),
            [
                "bob@example.com",
                "ann@example.com",
                "carl@example.com",
                "dana@example.org",
                "zoe@example.com",
            ],
        )
        self.assertEqual(self.emails(everyone, "created", True)[0], "dana@example.org")

    def test_users_searched_in_any_case(self) -> None:
        """In the e-mail, the name (any case, wildcards literal) and the user's tags."""
        self.assertEqual(
            self.emails(UserFilters(q="ANN"), "email"), ["ann@example.com", "carl@example.com"]
        )
        self.assertEqual(self.emails(UserFilters(q=".ORG"), "email"), ["dana@example.org"])
        self.assertEqual(self.emails(UserFilters(q="0%"), "email"), ["dana@example.org"])
        self.assertEqual(self.emails(UserFilters(q="_"), "email"), [])
        self.assertEqual(self.emails(UserFilters(q="tag-bo"), "email"), ["bob@example.com"])

    def test_blocked_filter_and_tag_answer(self) -> None:
        """A blocked account's Accepted tags answer Blocked; unblocked, Accepted again."""
        bob = self.ids["bob@example.com"]
        self.query(people.update_user, bob, name=None, role="customer", blocked_at=T0)
        self.assertEqual(self.emails(UserFilters(blocked=True), "email"), ["bob@example.com"])
        self.assertNotIn("bob@example.com", self.emails(UserFilters(blocked=False), "email"))
        record = self.query(people.authorization_record, "TAG-BOB")
        self.assertEqual(record.status, "Blocked")
        self.assertEqual(self.query(tags.get_id_tag, "TAG-BOB").status, "Accepted")
        listed = {r.id_tag: r.status for r in self.query(people.authorization_records)}
        self.assertEqual((listed["TAG-BOB"], listed["TAG-ANN"]), ("Blocked", "Accepted"))
        self.query(people.update_user, bob, name=None, role="customer", blocked_at=None)
        self.assertEqual(self.query(people.authorization_record, "TAG-BOB").status, "Accepted")
        self.assertIsNone(self.query(people.authorization_record, "NOBODY"))

    def test_tags_sorted_paged_and_searched(self) -> None:
        def ids(filters: TagFilters, sort: str, descending: bool = False) -> list[str]:
            seen: list[str] = []
            after = None
            while True:
                rows = self.query(
                    people.list_tags_page, filters, Order(sort, descending, after), limit=2
                )
                seen += [r.tag.id_tag for r in rows]
                if len(rows) < 2:
                    return seen
                after = people.tag_sort_key(rows[-1], sort)

        self.query(tags.add_id_tag, "LOOSE", expires_at=T0, now=T0)
        everyone = TagFilters()
        every = sorted(["TAG-ZOE", "TAG-ANN", "TAG-BOB", "TAG-CAR", "TAG-DAN", "LOOSE"])
        self.assertEqual(ids(everyone, "idTag"), every)
        self.assertEqual(ids(everyone, "idTag", True), every[::-1])
        self.assertEqual(
            ids(everyone, "created"),
            ["LOOSE", "TAG-ZOE", "TAG-ANN", "TAG-BOB", "TAG-CAR", "TAG-DAN"],
        )
        self.assertEqual(ids(everyone, "expires")[0], "LOOSE")
        self.assertEqual(ids(everyone, "expires", True)[-1], "LOOSE")
        self.assertEqual(ids(TagFilters(q="lee"), "idTag"), ["TAG-ANN", "TAG-CAR"])
        self.assertEqual(ids(TagFilters(q="tag-z"), "idTag"), ["TAG-ZOE"])
        self.assertEqual(ids(TagFilters(user_id=self.ids["bob@example.com"]), "idTag"), ["TAG-BOB"])
        rows = self.query(people.list_tags_page, TagFilters(q="loose"), Order("idTag"), limit=5)
        self.assertEqual([(r.tag.id_tag, r.owner) for r in rows], [("LOOSE", None)])

    def test_revoke_user_tokens(self) -> None:
        from ocppd.store import tokens

        ann = self.ids["ann@example.com"]
        self.query(tokens.add_token, "t1", ann, now=T0, expires_at=T0 + timedelta(days=1))
        self.query(tokens.add_token, "t2", ann, now=T0, expires_at=T0 - timedelta(days=1))
        revoked = self.query(people.revoke_user_tokens, ann, now=T0)
        self.assertEqual(revoked, [tokens.token_hash("t1")])
        self.assertIsNone(self.query(tokens.user_for_token, "t1", now=T0))

    def test_adjustment_kind_after_migration(self) -> None:
        """Revision 0015 lets an adjustment in, and its downgrade takes it out again."""
        url = self.empty_database_url()
        migrate.upgrade(url, "0014")
        migrate.upgrade(url)
        database = Database.from_url(url)
        self.addCleanup(database.stop)
        user_id = database.run_sync(users.add_user, "x@example.com", "x", "customer", now=T0)
        posted, fresh = database.run_sync(
            wallets.post_transaction,
            user_id,
            kind="adjustment",
            amount=-5,
            currency="EUR",
            idempotency_key="k",
            now=T0,
        )
        self.assertEqual((posted.kind, posted.balance_after, fresh), ("adjustment", -5, True))
        database.stop()
        engine = create_engine(url, max_threads=1)
        self.addCleanup(engine.dispose)
        with engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "0014")
            kinds = connection.execute(sa.text("SELECT kind FROM wallet_transactions")).all()
        self.assertEqual(kinds, [])
        migrate.upgrade(engine)
        self.assertEqual(migrate.current_revision(engine), migrate.head_revision())


class SQLitePeopleTests(PeopleTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def empty_database_url(self) -> str:
        return sqlite_url(self)


class PostgresPeopleTests(PeopleTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_postgres_database(self)

    def empty_database_url(self) -> str:
        return postgres_url(self)

    def plan(self, query: sa.Select[Any]) -> str:
        """PostgreSQL's plan of ``query`` when it may use any index at all."""
        with self.database.engine.begin() as conn:
            # A handful of rows: a scan is cheapest. Whether the indexes answer
            # the searches' expressions is the question, not the planner's pick.
            conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
            compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
            rows = conn.exec_driver_sql(f"EXPLAIN {compiled}").all()
        return "\n".join(row[0] for row in rows)

    def test_searches_seek_in_trigram_indexes(self) -> None:
        """Each lookup of a search is answered by revision 0021's trigram indexes (EXPLAIN)."""
        found = self.plan(people_search.users_lookup("lee"))
        for index in ("ix_users_email_trgm", "ix_users_name_trgm", "ix_id_tags_id_tag_trgm"):
            self.assertIn(f"Bitmap Index Scan on {index}", found)
        found = self.plan(people_search.owners_lookup("lee"))
        for index in ("ix_users_email_trgm", "ix_users_name_trgm"):
            self.assertIn(f"Bitmap Index Scan on {index}", found)
        found = self.plan(people_search.tags_lookup("lee", [1, 2]))
        for index in ("ix_id_tags_id_tag_trgm", "ix_id_tags_parent_id_tag_trgm"):
            self.assertIn(f"Bitmap Index Scan on {index}", found)
        self.assertNotIn("Seq Scan", found)

    def test_searched_by_the_walk_when_many_match(self) -> None:
        """Beyond SEEK_LIMIT matches a search walks the list instead: the same answers."""
        self.patch(people_search, "SEEK_LIMIT", 0)
        self.test_users_searched_in_any_case()
        self.test_tags_sorted_paged_and_searched()


class PostgresTrigramRightsTests(TestCase):
    """Revision 0021 for a role that may not create ``pg_trgm``, then for one that may."""

    def setUp(self) -> None:
        url = normalize_url(require_postgres())
        self.name = f"ocppd_trgm_{secrets.token_hex(4)}"
        admin = create_engine(url, max_threads=1)
        self.addCleanup(admin.dispose)
        with admin.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            # A database of its own: the test database has pg_trgm installed already.
            conn.execute(sa.text(f"CREATE ROLE {self.name} NOLOGIN"))
            conn.execute(sa.text(f"CREATE DATABASE {self.name}"))

        def drop() -> None:
            with admin.connect() as conn:
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
                conn.execute(sa.text(f"DROP ROLE IF EXISTS {self.name}"))

        self.addCleanup(drop)
        self.owner_url = url.set(database=self.name)
        owner = create_engine(self.owner_url, max_threads=1)
        self.addCleanup(owner.dispose)
        with owner.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA ocppd AUTHORIZATION {self.name}"))
        self.owner = owner
        # The role migrates, in its schema: no superuser, no CREATE on the database.
        options = quote(f"-crole={self.name} -csearch_path=ocppd")
        self.url = self.owner_url.render_as_string(hide_password=False) + f"?options={options}"

    def trigram_indexes(self) -> list[str]:
        with self.owner.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT indexname FROM pg_indexes WHERE schemaname = 'ocppd' "
                    "AND indexname LIKE '%trgm' ORDER BY indexname"
                )
            )
            return [row[0] for row in rows]

    def test_refused_then_allowed(self) -> None:
        """Refused: one warning, the upgrade completes without the indexes; allowed: made."""
        warnings: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if event.get("log_level") == LogLevel.warn:
                warnings.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        migrate.upgrade(self.url)
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("permission denied", formatEvent(warnings[0]))
        self.assertEqual(self.trigram_indexes(), [])
        database = Database.from_url(self.url)
        self.addCleanup(database.stop)
        user_id = database.run_sync(users.add_user, "ann@example.com", "x", "customer", now=T0)
        rows = database.run_sync(
            people.list_users_page, UserFilters(q="ANN@"), Order("email"), limit=5
        )
        self.assertEqual([r.user.id for r in rows], [user_id])
        database.stop()

        # pg_trgm is trusted: CREATE on the database is all a role needs.
        with self.owner.begin() as conn:
            conn.execute(sa.text(f"GRANT CREATE ON DATABASE {self.name} TO {self.name}"))
        engine = create_engine(self.url, max_threads=1)
        self.addCleanup(engine.dispose)
        with engine.begin() as connection:
            command.downgrade(migrate.alembic_config(connection), "0020")
        migrate.upgrade(engine)
        self.assertEqual(
            self.trigram_indexes(),
            [
                "ix_id_tags_id_tag_trgm",
                "ix_id_tags_parent_id_tag_trgm",
                "ix_users_email_trgm",
                "ix_users_name_trgm",
            ],
        )
        self.assertEqual(len(warnings), 1, warnings)
