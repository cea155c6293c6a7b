"""
The files chargers fetch and send, through the whole web app in the test's
thread (``tests.api.inline``, ``StubTreq`` on a ``Clock``): the firmware files
the UpdateFirmware picker offers (``GET /api/cms/firmware``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet.defer import maybeDeferred
from twisted.trial.unittest import SynchronousTestCase

from ocppd.api import app
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
        results: list[Any] = []
        headers = {"Authorization": [f"Bearer {token}"]}
        if body is not None:
            headers["Content-Type"] = ["application/json"]
        d = self.inline.treq.request(
            method,
            f"http://ocppd.test{path}",
            headers=headers,
            data=None if body is None else json.dumps(body).encode(),
        )
        d.addCallback(lambda response: response.content().addCallback(lambda c: (response, c)))
        d.addBoth(results.append)
        for _ in range(5):
            self.inline.clock.advance(0)
            self.inline.treq.flush()
        [(response, content)] = results
        return response.code, json.loads(content) if content else None


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
