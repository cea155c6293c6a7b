"""
A charger's own StopTransaction after the central system closed its session
(``ocppd.consumers.late_stop``), through the processor on SQLite and
PostgreSQL: billed again on the charger's reading with one correcting debit,
once; held for review when it would take back what was billed; a session
closed by hand or under review handled alike.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd.api.closing import close_tx
from ocppd.api.reviews import Decision, decide_tx
from ocppd.consumers.closing import Closings
from ocppd.consumers.processor import OcppProcessor
from ocppd.consumers.stop_billing import StopBilling
from ocppd.consumers.tariff_cache import TariffCache
from ocppd.store import chargers, tables, tags, tariffs, transactions, users, wallets
from ocppd.store.database import Database
from ocppd.store.records import UserRecord
from tests.consumers.test_processor import NOW, REGISTERED, inbound, meter, start_session
from tests.store.fixtures import make_postgres_database, make_sqlite_database

BOOT = {"chargePointVendor": "Acme", "chargePointModel": "Volt 22"}


class LateStopTestsMixin:
    """
    A session of the user's TAG1 on CP1 (30 ct/kWh, 2 ct/min, fee 50), from
    11:00 at 1000 Wh, read at 4000 Wh at 11:10; the wallet holds 1000. The
    charger reboots at 11:20: closed on that reading, billed 50 + 90 + 20 = 160.
    """

    database: Database

    def make_database(self) -> Database:
        raise NotImplementedError

    def setUp(self) -> None:
        self.database = self.make_database()
        self.processor = OcppProcessor(None, self.database, clock=Clock())  # type: ignore[arg-type]
        self.user = self.database.run_sync(
            users.add_user, "a@example.com", "x", "customer", now=NOW
        )
        self.tariff = self.database.run_sync(
            tariffs.add_tariff,
            "T",
            currency="EUR",
            price_per_kwh=30,
            price_per_minute=2,
            session_fee=50,
            now=NOW,
        )
        self.database.run_sync(
            chargers.add_charge_point, "CP1", None, tariff_id=self.tariff, now=REGISTERED
        )
        self.database.run_sync(tags.add_id_tag, "TAG1", user_id=self.user, now=NOW)
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
        self.follow_ups(meter(self.tx, "2026-11-29T11:10:00Z", "4000"))

    def follow_ups(self, envelope: Any) -> list[Any]:
        applied, events = self.database.run_sync(self.processor.apply_collecting, envelope)
        return list(events) if applied else ["not applied"]

    def reboot(self) -> list[Any]:
        return self.follow_ups(
            inbound("BootNotification", BOOT, {"status": "Accepted"}, at="2026-11-29T12:01:00Z")
        )

    def late_stop(self, meter_stop: int, timestamp: str = "2026-11-29T11:15:00Z") -> list[Any]:
        request = {
            "transactionId": self.tx,
            "meterStop": meter_stop,
            "timestamp": timestamp,
            "reason": "PowerLoss",
        }
        return self.follow_ups(inbound("StopTransaction", request, at="2026-11-29T12:02:00.000Z"))

    def session(self) -> Any:
        return self.database.run_sync(transactions.get_transaction, self.tx)

    def balance(self) -> int:
        wallet = self.database.run_sync(wallets.wallet_view, self.user, currency="EUR", now=NOW)
        return int(wallet.balance)

    def amounts(self) -> list[int]:
        page = self.database.run_sync(wallets.transactions_page, self.user, before_id=None, limit=9)
        return [t.amount for t in page]

    def unmatched(self) -> list[Any]:
        return list(self.database.run_sync(transactions.list_unmatched_stops, "CP1"))

    def test_late_stop_billed_by_one_correction(self) -> None:
        """
        The charger's stop (5000 Wh at 11:15: 50 + 120 + 30 = 200) bills the
        40 the close missed, as one debit; the session keeps the charger's
        reading, time and reason beside the closing reason; announced. The
        same stop again, or another, changes nothing.
        """
        self.reboot()
        self.assertEqual((self.session().cost, self.balance()), (160, 840))
        events = self.late_stop(5000)
        self.assertEqual([f.routing_key for f in events], ["session.stopped", "wallet.transaction"])
        shown = events[0].payload["session"]
        self.assertEqual(
            (shown["meterStopWh"], shown["energyWh"], shown["cost"], shown["stopReason"]),
            (5000, 4000, 200, "charger rebooted"),
        )
        self.assertEqual(shown["chargerStopReason"], "PowerLoss")
        self.assertEqual(shown["stoppedAt"], "2026-11-29T11:15:00.000Z")
        posted = events[1].payload["transaction"]
        self.assertEqual((posted["kind"], posted["amount"]), ("debit", -40))
        self.assertEqual(self.balance(), 800)
        self.assertEqual(self.amounts(), [-40, -160, 1000])
        self.assertEqual(self.unmatched(), [])

        self.assertEqual(self.late_stop(5000), [])
        self.assertEqual(self.late_stop(9000, "2026-11-29T11:19:00Z"), [])
        self.assertEqual(self.balance(), 800)
        self.assertEqual((self.session().meter_stop_wh, self.session().cost), (5000, 200))

    def test_prices_of_the_close(self) -> None:
        """A tariff raised after the close does not price the correction."""
        self.reboot()
        self.database.run_sync(
            lambda conn: conn.execute(sa.update(tables.tariffs).values(price_per_kwh=99))
        )
        self.late_stop(5000)
        self.assertEqual((self.session().cost, self.balance()), (200, 800))

    def test_lower_meter_goes_to_review(self) -> None:
        """
        A meterStop below the reading billed never credits: the session is
        held for review with the reason, its billed cost kept, nothing moved;
        an operator's decision then moves the difference, here back to the
        customer (2500 Wh in 15 minutes: 155, 5 less than billed).
        """
        self.reboot()
        events = self.late_stop(3500)
        self.assertEqual([f.routing_key for f in events], ["session.stopped"])
        review = events[0].payload["session"]["review"]
        self.assertEqual(
            (review["status"], review["reasons"], review["computedCost"]),
            ("pending", ["late_stop_below_billed"], 155),
        )
        self.assertEqual((self.session().cost, self.balance()), (160, 840))
        self.assertEqual(self.unmatched(), [])

        operator = UserRecord(9, "op@example.com", "x", "admin", NOW, None, None)
        decided = self.database.run_sync(
            decide_tx,
            self.tx,
            Decision("bill_computed", None, None),
            operator,
            wallet_currency="EUR",
            now=NOW,
        )
        assert decided.debit is not None
        self.assertEqual((decided.debit.kind, decided.debit.amount), ("adjustment", 5))
        self.assertEqual((self.session().cost, self.balance()), (155, 845))

    def test_stop_before_the_close_goes_to_review(self) -> None:
        """A stop stamped before the reading it was closed on: review, nothing moved."""
        self.reboot()
        [event] = self.late_stop(5000, "2026-11-29T11:05:00Z")
        self.assertEqual(event.payload["session"]["review"]["reasons"], ["late_stop_before_close"])
        self.assertEqual(self.balance(), 840)

    def test_late_stop_on_a_hand_closed_session(self) -> None:
        """An operator's close is corrected like a reboot's."""
        closings = Closings(StopBilling(self.processor.policy, TariffCache()))
        self.database.run_sync(close_tx, self.tx, closings, now=NOW)
        self.assertEqual((self.session().stop_reason, self.balance()), ("closed by operator", 840))
        events = self.late_stop(5000)
        self.assertEqual([f.routing_key for f in events], ["session.stopped", "wallet.transaction"])
        self.assertEqual(
            (self.session().stop_reason, self.session().charger_stop_reason, self.balance()),
            ("closed by operator", "PowerLoss", 800),
        )

    def test_session_under_review_stays_there(self) -> None:
        """
        Closed below the wallet floor, the session waits for review: the late
        stop updates what it computes and keeps it waiting; nothing debited.
        """
        self.database.run_sync(
            wallets.post_transaction,
            self.user,
            kind="adjustment",
            amount=-900,
            currency="EUR",
            idempotency_key="take:1",
            now=REGISTERED,
        )
        self.reboot()
        self.assertEqual(self.session().review_status, "pending")
        [event] = self.late_stop(5000)
        review = event.payload["session"]["review"]
        self.assertEqual(
            (review["status"], review["reasons"], review["computedCost"]),
            ("pending", ["below_wallet_floor"], 200),
        )
        self.assertEqual(self.balance(), 100)

    def test_stop_of_an_active_session_is_not_late(self) -> None:
        """A session nobody closed is stopped as ever: not a correction."""
        events = self.late_stop(5000)
        self.assertEqual(
            [f.routing_key for f in events],
            ["session.stopped", "wallet.transaction", "charging.stopped"],
        )
        self.assertIsNone(self.session().charger_stop_reason)
        self.assertEqual(self.balance(), 800)


class SQLiteLateStopTests(LateStopTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)


class PostgresLateStopTests(LateStopTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_postgres_database(self)
