"""
A point's connection history (``GET /api/cms/points/{id}/connections``)
through a whole node's web app on a ``Clock`` (``tests/api/inline.py``,
StubTreq): the newest connections first with node, times, duration and close;
bounded to the newest 20; operators only; as the OpenAPI document says.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from ocppd.api.openapi import document
from ocppd.store import chargers, connections
from tests.api.inline import InlineNode
from tests.api.test_openapi import check_response

PATH = "/api/cms/points/{chargePointId}/connections"


class ConnectionHistoryApiTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.inline = InlineNode(self)
        self.run = self.inline.node.database.run_sync
        self.now = self.inline.now()
        self.admin = self.inline.token(self.inline.add_user("ops@example.com", "pw long", "admin"))
        self.customer = self.inline.token(
            self.inline.add_user("jo@example.com", "pw longer", "customer")
        )
        self.run(chargers.add_charge_point, "CP1", None, now=self.now - timedelta(days=2))

    def get(self, token: str, charge_point_id: str = "CP1") -> tuple[int, Any]:
        results: list[Any] = []
        d = self.inline.treq.get(
            f"http://ocppd.test/api/cms/points/{charge_point_id}/connections",
            headers={"Authorization": [f"Bearer {token}"]},
        )
        d.addCallback(lambda response: response.content().addCallback(lambda c: (response, c)))
        d.addBoth(results.append)
        for _ in range(5):
            self.inline.clock.advance(0)
            self.inline.treq.flush()
        [(response, content)] = results
        return response.code, json.loads(content)

    def connect(self, name: str, hours_ago: float, *, node: str = "n1") -> None:
        self.run(
            connections.connected,
            "CP1",
            connection_id=name,
            node=node,
            at=self.now - timedelta(hours=hours_ago),
        )

    def disconnect(self, name: str, hours_ago: float, **close: Any) -> None:
        self.run(
            connections.disconnected,
            "CP1",
            connection_id=name,
            at=self.now - timedelta(hours=hours_ago),
            **close,
        )

    def test_newest_first_with_duration_and_close(self) -> None:
        self.connect("old", 30, node="node-a")
        self.disconnect("old", 28.5, code=1006, reason="gone")
        self.connect("now", 1, node="node-b")
        code, body = self.get(self.admin)
        self.assertEqual(code, 200, body)
        check_response(self, document(), PATH, "get", (code, body, None))
        self.assertEqual(
            [
                (
                    c["connectionId"],
                    c["node"],
                    c["disconnectedAt"] is None,
                    c["durationSeconds"],
                    c["closeCode"],
                    c["closeReason"],
                )
                for c in body["items"]
            ],
            [
                ("now", "node-b", True, None, None, None),
                ("old", "node-a", False, 5400, 1006, "gone"),
            ],
        )
        self.assertTrue(body["items"][1]["connectedAt"].endswith("Z"))

    def test_bounded_to_the_newest(self) -> None:
        for n in range(connections.RECENT_CONNECTIONS + 5):
            self.connect(f"s{n:02}", 40 - n)
            self.disconnect(f"s{n:02}", 39.5 - n)
        _, body = self.get(self.admin)
        self.assertEqual(len(body["items"]), connections.RECENT_CONNECTIONS)
        self.assertEqual(body["items"][0]["connectionId"], f"s{connections.RECENT_CONNECTIONS + 4}")

    def test_operators_only_unknown_point_empty(self) -> None:
        code, body = self.get(self.customer)
        self.assertEqual(code, 403, body)
        check_response(self, document(), PATH, "get", (code, body, None))
        self.assertEqual(self.get(self.admin, "nobody"), (200, {"items": []}))
