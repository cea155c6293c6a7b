"""
A charger's ``boot_closes_sessions`` setting, through the processor on SQLite
and PostgreSQL: on (the default) a BootNotification closes the sessions open
on it; off (a charger that boots on every reconnect) it closes nothing, while
an ``Available`` on the connector or a newer start still do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd.consumers.processor import OcppProcessor
from ocppd.store import chargers, tags, transactions
from ocppd.store.database import Database
from tests.consumers.test_processor import NOW, REGISTERED, inbound, meter, start_session
from tests.store.fixtures import make_postgres_database, make_sqlite_database

BOOT = {"chargePointVendor": "Acme", "chargePointModel": "Volt 22"}


class BootClosingTestsMixin:
    """A session on CP1 connector 1 from 11:00, read at 4000 Wh at 11:10."""

    database: Database

    def make_database(self) -> Database:
        raise NotImplementedError

    def setUp(self) -> None:
        self.database = self.make_database()
        self.processor = OcppProcessor(None, self.database, clock=Clock())  # type: ignore[arg-type]
        self.database.run_sync(chargers.add_charge_point, "CP1", None, now=REGISTERED)
        self.database.run_sync(tags.add_id_tag, "TAG1", now=NOW)
        self.tx = start_session(self.database, "CP1")
        self.apply(meter(self.tx, "2026-11-29T11:10:00Z", "4000"))

    def apply(self, envelope: Any) -> list[Any]:
        applied, events = self.database.run_sync(self.processor.apply_collecting, envelope)
        assert applied
        return list(events)

    def set_boot_closes(self, value: bool) -> None:
        self.database.run_sync(
            chargers.update_charge_point,
            "CP1",
            station_id=None,
            tariff_id=None,
            registration_status="Accepted",
            boot_closes_sessions=value,
        )

    def boot(self) -> list[Any]:
        return self.apply(
            inbound("BootNotification", BOOT, {"status": "Accepted"}, at="2026-11-29T12:01:00Z")
        )

    def session(self) -> Any:
        return self.database.run_sync(transactions.get_transaction, self.tx)

    def test_boot_closes_by_default(self) -> None:
        self.assertTrue(self.database.run_sync(chargers.boot_closes_sessions, "CP1"))
        events = self.boot()
        self.assertEqual([f.routing_key for f in events], ["session.stopped"])
        self.assertEqual(
            (self.session().status, self.session().stop_reason), ("completed", "charger rebooted")
        )

    def test_boot_closes_nothing_when_off(self) -> None:
        """The boot is recorded, the session runs on; an Available then closes it."""
        self.set_boot_closes(False)
        self.assertEqual(self.boot(), [])
        self.assertEqual(self.session().status, "active")
        point = self.database.run_sync(chargers.get_charge_point, "CP1")
        self.assertIsNotNone(point.boot_at)
        events = self.apply(
            inbound(
                "StatusNotification",
                {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
                at="2026-11-29T12:02:00Z",
            )
        )
        self.assertEqual([f.routing_key for f in events], ["session.stopped"])
        self.assertEqual(self.session().stop_reason, "connector available")

    def test_newer_start_still_closes_when_off(self) -> None:
        self.set_boot_closes(False)
        self.boot()
        newer = self.database.run_sync(
            transactions.allocate_transaction,
            charge_point_id="CP1",
            connector_id=1,
            id_tag="TAG1",
            id_tag_status="Accepted",
            meter_start_wh=4000,
            started_at=datetime(2026, 11, 29, 12, 3, tzinfo=UTC),
            now=datetime(2026, 11, 29, 12, 3, tzinfo=UTC),
        ).transaction_id
        self.apply(inbound("StartTransaction", {}, {"transactionId": newer, "idTagInfo": {}}))
        self.assertEqual(self.session().stop_reason, "superseded")


class SQLiteBootClosingTests(BootClosingTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)


class PostgresBootClosingTests(BootClosingTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_postgres_database(self)
