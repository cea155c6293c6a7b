"""Tests for ocppd.ocpp.handlers against a real (SQLite) store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, gatherResults, inlineCallbacks, maybeDeferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.bus.interface import BusError
from ocppd.bus.outcome import Outcome, deferred_of, outcome_of
from ocppd.ocpp.connection import BuiltAnswer
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.frames import Call
from ocppd.ocpp.handlers import CentralSystemHandlers
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.ocpp.tagcache import IdTagCache
from ocppd.store import chargers, tables, tags, transactions
from ocppd.timeutil import format_iso, from_timestamp
from tests.ocpp.fakes import RecordingTraffic
from tests.store.fixtures import make_sqlite_database

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def handled(handlers: CentralSystemHandlers, connection: Any, call: Call) -> Any:
    """``handlers.handle``'s answer, an ``Outcome`` (waiting for the bus) as a Deferred."""
    answer = handlers.handle(connection, call)
    return deferred_of(answer) if isinstance(answer, Outcome) else answer


class FakeConnection:
    def __init__(self, charge_point_id: str, registration_status: str = "Accepted") -> None:
        self.charge_point_id = charge_point_id
        self.registration_status = registration_status


class HandlerTests(TestCase):
    def setUp(self) -> None:
        self.database = make_sqlite_database(self)
        self.traffic = RecordingTraffic()
        self.tags = IdTagCache(self.database, reactor, ttl=60)
        self.handlers = CentralSystemHandlers(
            database=self.database,
            tags=self.tags,
            traffic=self.traffic,  # type: ignore[arg-type]
            clock=reactor,
            heartbeat_interval=120,
        )
        self.database.run_sync(chargers.add_charge_point, "CP1", None, now=NOW)
        self.database.run_sync(chargers.add_charge_point, "CP2", None, now=NOW)
        self.database.run_sync(tags.add_id_tag, "PARENT", now=NOW)
        self.database.run_sync(tags.add_id_tag, "TAG1", parent_id_tag="PARENT", now=NOW)
        self.database.run_sync(tags.add_id_tag, "GONE", expires_at=NOW - timedelta(days=1), now=NOW)
        self.database.run_sync(tags.add_id_tag, "BLOCKED", status="Blocked", now=NOW)

    def call(self, action: str, payload: dict[str, Any], cp: Any = None) -> Any:
        return maybeDeferred(
            handled, self.handlers, cp or FakeConnection("CP1"), Call("u1", action, payload)
        )

    def start(
        self, id_tag: str = "TAG1", connector: int = 1, meter: int = 100, cp: Any = None
    ) -> Any:
        return self.call(
            "StartTransaction",
            {
                "connectorId": connector,
                "idTag": id_tag,
                "meterStart": meter,
                "timestamp": "2026-11-29T11:00:00Z",
            },
            cp,
        )

    @inlineCallbacks
    def test_authorize_statuses(self) -> Any:
        """Accepted with its parent, Expired past expiry, Blocked as stored, else Invalid."""
        results = {}
        for tag in ("TAG1", "GONE", "BLOCKED", "NOBODY"):
            answer = yield self.call("Authorize", {"idTag": tag})
            results[tag] = answer["idTagInfo"]
        self.assertEqual(results["TAG1"], {"status": "Accepted", "parentIdTag": "PARENT"})
        self.assertEqual(results["GONE"]["status"], "Expired")
        self.assertTrue(results["GONE"]["expiryDate"].endswith("Z"))
        self.assertEqual(results["BLOCKED"], {"status": "Blocked"})
        self.assertEqual(results["NOBODY"], {"status": "Invalid"})

    @inlineCallbacks
    def test_tag_case_does_not_matter(self) -> Any:
        """A reader sending the UID in lower case is authorized like the stored upper case."""
        answer = yield self.call("Authorize", {"idTag": "tag1"})
        self.assertEqual(answer["idTagInfo"]["status"], "Accepted")

    @inlineCallbacks
    def test_resent_start_gets_the_same_transaction_id(self) -> Any:
        """The same StartTransaction twice gets one id; a different one gets a new id."""
        first = yield self.start()
        again = yield self.start()
        other = yield self.start(meter=200, connector=2, id_tag="PARENT")
        self.assertEqual(first["transactionId"], again["transactionId"])
        self.assertNotEqual(first["transactionId"], other["transactionId"])
        self.assertEqual(first["idTagInfo"]["status"], "Accepted")
        # Transaction messages are answered only once the bus has them.
        waits = [event[1][2] for event in self.traffic.events if event[0] == "inbound"]
        self.assertEqual(waits, [True, True, True])

    @inlineCallbacks
    def test_concurrent_tx(self) -> Any:
        """A tag already charging elsewhere gets ConcurrentTx."""
        yield self.start()
        elsewhere = yield self.start(cp=FakeConnection("CP2"), meter=5)
        self.assertEqual(elsewhere["idTagInfo"]["status"], "ConcurrentTx")

    @inlineCallbacks
    def test_offline_start_with_blocked_tag_recorded(self) -> Any:
        """A start with a Blocked tag is answered Blocked and recorded with that status."""
        answer = yield self.start(id_tag="BLOCKED")
        self.assertEqual(answer["idTagInfo"]["status"], "Blocked")
        record = self.database.run_sync(transactions.get_transaction, answer["transactionId"])
        self.assertEqual(record.id_tag_status, "Blocked")

    @inlineCallbacks
    def test_stop_for_unknown_transaction_is_answered(self) -> Any:
        """A StopTransaction for an id we never gave out is still answered, not refused."""
        answer = yield self.call(
            "StopTransaction",
            {"transactionId": 424242, "meterStop": 10, "timestamp": "2026-11-29T11:00:00Z"},
        )
        self.assertEqual(answer, {})

    @inlineCallbacks
    def test_bus_failure_means_no_answer(self) -> Any:
        """If the bus refuses a transaction message, the handler fails: the charger must retry."""
        self.traffic.inbound = lambda *a, **k: outcome_of(fail(BusError("broker down")))  # type: ignore[method-assign]
        with self.assertRaises(BusError):
            yield self.call(
                "MeterValues",
                {
                    "connectorId": 1,
                    "meterValue": [
                        {"timestamp": "2026-11-29T11:00:00Z", "sampledValue": [{"value": "1"}]}
                    ],
                },
            )

    @inlineCallbacks
    def test_start_refused_by_the_bus_leaves_no_active_session(self) -> Any:
        """
        A StartTransaction the bus refuses is answered InternalError and leaves
        no session anyone sees: the tag is not ConcurrentTx elsewhere. The
        charger's resend gets the same id, and only then is the session active.
        """
        answer = self.traffic.inbound
        self.traffic.inbound = lambda *a, **k: outcome_of(fail(BusError("broker down")))  # type: ignore[method-assign]
        with self.assertRaises(BusError):
            yield self.start()
        self.assertEqual(self.database.run_sync(transactions.active_transactions), [])
        self.traffic.inbound = answer  # type: ignore[method-assign]
        elsewhere = yield self.start(cp=FakeConnection("CP2"), meter=5)
        self.assertEqual(elsewhere["idTagInfo"]["status"], "Accepted")
        self.database.run_sync(
            transactions.record_stop,
            charge_point_id="CP2",
            transaction_id=elsewhere["transactionId"],
            meter_stop_wh=10,
            stopped_at=NOW,
            now=NOW,
        )
        resent = yield self.start()
        active = self.database.run_sync(transactions.active_transactions)
        self.assertEqual([t.id for t in active], [resent["transactionId"]])
        self.assertEqual(resent["idTagInfo"]["status"], "Accepted")
        rows = self.database.run_sync(lambda conn: conn.execute(tables.transactions.select()).all())
        self.assertEqual(len(rows), 2)  # the refused start's row was reused, none left behind

    @inlineCallbacks
    def test_status_and_boot_wait_for_the_bus(self) -> Any:
        """
        StatusNotification and BootNotification are answered only once the bus
        has them: refused (InternalError, so the charger resends) while it is
        down, rather than answered and lost.
        """
        status = {"connectorId": 1, "errorCode": "GroundFailure", "status": "Faulted"}
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        yield self.call("StatusNotification", status)
        yield self.call("BootNotification", boot)
        waits = {event[1][0]: event[1][2] for event in self.traffic.events}
        self.assertEqual(waits, {"StatusNotification": True, "BootNotification": True})
        self.traffic.inbound = lambda *a, **k: outcome_of(fail(BusError("broker down")))  # type: ignore[method-assign]
        for action, payload in (("StatusNotification", status), ("BootNotification", boot)):
            with self.assertRaises(BusError):
                yield self.call(action, payload)

    @inlineCallbacks
    def test_boots_read_their_chargers_in_batches(self) -> Any:
        """
        Boots that arrive together (a node's restart brings every charger's)
        read their chargers' status in one store call, not one each; each
        gets its own charger's status.
        """
        self.database.run_sync(chargers.set_registration_status, "CP2", "Rejected")
        reads: list[tuple[Any, ...]] = []
        run = self.database.run

        def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
            reads.append((func.__name__, *args))
            return run(func, *args, **kwargs)

        self.patch(self.database, "run", counted)
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        answers = yield gatherResults(
            [
                self.call("BootNotification", boot, FakeConnection(cp))
                for cp in ("CP1", "CP2", "CP1", "NOPE")
            ]
        )
        self.assertEqual(
            [answer["status"] for answer in answers],
            ["Accepted", "Rejected", "Accepted", "Rejected"],
        )
        # The first goes at once, alone; the others wait for it and go together.
        self.assertEqual(
            reads, [("get_charge_points", ["CP1"]), ("get_charge_points", ["CP2", "CP1", "NOPE"])]
        )

    @inlineCallbacks
    def test_pending_charger_may_only_boot(self) -> Any:
        """A Pending charger gets SecurityError for anything but BootNotification."""
        self.database.run_sync(
            chargers.register_pending_charge_point, "NEW", None, max_pending=1, now=NOW
        )
        connection = FakeConnection("NEW", "Pending")
        with self.assertRaises(OcppError) as caught:
            yield self.call("Heartbeat", {}, connection)
        self.assertEqual(caught.exception.code, "SecurityError")
        boot = {"chargePointVendor": "V", "chargePointModel": "M"}
        answer = yield self.call("BootNotification", boot, connection)
        self.assertEqual(answer["status"], "Pending")
        self.assertLessEqual(answer["interval"], 60)
        # The operator accepts it; the next boot says so and unlocks the connection.
        self.database.run_sync(chargers.set_registration_status, "NEW", "Accepted")
        answer = yield self.call("BootNotification", boot, connection)
        self.assertEqual((answer["status"], answer["interval"]), ("Accepted", 120))
        self.assertEqual(connection.registration_status, "Accepted")
        yield self.call("Heartbeat", {}, connection)

    @inlineCallbacks
    def test_data_transfer_and_notifications(self) -> Any:
        """DataTransfer: UnknownVendorId; firmware/diagnostics notifications: empty answers."""
        answer = yield self.call("DataTransfer", {"vendorId": "acme"})
        self.assertEqual(answer, {"status": "UnknownVendorId"})
        answer = yield self.call("FirmwareStatusNotification", {"status": "Installed"})
        self.assertEqual(answer, {})


def handlers_without_store(clock: Clock) -> CentralSystemHandlers:
    """Handlers for the answers that need neither the store nor the tag cache."""
    return CentralSystemHandlers(
        database=None,  # type: ignore[arg-type]
        tags=None,  # type: ignore[arg-type]
        traffic=RecordingTraffic(),  # type: ignore[arg-type]
        clock=clock,
        heartbeat_interval=120,
    )


class CurrentTimeTests(SynchronousTestCase):
    """The cached ``currentTime`` formatting of Heartbeat and BootNotification answers."""

    def test_same_as_format_iso(self) -> None:
        """
        Within a second and across seconds, at the millisecond and microsecond
        rounding edges, the answer is ``format_iso(from_timestamp(now))``.
        """
        clock = Clock()
        handlers = handlers_without_store(clock)
        connection = FakeConnection("CP1")
        base = 1_800_000_000.0
        for offset in (0.0, 0.123, 0.0005, 0.9994, 0.9999996, 1.0, 1.001, 59.999, 3600.25):
            clock.rightNow = base + offset
            answer = handlers.handle(connection, Call("h", "Heartbeat", {}))  # type: ignore[arg-type]
            self.assertEqual(
                answer["currentTime"], format_iso(from_timestamp(base + offset)), offset
            )


class BuiltAnswerTests(SynchronousTestCase):
    """The answers sent without a second schema check are valid against their schema."""

    def test_built_answers_are_valid(self) -> None:
        """
        Every answer a handler returns as a BuiltAnswer passes its response
        schema, at the clock's extremes too (1970, and the last second before
        9000 that ``is_date_time`` takes).
        """
        schemas = SchemaRegistry.load()
        clock = Clock()
        handlers = handlers_without_store(clock)
        requests = {
            "DataTransfer": {"vendorId": "acme"},
            "DiagnosticsStatusNotification": {"status": "Idle"},
            "FirmwareStatusNotification": {"status": "Installed"},
            "Heartbeat": {},
            "MeterValues": {"connectorId": 1, "meterValue": []},
            "StatusNotification": {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        }
        end = datetime(9000, 1, 1, tzinfo=UTC).timestamp() - 0.0004
        for now in (0.0, NOW.timestamp() + 0.9996, end):
            clock.rightNow = now
            for action, payload in requests.items():
                answer = handled(handlers, FakeConnection("CP1"), Call("b", action, payload))
                if isinstance(answer, Deferred):  # the transaction messages wait for the bus
                    answer = self.successResultOf(answer)
                self.assertIs(type(answer), BuiltAnswer, action)
                schemas.validate_response(action, answer)
                self.assertIsNone(schemas.fastjsonschema_verdict("response", action, answer))
