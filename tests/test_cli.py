"""Tests for ocppctl (ocppd.cli), run in-process against a SQLite file."""

from __future__ import annotations

import io
import os

from twisted.trial.unittest import SynchronousTestCase

from ocppd import cli
from ocppd.credentials import verify_charger_key, verify_password
from ocppd.store import chargers, tags, users
from ocppd.store.database import Database


class OcppctlTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.data_dir = os.path.abspath(self.mktemp())
        self.args = ["--set", f"ocppd.data_dir={self.data_dir}"]

    def ocppctl(self, *argv: str, stdin: str = "") -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        self.patch(cli.sys, "stderr", err)
        code = cli.main([*self.args, *argv], stdin=io.StringIO(stdin), stdout=out)
        return code, out.getvalue(), err.getvalue()

    def database(self) -> Database:
        database = Database.from_url(f"sqlite:///{self.data_dir}/ocppd.sqlite3", max_threads=1)
        self.addCleanup(database.engine.dispose)
        return database

    def test_db_upgrade(self) -> None:
        """`db upgrade` creates the schema and names the revision."""
        code, out, _ = self.ocppctl("db", "upgrade")
        self.assertEqual(code, 0)
        self.assertIn("revision", out)

    def test_charger_add_hashes_the_exact_key(self) -> None:
        """The key from stdin (less the newline) is stored hashed; a station is created."""
        code, _, _ = self.ocppctl(
            "charger", "add", "CP-1", "--station", "Main St", stdin=" k e y \n"
        )
        self.assertEqual(code, 0)
        record = self.database().run_sync(chargers.get_charge_point, "CP-1")
        self.assertEqual(record.registration_status, "Accepted")
        self.assertNotIn("k e y", record.key_hash)
        self.assertTrue(verify_charger_key(" k e y ", record.key_hash))
        self.assertIsNotNone(record.station_id)

    def test_charger_errors(self) -> None:
        """A duplicate, an invalid id, an empty key or an unknown tariff: exit 1 with a message."""
        self.assertEqual(self.ocppctl("charger", "add", "CP-1", stdin="k\n")[0], 0)
        for argv, stdin, needle in [
            (("charger", "add", "CP-1"), "k\n", "already exists"),
            (("charger", "add", "bad/id"), "k\n", "not a valid charge point id"),
            (("charger", "add", "CP-2"), "\n", "empty secret"),
            (("charger", "add", "CP-3", "--tariff", "nope"), "k\n", "no tariff"),
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
