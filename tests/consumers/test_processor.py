"""Tests for ocppd.consumers.processor: idempotent, order-tolerant persistence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.memory import MemoryBus
from ocppd.bus.outbox import Outbox
from ocppd.bus.relay import OutboxRelay
from ocppd.consumers.processor import CONSUMER, OcppProcessor
from ocppd.store import (
    chargers,
    connections,
    messages,
    outbox,
    processed,
    tables,
    tags,
    tariffs,
    transactions,
    wallets,
)
from ocppd.store.database import Database
from ocppd.timeutil import format_iso
from tests.integration.daemon import poll
from tests.store.fixtures import make_sqlite_database

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
#: When the test chargers were registered: before any session of theirs.
REGISTERED = datetime(2026, 11, 1, tzinfo=UTC)
NOW_TEXT = "2026-11-29T12:00:00.000Z"


def inbound(
    action: str,
    request: dict[str, Any],
    response: dict[str, Any] | None = None,
    at: str = "2026-11-29T12:00:00.000Z",
) -> Envelope:
    return Envelope.create(
        topology.ocpp_in(action),
        {
            "uniqueId": "u",
            "action": action,
            "request": request,
            "response": response or {},
            "receivedAt": at,
        },
        node="n1",
        charge_point_id="CP1",
    )


def meter(tx: int | None, timestamp: str, value: str, unit: str = "Wh") -> Envelope:
    request: dict[str, Any] = {
        "connectorId": 1,
        "meterValue": [{"timestamp": timestamp, "sampledValue": [{"value": value, "unit": unit}]}],
    }
    if tx is not None:
        request["transactionId"] = tx
    return inbound("MeterValues", request)


def start_session(database: Database, charge_point_id: str) -> int:
    """A session on connector 1 with TAG1, meter at 1000 Wh, started 11:00 UTC."""
    allocation = database.run_sync(
        transactions.allocate_transaction,
        charge_point_id=charge_point_id,
        connector_id=1,
        id_tag="TAG1",
        id_tag_status="Accepted",
        meter_start_wh=1000,
        started_at=datetime(2026, 11, 29, 11, 0, tzinfo=UTC),
        now=NOW,
    )
    return allocation.transaction_id


class ProcessorTests(TestCase):
    def setUp(self) -> None:
        self.database = make_sqlite_database(self)
        self.processor = OcppProcessor(None, self.database, clock=Clock())  # type: ignore[arg-type]
        self.database.run_sync(chargers.add_charge_point, "CP1", None, now=REGISTERED)
        self.database.run_sync(tags.add_id_tag, "TAG1", now=NOW)
        self.tx = start_session(self.database, "CP1")

    def apply(self, envelope: Envelope) -> bool:
        return bool(self.database.run_sync(self.processor.apply, envelope))

    def test_another_meter_values_effect_is_not_skipped_by_a_run(self) -> None:
        """
        Consecutive MeterValues are applied together only while their effect
        is ``Sessions.meter_values`` alone: with another effect in the table,
        each message of a batch goes through it.
        """
        key = topology.ocpp_in("MeterValues")
        first = meter(self.tx, "2026-11-29T12:01:00Z", "1000")
        second = meter(self.tx, "2026-11-29T12:02:00Z", "2000")
        self.assertEqual(self.processor.together(first), key)
        metered = self.processor.effect_of[key]
        seen: list[str] = []

        def counted(conn: Any, charge_point_id: str, envelope: Envelope, writes: Any) -> Any:
            seen.append(envelope.id)
            return metered(conn, charge_point_id, envelope, writes)

        self.processor.effect_of[key] = counted
        self.assertIsNone(self.processor.together(first))
        self.database.run_sync(self.processor.apply_batch, [first, second])
        self.assertEqual(seen, [first.id, second.id])

    def stop(self, meter_stop: int = 5000) -> Envelope:
        return inbound(
            "StopTransaction",
            {
                "transactionId": self.tx,
                "meterStop": meter_stop,
                "timestamp": "2026-11-29T11:30:00Z",
                "reason": "EVDisconnected",
            },
        )

    def test_same_envelope_applied_once(self) -> None:
        """
        Redelivery of an envelope (same id) changes nothing the second time:
        a claimed one is refused; a MeterValues, not claimed
        (``needs_claim``), is applied again to no effect.
        """
        envelope = meter(self.tx, "2026-11-29T11:10:00Z", "2000")
        self.assertFalse(self.processor.needs_claim(envelope))
        self.assertTrue(self.apply(envelope))
        session = self.database.run_sync(transactions.get_transaction, self.tx)
        self.assertTrue(self.apply(envelope))
        self.assertEqual(self.database.run_sync(transactions.get_transaction, self.tx), session)
        self.assertEqual(len(self.database.run_sync(messages.list_messages, "CP1")), 2)
        values = self.database.run_sync(
            lambda conn: transactions.list_meter_values(conn, transaction_id=self.tx)
        )
        self.assertEqual(len(values), 1)
        charging = inbound(
            "StatusNotification", {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
        )
        self.assertTrue(self.processor.needs_claim(charging))
        self.assertTrue(self.apply(charging))
        self.assertFalse(self.apply(charging))

    def test_meter_values_claimed_with_another_effect(self) -> None:
        """Another effect for MeterValues than ``Sessions.meter_values`` is claimed again."""
        envelope = meter(self.tx, "2026-11-29T11:10:00Z", "2000")
        key = topology.ocpp_in("MeterValues")
        metered = self.processor.effect_of[key]
        self.processor.effect_of[key] = lambda *args: metered(*args)
        self.assertTrue(self.processor.needs_claim(envelope))
        self.assertTrue(self.apply(envelope))
        self.assertFalse(self.apply(envelope))

    def test_resent_meter_values_stored_once(self) -> None:
        """A charger's resend (a new envelope, same content) adds no duplicate sample."""
        self.apply(meter(self.tx, "2026-11-29T11:10:00Z", "2000"))
        self.apply(meter(self.tx, "2026-11-29T11:10:00Z", "2000"))
        values = self.database.run_sync(
            lambda conn: transactions.list_meter_values(conn, transaction_id=self.tx)
        )
        self.assertEqual(len(values), 1)

    def test_live_energy_then_stop_then_late_meter(self) -> None:
        """Running energy follows the register; after the stop, late values never change it."""
        self.apply(meter(self.tx, "2026-11-29T11:10:00Z", "3", unit="kWh"))
        session = self.database.run_sync(transactions.get_transaction, self.tx)
        self.assertEqual((session.status, session.energy_wh), ("active", 2000))
        self.apply(self.stop())
        self.apply(self.stop())  # resent
        self.apply(meter(self.tx, "2026-11-29T11:40:00Z", "99999"))
        session = self.database.run_sync(transactions.get_transaction, self.tx)
        self.assertEqual(
            (session.status, session.energy_wh, session.meter_stop_wh), ("completed", 4000, 5000)
        )
        self.assertEqual(session.stop_reason, "EVDisconnected")

    def test_stop_with_transaction_data(self) -> None:
        """Meter values carried in StopTransaction.transactionData are stored with the session."""
        envelope = self.stop()
        envelope.payload["request"]["transactionData"] = [
            {"timestamp": "2026-11-29T11:29:00Z", "sampledValue": [{"value": "4900"}]}
        ]
        self.apply(envelope)
        values = self.database.run_sync(
            lambda conn: transactions.list_meter_values(conn, transaction_id=self.tx)
        )
        self.assertEqual([v.value for v in values], ["4900"])

    def test_applied_start_confirms_its_session(self) -> None:
        """
        A start the bus took whose handler never confirmed it (the node died
        between the publish and the confirm) is confirmed by the processor,
        and announced; applying it again changes nothing.
        """
        tx = self.database.run_sync(
            transactions.allocate_transaction,
            charge_point_id="CP1",
            connector_id=2,
            id_tag="TAG1",
            id_tag_status="Accepted",
            meter_start_wh=0,
            started_at=NOW,
            now=NOW,
            confirmed=False,
        ).transaction_id
        self.assertIsNone(self.database.run_sync(transactions.get_transaction, tx))
        start = inbound("StartTransaction", {}, {"transactionId": tx, "idTagInfo": {}})
        outcome = self.database.run_sync(self.processor.apply_collecting, start)
        self.assertEqual([f.routing_key for f in outcome[1]], ["session.started"])
        active = self.database.run_sync(transactions.active_transactions, "CP1")
        self.assertEqual(sorted(t.id for t in active), sorted([self.tx, tx]))
        self.assertFalse(self.apply(start))

    def test_status_out_of_order(self) -> None:
        """An older StatusNotification arriving late does not overwrite a newer one."""

        def status(value: str, ts: str) -> Envelope:
            return inbound(
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": value, "timestamp": ts},
            )

        self.apply(status("Charging", "2026-11-29T11:05:00Z"))
        self.apply(status("Preparing", "2026-11-29T11:04:00Z"))
        [connector] = self.database.run_sync(chargers.list_connectors, "CP1")
        self.assertEqual(connector.status, "Charging")

    def test_boot_recorded(self) -> None:
        """BootNotification fields land on the charge point."""
        self.apply(
            inbound(
                "BootNotification",
                {"chargePointVendor": "Acme", "chargePointModel": "X", "firmwareVersion": "9"},
                {"status": "Accepted", "currentTime": "2026-11-29T12:00:00Z", "interval": 300},
            )
        )
        record = self.database.run_sync(chargers.get_charge_point, "CP1")
        self.assertEqual((record.vendor, record.model, record.firmware_version), ("Acme", "X", "9"))

    def test_connect_disconnect_by_connection_id(self) -> None:
        """A stale disconnect (of a replaced socket) leaves the charger online."""

        def event(key: str, connection_id: str) -> Envelope:
            return Envelope.create(
                key,
                {"connectionId": connection_id, "node": "n1", "at": "2026-11-29T12:00:00.000Z"},
                node="n1",
                charge_point_id="CP1",
            )

        self.apply(event(topology.CHARGER_CONNECTED, "old"))
        self.apply(event(topology.CHARGER_CONNECTED, "new"))
        self.apply(event(topology.CHARGER_DISCONNECTED, "old"))
        self.assertTrue(self.database.run_sync(chargers.get_charge_point, "CP1").online)
        self.apply(event(topology.CHARGER_DISCONNECTED, "new"))
        self.assertFalse(self.database.run_sync(chargers.get_charge_point, "CP1").online)

    def test_connects_ordered_by_fence(self) -> None:
        """
        Connect events carry the presence fence: the newer connection wins even
        when its node's clock is behind; a fence that is not one orders by time.
        """

        def event(key: str, connection_id: str, at: str, fence: object) -> Envelope:
            return Envelope.create(
                key,
                {"connectionId": connection_id, "node": connection_id, "at": at, "fence": fence},
                node=connection_id,
                charge_point_id="CP1",
            )

        self.apply(event(topology.CHARGER_CONNECTED, "b", "2026-11-29T12:00:05.000Z", 10))
        self.apply(event(topology.CHARGER_CONNECTED, "a", "2026-11-29T12:00:04.000Z", 11))
        self.apply(event(topology.CHARGER_CONNECTED, "b", "2026-11-29T12:00:06.000Z", 10))
        self.apply(event(topology.CHARGER_DISCONNECTED, "b", "2026-11-29T12:00:07.000Z", 10))
        record = self.database.run_sync(chargers.get_charge_point, "CP1")
        self.assertEqual((record.online, record.node, record.connection_fence), (True, "a", 11))
        for bad in ("12", 12.0, True, -1, 0, 2**63, None):
            self.apply(event(topology.CHARGER_CONNECTED, "x", "2026-11-29T12:00:01.000Z", bad))
        record = self.database.run_sync(chargers.get_charge_point, "CP1")
        self.assertEqual((record.node, record.connection_fence), ("a", 11))

    def test_connection_history(self) -> None:
        """
        Every socket gets a row of the history: a stale disconnect (its node
        lost the charger to a newer fence) closes its own socket's row, not the
        newer one's; a redelivered event changes nothing; the sweep's
        disconnect closes the row at the charger's last sign of life.
        """

        def event(key: str, connection_id: str, at: str, **more: object) -> Envelope:
            return Envelope.create(
                key,
                {"connectionId": connection_id, "node": f"node-{connection_id}", "at": at, **more},
                node=f"node-{connection_id}",
                charge_point_id="CP1",
            )

        first = event(topology.CHARGER_CONNECTED, "a", "2026-11-29T12:00:00.000Z", fence=1)
        self.apply(first)
        self.apply(event(topology.CHARGER_CONNECTED, "b", "2026-11-29T12:00:05.000Z", fence=2))
        stale = event(
            topology.CHARGER_DISCONNECTED, "a", "2026-11-29T12:00:06.000Z", fence=1, code=1006
        )
        self.apply(stale)
        self.apply(stale)  # redelivered
        self.apply(first)  # redelivered late
        swept = event(
            topology.CHARGER_DISCONNECTED,
            "b",
            "2026-11-29T12:10:00.000Z",
            code=None,
            reason="liveness expired",
        )
        self.assertTrue(self.database.run_sync(chargers.get_charge_point, "CP1").online)
        self.apply(swept)
        rows = self.database.run_sync(connections.recent_connections, "CP1")
        self.assertEqual(
            [
                (
                    r.connection_id,
                    r.node,
                    format_iso(r.connected_at),
                    r.close_code,
                    r.close_reason,
                    r.disconnected_at and format_iso(r.disconnected_at),
                )
                for r in rows
            ],
            [
                (
                    "b",
                    "node-b",
                    "2026-11-29T12:00:05.000Z",
                    None,
                    "liveness expired",
                    "2026-11-29T12:10:00.000Z",
                ),
                ("a", "node-a", "2026-11-29T12:00:00.000Z", 1006, None, "2026-11-29T12:00:06.000Z"),
            ],
        )

    def logged_rows(self) -> int:
        """How many rows the message log has (each of one or two frames)."""
        return int(
            self.database.run_sync(
                lambda conn: conn.execute(
                    sa.select(sa.func.count()).select_from(tables.message_log)
                ).scalar_one()
            )
        )

    def frames(self) -> list[tuple[Any, ...]]:
        """The charger's logged frames, newest first, but their ids."""
        return [
            (r.message_id, r.direction, r.message_type, r.action, r.unique_id, r.payload)
            for r in self.database.run_sync(messages.list_messages, "CP1")
        ]

    def test_exchange_logged_as_one_row(self) -> None:
        """
        A charger's CALL and ocppd's answer are one row of the log, read as
        two frames (the answer newest, at the call's time); the same
        envelope again, without a claim (a MeterValues has none), adds no row.
        """
        envelope = meter(self.tx, "2026-11-29T11:10:00Z", "2000")
        self.assertTrue(self.apply(envelope))
        self.assertFalse(self.database.run_sync(processed.is_processed, CONSUMER, envelope.id))
        self.assertTrue(self.apply(envelope))
        self.assertEqual(self.logged_rows(), 1)
        request = envelope.payload["request"]
        self.assertEqual(
            self.frames(),
            [
                (f"{envelope.id}:answer", "out", "CALLRESULT", "MeterValues", "u", {}),
                (f"{envelope.id}:call", "in", "CALL", "MeterValues", "u", request),
            ],
        )
        answer, call = self.database.run_sync(messages.list_messages, "CP1")
        self.assertEqual(answer.created_at, call.created_at)
        self.assertEqual(answer.id, call.id + 1)

    def test_callerror_answer_logged_with_its_call(self) -> None:
        """An inbound CALL ocppd answered with a CALLERROR: one row, the error its answer."""
        error = {"code": "InternalError", "description": "try again", "details": {}}
        envelope = inbound("Authorize", {"idTag": "TAG1"})
        del envelope.payload["response"]
        envelope.payload["error"] = error
        self.assertTrue(self.apply(envelope))
        self.assertEqual(self.logged_rows(), 1)
        self.assertEqual(
            self.frames(),
            [
                (f"{envelope.id}:answer", "out", "CALLERROR", "Authorize", "u", error),
                (f"{envelope.id}:call", "in", "CALL", "Authorize", "u", {"idTag": "TAG1"}),
            ],
        )

    def test_commands_and_replies_logged_as_rows_of_their_own(self) -> None:
        """A command ocppd sent and the charger's later reply (another envelope) are a row each."""
        sent = Envelope.create(
            topology.ocpp_out("Reset"),
            {"uniqueId": "c1", "action": "Reset", "request": {"type": "Soft"}, "sentAt": NOW_TEXT},
            node="n1",
            charge_point_id="CP1",
        )
        reply = Envelope.create(
            topology.ocpp_reply("Reset"),
            {
                "uniqueId": "c1",
                "action": "Reset",
                "response": {"status": "Accepted"},
                "receivedAt": NOW_TEXT,
            },
            node="n1",
            charge_point_id="CP1",
        )
        self.assertTrue(self.apply(sent))
        self.assertTrue(self.apply(reply))
        self.assertEqual(self.logged_rows(), 2)
        self.assertEqual(
            self.frames(),
            [
                (f"{reply.id}:reply", "in", "CALLRESULT", "Reset", "c1", {"status": "Accepted"}),
                (f"{sent.id}:call", "out", "CALL", "Reset", "c1", {"type": "Soft"}),
            ],
        )

    def test_rejected_frame_logged(self) -> None:
        """A frame we answered with a CALLERROR is one row of the log with its answer."""
        error = {"code": "FormationViolation", "description": "bad", "details": {}}
        envelope = Envelope.create(
            topology.OCPP_REJECTED,
            {
                "uniqueId": "-1",
                "action": None,
                "raw": "{nope",
                "truncated": False,
                "error": error,
                "receivedAt": "2026-11-29T12:00:00.000Z",
            },
            node="n1",
            charge_point_id="CP1",
        )
        self.apply(envelope)
        self.assertEqual(self.logged_rows(), 1)
        self.assertEqual(
            self.frames(),
            [
                (f"{envelope.id}:answer", "out", "CALLERROR", None, "-1", error),
                (f"{envelope.id}:call", "in", "CALL", None, "-1", {"raw": "{nope"}),
            ],
        )

    def test_heartbeats_mark_the_charger_seen_but_stay_out_of_the_log(self) -> None:
        """By default a Heartbeat only moves last_seen_at; with log_heartbeats it is logged."""
        self.assertTrue(self.apply(inbound("Heartbeat", {}, {"currentTime": "x"})))
        charger = self.database.run_sync(chargers.get_charge_point, "CP1")
        self.assertEqual(charger.last_seen_at.isoformat(), "2026-11-29T12:00:00+00:00")
        self.assertEqual(self.database.run_sync(messages.list_messages, "CP1"), [])
        self.processor.log_heartbeats = True
        self.assertTrue(self.apply(inbound("Heartbeat", {}, {"currentTime": "y"})))
        log = self.database.run_sync(messages.list_messages, "CP1")
        self.assertEqual(
            [(r.direction, r.message_type, r.action, r.payload) for r in log],
            [
                ("out", "CALLRESULT", "Heartbeat", {"currentTime": "y"}),
                ("in", "CALL", "Heartbeat", {}),
            ],
        )

    @inlineCallbacks
    def test_consumes_from_the_bus(self) -> Any:
        """Started on a bus, the processor stores what is published to its queue."""
        bus = MemoryBus(topology.default_topology(), reactor=reactor, retry_delays=(0.05,))
        bus.startService()
        self.addCleanup(bus.stopService)
        processor = OcppProcessor(bus, self.database, clock=reactor)
        yield processor.start(topology.PROCESSOR_QUEUE)
        self.addCleanup(processor.stop)
        envelope = meter(self.tx, "2026-11-29T11:10:00Z", "2500")
        yield bus.publish(envelope.type, envelope)
        yield poll(
            lambda: self.database.run(
                lambda conn: transactions.list_meter_values(conn, transaction_id=self.tx)
            ),
            until=lambda rows: len(rows) == 1,
        )


class PricingTests(TestCase):
    """A session is priced once, when it stops, with the tariff it started under."""

    def setUp(self) -> None:
        self.database = make_sqlite_database(self)
        self.processor = OcppProcessor(None, self.database, clock=Clock())  # type: ignore[arg-type]
        self.tariff = self.database.run_sync(
            tariffs.add_tariff,
            "Standard",
            currency="EUR",
            price_per_kwh=35,
            price_per_minute=2,
            session_fee=50,
            now=NOW,
        )
        self.database.run_sync(
            chargers.add_charge_point, "CP-T", None, tariff_id=self.tariff, now=REGISTERED
        )
        self.database.run_sync(chargers.add_charge_point, "CP-FREE", None, now=REGISTERED)

    def session(self, charge_point_id: str) -> int:
        return start_session(self.database, charge_point_id)

    def stop(self, charge_point_id: str, tx: int, meter_stop: int = 8500) -> None:
        envelope = Envelope.create(
            topology.ocpp_in("StopTransaction"),
            {
                "uniqueId": "u",
                "action": "StopTransaction",
                "request": {
                    "transactionId": tx,
                    "meterStop": meter_stop,
                    "timestamp": "2026-11-29T12:30:00Z",
                },
                "response": {},
                "receivedAt": "2026-11-29T12:30:01.000Z",
            },
            node="n1",
            charge_point_id=charge_point_id,
        )
        self.database.run_sync(self.processor.apply, envelope)

    def test_priced_at_stop_and_never_again(self) -> None:
        """
        7500 Wh at 35 ct/kWh = 262.5, 90 min at 2 ct/min = 180, fee 50:
        492.5, billed 492 (rounded down, in the customer's favour). A resent stop,
        even with another reading, and a later tariff change reprice nothing.
        """
        tx = self.session("CP-T")
        self.stop("CP-T", tx)
        session = self.database.run_sync(transactions.get_transaction, tx)
        self.assertEqual((session.cost, session.currency), (492, "EUR"))
        self.database.run_sync(
            lambda conn: conn.execute(sa.update(tables.tariffs).values(price_per_kwh=99))
        )
        self.stop("CP-T", tx, meter_stop=9999)
        session = self.database.run_sync(transactions.get_transaction, tx)
        self.assertEqual((session.cost, session.meter_stop_wh), (492, 8500))

    def test_unpriced_without_a_tariff(self) -> None:
        """A charger without a tariff leaves its sessions unpriced (cost None)."""
        tx = self.session("CP-FREE")
        self.stop("CP-FREE", tx)
        session = self.database.run_sync(transactions.get_transaction, tx)
        self.assertEqual(
            (session.status, session.cost, session.currency), ("completed", None, None)
        )


class ProcessorEventTests(TestCase):
    """The domain events applying a message makes true (docs/events.md), and the wallet debit."""

    def setUp(self) -> None:
        from ocppd.store import users

        self.database = make_sqlite_database(self)
        self.processor = OcppProcessor(None, self.database, clock=Clock())  # type: ignore[arg-type]
        self.user = self.database.run_sync(
            users.add_user, "a@example.com", "x", "customer", now=NOW
        )
        tariff_id = self.database.run_sync(
            tariffs.add_tariff,
            "T",
            currency="EUR",
            price_per_kwh=30,
            price_per_minute=2,
            session_fee=50,
            now=NOW,
        )
        self.database.run_sync(
            chargers.add_charge_point, "CP1", None, tariff_id=tariff_id, now=REGISTERED
        )
        for tag in ("TAG1", "TAG2"):
            self.database.run_sync(tags.add_id_tag, tag, user_id=self.user, now=NOW)
        self.database.run_sync(
            wallets.post_transaction,
            self.user,
            kind="top_up",
            amount=1000,
            currency="EUR",
            idempotency_key="pay:1",
            now=REGISTERED,
        )
        self.tx = start_session(self.database, "CP1")

    def follow_ups(self, envelope: Envelope) -> list[Any]:
        applied, events = self.database.run_sync(self.processor.apply_collecting, envelope)
        return events if applied else ["not applied"]

    def test_start_meter_stop_events(self) -> None:
        started = self.follow_ups(
            inbound("StartTransaction", {}, {"transactionId": self.tx, "idTagInfo": {}})
        )
        self.assertEqual([f.routing_key for f in started], ["session.started"])
        self.assertEqual(started[0].payload["session"]["userId"], self.user)
        [update] = self.follow_ups(meter(self.tx, "2026-11-29T11:10:00Z", "4000"))
        # 3000 Wh and 10 minutes: 50 + 90 + 20.
        self.assertEqual(update.routing_key, "session.updated")
        self.assertEqual(
            {k: update.payload["live"][k] for k in ("energyWh", "powerW", "cost", "currency")},
            {"energyWh": 3000, "powerW": None, "cost": 160, "currency": "EUR"},
        )
        stop = ProcessorTests.stop(self)  # type: ignore[arg-type]
        events = self.follow_ups(stop)
        self.assertEqual(
            [f.routing_key for f in events],
            ["session.stopped", "wallet.transaction", "charging.stopped"],
        )
        # 4000 Wh and 30 minutes: 50 + 120 + 60 = 230.
        self.assertEqual(events[1].payload["transaction"]["amount"], -230)
        self.assertEqual(events[1].payload["balance"], 770)
        self.assertEqual(events[2].payload["reason"], "EVDisconnected")
        # A resend of the stop (a new envelope): nothing new, no second debit.
        self.assertEqual(self.follow_ups(ProcessorTests.stop(self)), [])  # type: ignore[arg-type]
        # A late reading: stored, announces nothing.
        self.assertEqual(self.follow_ups(meter(self.tx, "2026-11-29T11:40:00Z", "9000")), [])
        page = self.database.run_sync(wallets.transactions_page, self.user, before_id=None, limit=9)
        self.assertEqual([t.amount for t in page], [-230, 1000])

    @inlineCallbacks
    def test_events_kept_in_the_outbox_while_the_bus_refuses(self) -> Any:
        """
        With an outbox, a stop's events are written in the transaction that
        stopped and billed the session, so a bus that refuses them loses
        none: the relay publishes them once it is back. The live update of a
        reading is not kept (the next one supersedes it).
        """
        from tests.bus.test_outbox import FlakyBus

        clock = Clock()
        bus = FlakyBus()
        bus.down = True
        relay = OutboxRelay(self.database, bus, node="n1", clock=clock, poll_interval=1e9)  # type: ignore[arg-type]
        relay.start()
        self.addCleanup(relay.stop)
        self.processor = OcppProcessor(
            None,  # type: ignore[arg-type]
            self.database,
            clock=clock,
            outbox=Outbox(node="n1", clock=clock, relay=relay),
        )
        self.follow_ups(meter(self.tx, "2026-11-29T11:10:00Z", "4000"))
        events = self.follow_ups(ProcessorTests.stop(self))  # type: ignore[arg-type]
        keys = ["session.stopped", "wallet.transaction", "charging.stopped"]
        self.assertEqual([f.routing_key for f in events], keys)
        self.assertEqual(self.database.run_sync(outbox.count_events), 3)
        yield relay.wake()
        self.assertEqual(bus.published, [])
        bus.down = False
        clock.advance(30)
        yield poll(lambda: succeed(len(bus.published)), until=lambda n: n == 3)
        self.assertEqual([key for key, _ in bus.published], keys)

    def request_charging(self, *, hold: int) -> None:
        """The customer's app asks CP1 to charge with TAG1 (command c1), holding ``hold``."""
        self.database.run_sync(
            wallets.create_request,
            user_id=self.user,
            charge_point_id="CP1",
            connector_id=1,
            id_tag="TAG1",
            command_id="c1",
            hold=hold,
            now=NOW,
        )

    def test_funds_guard_when_readings_precede_the_start(self) -> None:
        """
        With several nodes, a session's MeterValues may be processed before
        the StartTransaction that links it to the customer's app request: the
        start then checks the readings already in and asks for the stop.
        """
        self.request_charging(hold=500)
        # 29000 Wh and 10 minutes: 50 + 870 + 20, past the 500 held; no request linked yet.
        [update] = self.follow_ups(meter(self.tx, "2026-11-29T11:10:00Z", "30000"))
        self.assertEqual(update.routing_key, "session.updated")
        started = self.follow_ups(
            inbound("StartTransaction", {}, {"transactionId": self.tx, "idTagInfo": {}})
        )
        self.assertEqual(
            [f.routing_key for f in started],
            ["session.started", "charging.started", "charging.stop.requested"],
        )
        self.assertEqual(
            {k: started[2].payload[k] for k in ("sessionId", "reason")},
            {"sessionId": self.tx, "reason": "funds"},
        )
        # Asked once: the next reading does not ask again.
        [update] = self.follow_ups(meter(self.tx, "2026-11-29T11:11:00Z", "31000"))
        self.assertEqual(update.routing_key, "session.updated")

    def test_funds_guard_asks_once_on_a_redelivery(self) -> None:
        """
        A MeterValues is not claimed: delivered again after it asked for the
        funds stop, it asks nothing again and announces the same live estimate.
        """
        self.request_charging(hold=500)
        self.follow_ups(
            inbound("StartTransaction", {}, {"transactionId": self.tx, "idTagInfo": {}})
        )
        reading = meter(self.tx, "2026-11-29T11:10:00Z", "30000")
        first = self.follow_ups(reading)
        keys = [f.routing_key for f in first]
        self.assertEqual(keys, ["session.updated", "charging.stop.requested"])
        self.assertEqual(self.follow_ups(reading), first[:1])
        request = self.database.run_sync(wallets.request_for_session, self.tx)
        self.assertEqual(request.stop_requested, "funds")

    def test_other_currency_not_debited(self) -> None:
        """A session priced in another currency than the wallets is not debited."""
        self.processor.wallet_currency = "USD"
        events = self.follow_ups(ProcessorTests.stop(self))  # type: ignore[arg-type]
        self.assertEqual([f.routing_key for f in events], ["session.stopped", "charging.stopped"])

    def session(self, *, status: str = "Accepted", started_at: datetime | None = None) -> int:
        """
        A session of the user's TAG2 on connector 2 (not concurrent with TAG1's
        on connector 1), answered ``status``, meter at 1000 Wh.
        """
        allocation = self.database.run_sync(
            transactions.allocate_transaction,
            charge_point_id="CP1",
            connector_id=2,
            id_tag="TAG2",
            id_tag_status=status,
            meter_start_wh=1000,
            started_at=started_at or datetime(2026, 11, 29, 11, 50, tzinfo=UTC),
            now=datetime(2026, 11, 29, 11, 50, tzinfo=UTC),
        )
        return allocation.transaction_id

    def stop_session(self, tx: int, meter_stop: int, at: str, reason: str = "Local") -> list[Any]:
        request = {"transactionId": tx, "meterStop": meter_stop, "timestamp": at, "reason": reason}
        return self.follow_ups(inbound("StopTransaction", request))

    def balance(self) -> int:
        return int(
            self.database.run_sync(wallets.wallet_view, self.user, currency="EUR", now=NOW).balance
        )

    def test_refused_starts_cost_nothing(self) -> None:
        """
        Ten starts answered Invalid, Blocked, Expired or ConcurrentTx that the
        charger stopped as DeAuthorized (0 s, 0 Wh) cost nothing: priced 0, no
        debit, not the 50 fee each. An Accepted start of 0 Wh and 0 s neither.
        """
        statuses = ["Invalid", "Blocked", "Expired", "ConcurrentTx"] * 2 + ["Invalid", "Accepted"]
        for minute, status in enumerate(statuses):
            at = datetime(2026, 11, 29, 11, minute, tzinfo=UTC)
            tx = self.session(status=status, started_at=at)
            events = self.stop_session(tx, 1000, format_iso(at), reason="DeAuthorized")
            self.assertEqual(
                [f.routing_key for f in events], ["session.stopped", "charging.stopped"]
            )
            self.assertEqual((events[1].payload["cost"], events[1].payload["currency"]), (0, "EUR"))
            session = events[0].payload["session"]
            self.assertEqual((session["cost"], session["idTagStatus"]), (0, status))
            self.assertIsNone(session["review"])
        self.assertEqual(self.balance(), 1000)

    def test_implausible_session_held_for_review(self) -> None:
        """
        A start stamped 1970 would bill 56 years of minutes: the session is
        held for review (nothing priced, nothing debited), with its reasons
        and the computed cost, and announced so; a resent stop changes nothing.
        """
        tx = self.session(started_at=datetime(1970, 1, 1, tzinfo=UTC))
        events = self.stop_session(tx, 1500, "2026-11-29T12:00:00Z")
        self.assertEqual([f.routing_key for f in events], ["session.stopped", "charging.stopped"])
        session = events[0].payload["session"]
        self.assertEqual((session["cost"], session["currency"]), (None, "EUR"))
        review = session["review"]
        self.assertEqual(review["status"], "pending")
        self.assertEqual(
            review["reasons"],
            [
                "start_before_registration",
                "duration_above_limit",
                "cost_above_limit",
                "below_wallet_floor",
            ],
        )
        self.assertGreater(review["computedCost"], 59_000_000)
        self.assertEqual(events[1].payload["cost"], None)
        self.assertEqual(self.stop_session(tx, 1500, "2026-11-29T12:00:00Z"), [])
        self.assertEqual(self.balance(), 1000)
        record = self.database.run_sync(transactions.get_transaction, tx)
        self.assertEqual((record.review_status, record.cost), ("pending", None))

    def test_absurd_meter_held_for_review(self) -> None:
        """meterStop 10^15 computes 3 * 10^13 minor units: kept for review, never debited."""
        tx = self.session()
        events = self.stop_session(tx, 10**15, "2026-11-29T12:00:00Z")
        review = events[0].payload["session"]["review"]
        self.assertEqual(
            review["reasons"], ["energy_above_limit", "cost_above_limit", "below_wallet_floor"]
        )
        self.assertEqual(review["computedCost"], 50 + 30 * (10**15 - 1000) // 1000 + 20)
        self.assertEqual(self.balance(), 1000)

    def test_debit_below_the_floor_held_for_review(self) -> None:
        """
        A debit that would take the wallet below [billing] wallet_floor (0)
        waits for an operator; within it, it is debited.
        """
        tx = self.session()
        # 40 kWh in 10 minutes: 50 + 1200 + 20 = 1270 > 1000.
        events = self.stop_session(tx, 41_000, "2026-11-29T12:00:00Z")
        review = events[0].payload["session"]["review"]
        self.assertEqual(
            (review["reasons"], review["computedCost"]), (["below_wallet_floor"], 1270)
        )
        self.assertEqual(self.balance(), 1000)
        self.processor.limits = attrs.evolve(self.processor.limits, wallet_floor=-500)
        tx = self.session(started_at=datetime(2026, 11, 29, 11, 51, tzinfo=UTC))
        self.stop_session(tx, 41_000, "2026-11-29T12:01:00Z")
        self.assertEqual(self.balance(), -270)

    def test_live_power_and_energy_from_one_reading(self) -> None:
        """
        session.updated carries the newest total power, in W, read by
        ocppd.measurands like the energy: kW rounded half up, and a value with
        an exponent beyond any meter (issue 13 item 1; ``1e50000`` stands in
        for the ``1e999999999`` that would freeze the old code) is no reading.
        """

        def live(*sampled: dict[str, str]) -> dict[str, Any]:
            envelope = inbound(
                "MeterValues",
                {
                    "connectorId": 1,
                    "transactionId": self.tx,
                    "meterValue": [
                        {"timestamp": "2026-11-29T11:10:00Z", "sampledValue": list(sampled)}
                    ],
                },
            )
            [update] = self.follow_ups(envelope)
            return {k: update.payload["live"][k] for k in ("energyWh", "powerW")}

        power = {"measurand": "Power.Active.Import"}
        self.assertEqual(
            live({"value": "7.4005", "unit": "kW", **power}, {"value": "2.0005", "unit": "kWh"}),
            {"energyWh": 1001, "powerW": 7401},
        )
        self.assertEqual(
            live({"value": "1e50000", "unit": "W", **power}, {"value": "1e50000"}),
            {"energyWh": 1001, "powerW": None},
        )
        values = self.database.run_sync(
            lambda conn: transactions.list_meter_values(conn, transaction_id=self.tx)
        )
        self.assertEqual(
            [(v.value, v.value_wh) for v in values if v.measurand.startswith("Energy")],
            [("2.0005", 2001)],  # the second message's samples repeat the first's keys
        )

    def test_stop_with_an_unreadable_sample(self) -> None:
        """
        A StopTransaction whose transactionData holds ``1e999999`` kWh (a
        decimal.Overflow in the old code, which dead-lettered the stop) stops
        and bills the session; the sample is kept as sent, non-numeric.
        """
        stop = ProcessorTests.stop(self)  # type: ignore[arg-type]
        stop.payload["request"]["transactionData"] = [
            {
                "timestamp": "2026-11-29T11:29:00Z",
                "sampledValue": [
                    {"value": "1e999999", "unit": "kWh"},
                    {
                        "value": "-1e999999",
                        "unit": "kWh",
                        "measurand": "Energy.Active.Export.Register",
                    },
                ],
            }
        ]
        events = self.follow_ups(stop)
        self.assertEqual(
            [f.routing_key for f in events],
            ["session.stopped", "wallet.transaction", "charging.stopped"],
        )
        session = self.database.run_sync(transactions.get_transaction, self.tx)
        self.assertEqual((session.status, session.cost), ("completed", 230))
        values = self.database.run_sync(
            lambda conn: transactions.list_meter_values(conn, transaction_id=self.tx)
        )
        self.assertEqual(
            [(v.value, v.value_wh) for v in values], [("1e999999", None), ("-1e999999", None)]
        )
