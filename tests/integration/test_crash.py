"""
``kill -9`` of the embedded default (``twistd -n ocppd``, memory bus, SQLite)
right after chargers were told their MeterValues and StopTransactions were
accepted: after a restart on the same data directory, every acknowledged
Start/Stop/MeterValues is stored exactly once and every stopped session is
closed (the bus journal, docs/bus.md "Durability").

To make "acknowledged but not yet processed" certain rather than likely, the
test holds the store's SQLite write lock while the chargers send: the
processor cannot write then. A bus that answers before the message is durable
(the memory bus without a journal) answers everything at once, and the kill
lands with all of it in memory; the journaling bus answers once its write
committed in its journal file (beside the store, not held by the lock), and
the kill follows its last answer at once, ahead of the processor.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThread

from ocppd import cli
from ocppd.store import tables
from tests.integration.clients import connect
from tests.integration.test_amqp_faults import Charger
from tests.integration.test_twistd import INI, TwistdTestCase

CHARGERS = 5
#: MeterValues per session, between its start and its stop.
SAMPLES = 20
METER_START = 1000
STEP = 100
T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
#: The most the test holds the store's write lock (were the journal in the
#: store, the answers would wait for it: the test then goes on, it does not fail).
LOCK_HOLD = 2.0


def iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def key(n: int) -> str:
    return f"crash-key-{n:02d}-0123456789"


def start(n: int) -> dict[str, Any]:
    return {"connectorId": 1, "idTag": f"TAG{n}", "meterStart": METER_START, "timestamp": iso(T0)}


def sample(tx: int, i: int) -> dict[str, Any]:
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


def stop(tx: int, n: int) -> dict[str, Any]:
    return {
        "transactionId": tx,
        "meterStop": METER_START + (SAMPLES + 1) * STEP,
        "timestamp": iso(T0 + timedelta(minutes=SAMPLES + 1)),
        "reason": "Local",
        "idTag": f"TAG{n}",
    }


def stored(path: str, txs: list[int]) -> dict[str, Any]:
    """What the store holds of the sessions ``txs``: rows per session, and the logged CALLs."""
    engine = sa.create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            t, mv, log = tables.transactions, tables.meter_values, tables.message_log
            sessions = {
                row.id: (row.status, row.meter_stop_wh)
                for row in conn.execute(
                    sa.select(t.c.id, t.c.status, t.c.meter_stop_wh).where(t.c.id.in_(txs))
                )
            }
            samples = Counter(
                row.transaction_id
                for row in conn.execute(
                    sa.select(mv.c.transaction_id).where(mv.c.transaction_id.in_(txs))
                )
            )
            calls = Counter(
                (row.charge_point_id, row.unique_id)
                for row in conn.execute(
                    sa.select(log.c.charge_point_id, log.c.unique_id).where(
                        log.c.direction == "in", log.c.message_type == "CALL"
                    )
                )
            )
    finally:
        engine.dispose()
    return {"sessions": sessions, "samples": samples, "calls": calls}


class CrashTests(TwistdTestCase):
    timeout = 120

    def ocppctl(self, *argv: str, stdin: str = "") -> None:
        args = ["--config", INI, "--set", f"ocppd.data_dir={self.data_dir}"]
        code = cli.main([*args, *argv], stdin=io.StringIO(stdin), stdout=io.StringIO())
        self.assertEqual(code, 0, f"ocppctl {' '.join(argv)}")

    @inlineCallbacks
    def start_twistd(self) -> Any:
        """``twistd -n ocppd`` on this test's data directory; (process, transport, OCPP port)."""
        process, transport = self.twistd(f"ocppd.data_dir={self.data_dir}")
        self.addCleanup(self.terminate, process, transport)
        ready = yield self.until_ready(process)
        self.assertIsNotNone(ready, process.text)
        assert ready is not None
        return process, transport, int(ready.group(1))

    @inlineCallbacks
    def terminate(self, process: Any, transport: Any) -> Any:
        if not process.ended.called:
            transport.signalProcess(signal.SIGTERM)
        yield process.ended

    @inlineCallbacks
    def test_kill_9_after_acknowledgements_loses_nothing(self) -> Any:
        """
        Five chargers start a session each; with the processor held off, they
        send 20 MeterValues and a StopTransaction each; ocppd is killed (-9)
        the moment the last is acknowledged. After a restart every session is
        completed with its stop meter, every acknowledged sample is stored
        once, and every acknowledged CALL is in the message log once.
        """
        self.data_dir = os.path.abspath(self.mktemp())
        self.ocppctl("db", "upgrade")
        for n in range(CHARGERS):
            self.ocppctl("charger", "add", f"CP{n}", stdin=key(n) + "\n")
            self.ocppctl("tag", "add", f"TAG{n}")
        process, transport, port = yield self.start_twistd()
        chargers = []
        for n in range(CHARGERS):
            client = yield connect(port, f"CP{n}", key(n))
            charger = Charger(client, answer_timeout=20)
            self.addCleanup(charger.stop)
            chargers.append(charger)
        txs = []
        for n, charger in enumerate(chargers):
            boot = yield charger.call(
                "BootNotification", {"chargePointVendor": "V", "chargePointModel": "M"}
            )
            self.assertEqual(boot["status"], "Accepted")
            started = yield charger.call("StartTransaction", start(n))
            self.assertEqual(started["idTagInfo"]["status"], "Accepted")
            txs.append(started["transactionId"])

        database = os.path.join(self.data_dir, "ocppd.sqlite3")
        lock = sqlite3.connect(database, isolation_level=None, check_same_thread=False, timeout=10)
        yield deferToThread(lock.execute, "BEGIN IMMEDIATE")

        def release() -> None:
            if lock.in_transaction:
                lock.execute("ROLLBACK")

        releasing = reactor.callLater(LOCK_HOLD, release)

        @inlineCallbacks
        def charge(n: int) -> Any:
            for i in range(1, SAMPLES + 1):
                yield chargers[n].call("MeterValues", sample(txs[n], i))
            yield chargers[n].call("StopTransaction", stop(txs[n], n))

        done: Deferred[Any] = gatherResults([charge(n) for n in range(CHARGERS)])
        try:
            yield done
            # The moment the last answer is in: nothing in between.
            transport.signalProcess("KILL")
            status = yield process.ended
        finally:
            if releasing.active():
                releasing.cancel()
            release()
            lock.close()
        self.assertEqual(status, (None, signal.SIGKILL), process.text)
        acknowledged = {
            (f"CP{n}", unique_id)
            for n, charger in enumerate(chargers)
            for unique_id in charger.acknowledged
        }
        for charger in chargers:
            charger.client.protocol.transport.abortConnection()

        process, transport, port = yield self.start_twistd()
        expected = {tx: ("completed", METER_START + (SAMPLES + 1) * STEP) for tx in txs}
        deadline = reactor.seconds() + 20
        while True:
            found = yield deferToThread(stored, database, txs)
            if found["sessions"] == expected or reactor.seconds() > deadline:
                break
            yield deferLater(reactor, 0.1, lambda: None)
        summary = json.dumps(
            {
                "charger counts": [dict(c.counts) for c in chargers],
                "restored": [
                    line for line in process.text.splitlines() if "from the journal" in line
                ],
            }
        )
        self.assertEqual(found["sessions"], expected, f"sessions not closed; {summary}")
        self.assertEqual(
            dict(found["samples"]), {tx: SAMPLES for tx in txs}, f"samples per session; {summary}"
        )
        missing = sorted(acknowledged - set(found["calls"]))
        self.assertEqual(missing, [], f"acknowledged CALLs not logged; {summary}")
        twice = {call: count for call, count in found["calls"].items() if count > 1}
        self.assertEqual(twice, {}, f"CALLs logged twice; {summary}")
