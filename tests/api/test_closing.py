"""
An operator closes a session that cannot end, by hand
(``POST /api/cms/sessions/{id}/close``), over real HTTP against a whole
node with a scripted charger: billed on its last reading, the app's hold
released, audited with the operator's reason; retry-safe; refusals.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.store import audit, transactions
from tests.api.test_customer import T0, CustomerTestCase, meter
from tests.integration.daemon import postgres_overrides

TEN_MINUTES_LATER = "2026-11-29T10:10:00Z"


class CloseByHandTests(CustomerTestCase):
    def close(self, tx: Any, body: Any, token: str | None = None) -> Deferred[Any]:
        path = f"/api/cms/sessions/{tx}/close"
        return self.request("POST", path, body, token=token or self.admin)

    @inlineCallbacks
    def test_close_bills_on_the_last_reading(self) -> Any:
        """
        An app session whose charger is gone: closed by hand, it is billed
        on its last reading (2 kWh, 10 minutes, the fee: 130), its hold is
        released, the customer told, the close audited with its reason; the
        same request again changes nothing.
        """
        charger = yield self.charger()
        id_tag = yield self.id_tag(self.customer)
        yield self.top_up(self.customer, 1000)
        _, tx = yield self.start_from_app(charger, self.customer, id_tag)
        yield charger.call("MeterValues", meter(tx, TEN_MINUTES_LATER, 3000))
        yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.last_meter_wh == 3000
        )
        self.assertGreater((yield self.wallet(self.customer))["held"], 0)

        reason = "charger replaced; its StopTransaction will never come"
        code, answer, _ = yield self.close(tx, {"reason": reason})
        self.assertEqual(code, 200, answer)
        session = answer["session"]
        self.assertEqual(
            (
                session["status"],
                session["stopReason"],
                session["meterStopWh"],
                session["stoppedAt"],
                session["energyWh"],
                session["cost"],
            ),
            ("completed", "closed by operator", 3000, "2026-11-29T10:10:00.000Z", 2000, 130),
        )
        wallet = yield self.wallet(self.customer)
        self.assertEqual((wallet["balance"], wallet["held"]), (870, 0))
        self.assertEqual(
            [e["reason"] for e in self.events("charging.stopped")], ["closed by operator"]
        )
        self.assertEqual([e["session"]["id"] for e in self.events("session.stopped")], [tx])

        again = yield self.close(tx, {"reason": reason})
        self.assertEqual((again[0], again[1]["session"]["cost"]), (200, 130))
        self.assertEqual((yield self.wallet(self.customer))["balance"], 870)
        entries = yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn, charge_point_id="CP1"),
            until=lambda rows: any(r.action == "session.closed" for r in rows),
        )
        closed = [e for e in entries if e.action == "session.closed"]
        self.assertEqual(len(closed), 1)
        self.assertEqual(
            (closed[0].actor_user_id, closed[0].detail["reason"], closed[0].detail["sessionId"]),
            (1, reason, tx),
        )

        # The charger comes back with its own stop after all: billed again on
        # it (2200 Wh, 12 minutes, the fee: 140), the 10 more as one
        # correction; not an unmatched stop; announced.
        yield charger.call(
            "StopTransaction",
            {"transactionId": tx, "meterStop": 3200, "timestamp": "2026-11-29T10:12:00Z"},
        )
        session_after = yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.late_stop_at is not None
        )
        self.assertEqual(
            (session_after.meter_stop_wh, session_after.cost, session_after.stop_reason),
            (3200, 140, "closed by operator"),
        )
        self.assertEqual(session_after.charger_stop_reason, "Local")
        self.assertEqual((yield self.wallet(self.customer))["balance"], 860)
        code, late, _ = yield self.request(
            "GET", "/api/cms/points/CP1/unmatched-stops", token=self.admin
        )
        self.assertEqual((code, late["items"]), (200, []))

    @inlineCallbacks
    def test_refusals(self) -> Any:
        """Customers 403; bad bodies 400; unknown 404; a session that ended 409."""
        charger = yield self.charger()
        id_tag = yield self.id_tag(self.customer)
        started = yield charger.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": id_tag, "meterStart": 0, "timestamp": T0},
        )
        tx = started["transactionId"]
        self.assertError(
            (yield self.close(tx, {"reason": "gone"}, self.customer)), 403, "forbidden"
        )
        for bad in [
            {},
            {"reason": ""},
            {"reason": "  "},
            {"reason": 5},
            {"reason": "x" * 501},
            {"reason": "gone", "cost": 0},
        ]:
            self.assertError((yield self.close(tx, bad)), 400, "bad_request")
        self.assertError((yield self.close(9999, {"reason": "gone"})), 404, "not_found")
        self.assertError((yield self.close("x1", {"reason": "gone"})), 404, "not_found")
        yield charger.call(
            "StopTransaction", {"transactionId": tx, "meterStop": 10, "timestamp": T0}
        )
        yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.status == "completed"
        )
        self.assertError((yield self.close(tx, {"reason": "gone"})), 409, "not_active")


class PostgresCloseByHandTests(CloseByHandTests):
    def daemon_overrides(self) -> list[str]:
        return [*postgres_overrides(self), *self.overrides]
