"""
``[log] format = json`` for real: ``twistd -n ocppd`` in a subprocess on
ephemeral ports, a charger's whole session (boot, authorize, start, meter
values, stop) and a sign-in with a hostile email, then SIGTERM; every line the
daemon wrote is one JSON object with the structured fields, and the hostile
value is escaped, not a line of its own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from typing import Any

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.web.client import HTTPConnectionPool

from tests.integration.clients import connect
from tests.integration.test_twistd import BIN, INI, TwistdTestCase

KEY = "json-logs-key-0123456789"
FORGED = "x@example.com\n2026-12-07T00:00:00+0000 [ocppd#critical] forged"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class JsonLogTests(TwistdTestCase):
    timeout = 90

    def ocppctl(self, *argv: str, stdin: str = "") -> None:
        subprocess.run(
            [os.path.join(BIN, "ocppctl"), "--config", INI, "--set", "ocppd.data_dir=var", *argv],
            input=stdin,
            cwd=self.workdir,
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )

    @inlineCallbacks
    def call(self, client: Any, unique_id: str, action: str, payload: dict[str, Any]) -> Any:
        client.send(json.dumps([2, unique_id, action, payload]))
        answer = json.loads((yield client.messages.get()))
        self.assertEqual(answer[:2], [3, unique_id], answer)
        return answer[2]

    @inlineCallbacks
    def test_every_line_is_json(self) -> Any:
        process, transport = self.twistd("log.format=json", "ocppd.node_id=json-node")
        try:
            ready = yield self.until_ready(process)
            assert ready is not None, process.text
            # The database exists now: the operator adds the charger and the tag.
            self.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")
            self.ocppctl("tag", "add", "TAG1")
            client = yield connect(int(ready.group(1)), "CP1", KEY)
            boot = yield self.call(
                client,
                "b1",
                "BootNotification",
                {"chargePointVendor": "V", "chargePointModel": "M"},
            )
            self.assertEqual(boot["status"], "Accepted")
            yield self.call(client, "a1", "Authorize", {"idTag": "TAG1"})
            start = yield self.call(
                client,
                "s1",
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": "TAG1",
                    "meterStart": 0,
                    "timestamp": "2026-12-07T05:00:00Z",
                },
            )
            transaction = start["transactionId"]
            yield self.call(
                client,
                "m1",
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": transaction,
                    "meterValue": [
                        {"timestamp": "2026-12-07T05:01:00Z", "sampledValue": [{"value": "500"}]}
                    ],
                },
            )
            yield self.call(
                client,
                "t1",
                "StopTransaction",
                {
                    "transactionId": transaction,
                    "meterStop": 900,
                    "timestamp": "2026-12-07T05:02:00Z",
                },
            )
            client.close()
            pool = HTTPConnectionPool(reactor, persistent=False)
            response = yield treq.post(
                f"http://127.0.0.1:{ready.group(2)}/api/auth/login",
                json={"email": FORGED, "password": "wrong"},
                pool=pool,
            )
            self.assertEqual(response.code, 401)
            yield response.content()
            yield deferLater(reactor, 0.5, lambda: None)  # the processor stores the session
        finally:
            status = yield self.stop(process, transport)
        self.assertEqual(status, (None, signal.SIGTERM), process.text)

        records = []
        for number, line in enumerate(process.text.splitlines(), 1):
            try:
                records.append(json.loads(line))
            except ValueError:
                self.fail(f"line {number} is not JSON: {line!r}")
        self.assertGreater(len(records), 20)
        for record in records:
            self.assertRegex(record["time"], ISO_UTC)
            self.assertIn(record["level"], {"debug", "info", "warn", "error", "critical"})
            self.assertEqual(record["node_id"], "json-node")
            self.assertIsInstance(record["namespace"], str)
            self.assertIsInstance(record["message"], str)
        messages = [r["message"] for r in records]
        self.assertTrue(any(m.startswith("ocppd node json-node ready") for m in messages))
        self.assertTrue(any(m == "ocppd node json-node stopped" for m in messages), messages)
        # The charger's lines carry its id as a field of their own.
        self.assertTrue(
            any(r.get("charge_point_id") == "CP1" for r in records), [r for r in records]
        )
        [refusal] = [r for r in records if r["message"].startswith("Failed sign-in")]
        # (Emails are compared lower-cased, so logged so.)
        self.assertEqual(refusal["email"], FORGED.lower().replace("\n", "\\x0a"))
        self.assertEqual(refusal["address"], "127.0.0.1")
        self.assertNotIn("forged", "".join(m for m in messages if "Failed sign-in" not in m))
