"""Tests for ocppctl (ocppd.cli), run in-process against a SQLite file."""

from __future__ import annotations

import io
import os

import sqlalchemy as sa
from argon2 import PasswordHasher
from twisted.trial.unittest import SynchronousTestCase

from ocppd import cli
from ocppd.credentials import verify_charger_key, verify_password
from ocppd.store import chargers, migrate, tags, users
from ocppd.store.database import Database


class OcppctlTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.data_dir = os.path.abspath(self.mktemp())
        self.path = os.path.join(self.data_dir, "ocppd.sqlite3")
        self.args = ["--set", f"ocppd.data_dir={self.data_dir}"]

    def ocppctl(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        self.patch(cli.sys, "stderr", err)
        code = cli.main([*self.args, *argv], stdin=io.StringIO(stdin), stdout=out)
        return code, out.getvalue(), err.getvalue()

    def database(self) -> Database:
        database = Database.from_url(f"sqlite:///{self.path}", max_threads=1)
        self.addCleanup(database.engine.dispose)
        return database


class OcppctlTests(OcppctlTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.assertEqual(self.ocppctl("db", "upgrade")[0], 0)

    def test_db_upgrade(self) -> None:
        """`db upgrade` creates the schema and names the revision."""
        self.assertTrue(os.path.exists(self.path))
        code, out, _ = self.ocppctl("db", "upgrade")
        self.assertEqual(code, 0)
        self.assertIn(f"revision {migrate.head_revision()}", out)

    def test_charger_add_hashes_the_exact_key(self) -> None:
        """The key from stdin (less the newline) is stored hashed; a station is created."""
        key = " k e y 0123456789 "
        code, _, _ = self.ocppctl(
            "charger", "add", "CP-1", "--station", "Main St", stdin=key + "\n"
        )
        self.assertEqual(code, 0)
        record = self.database().run_sync(chargers.get_charge_point, "CP-1")
        self.assertEqual(record.registration_status, "Accepted")
        self.assertNotIn("k e y", record.key_hash)
        self.assertTrue(verify_charger_key(key, record.key_hash))
        self.assertFalse(verify_charger_key(key.strip(), record.key_hash))
        self.assertIsNotNone(record.station_id)

    def test_charger_errors(self) -> None:
        """
        A duplicate, an invalid id (also one with a trailing newline), an empty
        or short key or an unknown tariff: exit 1 with a message.
        """
        key = "k" * 16 + "\n"
        self.assertEqual(self.ocppctl("charger", "add", "CP-1", stdin=key)[0], 0)
        for argv, stdin, needle in [
            (("charger", "add", "CP-1"), key, "already exists"),
            (("charger", "add", "bad/id"), key, "not a valid charge point id"),
            (("charger", "add", "CP-9\n"), key, "not a valid charge point id"),
            (("charger", "add", "CP-2"), "\n", "empty secret"),
            (("charger", "add", "CP-2"), "k" * 15 + "\n", "at least 16 characters"),
            (("charger", "add", "CP-3", "--tariff", "nope"), key, "no tariff"),
        ]:
            code, _, err = self.ocppctl(*argv, stdin=stdin)
            self.assertEqual(code, 1, argv)
            self.assertIn(needle, err)

    def test_user_and_tag(self) -> None:
        """A user with an Argon2 password owns a tag with expiry and parent."""
        code, _, _ = self.ocppctl(
            "user", "add", "Jo@Example.com", "--role", "customer", stdin="correct horse\n"
        )
        self.assertEqual(code, 0)
        self.assertEqual(self.ocppctl("tag", "add", "PARENT")[0], 0)
        code, _, _ = self.ocppctl(
            "tag",
            "add",
            "TAG1",
            "--user",
            "jo@example.com",
            "--expires",
            "2027-01-01T01:00:00+01:00",
            "--parent",
            "PARENT",
        )
        self.assertEqual(code, 0)
        database = self.database()
        user = database.run_sync(users.get_user_by_email, "jo@example.com")
        self.assertTrue(verify_password("correct horse", user.password_hash))
        # At argon2-cffi's default cost: the tests' cheap hashes (tests.passwords)
        # are not what the product stores.
        self.assertFalse(PasswordHasher().check_needs_rehash(user.password_hash))
        tag = database.run_sync(tags.get_id_tag, "TAG1")
        self.assertEqual(
            (tag.user_id, tag.parent_id_tag, tag.status), (user.id, "PARENT", "Accepted")
        )
        self.assertEqual(tag.expires_at.isoformat(), "2027-01-01T00:00:00+00:00")

    def test_tag_errors(self) -> None:
        """Unknown user or parent, a bad time, a too-long tag: exit 1 with a message."""
        for argv, needle in [
            (("tag", "add", "T1", "--user", "ghost@example.com"), "no user"),
            (("tag", "add", "T1", "--parent", "NOPE"), "no parent"),
            (("tag", "add", "T1", "--expires", "tomorrow"), "ISO-8601"),
            (("tag", "add", "X" * 21), "at most 20"),
        ]:
            code, _, err = self.ocppctl(*argv)
            self.assertEqual(code, 1, argv)
            self.assertIn(needle, err)

    def test_short_password_refused(self) -> None:
        """Passwords under 8 characters are refused."""
        code, _, err = self.ocppctl("user", "add", "a@b.c", "--role", "admin", stdin="short\n")
        self.assertEqual(code, 1)
        self.assertIn("8 characters", err)


class DatabaseRefusedTests(OcppctlTestCase):
    """Commands other than `db upgrade` never create, migrate or half-use a database."""

    def assert_refused(self, argv: tuple[str, ...], *needles: str, stdin: str = "") -> str:
        code, out, err = self.ocppctl(*argv, stdin=stdin)
        self.assertEqual((code, out), (1, ""), err)
        self.assertEqual(len(err.splitlines()), 1, err)
        for needle in needles:
            self.assertIn(needle, err)
        return err

    def test_missing_database_not_created(self) -> None:
        """No database at the configured place: refused with its path, nothing created."""
        for argv in [("tag", "add", "T1"), ("user", "add", "a@b.c", "--role", "admin")]:
            self.assert_refused(argv, self.path, "db upgrade", stdin="long enough\n")
        self.assertFalse(os.path.exists(self.data_dir))

    def test_run_elsewhere_without_config(self) -> None:
        """From another folder, without --config: ./var/ocppd.sqlite3 is not created."""
        elsewhere = os.path.abspath(self.mktemp())
        os.makedirs(elsewhere)
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(elsewhere)
        self.args = []
        self.assert_refused(
            ("charger", "add", "CP-1"), os.path.join(elsewhere, "var", "ocppd.sqlite3"), stdin="k\n"
        )
        self.assertEqual(os.listdir(elsewhere), [])

    def test_unmigrated_database_refused(self) -> None:
        """An empty database, or one at an older revision, is named and left as it is."""
        os.makedirs(self.data_dir)
        open(self.path, "wb").close()  # an empty file is an empty SQLite database
        self.assert_refused(("tag", "add", "T1"), self.path, "no ocppd tables", "db upgrade")
        migrate.upgrade(f"sqlite:///{self.path}", revision="0001")
        err = self.assert_refused(("tag", "add", "T1"), "revision 0001", "db upgrade")
        self.assertIn(f"needs {migrate.head_revision()}", err)
        self.assertEqual(migrate.current_revision(self.database().engine), "0001")

    def test_database_error_is_one_line_without_secrets(self) -> None:
        """A broken database: one line, no traceback, no SQL, no password hash."""
        self.assertEqual(self.ocppctl("db", "upgrade")[0], 0)
        self.database().run_sync(lambda conn: conn.execute(sa.text("DROP TABLE users")))
        err = self.assert_refused(
            ("user", "add", "a@b.c", "--role", "admin"),
            "database error",
            "no such table: users",
            stdin="correct horse\n",
        )
        for secret in ("argon2", "INSERT", "parameters", "correct horse"):
            self.assertNotIn(secret, err)

    def test_not_a_database(self) -> None:
        """A file that is no SQLite database: one line naming the driver's complaint."""
        os.makedirs(self.data_dir)
        with open(self.path, "wb") as f:
            f.write(b"this is not a database" * 100)
        self.assert_refused(("tag", "add", "T1"), "database error", "not a database")

    def test_newer_schema_refused_even_by_upgrade(self) -> None:
        """A revision this version does not know: every command, `db upgrade` too, says so."""
        self.assertEqual(self.ocppctl("db", "upgrade")[0], 0)
        self.database().run_sync(
            lambda conn: conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
        )
        for argv in [("tag", "add", "T1"), ("db", "upgrade")]:
            err = self.assert_refused(argv, "revision 9999", "does not know")
            self.assertNotIn("run `", err)
