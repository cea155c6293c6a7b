"""
Customers' wallets and charging from the app, over real HTTP against a whole
node, with a scripted charger on a real OCPP socket: top-up, start, the
charger's session, live cost, stop, the debit, and the events on the bus.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks

from ocppd.bus.memory import MemoryBus
from ocppd.store import audit, tables, transactions, wallets
from ocppd.timeutil import format_iso, from_timestamp
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase
from tests.integration.clients import TestClient, connect
from tests.integration.daemon import amqp_overrides, postgres_overrides

OTHER = ("sam@example.com", "yet another long password")
T0 = "2026-11-29T10:00:00Z"
REGISTERED = datetime(2026, 11, 1, tzinfo=UTC)
# 30 cents per kWh, 2 per minute, 50 per session.
TARIFF = {
    "name": "Std",
    "currency": "EUR",
    "pricePerKwh": 30,
    "pricePerMinute": 2,
    "sessionFee": 50,
}


class HandAnsweredCharger:
    """
    A charger the test speaks for, frame by frame: its CALLs get their
    answers matched by id, and the CSMS's CALLs queue up for the test to
    answer (or not: these tests time commands out and refuse them), unlike
    ``tests.browser.charger.ScriptedCharger``, which answers like a charger.
    """

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.ids = itertools.count(1)
        self.server_calls: list[list[Any]] = []

    @inlineCallbacks
    def call(self, action: str, payload: dict[str, Any]) -> Any:
        unique_id = f"m{next(self.ids)}"
        self.client.send(json.dumps([2, unique_id, action, payload]))
        while True:
            frame = json.loads((yield self.client.messages.get()))
            if frame[0] == 2:
                self.server_calls.append(frame)
            elif frame[1] == unique_id:
                if frame[0] != 3:
                    raise AssertionError(f"{action} answered {frame}")
                return frame[2]

    @inlineCallbacks
    def next_server_call(self, action: str) -> Any:
        while not self.server_calls:
            frame = json.loads((yield self.client.messages.get()))
            if frame[0] == 2:
                self.server_calls.append(frame)
        frame = self.server_calls.pop(0)
        if frame[2] != action:
            raise AssertionError(f"expected {action}, the CSMS sent {frame}")
        return frame

    def answer(self, frame: list[Any], payload: dict[str, Any]) -> None:
        self.client.send(json.dumps([3, frame[1], payload]))


def meter(tx: int, at: str, wh: int, watts: int | None = None) -> dict[str, Any]:
    sampled = [{"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]
    if watts is not None:
        sampled.append({"value": str(watts), "measurand": "Power.Active.Import", "unit": "W"})
    return {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [{"timestamp": at, "sampledValue": sampled}],
    }


class CustomerTestCase(ApiTestCase):
    # Top-ups need a payment provider chosen explicitly (the default takes none).
    overrides = (
        "ocpp.call_timeout=2",
        "billing.minimum_to_start=500",
        "billing.payment_provider=test",
    )

    @inlineCallbacks
    def setUp(self) -> Any:
        yield super().setUp()
        yield self.add_user(OTHER, "customer")
        # Every publish the node makes, as accepted by the bus.
        self.published: list[tuple[str, dict[str, Any]]] = []
        bus = self.daemon.node.bus
        publish = bus.publish

        def spy(routing_key: str, envelope: Any, **options: Any) -> Any:
            # ``options``: the embedded bus's ``flow`` (a charger's answer waits for it).
            self.published.append((routing_key, envelope.payload))
            return publish(routing_key, envelope, **options)

        bus.publish = spy
        if isinstance(bus, MemoryBus):
            pass_by = bus.pass_by

            def passed_by(routing_key: str, payload: dict[str, Any], **fields: Any) -> Any:
                # An announcement no queue takes (a session.updated, no browser
                # open) is settled without its envelope: published all the same.
                passed = pass_by(routing_key, payload, **fields)
                if passed is not None:
                    self.published.append((routing_key, payload))
                return passed

            bus.pass_by = passed_by  # type: ignore[method-assign]
        self.admin = yield self.login(ADMIN)
        self.customer = yield self.login(CUSTOMER)
        self.other = yield self.login(OTHER)
        code, tariff, _ = yield self.request("POST", "/api/cms/tariffs", TARIFF, token=self.admin)
        self.assertEqual(code, 201, tariff)
        code, body, _ = yield self.request(
            "PUT", "/api/cms/points/CP1", {"tariffId": tariff["id"]}, token=self.admin
        )
        self.assertEqual(code, 200, body)
        # CP1 was registered before the sessions these tests replay from T0
        # (a start before its charger's registration is held for review).
        yield self.daemon.query(
            lambda conn: conn.execute(tables.charge_points.update().values(created_at=REGISTERED))
        )

    def keys(self) -> list[str]:
        return [key for key, _ in self.published]

    def events(self, routing_key: str) -> list[dict[str, Any]]:
        return [payload for key, payload in self.published if key == routing_key]

    @inlineCallbacks
    def charger(self, status: str = "Available") -> Any:
        client = yield connect(self.daemon.port, "CP1", "key-1-0123456789ab")
        self.addCleanup(lambda: (client.close(), client.closed)[1])
        charger = HandAnsweredCharger(client)
        yield charger.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        yield charger.call(
            "StatusNotification", {"connectorId": 1, "status": status, "errorCode": "NoError"}
        )
        yield self.daemon.wait_for(
            lambda conn: self._connector_status(conn), until=lambda s: s == status
        )
        return charger

    def _connector_status(self, conn: Any) -> str | None:
        from ocppd.store import chargers

        point = chargers.get_charge_point(conn, "CP1")
        if point is None or not point.online:
            return None
        found = [c.status for c in chargers.list_connectors(conn, "CP1") if c.connector_id == 1]
        return found[0] if found else None

    @inlineCallbacks
    def top_up(self, token: str, amount: int, key: str | None = None) -> Any:
        headers = {"Idempotency-Key": key} if key else None
        result = yield self.request(
            "POST", "/api/user/wallet/top-up", {"amount": amount}, token=token, headers=headers
        )
        return result

    @inlineCallbacks
    def wallet(self, token: str) -> Any:
        code, body, _ = yield self.request("GET", "/api/user/wallet", token=token)
        self.assertEqual(code, 200, body)
        return body

    @inlineCallbacks
    def start_from_app(
        self, charger: HandAnsweredCharger, token: str, id_tag: str, at: str = T0
    ) -> Any:
        """
        Start on connector 1 and let the charger accept and start, its clock
        saying ``at``: (answer, transaction id).
        """
        pending = self.request(
            "POST",
            "/api/user/charging/start",
            {"chargePointId": "CP1", "connectorId": 1},
            token=token,
        )
        call = yield charger.next_server_call("RemoteStartTransaction")
        self.assertEqual(call[3], {"connectorId": 1, "idTag": id_tag})
        charger.answer(call, {"status": "Accepted"})
        code, answer, _ = yield pending
        self.assertEqual(code, 202, answer)
        started = yield charger.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": id_tag, "meterStart": 1000, "timestamp": at},
        )
        self.assertEqual(started["idTagInfo"]["status"], "Accepted")
        return answer, started["transactionId"]

    @inlineCallbacks
    def id_tag(self, token: str) -> Any:
        code, body, _ = yield self.request("GET", "/api/auth/me", token=token)
        self.assertEqual(code, 200)
        return body["user"]["idTag"]


class CustomerFlowTests(CustomerTestCase):
    @inlineCallbacks
    def test_full_customer_flow(self) -> Any:
        """
        Top up, start from the API, the charger starts, meter values, stop from
        the API: the wallet is debited by exactly the tariff's cost, once.
        """
        charger = yield self.charger()
        id_tag = yield self.id_tag(self.customer)
        self.assertEqual(len(id_tag), 20)
        code, body, _ = yield self.top_up(self.customer, 2000)
        self.assertEqual(code, 201, body)
        self.assertEqual(body["wallet"]["balance"], 2000)
        self.assertEqual(
            (body["transaction"]["kind"], body["transaction"]["amount"]), ("top_up", 2000)
        )

        answer, tx = yield self.start_from_app(charger, self.customer, id_tag)
        self.assertEqual(answer["status"], "Accepted")
        request = yield self.daemon.wait_for(
            wallets.request_by_command, answer["commandId"], until=lambda r: r.session_id == tx
        )
        self.assertEqual((request.status, request.hold), ("started", 2000))
        wallet = yield self.wallet(self.customer)
        self.assertEqual((wallet["balance"], wallet["held"], wallet["available"]), (2000, 2000, 0))

        yield charger.call("MeterValues", meter(tx, "2026-11-29T10:10:00Z", 4000, watts=11000))
        updates = yield self.daemon.wait_for(
            lambda conn: None, until=lambda _: bool(self.events("session.updated"))
        )
        del updates
        live = self.events("session.updated")[0]["live"]
        # 3000 Wh and 10 minutes: 50 + 90 + 20.
        self.assertEqual(
            {k: live[k] for k in ("energyWh", "powerW", "cost", "currency")},
            {"energyWh": 3000, "powerW": 11000, "cost": 160, "currency": "EUR"},
        )

        pending = self.request(
            "POST", "/api/user/charging/stop", {"sessionId": tx}, token=self.customer
        )
        call = yield charger.next_server_call("RemoteStopTransaction")
        self.assertEqual(call[3], {"transactionId": tx})
        charger.answer(call, {"status": "Accepted"})
        code, stopped, _ = yield pending
        self.assertEqual((code, stopped["status"], stopped["sessionId"]), (202, "Accepted", tx))
        stop = {
            "transactionId": tx,
            "meterStop": 6000,
            "timestamp": "2026-11-29T10:20:00Z",
            "reason": "Remote",
        }
        yield charger.call("StopTransaction", stop)
        yield charger.call("StopTransaction", stop)  # resent: billed once
        session = yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.cost is not None
        )
        # 5000 Wh and 20 minutes: 50 + 150 + 40.
        self.assertEqual((session.cost, session.currency, session.user_id), (240, "EUR", 2))
        wallet = yield self.daemon.wait_for(
            lambda conn: wallets.wallet_view(conn, 2, currency="EUR", now=session.stopped_at),
            until=lambda view: view.held == 0,
        )
        self.assertEqual((wallet.balance, wallet.available), (1760, 1760))
        code, page, _ = yield self.request(
            "GET", "/api/user/wallet/transactions", token=self.customer
        )
        self.assertEqual(
            [(t["kind"], t["amount"], t["balance"], t["sessionId"]) for t in page["items"]],
            [("debit", -240, 1760, tx), ("top_up", 2000, 2000, None)],
        )
        # Everything on the bus, in the order it happened.
        yield self.daemon.wait_for(
            lambda conn: None, until=lambda _: bool(self.events("charging.stopped"))
        )
        expected = [
            "wallet.transaction",
            "charging.start.requested",
            "command.remote-start.requested",
            "command.remote-start.answered",
            "session.started",
            "charging.started",
            "session.updated",
            "charging.stop.requested",
            "command.remote-stop.requested",
            "command.remote-stop.answered",
            "session.stopped",
            "wallet.transaction",
            "charging.stopped",
        ]
        seen = [key for key in self.keys() if key in set(expected)]
        self.assertEqual(seen, expected)
        self.assertEqual(self.events("charging.started")[0]["sessionId"], tx)
        debit = self.events("wallet.transaction")[1]
        self.assertEqual(
            (debit["userId"], debit["balance"], debit["transaction"]["amount"]), (2, 1760, -240)
        )
        self.assertEqual(
            self.events("charging.stopped")[0],
            {
                "userId": 2,
                "sessionId": tx,
                "chargePointId": "CP1",
                "reason": "user",
                "cost": 240,
                "currency": "EUR",
            },
        )
        # The customer's own actions are in the audit log too.
        entries = yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn, charge_point_id="CP1"),
            until=lambda rows: any(r.action == "charging.stopped" for r in rows),
        )
        self.assertIn("charging.start", {r.action for r in entries})

    @inlineCallbacks
    def test_funds_run_out(self) -> Any:
        """
        The running cost reaching the held funds stops the session remotely,
        once; told why. What accrued while the stop travelled would take the
        wallet below its floor: the session waits for an operator, who bills it.
        """
        charger = yield self.charger()
        id_tag = yield self.id_tag(self.customer)
        yield self.top_up(self.customer, 600)
        _, tx = yield self.start_from_app(charger, self.customer, id_tag)
        yield self.daemon.wait_for(
            lambda conn: wallets.request_for_session(conn, tx), until=lambda r: r is not None
        )
        # 16000 Wh after one minute: 50 + 480 + 2 = 532, within the 600 held.
        yield charger.call("MeterValues", meter(tx, "2026-11-29T10:01:00Z", 17000))
        # 19000 Wh: 50 + 540 + 4 = 594; 19300 Wh: 50 + 549 + 4 = 603 >= 600.
        yield charger.call("MeterValues", meter(tx, "2026-11-29T10:02:00Z", 19000))
        yield charger.call("MeterValues", meter(tx, "2026-11-29T10:02:30Z", 19300))
        call = yield charger.next_server_call("RemoteStopTransaction")
        self.assertEqual(call[3], {"transactionId": tx})
        charger.answer(call, {"status": "Accepted"})
        yield charger.call("MeterValues", meter(tx, "2026-11-29T10:02:40Z", 19400))
        stop = {
            "transactionId": tx,
            "meterStop": 19400,
            "timestamp": "2026-11-29T10:02:45Z",
            "reason": "Remote",
        }
        yield charger.call("StopTransaction", stop)
        yield self.daemon.wait_for(
            lambda conn: None, until=lambda _: bool(self.events("charging.stopped"))
        )
        self.assertEqual(len(self.events("charging.stop.requested")), 1)
        self.assertEqual(self.events("charging.stop.requested")[0]["reason"], "funds")
        self.assertEqual(self.events("charging.stopped")[0]["reason"], "funds")
        self.assertEqual(charger.server_calls, [])  # no second stop was asked for
        wallet = yield self.wallet(self.customer)
        # 18400 Wh and 2 min 45 s: 50 + 552 + 5 = 607, 7 below zero: the
        # round trip's worth (billing.stop_margin is there to absorb it). Below
        # the floor (0) without a decision: held for review, nothing debited.
        self.assertEqual((wallet["balance"], wallet["held"]), (600, 0))
        session = self.events("session.stopped")[0]["session"]
        self.assertEqual(
            (session["cost"], session["review"]["reasons"], session["review"]["computedCost"]),
            (None, ["below_wallet_floor"], 607),
        )
        code, decided, _ = yield self.request(
            "POST",
            f"/api/cms/sessions/{tx}/review",
            {"decision": "bill_computed"},
            token=self.admin,
        )
        self.assertEqual(code, 200, decided)
        self.assertEqual((decided["session"]["cost"], decided["transaction"]["balance"]), (607, -7))
        self.assertEqual((yield self.wallet(self.customer))["balance"], -7)


class WalletTests(CustomerTestCase):
    @inlineCallbacks
    def test_top_up_validation(self) -> Any:
        """Amounts must be positive integers within the limit; bodies have no other fields."""
        for body in [
            {"amount": 0},
            {"amount": -5},
            {"amount": 1.5},
            {"amount": "10"},
            {"amount": True},
            {"amount": 10**12},
            {},
            {"amount": 10, "currency": "USD"},
            [],
        ]:
            result = yield self.request(
                "POST", "/api/user/wallet/top-up", body, token=self.customer
            )
            self.assertError(result, 400, "bad_request")
        self.assertEqual((yield self.wallet(self.customer))["balance"], 0)
        self.assertError(
            (yield self.request("POST", "/api/user/wallet/top-up", {"amount": 5})),
            401,
            "unauthorized",
        )

    @inlineCallbacks
    def test_idempotency_key(self) -> Any:
        """A retried top-up with the same Idempotency-Key credits once; another amount is 409."""
        self.assertTrue((yield self.wallet(self.customer))["topUpAvailable"])
        first = yield self.top_up(self.customer, 700, key="k-1")
        again = yield self.top_up(self.customer, 700, key="k-1")
        self.assertEqual((first[0], again[0]), (201, 200))
        self.assertEqual(first[1]["transaction"], again[1]["transaction"])
        self.assertError(
            (yield self.top_up(self.customer, 800, key="k-1")), 409, "idempotency_conflict"
        )
        # Keys are per user: another customer's same key is their own payment.
        self.assertEqual((yield self.top_up(self.other, 300, key="k-1"))[0], 201)
        self.assertEqual((yield self.wallet(self.customer))["balance"], 700)
        self.assertEqual((yield self.wallet(self.other))["balance"], 300)
        self.assertEqual(len(self.events("wallet.transaction")), 2)

    @inlineCallbacks
    def test_transactions_are_own_and_paginated(self) -> Any:
        for amount in (100, 200, 300):
            yield self.top_up(self.customer, amount)
        yield self.top_up(self.other, 999)
        _, page, _ = yield self.request(
            "GET", "/api/user/wallet/transactions?limit=2", token=self.customer
        )
        self.assertEqual([t["amount"] for t in page["items"]], [300, 200])
        _, rest, _ = yield self.request(
            "GET",
            f"/api/user/wallet/transactions?limit=2&cursor={page['next']}",
            token=self.customer,
        )
        self.assertEqual(([t["amount"] for t in rest["items"]], rest["next"]), ([100], None))


class NoPaymentProviderTests(ApiTestCase):
    """The default configuration takes no payments, so it credits nothing."""

    @inlineCallbacks
    def test_top_up_off_by_default(self) -> Any:
        """
        Without [billing] payment_provider a top-up is 409 top_up_unavailable,
        whatever the body or key, the wallet says so and nothing is credited.
        """
        token = yield self.login(CUSTOMER)
        code, wallet, _ = yield self.request("GET", "/api/user/wallet", token=token)
        self.assertEqual((code, wallet["topUpAvailable"]), (200, False))
        for body, headers in [
            ({"amount": 2000}, None),
            ({"amount": 2000}, {"Idempotency-Key": "k-1"}),
            ({"amount": -1}, None),
        ]:
            result = yield self.request(
                "POST", "/api/user/wallet/top-up", body, token=token, headers=headers
            )
            self.assertError(result, 409, "top_up_unavailable")
        code, wallet, _ = yield self.request("GET", "/api/user/wallet", token=token)
        self.assertEqual(wallet["balance"], 0)
        _, page, _ = yield self.request("GET", "/api/user/wallet/transactions", token=token)
        self.assertEqual(page["items"], [])


class ReviewTests(CustomerTestCase):
    """Sessions held for billing review, and the operators' decisions on them."""

    @inlineCallbacks
    def held_session(
        self,
        charger: HandAnsweredCharger,
        id_tag: str,
        connector: int,
        *,
        start: str = "1970-01-01T00:00:00Z",
        meter_stop: int = 1500,
    ) -> Any:
        """
        A card session of the customer that the charger stamped 1970 (or
        whose meter stopped at an absurd reading): held for review.
        """
        started = yield charger.call(
            "StartTransaction",
            {"connectorId": connector, "idTag": id_tag, "meterStart": 1000, "timestamp": start},
        )
        tx = started["transactionId"]
        stop = {"transactionId": tx, "meterStop": meter_stop, "timestamp": T0}
        yield charger.call("StopTransaction", stop)
        session = yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.review_status == "pending"
        )
        return session

    def review(self, tx: int, body: Any, token: str | None = None) -> Deferred[Any]:
        path = f"/api/cms/sessions/{tx}/review"
        return self.request("POST", path, body, token=token or self.admin)

    @inlineCallbacks
    def test_decisions(self) -> Any:
        """
        Implausible sessions wait, listed as review=pending; an operator bills
        an amount (debited once, retry-safe), waives, or is told the computed
        cost cannot be billed; a decided session cannot be decided again.
        """
        charger = yield self.charger()
        id_tag = yield self.id_tag(self.customer)
        yield self.top_up(self.customer, 2000)
        held = []
        for connector in (1, 2):
            held.append((yield self.held_session(charger, id_tag, connector)))
        # 56 years of minutes: about EUR 600,000.
        self.assertGreater(held[0].review_cost, 59_000_000)
        absurd = yield self.held_session(charger, id_tag, 3, start=T0, meter_stop=10**15)
        held.append(absurd)
        self.assertGreater(absurd.review_cost, 2**31)  # 3 * 10^13: beyond any bill
        self.assertEqual((yield self.wallet(self.customer))["balance"], 2000)
        _, pending, _ = yield self.request(
            "GET", "/api/cms/sessions?review=pending", token=self.admin
        )
        self.assertEqual({s["id"] for s in pending["items"]}, {s.id for s in held})
        review = pending["items"][0]["review"]
        self.assertEqual(
            (review["status"], review["decidedBy"], review["decidedAt"]), ("pending", None, None)
        )

        first, second, third = (s.id for s in held)
        body = {"decision": "bill_amount", "amount": 120, "note": "charger clock was wrong"}
        code, decided, _ = yield self.review(first, body)
        self.assertEqual(code, 200, decided)
        self.assertEqual(
            (decided["session"]["cost"], decided["session"]["review"]["status"]), (120, "adjusted")
        )
        self.assertEqual(decided["session"]["review"]["note"], "charger clock was wrong")
        self.assertEqual(
            (decided["transaction"]["amount"], decided["transaction"]["balance"]), (-120, 1880)
        )
        again = yield self.review(first, body)
        self.assertEqual((again[0], again[1]["transaction"]), (200, None))
        self.assertError((yield self.review(first, {"decision": "waive"})), 409, "not_under_review")

        code, waived, _ = yield self.review(second, {"decision": "waive"})
        self.assertEqual((code, waived["session"]["cost"], waived["transaction"]), (200, 0, None))
        self.assertError(
            (yield self.review(third, {"decision": "bill_computed"})), 409, "cost_out_of_range"
        )
        self.assertEqual((yield self.wallet(self.customer))["balance"], 1880)
        self.assertEqual(
            [e["transaction"]["amount"] for e in self.events("wallet.transaction")], [2000, -120]
        )
        reviewed = [e["session"]["id"] for e in self.events("session.reviewed")]
        self.assertEqual(reviewed, [first, second])
        entries = yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn, charge_point_id="CP1"),
            until=lambda rows: sum(r.action == "session.reviewed" for r in rows) == 2,
        )
        audited = [e.detail for e in entries if e.action == "session.reviewed"]
        self.assertEqual(
            [(d["sessionId"], d["decision"], d["amount"], d["by"]["userId"]) for d in audited],
            [(first, "bill_amount", 120, 1), (second, "waive", 0, 1)],
        )

    @inlineCallbacks
    def test_refusals(self) -> Any:
        """Customers 403; bad bodies 400; unknown or never-held sessions 404 and 409."""
        charger = yield self.charger()
        id_tag = yield self.id_tag(self.customer)
        session = yield self.held_session(charger, id_tag, 1)
        self.assertError(
            (yield self.review(session.id, {"decision": "waive"}, self.customer)), 403, "forbidden"
        )
        for bad in [
            {},
            {"decision": "refund"},
            {"decision": "bill_amount"},
            {"decision": "bill_amount", "amount": 0},
            {"decision": "bill_amount", "amount": 2**31},
            {"decision": "bill_amount", "amount": 1.5},
            {"decision": "waive", "amount": 5},
            {"decision": "waive", "note": "x" * 501},
            {"decision": "waive", "note": 5},
            {"decision": "waive", "by": 1},
        ]:
            self.assertError((yield self.review(session.id, bad)), 400, "bad_request")
        self.assertError((yield self.review(9999, {"decision": "waive"})), 404, "not_found")
        self.assertError((yield self.review("x1", {"decision": "waive"})), 404, "not_found")
        plain = yield charger.call(
            "StartTransaction",
            {"connectorId": 2, "idTag": id_tag, "meterStart": 0, "timestamp": T0},
        )
        self.assertError(
            (yield self.review(plain["transactionId"], {"decision": "waive"})),
            409,
            "not_under_review",
        )
        self.assertEqual(
            (yield self.daemon.query(transactions.get_transaction, session.id)).review_status,
            "pending",
        )

    @inlineCallbacks
    def test_concurrent_decisions_bill_once(self) -> Any:
        """Two operators deciding one session at once: one decision, one debit."""
        charger = yield self.charger()
        id_tag = yield self.id_tag(self.customer)
        yield self.top_up(self.customer, 1000)
        session = yield self.held_session(charger, id_tag, 1)
        results = yield DeferredList(
            [
                self.review(session.id, {"decision": "bill_amount", "amount": amount})
                for amount in (100, 200, 300, 400)
            ]
        )
        codes = sorted(result[0] for _, result in results)
        self.assertEqual(codes, [200, 409, 409, 409])
        record = yield self.daemon.query(transactions.get_transaction, session.id)
        wallet = yield self.wallet(self.customer)
        self.assertEqual(wallet["balance"], 1000 - record.cost)
        _, page, _ = yield self.request("GET", "/api/user/wallet/transactions", token=self.customer)
        self.assertEqual([t["kind"] for t in page["items"]], ["debit", "top_up"])


class PostgresReviewTests(ReviewTests):
    """Review decisions on PostgreSQL, where they really run at once."""

    def daemon_overrides(self) -> list[str]:
        return [*postgres_overrides(self), *self.overrides]


class ChargingRefusalTests(CustomerTestCase):
    def start(self, token: str, body: Any) -> Deferred[Any]:
        return self.request("POST", "/api/user/charging/start", body, token=token)

    @inlineCallbacks
    def test_start_refusals(self) -> Any:
        """Bad bodies 400; no funds 402; unknown charger 404; offline or busy 409; nothing held."""
        body = {"chargePointId": "CP1", "connectorId": 1}
        for bad in [
            {},
            {"chargePointId": "CP1"},
            {"chargePointId": "CP1", "connectorId": 0},
            {"chargePointId": "CP1", "connectorId": "1"},
            {**body, "idTag": "MINE"},
        ]:
            self.assertError((yield self.start(self.customer, bad)), 400, "bad_request")
        self.assertError((yield self.start(self.customer, body)), 409, "charger_offline")
        self.assertError(
            (yield self.start(self.customer, {"chargePointId": "NOPE", "connectorId": 1})),
            404,
            "not_found",
        )
        yield self.charger(status="Charging")
        yield self.top_up(self.customer, 400)
        self.assertError((yield self.start(self.customer, body)), 409, "connector_unavailable")
        self.assertError(
            (yield self.start(self.customer, {"chargePointId": "CP1", "connectorId": 2})),
            409,
            "connector_unavailable",
        )
        wallet = yield self.wallet(self.customer)
        self.assertEqual((wallet["held"], wallet["available"]), (0, 400))

    @inlineCallbacks
    def test_insufficient_funds_and_rejection(self) -> Any:
        """Below the minimum: 402, no command sent; a charger's refusal: 409, the hold released."""
        charger = yield self.charger()
        body = {"chargePointId": "CP1", "connectorId": 1}
        yield self.top_up(self.customer, 499)
        self.assertError((yield self.start(self.customer, body)), 402, "insufficient_funds")
        self.assertEqual(charger.server_calls, [])
        yield self.top_up(self.customer, 1)
        pending = self.start(self.customer, body)
        call = yield charger.next_server_call("RemoteStartTransaction")
        charger.answer(call, {"status": "Rejected"})
        self.assertError((yield pending), 409, "charger_rejected")
        wallet = yield self.wallet(self.customer)
        self.assertEqual((wallet["held"], wallet["available"]), (0, 500))

    @inlineCallbacks
    def test_start_never_made_releases_its_hold(self) -> Any:
        """
        The charger accepts the remote start but never sends StartTransaction:
        after [billing] start_timeout the node's sweep releases the hold, tells
        the customer's session topic (charging.start.expired) and the audit log.
        """
        charger = yield self.charger()
        yield self.top_up(self.customer, 800)
        pending = self.start(self.customer, {"chargePointId": "CP1", "connectorId": 1})
        call = yield charger.next_server_call("RemoteStartTransaction")
        charger.answer(call, {"status": "Accepted"})
        code, answer, _ = yield pending
        self.assertEqual((code, answer["sessionId"]), (202, None))
        self.assertEqual((yield self.wallet(self.customer))["held"], 800)
        holds = self.daemon.node.holds
        self.assertEqual((holds.timeout, (yield holds.sweep())), (180, 0))
        # The start was requested longer ago than the timeout.
        long_ago = from_timestamp(self.daemon.node.reactor.seconds() - 181)
        yield self.daemon.query(
            lambda conn: conn.execute(tables.charging_requests.update().values(created_at=long_ago))
        )
        self.assertEqual((yield holds.sweep()), 1)
        wallet = yield self.wallet(self.customer)
        self.assertEqual((wallet["held"], wallet["available"]), (0, 800))
        [expired] = self.events("charging.start.expired")
        self.assertEqual(
            (expired["userId"], expired["commandId"], expired["hold"]),
            (2, answer["commandId"], 800),
        )
        entries = yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn, charge_point_id="CP1"),
            until=lambda rows: any(r.action == "charging.start.expired" for r in rows),
        )
        self.assertTrue(entries)

    @inlineCallbacks
    def test_stop_only_own_active_session(self) -> Any:
        """Another customer's session is 404 (as no session at all); a stopped one 409."""
        charger = yield self.charger()
        id_tag = yield self.id_tag(self.customer)
        yield self.top_up(self.customer, 1000)
        _, tx = yield self.start_from_app(charger, self.customer, id_tag)
        stop = "/api/user/charging/stop"
        self.assertError(
            (yield self.request("POST", stop, {"sessionId": tx}, token=self.other)),
            404,
            "not_found",
        )
        self.assertError(
            (yield self.request("POST", stop, {"sessionId": 9999}, token=self.customer)),
            404,
            "not_found",
        )
        self.assertError(
            (yield self.request("POST", stop, {"sessionId": "1"}, token=self.customer)),
            400,
            "bad_request",
        )
        self.assertEqual(charger.server_calls, [])
        yield charger.call(
            "StopTransaction",
            {"transactionId": tx, "meterStop": 1000, "timestamp": "2026-11-29T10:01:00Z"},
        )
        yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.status == "completed"
        )
        self.assertError(
            (yield self.request("POST", stop, {"sessionId": tx}, token=self.customer)),
            409,
            "session_not_active",
        )
        _, sessions, _ = yield self.request("GET", "/api/user/sessions", token=self.other)
        self.assertEqual(sessions["items"], [])


class DashboardTests(CustomerTestCase):
    @inlineCallbacks
    def test_dashboard(self) -> Any:
        """Operators see online counts, active sessions, energy and revenue; customers 403."""
        self.assertError(
            (yield self.request("GET", "/api/cms/dashboard", token=self.customer)), 403, "forbidden"
        )
        code, station, _ = yield self.request(
            "POST", "/api/cms/stations", {"name": "Depot"}, token=self.admin
        )
        yield self.request(
            "PUT", "/api/cms/points/CP1", {"stationId": station["id"]}, token=self.admin
        )
        charger = yield self.charger()
        code, board, _ = yield self.request("GET", "/api/cms/dashboard", token=self.admin)
        self.assertEqual(code, 200, board)
        self.assertEqual(board["stations"], {"total": 1, "online": 1, "offline": 0})
        self.assertEqual(board["chargers"], {"total": 1, "online": 1, "offline": 0})
        self.assertEqual(board["activeSessions"], 0)
        id_tag = yield self.id_tag(self.customer)
        yield self.top_up(self.customer, 1000)
        # Ten minutes ago, so that the stop now is a plausible session billed today.
        ago = format_iso(from_timestamp(self.daemon.node.reactor.seconds() - 600))
        _, tx = yield self.start_from_app(charger, self.customer, id_tag, at=ago)
        _, board, _ = yield self.request("GET", "/api/cms/dashboard", token=self.admin)
        self.assertEqual(board["activeSessions"], 1)
        self.assertEqual(board["recentSessions"][0]["id"], tx)
        # Energy and revenue count sessions that stopped (were billed) today.
        stopped_at = self.daemon.node.reactor.seconds()

        yield charger.call(
            "StopTransaction",
            {
                "transactionId": tx,
                "meterStop": 3000,
                "timestamp": format_iso(from_timestamp(stopped_at)),
            },
        )
        yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s.cost is not None
        )
        _, board, _ = yield self.request("GET", "/api/cms/dashboard", token=self.admin)
        session = yield self.daemon.query(transactions.get_transaction, tx)
        self.assertEqual(board["activeSessions"], 0)
        self.assertEqual(board["energyWh"], {"today": 2000, "month": 2000})
        self.assertEqual(board["revenue"]["today"], {"EUR": session.cost})
        self.assertGreaterEqual(session.cost, 50 + 60)


class PostgresRabbitCustomerFlowTests(CustomerFlowTests):
    """The same flows with the production backends: RabbitMQ and PostgreSQL."""

    def daemon_overrides(self) -> list[str]:
        return [*amqp_overrides(self), *postgres_overrides(self), *self.overrides]
