"""
The files chargers fetch and send, through the whole web app in the test's
thread (``tests.api.inline``, ``StubTreq`` on a ``Clock``): the firmware files
the UpdateFirmware picker offers (``GET /api/cms/firmware``), diagnostics
files pruned by age and total size (``ocppd.diagnostics_pruning``, its hourly
passes on the Clock) and deleted by an operator (audited).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from typing import Any

from twisted.internet.defer import Deferred, fail, maybeDeferred
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from ocppd.api import app
from ocppd.diagnostics_pruning import INTERVAL
from ocppd.store import chargers, diagnostics
from ocppd.store.diagnostics import UploadRecord
from tests.api.inline import InlineNode

PUBLIC = "https://cms.example"
#: 2026-12-07T10:00:00Z, the firmware file's last change.
MTIME = 1_796_637_600


class InlineFilesTestCase(SynchronousTestCase):
    overrides: tuple[str, ...] = ()

    def setUp(self) -> None:
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)
        self.inline = InlineNode(self, *self.overrides_for(self.folder))
        self.node = self.inline.node
        # The folder is scanned on a thread by the app: in this one here.
        self.patch(app, "deferToThread", maybeDeferred)
        self.admin = self.inline.token(self.inline.add_user("ops@example.com", "pw long", "admin"))
        self.customer = self.inline.token(
            self.inline.add_user("jo@example.com", "pw longer", "customer")
        )

    def overrides_for(self, folder: str) -> tuple[str, ...]:
        return self.overrides

    def request(
        self, method: str, path: str, token: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        code, content = self.inline.request(method, path, token, body)
        return code, json.loads(content) if content else None


class FirmwareListingTests(InlineFilesTestCase):
    def overrides_for(self, folder: str) -> tuple[str, ...]:
        return (f"files.firmware_dir={folder}", f"files.public_url={PUBLIC}/")

    def put(self, name: str, content: bytes, mtime: int = MTIME) -> None:
        path = os.path.join(self.folder, name)
        with open(path, "wb") as f:
            f.write(content)
        os.utime(path, (mtime, mtime))

    def test_files_with_size_time_and_url(self) -> None:
        """Each file by name: its size, last change (UTC) and the absolute URL chargers fetch."""
        self.put("fw-2.1.bin", b"firmware")
        self.put("a-1.0.bin", b"old", MTIME - 86400)
        self.put(".hidden", b"not served")
        os.makedirs(os.path.join(self.folder, "sub"))
        code, body = self.request("GET", "/api/cms/firmware", self.admin)
        self.assertEqual(code, 200, body)
        self.assertEqual(
            body["items"],
            [
                {
                    "name": "a-1.0.bin",
                    "size": 3,
                    "modifiedAt": "2026-12-06T10:00:00.000Z",
                    "url": f"{PUBLIC}/firmware/a-1.0.bin",
                },
                {
                    "name": "fw-2.1.bin",
                    "size": 8,
                    "modifiedAt": "2026-12-07T10:00:00.000Z",
                    "url": f"{PUBLIC}/firmware/fw-2.1.bin",
                },
            ],
        )

    def test_empty_folder(self) -> None:
        """No file: an empty list (the picker says so), operators only."""
        self.assertEqual(self.request("GET", "/api/cms/firmware", self.admin), (200, {"items": []}))
        code, body = self.request("GET", "/api/cms/firmware", self.customer)
        self.assertEqual((code, body["error"]["code"]), (403, "forbidden"))


class FirmwareWithoutPublicUrlTests(FirmwareListingTests):
    def overrides_for(self, folder: str) -> tuple[str, ...]:
        return (f"files.firmware_dir={folder}",)

    def test_files_with_size_time_and_url(self) -> None:
        """Without ``public_url`` no URL can be given: listed with ``url`` null."""
        self.put("fw-2.1.bin", b"firmware")
        code, body = self.request("GET", "/api/cms/firmware", self.admin)
        self.assertEqual((code, [f["url"] for f in body["items"]]), (200, [None]))


class DiagnosticsPruningTests(InlineFilesTestCase):
    def overrides_for(self, folder: str) -> tuple[str, ...]:
        return (
            f"files.diagnostics_dir={folder}",
            "files.diagnostics_keep_days=30",
            "files.max_diagnostics_total=1000",
        )

    def setUp(self) -> None:
        super().setUp()
        self.run = self.node.database.run_sync
        self.run(chargers.add_charge_point, "CP1", None, now=self.inline.now())
        self.events: list[dict[str, Any]] = []

        def observe(event: dict[str, Any]) -> None:
            if str(event.get("log_namespace", "")).startswith("ocppd.diagnostics"):
                self.events.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        self.pruner = self.node.diagnostics_pruner
        self.addCleanup(self.pruner.stopService)

    def upload(self, days_ago: float, size: int, name: str = "diag.zip") -> UploadRecord:
        """An upload received ``days_ago`` days ago, its file in the folder."""
        at = self.inline.now() - timedelta(days=days_ago)
        upload_id = self.run(
            diagnostics.add_upload,
            charge_point_id="CP1",
            token_hash=os.urandom(16).hex(),
            requested_by=None,
            now=at,
            expires_at=at + timedelta(days=1),
        )
        self.run(diagnostics.mark_received, upload_id, file_name=name, size=size, now=at)
        record = self.run(diagnostics.get_upload, upload_id)
        with open(self.node.diagnostics.path_of(record), "wb") as f:
            f.write(b"x" * size)
        return record

    def kept(self) -> list[int]:
        """The uploads listed, oldest first, checking each one's file is there."""
        rows = self.run(diagnostics.list_uploads, "CP1", before_id=None, limit=100)
        files = sorted(os.listdir(self.folder))
        self.assertEqual(
            files, sorted(os.path.basename(self.node.diagnostics.path_of(r)) for r in rows)
        )
        return sorted(r.id for r in rows)

    def logged(self, level: LogLevel) -> list[dict[str, Any]]:
        return [e for e in self.events if e["log_level"] == level]

    def test_older_than_keep_days_removed_with_their_rows(self) -> None:
        """At start: a file received 31 days ago goes with its row, one 29 days ago stays."""
        old = self.upload(31, 10)
        young = self.upload(29, 10)
        self.pruner.startService()
        self.assertEqual(self.kept(), [young.id])
        [line] = self.logged(LogLevel.info)
        self.assertEqual((line["count"], line["bytes"], line["upload_ids"]), (1, 10, [old.id]))
        self.assertIn("received before", line["reason"])

    def test_oldest_removed_while_over_the_total(self) -> None:
        """1,200 bytes over a limit of 1,000: the oldest goes, enough to be under."""
        first = self.upload(3, 400)
        second = self.upload(2, 400)
        third = self.upload(1, 400)
        self.pruner.startService()
        self.assertEqual(self.kept(), [second.id, third.id])
        [line] = self.logged(LogLevel.info)
        self.assertEqual((line["count"], line["bytes"]), (1, 400))
        self.assertIn("max_diagnostics_total", line["reason"])
        self.assertEqual(line["upload_ids"], [first.id])

    def test_every_hour(self) -> None:
        """Nothing to do at start; an hour later, what has aged since is removed."""
        record = self.upload(29.99, 10)
        self.pruner.startService()
        self.assertEqual(self.kept(), [record.id])
        self.inline.clock.advance(INTERVAL)
        self.assertEqual(self.kept(), [])
        self.successResultOf(self.pruner.stopService())
        later = self.upload(40, 10)
        self.inline.clock.advance(INTERVAL)
        self.assertEqual(self.kept(), [later.id])

    def test_stop_waits_for_the_chunk_under_way_and_ends_the_pass(self) -> None:
        """
        The database closes after the stop: the chunk under way ends, no next
        one starts (a chunk that removed something is otherwise followed by another).
        """
        self.upload(40, 10)
        held: list[tuple[Deferred[Any], Any]] = []

        def holding(step: Any) -> Deferred[Any]:
            held.append((Deferred(), step))
            return held[-1][0]

        self.patch(self.node.database, "run", holding)
        self.pruner.startService()
        stopped = self.pruner.stopService()
        self.assertNoResult(stopped)
        [(chunk, step)] = held
        chunk.callback(self.run(step))
        self.successResultOf(stopped)
        self.assertEqual(len(held), 1, "a chunk after the stop")
        self.assertEqual(self.kept(), [])

    def test_failed_pass_logged_and_tried_next_hour(self) -> None:
        """A pass that fails (the database away) is logged; the timer goes on."""
        record = self.upload(40, 10)
        run = self.node.database.run
        failing = [fail(RuntimeError("database away"))]
        self.patch(
            self.node.database, "run", lambda *a, **kw: failing.pop() if failing else run(*a, **kw)
        )
        self.pruner.startService()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.kept(), [record.id])
        self.inline.clock.advance(INTERVAL)
        self.assertEqual(self.kept(), [])

    def test_without_limits_not_started(self) -> None:
        """Neither limit: a warning at start, and no pass, now or later."""
        record = self.upload(400, 10)
        self.pruner.keep_days = self.pruner.max_total = 0
        self.pruner.startService()
        [warning] = self.logged(LogLevel.warn)
        self.assertIn("kept forever", warning["log_format"])
        self.assertFalse(self.pruner.running)
        self.pruner.keep_days = 30
        self.inline.clock.advance(INTERVAL)
        self.assertEqual(self.kept(), [record.id])
        self.successResultOf(self.pruner.stopService())

    def test_a_file_that_will_not_go_keeps_its_row(self) -> None:
        """A file that cannot be deleted: its row stays listed, a warning, tried next time."""
        record = self.upload(40, 10)
        path = self.node.diagnostics.path_of(record)
        os.remove(path)
        os.makedirs(path)  # os.remove() refuses a folder
        self.pruner.startService()
        rows = self.run(diagnostics.list_uploads, "CP1", before_id=None, limit=100)
        self.assertEqual([r.id for r in rows], [record.id])
        [warning] = self.logged(LogLevel.warn)
        self.assertEqual(warning["upload_id"], record.id)
        os.rmdir(path)
        self.inline.clock.advance(INTERVAL)
        self.assertEqual(self.kept(), [])

    def test_unused_upload_urls_forgotten(self) -> None:
        """An upload URL that expired unused more than keep_days ago is forgotten."""
        now = self.inline.now()
        for days in (40, 10):
            self.run(
                diagnostics.add_upload,
                charge_point_id="CP1",
                token_hash=f"unused-{days}",
                requested_by=None,
                now=now - timedelta(days=days + 1),
                expires_at=now - timedelta(days=days),
            )
        self.pruner.startService()
        rows = self.run(diagnostics.list_uploads, "CP1", before_id=None, limit=100)
        self.assertEqual([r.expires_at for r in rows], [now - timedelta(days=10)])

    def test_operator_deletes_one(self) -> None:
        """DELETE: the file and its row go, audited with who; again 404; customers 403."""
        staged: list[tuple[str, dict[str, Any], str | None]] = []
        stage_many = self.node.outbox.stage_many

        def recording(conn: Any, events: Any) -> None:
            events = list(events)
            staged.extend(events)
            stage_many(conn, events)

        self.patch(self.node.outbox, "stage_many", recording)
        record = self.upload(1, 10, "log.tar")
        other = self.upload(1, 20)
        code, body = self.request("DELETE", f"/api/cms/diagnostics/{record.id}", self.customer)
        self.assertEqual((code, body["error"]["code"]), (403, "forbidden"))
        code, body = self.request("DELETE", f"/api/cms/diagnostics/{record.id}", self.admin)
        self.assertEqual((code, body["deleted"]["fileName"]), (200, "log.tar"), body)
        self.assertEqual(self.kept(), [other.id])
        [(key, payload, charge_point_id)] = staged
        self.assertEqual(
            (key, payload["by"]["email"], payload["uploadId"], payload["size"], charge_point_id),
            ("audit.cms.diagnostics.deleted", "ops@example.com", record.id, 10, "CP1"),
        )
        code, body = self.request("DELETE", f"/api/cms/diagnostics/{record.id}", self.admin)
        self.assertEqual((code, body["error"]["code"]), (404, "not_found"))
        self.assertEqual(len(staged), 1)
