"""
GetDiagnostics out of the box, over real HTTP and a real OCPP socket: a
command without a location gets an upload URL of ours with a token of its
own; the charger PUTs or POSTs the file there, once, within the size limit;
operators list and download it. Refusals: unknown or used tokens, too large.
"""

from __future__ import annotations

import os
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.web.client import HTTPConnectionPool

from ocppd.store import chargers
from tests.api.test_customer import CustomerTestCase, HandAnsweredCharger

PUBLIC = "http://ocppd.example"


class DiagnosticsUploadTests(CustomerTestCase):
    @property
    def overrides(self) -> tuple[str, ...]:  # type: ignore[override]
        folder = os.path.abspath(self.mktemp())
        self.folder = folder
        return (
            *CustomerTestCase.overrides,
            f"files.public_url={PUBLIC}/",
            f"files.diagnostics_dir={folder}",
            "files.max_diagnostics_size=4096",
        )

    @inlineCallbacks
    def location(self, charger: HandAnsweredCharger, file_name: str = "diag.zip") -> Any:
        """Ask CP1 for its diagnostics, as an operator would, without a location."""
        pending = self.request(
            "POST", "/api/charger/get-diagnostics", {"chargePointId": "CP1"}, token=self.admin
        )
        call = yield charger.next_server_call("GetDiagnostics")
        charger.answer(call, {"fileName": file_name})
        code, answer, _ = yield pending
        self.assertEqual((code, answer["fileName"]), (200, file_name), answer)
        location = call[3]["location"]
        self.assertTrue(location.startswith(f"{PUBLIC}/diagnostics/"), location)
        return location[len(PUBLIC) :]

    @inlineCallbacks
    def raw(self, method: str, path: str, data: bytes, content_type: str | None = None) -> Any:
        headers = {} if content_type is None else {"Content-Type": content_type}
        response = yield treq.request(
            method,
            self.url(path),
            data=data,
            headers=headers,
            pool=HTTPConnectionPool(reactor, persistent=False),
        )
        body = yield response.content()
        return response.code, body

    @inlineCallbacks
    def test_upload_list_download(self) -> Any:
        """PUT once (409 after), listed for operators, downloaded as sent; POST a form too."""
        charger = yield self.charger()
        path = yield self.location(charger)
        content = os.urandom(3000)
        code, _ = yield self.raw("PUT", f"{path}diag.zip", content)
        self.assertEqual(code, 201)
        code, _ = yield self.raw("PUT", f"{path}diag.zip", b"again")
        self.assertEqual(code, 409)
        code, listed, _ = yield self.request(
            "GET", "/api/cms/points/CP1/diagnostics", token=self.admin
        )
        self.assertEqual(code, 200, listed)
        [upload] = listed["items"]
        self.assertEqual((upload["fileName"], upload["size"]), ("diag.zip", 3000))
        response = yield treq.get(
            self.url(f"/api/cms/diagnostics/{upload['id']}/file"),
            headers={"Authorization": f"Bearer {self.admin}"},
            pool=HTTPConnectionPool(reactor, persistent=False),
        )
        self.assertEqual((response.code, (yield response.content())), (200, content))
        self.assertEqual(os.listdir(self.folder), [f"{upload['id']}-diag.zip"])

        # A charger that POSTs a form: its file part is kept under its name.
        form_path = yield self.location(charger, "log.tar")
        boundary = "xYzZy"
        form = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="../../log.tar"\r\nContent-Type: application/x-tar\r\n\r\n'
            ).encode()
            + b"tar bytes"
            + f"\r\n--{boundary}--\r\n".encode()
        )
        code, _ = yield self.raw(
            "POST", form_path, form, f"multipart/form-data; boundary={boundary}"
        )
        self.assertEqual(code, 201)
        _, listed, _ = yield self.request(
            "GET", "/api/cms/points/CP1/diagnostics", token=self.admin
        )
        newest = listed["items"][0]
        self.assertEqual((newest["fileName"], newest["size"]), ("log.tar", 9))

    @inlineCallbacks
    def test_refusals(self) -> Any:
        """Unknown token 404, too large 413 (nothing kept), customers 403 on the lists."""
        charger = yield self.charger()
        code, _ = yield self.raw("PUT", "/diagnostics/not-a-token/x.zip", b"x")
        self.assertEqual(code, 404)
        path = yield self.location(charger)
        code, _ = yield self.raw("PUT", f"{path}big.zip", b"x" * 5000)
        self.assertEqual(code, 413)
        self.assertFalse(os.path.exists(self.folder) and os.listdir(self.folder))
        for path_ in ("/api/cms/points/CP1/diagnostics", "/api/cms/diagnostics/1/file"):
            result = yield self.request("GET", path_, token=self.customer)
            self.assertError(result, 403, "forbidden")
        self.assertError(
            (yield self.request("GET", "/api/cms/diagnostics/1/file", token=self.admin)),
            404,
            "not_found",
        )

    @inlineCallbacks
    def test_status_notifications_are_shown(self) -> Any:
        """The charger's DiagnosticsStatusNotification is the point's diagnosticsStatus."""
        charger = yield self.charger()
        yield charger.call("DiagnosticsStatusNotification", {"status": "Uploading"})
        yield charger.call("FirmwareStatusNotification", {"status": "Installed"})
        yield self.daemon.wait_for(
            chargers.get_charge_point, "CP1", until=lambda cp: cp.firmware_status is not None
        )
        code, point, _ = yield self.request("GET", "/api/cms/points/CP1", token=self.admin)
        self.assertEqual(
            (code, point["diagnosticsStatus"], point["firmwareStatus"]),
            (200, "Uploading", "Installed"),
        )


class FirmwareFilesTests(CustomerTestCase):
    @property
    def overrides(self) -> tuple[str, ...]:  # type: ignore[override]
        folder = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(folder, "sub"))
        for name, content in (("fw-2.1.bin", b"firmware"), (".hidden", b"no")):
            with open(os.path.join(folder, name), "wb") as f:
                f.write(content)
        return (
            *CustomerTestCase.overrides,
            f"files.public_url={PUBLIC}",
            f"files.firmware_dir={folder}",
        )

    @inlineCallbacks
    def test_served_and_listed(self) -> Any:
        """Plain files by name to anyone; no dot files, folders or walks; listed for operators."""
        response = yield treq.get(
            self.url("/firmware/fw-2.1.bin"), pool=HTTPConnectionPool(reactor, persistent=False)
        )
        self.assertEqual((response.code, (yield response.content())), (200, b"firmware"))
        for name in (".hidden", "sub", "..%2Fetc", "nope.bin"):
            response = yield treq.get(
                self.url(f"/firmware/{name}"), pool=HTTPConnectionPool(reactor, persistent=False)
            )
            yield response.content()
            self.assertEqual(response.code, 404, name)
        code, listed, _ = yield self.request("GET", "/api/cms/firmware", token=self.admin)
        for item in listed["items"]:
            del item["modifiedAt"]  # its value: tests.api.test_files
        self.assertEqual(
            (code, listed["items"]),
            (200, [{"name": "fw-2.1.bin", "size": 8, "url": f"{PUBLIC}/firmware/fw-2.1.bin"}]),
        )
        self.assertError(
            (yield self.request("GET", "/api/cms/firmware", token=self.customer)), 403, "forbidden"
        )
