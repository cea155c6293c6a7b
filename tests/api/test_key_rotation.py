"""
ChangeConfiguration of AuthorizationKey through the command API, on a whole
node over real sockets: the key is redacted from everything ocppd keeps or
shows, and the stored key follows the charger's answer.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.logger import globalLogPublisher

from ocppd.bus.envelope import Envelope
from ocppd.ocpp.authorization_key import REDACTED
from ocppd.store import audit, messages
from tests.api.test_api import ADMIN, ApiTestCase
from tests.integration.clients import connect

OLD_KEY = "key-1-0123456789ab"
NEW_KEY = "rotated-key-0123456789"


class KeyRotationTests(ApiTestCase):
    overrides = ("ocpp.call_timeout=1",)

    @inlineCallbacks
    def connect(self, key: str) -> Any:
        client = yield connect(self.daemon.port, "CP1", key)
        self.addCleanup(lambda: (client.close(), client.closed)[1])
        return client

    @inlineCallbacks
    def refused(self, key: str) -> Any:
        try:
            client = yield connect(self.daemon.port, "CP1", key)
        except ConnectionError as e:
            return str(e)
        client.close()
        yield client.closed
        self.fail(f"{key} was admitted")

    @inlineCallbacks
    def change_key(self, client: Any, answer: Any, value: str = NEW_KEY) -> Any:
        """Send a new AuthorizationKey; the charger answers ``answer`` (None: silence)."""
        token = yield self.login(ADMIN)
        pending = self.request(
            "POST",
            "/api/charger/change-configuration",
            {"chargePointId": "CP1", "key": "AuthorizationKey", "value": value},
            token=token,
        )
        call = json.loads((yield client.messages.get()))
        # The charger itself must get the key in clear, of course.
        self.assertEqual(
            call[2:], ["ChangeConfiguration", {"key": "AuthorizationKey", "value": value}]
        )
        if answer is not None:
            client.send(json.dumps([3, call[1], answer]))
        result = yield pending
        return result, token

    @inlineCallbacks
    def test_redacted_everywhere(self) -> Any:
        """
        Neither the bus (message log, live log, audit log), nor the log, nor
        the API's answers carry the key; the command log and the command's
        record show it redacted.
        """
        published: list[Envelope] = []
        bus = self.daemon.node.bus
        real_publish = bus.publish

        def publish(routing_key: str, envelope: Envelope) -> Any:
            published.append(envelope)
            return real_publish(routing_key, envelope)

        self.patch(bus, "publish", publish)
        logged: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)

        client = yield self.connect(OLD_KEY)
        (code, body, _), token = yield self.change_key(client, {"status": "Accepted"})
        self.assertEqual((code, body["status"]), (200, "Accepted"))
        rows = yield self.daemon.wait_for(
            messages.list_messages,
            "CP1",
            until=lambda rows: any(_sent_change(r) for r in rows),
        )
        # The CALL we sent (the charger's CALLRESULT may be logged next to it).
        sent = next(r for r in rows if _sent_change(r))
        self.assertEqual(sent.payload, {"key": "AuthorizationKey", "value": REDACTED})
        entries = yield self.daemon.wait_for(
            audit.list_audit_entries, until=lambda rows: len(rows) >= 2
        )
        for entry in entries:
            self.assertEqual(entry.detail["request"]["value"], REDACTED)
        code, record, _ = yield self.request(
            "GET", f"/api/charger/commands/{body['commandId']}", token=token
        )
        self.assertEqual(record["request"], {"key": "AuthorizationKey", "value": REDACTED})
        for envelope in published:
            self.assertNotIn(NEW_KEY, json.dumps(envelope.payload), envelope.type)
        self.assertTrue(any(e.type == "ocpp.out.ChangeConfiguration" for e in published))
        self.assertNotIn(NEW_KEY, repr(logged))
        self.assertNotIn(NEW_KEY, json.dumps(body) + json.dumps(record))

    @inlineCallbacks
    def test_reported_key_redacted(self) -> Any:
        """A charger that reports its AuthorizationKey in GetConfiguration: redacted too."""
        client = yield self.connect(OLD_KEY)
        token = yield self.login(ADMIN)
        pending = self.request(
            "POST", "/api/charger/get-configuration", {"chargePointId": "CP1"}, token=token
        )
        call = json.loads((yield client.messages.get()))
        reported = [
            {"key": "AuthorizationKey", "readonly": False, "value": OLD_KEY},
            {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
        ]
        client.send(json.dumps([3, call[1], {"configurationKey": reported}]))
        code, body, _ = yield pending
        self.assertEqual(code, 200)
        self.assertEqual(body["configurationKey"][0]["value"], REDACTED)
        self.assertEqual(body["configurationKey"][1], reported[1])
        rows = yield self.daemon.wait_for(
            messages.list_messages,
            "CP1",
            until=lambda rows: any(r.message_type == "CALLRESULT" for r in rows),
        )
        self.assertNotIn(OLD_KEY, json.dumps([r.payload for r in rows]))

    @inlineCallbacks
    def test_short_key_refused_before_sending(self) -> Any:
        """A new AuthorizationKey under 16 characters is 400; nothing is sent or audited."""
        client = yield self.connect(OLD_KEY)
        token = yield self.login(ADMIN)
        result = yield self.request(
            "POST",
            "/api/charger/change-configuration",
            {"chargePointId": "CP1", "key": "authorizationkey", "value": "short-key"},
            token=token,
        )
        self.assertError(result, 400, "bad_request")
        self.assertIn("value", result[1]["error"]["message"])
        self.assertEqual(client.messages.pending, [])
        self.assertEqual((yield self.daemon.query(audit.list_audit_entries)), [])

    @inlineCallbacks
    def test_accepted_key_follows(self) -> Any:
        """
        Accepted: the charger's next connection uses the new key, the old one
        is refused at once (though the node remembers the login with it).
        """
        client = yield self.connect(OLD_KEY)
        (code, _, _), _ = yield self.change_key(client, {"status": "Accepted"})
        self.assertEqual(code, 200)
        self.assertIn("401", (yield self.refused(OLD_KEY)))
        yield self.connect(NEW_KEY)
        self.assertIn("401", (yield self.refused(OLD_KEY)))

    @inlineCallbacks
    def test_rejected_key_forgotten(self) -> Any:
        """Rejected: the charger keeps its key; the new one admits nobody."""
        client = yield self.connect(OLD_KEY)
        yield self.change_key(client, {"status": "Rejected"})
        self.assertIn("401", (yield self.refused(NEW_KEY)))
        yield self.connect(OLD_KEY)

    @inlineCallbacks
    def test_unanswered_key_change_keeps_both(self) -> Any:
        """
        No answer: either key may be the charger's, so both admit it, until
        it logs in with the new one; from then on only that one.
        """
        client = yield self.connect(OLD_KEY)
        (code, _, _), _ = yield self.change_key(client, None)
        self.assertEqual(code, 504)
        yield self.connect(OLD_KEY)
        yield self.connect(NEW_KEY)
        self.assertIn("401", (yield self.refused(OLD_KEY)))


def _sent_change(row: Any) -> bool:
    return bool(
        row.action == "ChangeConfiguration"
        and row.direction == "out"
        and row.message_type == "CALL"
    )
