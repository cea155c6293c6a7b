"""
The processor's cost per stored message, without sockets or a bus.

    .venv/bin/python bench/processor_batch.py [--postgres URL] [--batch 100] [--batches 20]

Applies batches of envelopes (as the processor's group commit does under load)
to a fresh database, in this thread, and prints the time (``--cpu``: this
thread's CPU time, steadier on a shared machine) per message for
Heartbeat (not logged, the default, and logged), StatusNotification and
MeterValues (4 sampled values, in a session), a charger's connect and
disconnect (``charger.connected`` and ``charger.disconnected`` with presence
fences) and BootNotification (what a node's restart brings from every
charger), next to the cost of one empty transaction: the reference that no
amount of batching in Python removes.
StartTransaction (a session.started event each) is measured without and with
the outbox, whose row per event is written in the same transaction.
``OCPPD_BENCH_SOURCE`` names another tree whose ``ocppd`` is measured
(``bench/processor_compare.py`` runs both, alternately).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# OCPPD_BENCH_SOURCE: another tree's ocppd (the code before an optimisation).
SOURCE = os.environ.get("OCPPD_BENCH_SOURCE", ROOT)
sys.path[:0] = [os.path.join(ROOT, "bench"), SOURCE]

import sqlalchemy as sa  # noqa: E402
from loadgen import METER_START_WH, meter_values_body  # noqa: E402
from scratch import scratch_database  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from ocppd.bus import topology  # noqa: E402
from ocppd.bus.envelope import Envelope  # noqa: E402
from ocppd.bus.outbox import Outbox  # noqa: E402
from ocppd.consumers.processor import OcppProcessor  # noqa: E402
from ocppd.store import chargers, tags, transactions  # noqa: E402
from ocppd.store.database import Database  # noqa: E402
from ocppd.timeutil import format_iso, utcnow  # noqa: E402

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
CHARGERS = 20


def inbound(charge_point_id: str, action: str, request: dict[str, Any], response: Any) -> Envelope:
    return Envelope.create(
        topology.ocpp_in(action),
        {
            "uniqueId": "0000000001",
            "action": action,
            "request": request,
            "response": response,
            "receivedAt": format_iso(utcnow()),
        },
        node="bench",
        charge_point_id=charge_point_id,
    )


def setup(database: Database) -> dict[str, int]:
    sessions = {}
    for n in range(CHARGERS):
        charge_point_id = f"CP{n:03}"
        database.run_sync(chargers.add_charge_point, charge_point_id, None, now=NOW)
        database.run_sync(tags.add_id_tag, f"TAG{n}", now=NOW)
        sessions[charge_point_id] = database.run_sync(
            transactions.allocate_transaction,
            charge_point_id=charge_point_id,
            connector_id=1,
            id_tag=f"TAG{n}",
            id_tag_status="Accepted",
            meter_start_wh=METER_START_WH,
            started_at=NOW,
            now=NOW,
        ).transaction_id
    return sessions


#: The last presence fence handed out: each connect and disconnect is newer.
_fences = iter(range(1, 2**62))

BOOT = {
    "chargePointVendor": "Bench",
    "chargePointModel": "Storm",
    "chargePointSerialNumber": "S-1",
    "firmwareVersion": "1.0.0",
}


def presence(charge_point_id: str, routing_key: str) -> Envelope:
    payload: dict[str, Any] = {
        "connectionId": f"c{next(_fences)}",
        "at": format_iso(utcnow()),
        "fence": next(_fences),
    }
    if routing_key == topology.CHARGER_CONNECTED:
        payload.update(node="bench", remote="127.0.0.1")
    else:
        payload.update(code=1006, reason=None)
    return Envelope.create(routing_key, payload, node="bench", charge_point_id=charge_point_id)


#: The last reading each charger's MeterValues carried, over every batch made.
_readings: dict[str, int] = {}


def envelopes(action: str, count: int, sessions: dict[str, int]) -> list[Envelope]:
    ids = list(sessions)
    made = []
    for n in range(count):
        charge_point_id = ids[n % len(ids)]
        if action in (topology.CHARGER_CONNECTED, topology.CHARGER_DISCONNECTED):
            made.append(presence(charge_point_id, action))
        elif action == "BootNotification":
            made.append(inbound(charge_point_id, action, BOOT, {"status": "Accepted"}))
        elif action == "Heartbeat":
            made.append(inbound(charge_point_id, action, {}, {"currentTime": format_iso(NOW)}))
        elif action == "StartTransaction":
            response = {"transactionId": sessions[charge_point_id], "idTagInfo": {}}
            made.append(inbound(charge_point_id, action, {}, response))
        elif action == "StatusNotification":
            request = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
            made.append(inbound(charge_point_id, action, request, {}))
        else:
            # Each message its charger's next reading: a new sample that moves the meter.
            reading = _readings[charge_point_id] = _readings.get(charge_point_id, 0) + 1
            request = json.loads(meter_values_body(sessions[charge_point_id], reading))
            made.append(inbound(charge_point_id, action, request, {}))
    return made


#: What a measurement reads: wall time, or this thread's CPU time (``--cpu``).
timer = time.perf_counter


def measure(database: Database, processor: OcppProcessor, batch: list[Envelope]) -> float:
    started = timer()
    database.run_sync(processor.apply_batch, batch)  # a failure raises
    return timer() - started


def empty_transaction(database: Database) -> float:
    started = timer()
    database.run_sync(lambda conn: conn.execute(sa.text("SELECT 1")))
    return timer() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: a new SQLite file)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--cpu", action="store_true", help="measure this thread's CPU time")
    args = parser.parse_args()
    if args.cpu:
        global timer
        timer = time.thread_time
    # A scratch schema (or SQLite file), never the database's own public schema.
    with scratch_database(args.postgres or "sqlite") as (engine, _):
        database = Database(engine)
        sessions = setup(database)
        processor = OcppProcessor(None, database, clock=Clock())  # type: ignore[arg-type]
        print(f"{database.dialect}, batches of {args.batch}, best of {args.batches}")
        print(f"{'message':20} {'us/message':>11} {'messages/s':>11}")
        empty = min(empty_transaction(database) for _ in range(50))
        print(f"{'(empty transaction)':20} {empty * 1e6:11.0f} {1 / empty:11.0f}")
        # "Heartbeat" as the daemon runs by default (only last_seen_at), and
        # with [ocpp] log_heartbeats = true (a message-log row each).
        for label, action, log_heartbeats in (
            ("Heartbeat", "Heartbeat", False),
            ("Heartbeat, logged", "Heartbeat", True),
            ("StatusNotification", "StatusNotification", False),
            ("MeterValues", "MeterValues", False),
            ("connect", topology.CHARGER_CONNECTED, False),
            ("disconnect", topology.CHARGER_DISCONNECTED, False),
            ("BootNotification", "BootNotification", False),
        ):
            processor.log_heartbeats = log_heartbeats
            best = min(
                measure(database, processor, envelopes(action, args.batch, sessions))
                for _ in range(args.batches)
            )
            per = best / args.batch
            print(f"{label:20} {per * 1e6:11.0f} {1 / per:11.0f}")
        processor.log_heartbeats = False
        plain = OcppProcessor(None, database, clock=Clock())  # type: ignore[arg-type]
        with_outbox = OcppProcessor(
            None,  # type: ignore[arg-type]
            database,
            clock=Clock(),
            outbox=Outbox(node="bench", clock=_WallClock()),  # type: ignore[arg-type]
        )
        # Interleaved, so that a drift of the machine hits both alike.
        fastest = {"StartTransaction": float("inf"), "  + outbox": float("inf")}
        for _ in range(args.batches):
            for label, consumer in (("StartTransaction", plain), ("  + outbox", with_outbox)):
                batch = envelopes("StartTransaction", args.batch, sessions)
                fastest[label] = min(fastest[label], measure(database, consumer, batch))
        costs = {label: elapsed / args.batch for label, elapsed in fastest.items()}
        for label, per in costs.items():
            print(f"{label:20} {per * 1e6:11.0f} {1 / per:11.0f}")
        ratio = costs["  + outbox"] / costs["StartTransaction"]
        print(f"outbox / no outbox: {ratio:.2f}")
        database.stop()


class _WallClock:
    def seconds(self) -> float:
        return time.time()


if __name__ == "__main__":
    main()
