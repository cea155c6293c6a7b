"""
Fuzzing the charger's path end to end with payloads generated from the
official OCPP 1.6 schemas (``tests.fuzz.schemas``), one test per
charger-initiated action:

(a) the frame goes through a ``ChargerConnection`` with the real
    ``CentralSystemHandlers`` and ``TrafficPublisher`` (the store is real
    SQLite, run inline): the answer is a CALLRESULT valid against the
    response schema, or, exactly when the payload breaks one of ocppd's
    documented bounds, the CALLERROR docs/ocpp.md gives; never an exception;
(b) every envelope the edge published (the accepted CALL, or the rejected
    frame) is applied by the real processor, which never raises;
(c) the notifier's push mapping reads those envelopes, the domain events
    the processor made, and an envelope of the raw payload even when the
    edge refused it, and never raises.

Nothing may log an error or a warning on the way, except what (c) logs for
a payload the edge would never have published. Example counts are fixed
and examples derandomized (``tests.fuzz.profile``); the whole module runs
in a few seconds.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.task import Clock
from twisted.logger import ILogObserver, LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import provider

from ocppd.bus.envelope import Envelope
from ocppd.consumers.notifier import push_events
from ocppd.consumers.processor import OcppProcessor
from ocppd.ocpp.actions import CHARGER_INITIATED, TRANSACTION_ACTIONS
from ocppd.ocpp.connection import ChargerConnection
from ocppd.ocpp.frames import Call
from ocppd.ocpp.handlers import CentralSystemHandlers
from ocppd.ocpp.schemas import CHARGER_INTEGER_RANGES, SchemaRegistry
from ocppd.ocpp.tagcache import IdTagCache
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.store import tags, transactions, wallets
from ocppd.store.database import Database
from tests.fuzz.profile import fuzz_settings
from tests.fuzz.schemas import charger_request, expected_refusal, official_schema
from tests.ocpp.fakes import FakeTransport
from tests.ocpp.test_schemas import CHARGER_REQUESTS
from tests.store.fixtures import (
    add_priced_charger,
    make_postgres_database,
    make_sqlite_database,
)

REGISTRY = SchemaRegistry.load()
NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

#: Per action: the actions with effects in the store get the most examples.
FEW = fuzz_settings(20)
MANY = fuzz_settings(40)


class InlineDatabase:
    """The real store, each transaction run at once in the caller's thread."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def run(self, func: Any, *args: Any, **kwargs: Any) -> Deferred[Any]:
        return maybeDeferred(self._database.run_sync, func, *args, **kwargs)


class CapturingBus:
    """Accepts every publish at once and keeps the envelope, as bytes, like a broker."""

    def __init__(self) -> None:
        self.published: list[Envelope] = []

    def publish(self, routing_key: str, envelope: Envelope) -> Deferred[None]:
        self.published.append(Envelope.from_bytes(envelope.to_bytes()))
        return succeed(None)


class ChargerPathFuzzTests(SynchronousTestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def setUp(self) -> None:
        self.database = self.make_database()
        self.user = add_priced_charger(self.database, "CP1", now=NOW)
        self.database.run_sync(tags.add_id_tag, "BLOCKED", status="Blocked", now=NOW)

        self.clock = Clock()
        self.clock.rightNow = NOW.timestamp()
        self.bus = CapturingBus()
        traffic = TrafficPublisher(self.bus, node="n1", clock=self.clock)  # type: ignore[arg-type]
        inline = InlineDatabase(self.database)
        handlers = CentralSystemHandlers(
            database=inline,  # type: ignore[arg-type]
            tags=IdTagCache(inline, self.clock, ttl=60),  # type: ignore[arg-type]
            traffic=traffic,
            clock=self.clock,
            heartbeat_interval=300,
        )
        self.transport = FakeTransport()
        self.connection = ChargerConnection(
            "CP1",
            connection_id="c1",
            registration_status="Accepted",
            transport=self.transport,
            handler=handlers,
            schemas=REGISTRY,
            traffic=traffic,
            clock=self.clock,
            call_timeout=30,
        )
        self.processor = OcppProcessor(None, self.database, clock=self.clock)  # type: ignore[arg-type]
        self.unique_ids = (f"f{n}" for n in itertools.count())
        self.starts = 0

        self.logged: list[dict[str, Any]] = []

        @provider(ILogObserver)
        def observe(event: dict[str, Any]) -> None:
            if event.get("log_level", LogLevel.info) < LogLevel.warn:
                return
            if "held for review" in event.get("log_format", ""):
                return  # a deliberate outcome for implausible charger values (docs/api.md)
            if "came after it was closed" in event.get("log_format", ""):
                return  # a stop after its session was closed (superseded): kept, once
            self.logged.append(event)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)

    def start_session(self) -> int:
        """A new session of TAG1's user through the connection; its transaction id."""
        self.starts += 1
        start = {
            "connectorId": 1,
            "idTag": "TAG1",
            "meterStart": self.starts,
            "timestamp": "2026-11-29T11:00:00Z",
        }
        self.exchange("StartTransaction", start)
        transaction_id: int = json.loads(self.transport.sent[-1])[2]["transactionId"]
        return transaction_id

    def exchange(self, action: str, payload: dict[str, Any]) -> None:
        """Send one CALL and check (a), (b) and (c) of the module docstring."""
        self.clock.advance(1)
        del self.bus.published[:], self.logged[:]
        unique_id = next(self.unique_ids)
        self.connection.text_received(Call(unique_id, action, payload).marshal())

        # (a) the answer.
        answer = json.loads(self.transport.sent[-1])
        refused = expected_refusal(action, payload)
        if refused:
            self.assertEqual(answer[:3], [4, unique_id, refused], answer)
        else:
            self.assertEqual(answer[:2], [3, unique_id], answer)
            REGISTRY.validate_response(action, answer[2])
        expected = "ocpp.rejected" if refused else f"ocpp.in.{action}"
        self.assertEqual([envelope.type for envelope in self.bus.published], [expected])

        # (b) and (c): what the edge published, and what applying it announced.
        for envelope in self.bus.published:
            _, events = self.database.run_sync(self.processor.apply_collecting, envelope)
            push_events(envelope)
            for event in events:
                announced = Envelope.create(
                    event.routing_key,
                    event.payload,
                    node="n1",
                    charge_point_id=event.charge_point_id,
                )
                push_events(Envelope.from_bytes(announced.to_bytes()))
        self.assertEqual([event.get("log_format") for event in self.logged], [], self.logged[:1])

        # (c) the raw payload, as if published without the edge's bounds.
        raw = Envelope.create(
            f"ocpp.in.{action}",
            {
                "uniqueId": unique_id,
                "action": action,
                "request": payload,
                "response": {},
                "receivedAt": "2026-11-29T12:00:00.000Z",
            },
            node="n1",
            charge_point_id="CP1",
        )
        push_events(raw)

    def test_stop_costing_more_than_a_session_holds(self) -> None:
        """
        A stop whose price exceeds the 32-bit cost column (here 2**53-1 Wh at
        30/kWh) completes the session, held for review with its computed cost
        and undebited, instead of failing in the processor on PostgreSQL,
        which kept the session active (found by the fuzz).
        """
        transaction_id = self.start_session()
        stop = {
            "transactionId": transaction_id,
            "meterStop": 2**53 - 1,
            "timestamp": "2026-11-29T11:30:00Z",
        }
        self.exchange("StopTransaction", stop)
        session = self.database.run_sync(transactions.get_transaction, transaction_id)
        self.assertEqual((session.status, session.cost), ("completed", None))
        self.assertEqual(session.review_status, "pending")
        self.assertGreater(session.review_cost, transactions.MAX_COST)
        self.assertEqual(
            self.database.run_sync(wallets.transactions_page, self.user, before_id=None, limit=9),
            [],
        )

    def test_every_bound_through_the_connection(self) -> None:
        """
        Each documented integer range, at and beyond both ends, through the
        real handlers: ``StartTransaction`` with ``meterStart: 2**63`` (once an
        InternalError the charger retried for ever) is a
        PropertyConstraintViolation naming the field, like every other case.
        """
        for action, ranges in CHARGER_INTEGER_RANGES.items():
            for field, (low, high) in ranges.items():
                for value in (low - 1, low, high, high + 1, 2**63):
                    payload = {**CHARGER_REQUESTS[action], field: value}
                    self.exchange(action, payload)
                    answer = json.loads(self.transport.sent[-1])
                    if answer[0] == 4:
                        self.assertEqual(answer[4]["field"], field, (action, field, value))
                    else:
                        self.assertTrue(low <= value <= high, (action, field, value))


def _fuzz(action: str) -> Any:
    """
    The fuzz test of one action; those with effects in the store get more
    examples, and a MeterValues or StopTransaction is half the time about a
    session just started, so live costs and billing run.
    """
    about_a_session = (
        st.booleans()
        if "transactionId" in official_schema(action)["properties"]
        else st.just(False)
    )

    @(MANY if action in TRANSACTION_ACTIONS | {"StatusNotification"} else FEW)
    @given(charger_request(action), about_a_session)
    def test(self: ChargerPathFuzzTests, payload: dict[str, Any], in_a_session: bool) -> None:
        if in_a_session:
            payload = {**payload, "transactionId": self.start_session()}
        self.exchange(action, payload)

    test.__doc__ = f"{action}: the checks (a), (b) and (c) of the module docstring."
    return test


# One test per charger-initiated action, named test_<action> (test_StopTransaction).
for _action in sorted(CHARGER_INITIATED):
    setattr(ChargerPathFuzzTests, f"test_{_action}", _fuzz(_action))


class PostgresChargerPathFuzzTests(ChargerPathFuzzTests):
    """The same on PostgreSQL, which refuses what SQLite stores (NUL, long text, big ints)."""

    def make_database(self) -> Database:
        return make_postgres_database(self)
