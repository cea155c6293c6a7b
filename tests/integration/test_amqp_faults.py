"""
Fault tests of the RabbitMQ bus, end to end: a charger (an in-reactor OCPP-J
client that behaves like a real one) talks to a whole ocppd node on the real
broker of this machine, faults are injected on the broker or in the processor,
and what the charger saw acknowledged is compared with what the store holds.

Each test counts messages sent, acknowledged to the charger (CALLRESULT),
retried, stored and dead-lettered, and puts the counts in its failure
messages. On CI an unreachable broker (or a missing ``rabbitmqctl``) fails
the tests instead of skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, TestCase

from ocppd.bus import topology
from ocppd.bus.interface import BusError
from ocppd.store import chargers, messages, tables, transactions
from tests.integration.clients import TestClient, connect
from tests.integration.daemon import RunningDaemon, amqp_overrides, poll, start_daemon
from tests.services import on_ci

KEY = "s3cret-key-fault"
TAG = "TAG1"
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
METER_START = 1000
#: Wh added by each MeterValues of the stream.
STEP = 100


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


def meter_values(tx: int, i: int) -> dict[str, Any]:
    """The i-th MeterValues of a session: one energy sample, one minute apart."""
    return {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [
            {
                "timestamp": iso(T0 + timedelta(minutes=i)),
                "sampledValue": [
                    {
                        "value": str(METER_START + i * STEP),
                        "measurand": "Energy.Active.Import.Register",
                        "unit": "Wh",
                    }
                ],
            }
        ],
    }


def start_transaction() -> dict[str, Any]:
    return {"connectorId": 1, "idTag": TAG, "meterStart": METER_START, "timestamp": iso(T0)}


def stop_transaction(tx: int, n: int) -> dict[str, Any]:
    return {
        "transactionId": tx,
        "meterStop": METER_START + (n + 1) * STEP,
        "timestamp": iso(T0 + timedelta(minutes=n + 1)),
        "reason": "Local",
        "idTag": TAG,
    }


def stored_counts(path: str, tx: int) -> dict[str, int]:
    """Rows of a stopped node's SQLite store: processed data, and whether ``tx`` is active."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            counts = {
                table.name: int(
                    conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                )
                for table in (tables.meter_values, tables.message_log, tables.processed_messages)
            }
            t = tables.transactions
            query = sa.select(sa.func.count()).where(t.c.id == tx, t.c.status == "active")
            counts["active"] = int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()
    return counts


# --- The broker, through rabbitmqctl ----------------------------------------


def require_rabbitmqctl() -> str:
    path = shutil.which("rabbitmqctl")
    if path is None:
        reason = "rabbitmqctl is not on PATH (the fault tests drive the broker with it)"
        if on_ci():
            raise AssertionError(f"CI requires {reason}")
        raise SkipTest(reason)
    return path


@inlineCallbacks
def rabbitmqctl(*args: str) -> Any:
    """Run ``rabbitmqctl -s ARGS`` without blocking the reactor; its output rows, split on tabs."""
    out, err, code = yield getProcessOutputAndValue(
        require_rabbitmqctl(), ["-s", *args], env=dict(os.environ)
    )
    if code != 0:
        raise AssertionError(f"rabbitmqctl {' '.join(args)} exited {code}: {err.decode()}")
    return [line.split("\t") for line in out.decode().splitlines() if line.strip()]


@inlineCallbacks
def connection_pids(name: str) -> Any:
    """
    The broker's pids of the client connections named ``name``. rabbitmqctl's
    ``name`` column is the peer address; the client's ``connection_name`` is
    one of its ``client_properties``.
    """
    rows = yield rabbitmqctl("list_connections", "client_properties", "pid")
    wanted = '{"connection_name",' + json.dumps(name) + "}"
    return [row[-1] for row in rows if len(row) >= 2 and wanted in row[0]]


@inlineCallbacks
def queue_depths(prefix: str) -> Any:
    """``{queue: (ready + unacked, unacked)}`` for the broker queues under ``prefix``."""
    rows = yield rabbitmqctl("list_queues", "name", "messages", "messages_unacknowledged")
    return {
        row[0]: (int(row[1]), int(row[2]))
        for row in rows
        if len(row) == 3 and row[0].startswith(prefix + ".")
    }


# --- A charger ------------------------------------------------------------------


class Charger:
    """
    The charger's side of OCPP-J over a ``TestClient``: one CALL at a time;
    a CALL answered with a CALLERROR, or not answered within
    ``answer_timeout``, is resent after ``retry_pause`` with the same payload
    and a new uniqueId until a CALLRESULT comes (OCPP 1.6 4.1: transaction
    messages are retried until the central system accepts them).
    """

    def __init__(
        self, client: TestClient, *, answer_timeout: float = 3.0, retry_pause: float = 0.2
    ) -> None:
        self.client = client
        self.answer_timeout = answer_timeout
        self.retry_pause = retry_pause
        self.counts: Counter[str] = Counter()
        #: uniqueId -> (action, payload, response) of every CALLRESULT, late ones included.
        self.acknowledged: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {}
        #: uniqueId -> (action, payload) of every CALL sent.
        self.sent: dict[str, tuple[str, dict[str, Any]]] = {}
        self._waiting: dict[str, Deferred[list[Any]]] = {}
        self._seq = 0
        self._reading: Deferred[str] | None = None
        self._read()

    def _read(self) -> None:
        self._reading = self.client.messages.get()
        self._reading.addCallbacks(self._received, lambda failure: None)

    def _received(self, text: str) -> None:
        frame = json.loads(text)
        unique_id = frame[1]
        waiter = self._waiting.pop(unique_id, None)
        if waiter is not None:
            waiter.callback(frame)
        elif frame[0] == 3 and unique_id in self.sent:
            # An answer after we gave up on it: the daemon did take that CALL.
            self.counts["late_results"] += 1
            action, payload = self.sent[unique_id]
            self.acknowledged[unique_id] = (action, payload, frame[2])
        else:
            self.counts["unexpected_frames"] += 1
        self._read()

    def stop(self) -> None:
        if self._reading is not None and not self._reading.called:
            self._reading.cancel()

    @inlineCallbacks
    def call(self, action: str, payload: dict[str, Any], *, deadline: float = 30) -> Any:
        """Send until acknowledged; the CALLRESULT's payload."""
        give_up = reactor.seconds() + deadline
        first = True
        while True:
            self._seq += 1
            unique_id = f"{action}-{self._seq}"
            self.sent[unique_id] = (action, payload)
            self.counts["sent"] += 1
            self.counts[f"sent {action}"] += 1
            if not first:
                self.counts["retried"] += 1
            first = False
            answer: Deferred[list[Any]] = Deferred()
            self._waiting[unique_id] = answer
            answer.addTimeout(self.answer_timeout, reactor)
            self.client.send(json.dumps([2, unique_id, action, payload]))
            try:
                frame = yield answer
            except defer.TimeoutError:
                self._waiting.pop(unique_id, None)
                self.counts["timeouts"] += 1
            else:
                if frame[0] == 3:
                    self.counts["acknowledged"] += 1
                    self.acknowledged[unique_id] = (action, payload, frame[2])
                    return frame[2]
                code = frame[2]
                self.counts[f"error {code}"] += 1
                if code != "InternalError":
                    raise AssertionError(f"{action} {unique_id} answered {frame}")
            if reactor.seconds() > give_up:
                raise AssertionError(f"{action} not acknowledged within {deadline}s: {self.counts}")
            yield sleep(self.retry_pause)


# --- The test case base -------------------------------------------------------------


class AmqpFaultTestCase(TestCase):
    timeout = 45

    def amqp(self) -> list[str]:
        """Broker settings under a fresh prefix (deleted after the test) and a unique node id."""
        require_rabbitmqctl()
        self.node_id = f"faults-{uuid.uuid4().hex[:8]}"
        return [*amqp_overrides(self), f"ocppd.node_id={self.node_id}"]

    def prepare(self, daemon: RunningDaemon) -> None:
        daemon.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")
        daemon.ocppctl("tag", "add", TAG)

    def count_processing(self, daemon: RunningDaemon) -> Counter[str]:
        """Wrap ``apply_batch``: counts applied and duplicate (claimed) envelopes."""
        counts: Counter[str] = Counter()
        processor = daemon.node.processor
        original = processor.apply_batch

        def apply_batch(conn: Any, envelopes: Any) -> Any:
            outcomes = original(conn, envelopes)
            # Runs in a database thread; Counter updates are atomic enough under the GIL
            # for a test that reads them from the reactor thread afterwards. A failed
            # envelope rolled back alone and counts as neither.
            for outcome in outcomes:
                if isinstance(outcome, tuple):
                    counts["applied" if outcome[0] else "duplicates"] += 1
            return outcomes

        self.patch(processor, "apply_batch", apply_batch)
        return counts

    def count_publishes(self, daemon: RunningDaemon) -> Counter[str]:
        """
        Wrap the bus's ``publish``: counts confirmed and failed publishes per
        routing key, of what the processor consumes (OCPP traffic and charger
        events; the domain events it publishes itself are not its input).
        """
        counts: Counter[str] = Counter()
        bus = daemon.node.bus
        original = bus.publish
        processor_queue = daemon.node.topology.queue(topology.PROCESSOR_QUEUE)

        def publish(routing_key: str, envelope: Any) -> Deferred[None]:
            d = original(routing_key, envelope)
            if processor_queue not in daemon.node.topology.route(routing_key):
                return d

            def confirmed(result: Any) -> Any:
                counts["confirmed"] += 1
                counts[f"confirmed {routing_key}"] += 1
                return result

            def failed(failure: Any) -> Any:
                counts["failed"] += 1
                return failure

            return d.addCallbacks(confirmed, failed)

        self.patch(bus, "publish", publish)
        return counts

    @inlineCallbacks
    def connect_charger(self, daemon: RunningDaemon, **kwargs: Any) -> Any:
        client = yield connect(daemon.port, "CP1", KEY)
        charger = Charger(client, **kwargs)
        self.addCleanup(charger.stop)
        return charger

    @inlineCallbacks
    def disconnect(self, daemon: RunningDaemon, charger: Charger) -> Any:
        """Close the charger's socket and wait until its disconnect is stored."""
        charger.client.close()
        yield charger.client.closed
        yield daemon.wait_for(chargers.get_charge_point, "CP1", until=lambda r: not r.online)

    @staticmethod
    def stored_samples(daemon: RunningDaemon, tx: int) -> Deferred[Any]:
        return daemon.query(lambda conn: transactions.list_meter_values(conn, transaction_id=tx))

    @staticmethod
    def message_log(daemon: RunningDaemon) -> Deferred[Any]:
        return daemon.query(messages.list_messages, "CP1", limit=100_000)

    @staticmethod
    def session_count(daemon: RunningDaemon) -> Deferred[Any]:
        def count(conn: Any) -> int:
            t = tables.transactions
            query = sa.select(sa.func.count()).select_from(t).where(t.c.charge_point_id == "CP1")
            return int(conn.execute(query).scalar_one())

        return daemon.query(count)

    def check_log_exactly_once(
        self, log: list[Any], charger: Charger, summary: str
    ) -> tuple[int, int]:
        """
        Each acknowledged CALL is logged exactly once (CALL in, CALLRESULT out with
        the answer the charger got); no uniqueId is logged twice. Returns
        (acknowledged CALLs logged, unacknowledged CALLs logged).
        """
        calls = Counter(
            r.unique_id for r in log if r.direction == "in" and r.message_type == "CALL"
        )
        answers = {
            r.unique_id: r for r in log if r.direction == "out" and r.message_type == "CALLRESULT"
        }
        twice = {uid: n for uid, n in calls.items() if n > 1}
        self.assertEqual(twice, {}, f"CALLs logged more than once; {summary}")
        missing = sorted(set(charger.acknowledged) - set(calls))
        self.assertEqual(missing, [], f"acknowledged CALLs missing from the log; {summary}")
        for unique_id, (_, _, response) in charger.acknowledged.items():
            self.assertEqual(answers[unique_id].payload, response, summary)
        extra = set(calls) - set(charger.acknowledged)
        return len(calls) - len(extra), len(extra)


class BrokerDropsConnectionTests(AmqpFaultTestCase):
    N = 60
    CLOSE_AFTER = 20

    @inlineCallbacks
    def test_connection_closed_mid_stream(self) -> Any:
        """
        The broker closes the daemon's connection after 20 of 60 MeterValues:
        the charger's CALLs that failed meanwhile (InternalError, or no answer)
        are resent until acknowledged; after the reconnection every
        acknowledged sample is stored exactly once, the session is complete,
        and a resent StartTransaction gets the same transactionId.
        """
        daemon = yield start_daemon(self, *self.amqp())
        self.prepare(daemon)
        processing = self.count_processing(daemon)
        publishes = self.count_publishes(daemon)
        # The publishing connection: the charger's CALLs fail until it is back.
        name = f"ocppd {self.node_id} publish"
        before = yield connection_pids(name)
        self.assertEqual(len(before), 1, f"connections named {name!r}: {before}")
        charger = yield self.connect_charger(daemon)

        started = yield charger.call("StartTransaction", start_transaction())
        tx = started["transactionId"]
        closing: Deferred[Any] | None = None
        closed_at = None
        for i in range(1, self.N + 1):
            if closing is not None and not closing.called and i >= self.N - 10:
                # Keep at least 10 CALLs for after the close, so that it is mid-stream.
                yield closing
            if closing is not None and closing.called and closed_at is None:
                closed_at = i
            yield charger.call("MeterValues", meter_values(tx, i))
            if i == self.CLOSE_AFTER:
                # Not waited for: the stream goes on while the broker closes the connection.
                closing = rabbitmqctl("close_connection", before[0], "fault test")
        yield charger.call("StopTransaction", stop_transaction(tx, self.N))
        # A charger that lost the StartTransaction answer resends it: the same session.
        again = yield charger.call("StartTransaction", start_transaction())
        assert closing is not None
        yield closing

        def summary() -> str:
            return (
                f"connection closed before MeterValues {closed_at}; "
                f"charger {dict(charger.counts)}, publishes {dict(publishes)}, "
                f"processor {dict(processing)}"
            )

        after = yield poll(
            lambda: connection_pids(name), until=lambda pids: len(pids) == 1, timeout=15
        )
        self.assertNotEqual(after, before, f"the connection was not replaced; {summary()}")
        session = yield daemon.wait_for(
            transactions.get_transaction,
            tx,
            until=lambda t: t is not None and t.status == "completed",
            timeout=15,
        )
        expected = {
            iso(T0 + timedelta(minutes=i)): str(METER_START + i * STEP)
            for i in range(1, self.N + 1)
        }
        samples = yield poll(
            lambda: self.stored_samples(daemon, tx),
            until=lambda rows: len(rows) >= self.N,
            timeout=15,
        )
        stored = Counter((iso(s.timestamp), s.value) for s in samples)
        acked_samples = Counter(
            (
                payload["meterValue"][0]["timestamp"],
                payload["meterValue"][0]["sampledValue"][0]["value"],
            )
            for action, payload, _ in charger.acknowledged.values()
            if action == "MeterValues"
        )
        text = (
            f"{summary()}; MeterValues acknowledged {sum(acked_samples.values())} "
            f"({len(acked_samples)} distinct samples), stored {len(samples)}"
        )
        self.assertEqual([k for k, n in stored.items() if n > 1], [], f"stored twice; {text}")
        self.assertEqual(set(stored), set(expected.items()), f"stored != sent; {text}")
        self.assertEqual(set(acked_samples), set(expected.items()), f"not all acknowledged; {text}")
        self.assertEqual(session.meter_stop_wh - session.meter_start_wh, session.energy_wh, text)
        self.assertEqual(session.energy_wh, (self.N + 1) * STEP, text)
        start_ids = {
            response["transactionId"]
            for action, _, response in charger.acknowledged.values()
            if action == "StartTransaction"
        }
        self.assertEqual(start_ids, {tx}, text)
        self.assertEqual(again["transactionId"], tx, text)
        self.assertEqual((yield self.session_count(daemon)), 1, text)
        # The message log: each acknowledged CALL exactly once (the processor
        # absorbed redeliveries on the envelope id).
        log = yield poll(
            lambda: self.message_log(daemon),
            until=lambda rows: {r.unique_id for r in rows} >= set(charger.acknowledged),
            timeout=15,
        )
        logged, _ = self.check_log_exactly_once(log, charger, text)
        self.assertEqual(logged, len(charger.acknowledged), text)
        depths = yield poll(
            lambda: queue_depths(daemon.node.topology.prefix),
            until=lambda d: sum(n for n, _ in d.values()) == 0,
        )
        self.assertEqual(sum(n for n, _ in depths.values()), 0, f"{depths}; {text}")
        # Only what the broker confirmed was answered with a CALLRESULT.
        self.assertGreaterEqual(publishes["confirmed ocpp.in.MeterValues"], self.N, text)
        self.assertEqual(
            charger.counts["sent"],
            charger.counts["acknowledged"] + charger.counts["retried"],
            text,
        )
        self.assertEqual(charger.counts["unexpected_frames"], 0, text)
        # The outage was felt by the charger: some CALLs failed and were resent.
        self.assertGreaterEqual(charger.counts["retried"], 1, text)
        yield self.disconnect(daemon, charger)
        # The daemon logs the CALLs it could not publish (answered InternalError)
        # with a traceback; trial would count those as errors of this test.
        logged = self.flushLoggedErrors(BusError)
        self.assertLessEqual(len(logged), charger.counts["error InternalError"], text)


class ProcessorFailureTests(AmqpFaultTestCase):
    N = 6
    POISON = 3

    @inlineCallbacks
    def test_failure_retried_dead_lettered_and_replayed(self) -> Any:
        """
        The processor fails (after its writes, which roll back) on one
        MeterValues: it is retried max_attempts = 3 times with back-off, then
        dead-lettered with its reason and attempt count, while later messages
        are processed; after the fault is fixed, replay stores it exactly once.
        """
        daemon = yield start_daemon(self, *self.amqp(), "bus.max_attempts=3")
        self.prepare(daemon)
        processor = daemon.node.processor
        poison_at = iso(T0 + timedelta(minutes=self.POISON))
        failing = [True]
        tries: Counter[str] = Counter()
        original = processor.effects

        def is_poison(envelope: Any) -> bool:
            if envelope.type != topology.ocpp_in("MeterValues"):
                return False
            return envelope.payload["request"]["meterValue"][0]["timestamp"] == poison_at

        def effects(conn: Any, envelope: Any, writes: Any) -> Any:
            result = original(conn, envelope, writes)
            if is_poison(envelope) and failing[0]:
                raise RuntimeError("injected processor failure")
            return result

        original_together = processor.effects_together

        def effects_together(conn: Any, envelopes: list[Any], writes: Any) -> Any:
            # Consecutive MeterValues are applied in one call (on PostgreSQL
            # their statements are pipelined), not through ``effects``.
            result = original_together(conn, envelopes, writes)
            if failing[0] and any(is_poison(envelope) for envelope in envelopes):
                raise RuntimeError("injected processor failure")
            return result

        original_batch = processor.apply_batch

        def apply_batch(conn: Any, envelopes: list[Any]) -> Any:
            # A delivery of the poison is counted once: while it fails, where
            # it is applied alone (in a batch it fails with the others first,
            # then alone: BusConsumer._apply_each).
            for envelope in envelopes:
                if is_poison(envelope) and (len(envelopes) == 1 or not failing[0]):
                    tries[envelope.id] += 1
            return original_batch(conn, envelopes)

        self.patch(processor, "effects", effects)
        self.patch(processor, "effects_together", effects_together)
        self.patch(processor, "apply_batch", apply_batch)
        charger = yield self.connect_charger(daemon)
        started = yield charger.call("StartTransaction", start_transaction())
        tx = started["transactionId"]
        for i in range(1, self.N + 1):
            yield charger.call("MeterValues", meter_values(tx, i))
        yield charger.call("StopTransaction", stop_transaction(tx, self.N))

        bus = daemon.node.bus
        letters = yield poll(
            lambda: bus.dead_letters(topology.PROCESSOR_QUEUE),
            until=lambda letters: len(letters) >= 1,
        )

        def summary() -> str:
            return (
                f"charger {dict(charger.counts)}, dead letters {len(letters)}, "
                f"poison tries {dict(tries)}"
            )

        self.assertEqual(len(letters), 1, summary())
        letter = letters[0]
        self.assertEqual(letter.routing_key, "ocpp.in.MeterValues", summary())
        self.assertEqual(letter.attempts, 3, summary())
        self.assertEqual(letter.reason, "RuntimeError: injected processor failure", summary())
        self.assertEqual(dict(tries), {letter.id: 3}, summary())
        # The bus logs the first failed attempt with its traceback; the other
        # two, in the same minute, are counted in a summary line.
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1, summary())
        # Later messages went through; the failed one left nothing behind (rolled back).
        session = yield daemon.wait_for(
            transactions.get_transaction,
            tx,
            until=lambda t: t is not None and t.status == "completed",
        )
        samples = yield poll(
            lambda: self.stored_samples(daemon, tx), until=lambda rows: len(rows) >= self.N - 1
        )
        stored = sorted(iso(s.timestamp) for s in samples)
        self.assertEqual(len(samples), self.N - 1, f"{stored}; {summary()}")
        self.assertNotIn(poison_at, stored, summary())
        poison_uid = letter.envelope.payload["uniqueId"]
        log = yield self.message_log(daemon)
        self.assertNotIn(poison_uid, {r.unique_id for r in log}, summary())

        failing[0] = False
        replay = yield bus.replay_dead_letters(topology.PROCESSOR_QUEUE)
        replayed = replay.count
        self.assertEqual(replayed, 1, summary())
        samples = yield poll(
            lambda: self.stored_samples(daemon, tx), until=lambda rows: len(rows) >= self.N
        )
        log = yield poll(
            lambda: self.message_log(daemon),
            until=lambda rows: poison_uid in {r.unique_id for r in rows},
        )
        left = yield bus.dead_letters(topology.PROCESSOR_QUEUE)
        text = f"{summary()}, replayed {replayed}, stored samples {len(samples)}, left {len(left)}"
        self.assertEqual(left, [], text)
        self.assertEqual(dict(tries), {letter.id: 4}, text)
        stored_ts = Counter(iso(s.timestamp) for s in samples)
        self.assertEqual(
            stored_ts, Counter(iso(T0 + timedelta(minutes=i)) for i in range(1, self.N + 1)), text
        )
        self.check_log_exactly_once(log, charger, text)
        # The replayed sample arrived after the stop: the session's energy is unchanged.
        after = yield daemon.query(transactions.get_transaction, tx)
        self.assertEqual((after.status, after.energy_wh), ("completed", session.energy_wh), text)
        self.assertEqual(after.energy_wh, (self.N + 1) * STEP, text)
        yield self.disconnect(daemon, charger)


class StoppedWhileQueuedTests(AmqpFaultTestCase):
    N = 10

    @inlineCallbacks
    def test_messages_wait_on_the_broker_for_the_next_node(self) -> Any:
        """
        Node A takes a session with its processor stopped, then stops: the
        messages wait in the processor queue with no node running and nothing
        stored. Node B (same prefix and database) processes them all, once.
        """
        overrides = self.amqp()
        data_dir = os.path.abspath(self.mktemp())
        os.makedirs(data_dir)
        shared = [*overrides, f"ocppd.data_dir={data_dir}"]
        node_a = yield start_daemon(self, *shared)
        self.prepare(node_a)
        publishes = self.count_publishes(node_a)
        yield node_a.node.processor.stop()
        charger = yield self.connect_charger(node_a)
        started = yield charger.call("StartTransaction", start_transaction())
        tx = started["transactionId"]
        for i in range(1, self.N + 1):
            yield charger.call("MeterValues", meter_values(tx, i))
        yield charger.call("StopTransaction", stop_transaction(tx, self.N))
        charger.client.close()
        yield charger.client.closed
        yield node_a.service.stopService()
        # Nothing the processor writes is in the store yet (read from the file:
        # no node runs); the session row was allocated in the request path.
        rows = stored_counts(os.path.join(data_dir, "ocppd.sqlite3"), tx)

        prefix = node_a.node.topology.prefix
        work_queue = node_a.node.topology.queue_full_name(topology.PROCESSOR_QUEUE)
        depths = yield queue_depths(prefix)
        # Every confirmed publish (OCPP traffic and charger events) routes to the processor.
        text = (
            f"charger {dict(charger.counts)}, publishes {dict(publishes)}, "
            f"queues while stopped {depths}"
        )
        self.assertEqual(depths[work_queue], (publishes["confirmed"], 0), text)
        self.assertEqual(publishes["failed"], 0, text)
        self.assertEqual(publishes["confirmed"], charger.counts["sent"] + 2, text)  # + (dis)connect
        self.assertEqual(
            rows, {"meter_values": 0, "message_log": 0, "processed_messages": 0, "active": 1}, text
        )

        node_b = yield start_daemon(self, *shared)
        processing = self.count_processing(node_b)
        session = yield node_b.wait_for(
            transactions.get_transaction,
            tx,
            until=lambda t: t is not None and t.status == "completed",
        )
        samples = yield poll(
            lambda: self.stored_samples(node_b, tx), until=lambda rows: len(rows) >= self.N
        )
        log = yield poll(
            lambda: self.message_log(node_b),
            until=lambda rows: {r.unique_id for r in rows} >= set(charger.acknowledged),
        )
        depths = yield poll(
            lambda: queue_depths(prefix), until=lambda d: sum(n for n, _ in d.values()) == 0
        )
        text += f", processor on node B {dict(processing)}, stored samples {len(samples)}"
        self.assertEqual(
            sorted(iso(s.timestamp) for s in samples),
            [iso(T0 + timedelta(minutes=i)) for i in range(1, self.N + 1)],
            text,
        )
        self.assertEqual(session.energy_wh, (self.N + 1) * STEP, text)
        self.check_log_exactly_once(log, charger, text)
        self.assertEqual(len(log), 2 * charger.counts["sent"], text)
        # Node B consumes from its first moment, before this test's counter is
        # in place: its claims in the store count every message it applied,
        # but for the MeterValues, which are applied without a claim
        # (docs/bus.md, "Claims"): the samples above show each of those once.
        claims = yield node_b.query(
            lambda conn: conn.execute(
                sa.select(sa.func.count())
                .select_from(tables.processed_messages)
                .where(tables.processed_messages.c.consumer == "processor")
            ).scalar_one()
        )
        metered = publishes["confirmed ocpp.in.MeterValues"]
        self.assertEqual(metered, self.N, text)
        self.assertEqual(claims, publishes["confirmed"] - metered, text)
        self.assertEqual(processing["duplicates"], 0, text)
        self.assertEqual(sum(n for n, _ in depths.values()), 0, text)
        # The session row was allocated before anything was processed; still one.
        self.assertEqual((yield self.session_count(node_b)), 1, text)


class CountsMatchTests(AmqpFaultTestCase):
    N = 10

    @inlineCallbacks
    def test_broker_counts_match_stored_rows(self) -> Any:
        """
        A session on RabbitMQ without faults: every confirmed publish was
        delivered to the processor and applied once, the broker's queues end
        empty (nothing ready, unacknowledged, waiting for a retry or dead), and
        the store holds 2 log rows per inbound CALL (Heartbeats logged too),
        one row per sample sent, and one session.
        """
        daemon = yield start_daemon(self, *self.amqp(), "ocpp.log_heartbeats=true")
        self.prepare(daemon)
        processing = self.count_processing(daemon)
        publishes = self.count_publishes(daemon)
        charger = yield self.connect_charger(daemon)
        yield charger.call("BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"})
        yield charger.call(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Preparing", "timestamp": iso(T0)},
        )
        yield charger.call("Authorize", {"idTag": TAG})
        started = yield charger.call("StartTransaction", start_transaction())
        tx = started["transactionId"]
        for i in range(1, self.N + 1):
            yield charger.call("MeterValues", meter_values(tx, i))
        yield charger.call("StopTransaction", stop_transaction(tx, self.N))
        yield charger.call("Heartbeat", {})
        yield self.disconnect(daemon, charger)

        calls = charger.counts["sent"]
        log = yield poll(
            lambda: self.message_log(daemon), until=lambda rows: len(rows) >= 2 * calls
        )
        depths = yield poll(
            lambda: queue_depths(daemon.node.topology.prefix),
            until=lambda d: sum(n for n, _ in d.values()) == 0,
        )
        samples = yield self.stored_samples(daemon, tx)
        sessions = yield self.session_count(daemon)
        inbound = sum(n for key, n in publishes.items() if key.startswith("confirmed ocpp.in."))
        text = (
            f"charger {dict(charger.counts)}, publishes {dict(publishes)}, "
            f"processor {dict(processing)}, broker {depths}, log rows {len(log)}, "
            f"samples {len(samples)}, sessions {sessions}"
        )
        self.assertEqual(charger.counts["sent"], charger.counts["acknowledged"], text)
        self.assertEqual(inbound, calls, text)
        self.assertEqual(publishes["failed"], 0, text)
        # connected + disconnected
        self.assertEqual(publishes["confirmed"], calls + 2, text)
        self.assertEqual(processing["applied"], publishes["confirmed"], text)
        self.assertEqual(processing["duplicates"], 0, text)
        self.assertEqual(sum(n for n, _ in depths.values()), 0, text)
        self.assertEqual(sum(u for _, u in depths.values()), 0, text)
        self.assertEqual(len(log), 2 * calls, text)
        self.check_log_exactly_once(log, charger, text)
        self.assertEqual(len(samples), self.N, text)
        self.assertEqual(sessions, 1, text)
