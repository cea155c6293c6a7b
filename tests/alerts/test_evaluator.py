"""
The evaluator on a real database (SQLite and PostgreSQL), delivering to a
webhook receiver and an SMTP server on local sockets; time is a Clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd.alerts import observe, rules
from ocppd.alerts.delivery import Deliveries, EmailChannel, WebhookChannel
from ocppd.alerts.evaluator import AlertEvaluator
from ocppd.alerts.notices import RAISED, RESOLVED
from ocppd.alerts.rules import QueueState, Rules
from ocppd.alerts.setup import webhook_client
from ocppd.bus.outbox import Outbox
from ocppd.store import chargers, transactions
from ocppd.store.database import Database
from ocppd.store.tables import alerts, bus_journal, outbox
from tests.alerts.receivers import SECRET, listen_smtp, listen_webhook
from tests.store.fixtures import make_journal_file, make_postgres_database, make_sqlite_database

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
#: The queue rules off: the tests' outbox has no relay, its staged events wait.
NO_QUEUES = {"dead_letters": False, "lag_after": None}
OFFLINE_RULES = Rules(offline_after=timedelta(minutes=15), **NO_QUEUES)


def offline_charger(database: Database, cp: str = "CP-1", *, at: datetime = T0) -> None:
    """``cp`` registered, connected an hour before ``at``, disconnected at ``at``."""
    database.run_sync(chargers.add_charge_point, cp, None, now=at - timedelta(days=1))
    database.run_sync(
        chargers.set_connected, cp, connection_id="c1", node="n1", at=at - timedelta(hours=1)
    )
    database.run_sync(chargers.set_disconnected, cp, connection_id="c1", at=at)


def reconnect(database: Database, cp: str, at: datetime) -> None:
    database.run_sync(chargers.set_connected, cp, connection_id="c2", node="n1", at=at)


class EvaluatorTestsMixin:
    """The same on every engine; ``make_database`` picks it."""

    def make_database(self) -> Database:
        raise NotImplementedError

    def make_journal_database(self) -> Database | None:
        """The embedded bus's journal file (SQLite); None: the journal is in the store."""
        return None

    def setUp(self) -> None:
        self.database = self.make_database()
        self.journal_database = self.make_journal_database()
        self.clock = Clock()
        self.clock.advance(T0.timestamp())

    def at(self, minutes: float) -> None:
        """Move the clock to ``minutes`` after T0."""
        self.clock.advance(T0.timestamp() + minutes * 60 - self.clock.seconds())

    def evaluator(
        self,
        rule_set: Rules = OFFLINE_RULES,
        *,
        channels: list[Any] | None = None,
        node: str = "n1",
    ) -> AlertEvaluator:
        return AlertEvaluator(
            database=self.database,
            clock=self.clock,
            node_id=node,
            rules=rule_set,
            interval=60,
            deliveries=Deliveries(
                channels or [],
                database=self.database,
                clock=self.clock,
                retry_delay=5,
                max_attempts=3,
            ),
            outbox=Outbox(node=node, clock=self.clock),
            journal_database=self.journal_database,
        )

    def open_keys(self) -> list[str]:
        return sorted(a.key for a in self.database.run_sync(observe.open_alerts))

    @inlineCallbacks
    def test_an_offline_charger_raises_one_alert_and_one_resolve(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """
        Through a webhook and e-mail: nothing within the threshold, one raise
        once beyond it however often evaluated, one resolve when it reconnects.
        """
        receiver, url = listen_webhook(self, [200])
        box, port = listen_smtp(self)
        channels = [
            WebhookChannel(
                url=url, secret=SECRET, timeout=10, clock=self.clock, http=webhook_client(reactor)
            ),
            EmailChannel(
                host="127.0.0.1",
                port=port,
                starttls=False,
                username="",
                password="",
                mail_from="ocppd@example.com",
                mail_to=("ops@example.com",),
                timeout=10,
                reactor=reactor,
            ),
        ]
        evaluator = self.evaluator(channels=channels)
        offline_charger(self.database)
        self.at(14)
        self.assertEqual((yield evaluator.evaluate()), [])
        self.at(16)
        raised = yield evaluator.evaluate()
        self.assertEqual(
            [(n.event, n.alert.key) for n in raised], [(RAISED, "charger_offline:CP-1")]
        )
        for minutes in (17, 30, 90):
            self.at(minutes)
            self.assertEqual((yield evaluator.evaluate()), [])
        reconnect(self.database, "CP-1", T0 + timedelta(minutes=91))
        self.at(92)
        resolved = yield evaluator.evaluate()
        self.assertEqual([n.event for n in resolved], [RESOLVED])
        self.at(93)
        self.assertEqual((yield evaluator.evaluate()), [])

        yield receiver.when(2)
        yield box.when(2)
        self.assertEqual([b["type"] for b in receiver.received], ["alert.raised", "alert.resolved"])
        self.assertEqual(receiver.signed_ok, [True, True])
        self.assertEqual(len({b["alert"]["id"] for b in receiver.received}), 1)
        self.assertEqual(receiver.received[1]["alert"]["resolvedAt"], "2026-12-07T09:32:00.000Z")
        subjects = [
            next(line for line in message.split(b"\n") if line.startswith(b"Subject:"))
            for _, message in box.received
        ]
        self.assertEqual(
            [s.split(b":")[1] for s in subjects], [b" [ocppd] ALERT", b" [ocppd] RESOLVED"]
        )
        self.assertEqual(self.open_keys(), [])
        yield evaluator.stop()

    @inlineCallbacks
    def test_a_restart_neither_refires_nor_forgets(self) -> Generator[Deferred[Any], Any, None]:
        """A new evaluator (the next process) finds the open alert: no raise; then its resolve."""
        offline_charger(self.database)
        self.at(20)
        first = yield self.evaluator().evaluate()
        self.assertEqual(len(first), 1)
        restarted = self.evaluator()
        self.at(30)
        self.assertEqual((yield restarted.evaluate()), [])
        reconnect(self.database, "CP-1", T0 + timedelta(minutes=31))
        self.at(32)
        resolved = yield self.evaluator().evaluate()
        self.assertEqual([(n.event, n.alert.id) for n in resolved], [(RESOLVED, first[0].alert.id)])

    @inlineCallbacks
    def test_nodes_sharing_the_database_raise_once(self) -> Generator[Deferred[Any], Any, None]:
        """Three nodes evaluate, at once and in turn: one raise, one resolve in all."""
        offline_charger(self.database)
        nodes = [self.evaluator(node=f"n{i}") for i in range(3)]
        self.at(20)
        together = yield gatherResults([node.evaluate() for node in nodes])
        for node in nodes:
            together.append((yield node.evaluate()))
        self.assertEqual(sum(len(notices) for notices in together), 1)
        reconnect(self.database, "CP-1", T0 + timedelta(minutes=21))
        self.at(22)
        together = yield gatherResults([node.evaluate() for node in nodes])
        self.assertEqual([n.event for notices in together for n in notices], [RESOLVED])

    @inlineCallbacks
    def test_faults_and_long_sessions(self) -> Generator[Deferred[Any], Any, None]:
        self.database.run_sync(chargers.add_charge_point, "CP-2", None, now=T0)
        self.database.run_sync(
            chargers.set_connector_status,
            "CP-2",
            1,
            status="Faulted",
            error_code="GroundFailure",
            info="\x1b[31m",
            at=T0,
        )
        self.database.run_sync(
            transactions.allocate_transaction,
            charge_point_id="CP-2",
            connector_id=2,
            id_tag="TAG",
            id_tag_status="Accepted",
            meter_start_wh=0,
            started_at=T0,
            now=T0,
        )
        evaluator = self.evaluator(Rules(session_after=timedelta(hours=24), **NO_QUEUES))
        self.at(60)
        first = yield evaluator.evaluate()
        self.assertEqual([n.alert.key for n in first], ["connector_faulted:CP-2/1"])
        self.at(24 * 60 + 1)
        later = yield evaluator.evaluate()
        self.assertEqual([n.alert.key for n in later], ["session_long:1"])
        self.database.run_sync(
            chargers.set_connector_status,
            "CP-2",
            1,
            status="Available",
            error_code="NoError",
            at=T0 + timedelta(hours=25),
        )
        self.at(25 * 60 + 1)
        cleared = yield evaluator.evaluate()
        self.assertEqual([(n.event, n.alert.kind) for n in cleared], [(RESOLVED, rules.FAULTED)])
        self.assertEqual(self.open_keys(), ["session_long:1"])

    @inlineCallbacks
    def test_dead_letters_and_lag_of_the_embedded_bus(self) -> Generator[Deferred[Any], Any, None]:
        """
        Read from its journal (the store's, or its file beside a SQLite
        store), per node; the outbox's lag too.
        """
        from ocppd.bus.envelope import Envelope

        envelope = Envelope.create("charger.connected", {}, node="n1", now=T0)
        body = envelope.to_bytes()
        with (self.journal_database or self.database).engine.begin() as conn:
            conn.execute(
                sa.insert(bus_journal),
                [
                    dict(
                        node="n1",
                        seq=1,
                        queue="processor",
                        routing_key="k",
                        message_id="m1",
                        body=body,
                        dead_attempts=5,
                        dead_reason="boom",
                        dead_failed_at=T0,
                    ),
                    dict(
                        node="n1",
                        seq=2,
                        queue="audit",
                        routing_key="k",
                        message_id="m2",
                        body=body,
                        dead_attempts=None,
                        dead_reason=None,
                        dead_failed_at=None,
                    ),
                ],
            )
        with self.database.engine.begin() as conn:
            conn.execute(
                sa.insert(outbox),
                [dict(node="n2", routing_key="k", envelope="{}", created_at=T0)],
            )
        evaluator = self.evaluator(Rules(offline_after=None, lag_after=300.0))
        self.at(4)
        first = yield evaluator.evaluate()
        self.assertEqual([n.alert.key for n in first], ["dead_letters:n1/processor"])
        self.at(6)
        later = yield evaluator.evaluate()
        self.assertEqual(sorted(n.alert.key for n in later), ["lag:n1/audit", "lag:n2/outbox"])

    @inlineCallbacks
    def test_broker_unreadable_keeps_queue_alerts(self) -> Generator[Deferred[Any], Any, None]:
        """RabbitMQ's counts unknown: its dead-letter alert stays open, not resolved."""
        now = T0 + timedelta(minutes=1)
        noticed = yield self.database.run(
            observe.evaluate,
            Rules(),
            now,
            node="n1",
            journal=False,
            broker=[QueueState("processor", 3, None)],
        )
        self.assertEqual([n.alert.key for n in noticed], ["dead_letters:processor"])
        unknown = yield self.database.run(
            observe.evaluate, Rules(), now, node="n1", journal=False, broker=None
        )
        self.assertEqual(unknown, [])
        cleared = yield self.database.run(
            observe.evaluate,
            Rules(),
            now,
            node="n1",
            journal=False,
            broker=[QueueState("processor", 0, None)],
        )
        self.assertEqual([n.event for n in cleared], [RESOLVED])

    @inlineCallbacks
    def test_each_node_alerts_its_own_consumers_lag(self) -> Generator[Deferred[Any], Any, None]:
        """RabbitMQ: lag read in each node's process, raised and resolved by that node only."""
        lag_rules = Rules(offline_after=None, faulted=False, session_after=None, lag_after=300.0)

        def evaluate(node: str, lag: float) -> Any:
            return self.database.run(
                observe.evaluate,
                lag_rules,
                T0,
                node=node,
                journal=False,
                broker=[],
                local=[QueueState("processor", None, lag)],
            )

        raised = yield evaluate("n1", 400.0)
        self.assertEqual([n.alert.key for n in raised], ["lag:n1/processor"])
        self.assertEqual((yield evaluate("n2", 0.0)), [])
        self.assertEqual(self.open_keys(), ["lag:n1/processor"])
        resolved = yield evaluate("n1", 10.0)
        self.assertEqual(
            [(n.event, n.alert.key) for n in resolved], [(RESOLVED, "lag:n1/processor")]
        )

    @inlineCallbacks
    def test_a_list_cut_at_its_bound_resolves_nothing(self) -> Generator[Deferred[Any], Any, None]:
        self.patch(observe, "BOUND", 2)
        for n in range(3):
            offline_charger(self.database, f"CP-{n}", at=T0 + timedelta(seconds=n))
        evaluator = self.evaluator()
        self.at(20)
        first = yield evaluator.evaluate()
        self.assertEqual(sorted(n.alert.subject for n in first), ["CP-0", "CP-1"])
        reconnect(self.database, "CP-0", T0 + timedelta(minutes=21))
        self.at(22)
        # CP-2 now fits in the list; CP-0 is online: the list was whole this time.
        second = yield evaluator.evaluate()
        self.assertEqual(
            sorted((n.event, n.alert.subject) for n in second),
            [(RAISED, "CP-2"), (RESOLVED, "CP-0")],
        )

    @inlineCallbacks
    def test_changes_are_staged_for_the_cms(self) -> Generator[Deferred[Any], Any, None]:
        """Each raise and resolve is a cms.alert.* event in the same transaction."""
        offline_charger(self.database)
        self.at(20)
        yield self.evaluator().evaluate()
        keys = self.database.run_sync(
            lambda conn: [r[0] for r in conn.execute(sa.select(outbox.c.routing_key))]
        )
        self.assertEqual(keys, ["cms.alert.raised"])
        rows = self.database.run_sync(lambda conn: conn.execute(sa.select(alerts)).all())
        self.assertEqual(len(rows), 1)

    @inlineCallbacks
    def test_the_timer(self) -> Generator[Deferred[Any], Any, None]:
        """Evaluated every interval, the first time one interval after the start."""
        offline_charger(self.database)
        self.at(20)
        evaluator = self.evaluator()
        evaluator.start()
        self.assertEqual(self.open_keys(), [])
        self.clock.advance(60)
        yield evaluator._running
        self.assertEqual(self.open_keys(), ["charger_offline:CP-1"])
        yield evaluator.stop()


class SQLiteEvaluatorTests(EvaluatorTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def make_journal_database(self) -> Database | None:
        return make_journal_file(self, self.database)


class PostgresEvaluatorTests(EvaluatorTestsMixin, TestCase):
    def make_database(self) -> Database:
        # The evaluation's advisory lock is the whole database's: a node of a test
        # in another trial worker evaluating at that moment made this test's
        # evaluation skip its turn (test_the_timer failed so). A key of its own;
        # the evaluators of one test still take turns on it.
        self.patch(observe, "ADVISORY_LOCK", secrets.randbits(62))
        return make_postgres_database(self)
