"""
The request path of a transaction message without sockets: CPU per message on
the reactor thread and on the others (the database thread's journal writes).

    .venv/bin/python bench/request_path.py [--action MeterValues] [--messages 20000]

It runs this tree's ``ocppd``, or the one in the directory ``OCPPD_BENCH_SOURCE`` names.

On the real reactor, with the embedded default's parts as ``twistd ocppd``
wires them: ``ChargerConnection`` per charger, ``CentralSystemHandlers``,
``TrafficPublisher`` (a Heartbeat to the ``LastSeenWriter``, not the bus, as
with the default ``[ocpp] log_heartbeats``), ``MemoryBus`` journaling to
``StoreJournal`` in the journal file beside the SQLite store (on its own
database thread), and the notifier consuming (no page open); the
processor does not consume, as in ``ocppd-noproc``. ``--processor`` adds the
processor as ``twistd ocppd`` wires it (``EventPublisher``, the outbox and its
relay), each charger's MeterValues then in a session of its own: the reactor's
share of the processor's work per message (batch deliveries,
acknowledgements, the ``session.updated`` it publishes). ``--connections``
chargers in a closed loop, each sending its next CALL on the turn after its
answer. What it leaves out is Autobahn and the sockets, so the bus's and the
journal's share of a MeterValues stands out.

``--callgrind LIB`` counts instructions of the measured messages alone under
``valgrind --tool=callgrind --instr-atstart=no --separate-threads=yes``:
``LIB`` is a shared library built from ``valgrind/callgrind.h`` with
``void cg_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION; }``
and ``void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; CALLGRIND_DUMP_STATS_AT("measured"); }``
(``gcc -O2 -shared -fPIC``); each thread's total over ``--messages`` is its
instructions per message.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# This tree's ocppd, or the one OCPPD_BENCH_SOURCE names (the code before a change).
sys.path.insert(0, os.environ.get("OCPPD_BENCH_SOURCE", os.path.dirname(sys.path[0])))

from loadgen import METER_START_WH, meter_values_body
from servers import prepare_ocppd
from twisted.internet import reactor

from ocppd.bus import topology
from ocppd.bus.memory import MemoryBus
from ocppd.bus.outbox import Outbox
from ocppd.bus.publisher import EventPublisher
from ocppd.bus.relay import OutboxRelay
from ocppd.consumers.notifier import Notifier, shown_inbound
from ocppd.consumers.processor import OcppProcessor
from ocppd.gcsettings import settle_heap
from ocppd.ocpp.connection import ChargerConnection
from ocppd.ocpp.handlers import CentralSystemHandlers
from ocppd.ocpp.last_seen import LastSeenWriter
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.store import chargers, transactions
from ocppd.store.database import Database
from ocppd.store.journal import StoreJournal

try:
    from ocppd.store.journal import journal_database, prepare_journal_file

    JOURNAL_FILE = True
except ImportError:  # OCPPD_BENCH_SOURCE: a tree whose journal is in the store
    JOURNAL_FILE = False
from ocppd.timeutil import utcnow

NODE = "bench"


def thread_ticks() -> dict[int, int]:
    """User + system clock ticks of each thread of this process."""
    ticks = {}
    for tid in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{tid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks[int(tid)] = int(fields[11]) + int(fields[12])
    return ticks


class NobodyListening:
    """The push channel of a node without an open page."""

    def listening(self) -> bool:
        return False

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        return 0


def open_sessions(database: Database, charge_point_ids: list[str]) -> dict[str, int]:
    """A charger and an open session on its connector 1 for each id: its transaction id."""
    now = utcnow()
    sessions = {}
    for charge_point_id in charge_point_ids:
        database.run_sync(chargers.add_charge_point, charge_point_id, None, now=now)
        sessions[charge_point_id] = database.run_sync(
            transactions.allocate_transaction,
            charge_point_id=charge_point_id,
            connector_id=1,
            id_tag="BENCH",
            id_tag_status="Accepted",
            meter_start_wh=METER_START_WH,
            started_at=now,
            now=now,
        ).transaction_id
    return sessions


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--action", choices=["Heartbeat", "MeterValues"], default="MeterValues")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--warmup", type=int, default=3000)
    parser.add_argument("--callgrind", metavar="LIB", help="toggle callgrind around the messages")
    parser.add_argument("--processor", action="store_true", help="the processor consumes too")
    args = parser.parse_args()
    # Without the processor its queue holds every message (at most 100,000).
    assert args.processor or args.warmup + args.messages < 100_000
    callgrind = ctypes.CDLL(args.callgrind) if args.callgrind else None

    data_dir = prepare_ocppd(0, 0)
    database = Database.from_url(f"sqlite:///{data_dir}/ocppd.sqlite3", reactor=reactor)
    database.start()
    routes = topology.default_topology(
        node_id=NODE, notifier_inbound=shown_inbound(log_heartbeats=False)
    )
    # As twistd ocppd wires it: the journal in its file beside the store, on a
    # database thread of its own (or in the store, in a tree from before that).
    journal = journal_database(database.engine.url, reactor=reactor) if JOURNAL_FILE else None
    if journal is not None:
        journal.start()
        journal.run_sync(prepare_journal_file)
    bus = MemoryBus(routes, reactor=reactor, journal=StoreJournal(journal or database, NODE))
    bus.startService()
    Notifier(bus, NobodyListening()).start(topology.notifier_queue(NODE))
    last_seen = LastSeenWriter(database, reactor)
    last_seen.startService()
    traffic = TrafficPublisher(bus, node=NODE, clock=reactor, heartbeats=last_seen)
    handlers = CentralSystemHandlers(
        database=database,
        tags=None,  # type: ignore[arg-type]
        traffic=traffic,
        clock=reactor,
        heartbeat_interval=300,
    )
    schemas = SchemaRegistry.load()
    sessions = {f"CP{i:05d}": 5 for i in range(args.connections)}
    if args.processor:
        sessions = open_sessions(database, list(sessions))
        relay = OutboxRelay(database, bus, node=NODE, clock=reactor)
        processor = OcppProcessor(
            bus,
            database,
            events=EventPublisher(bus, node=NODE, clock=reactor),
            clock=reactor,
            outbox=Outbox(node=NODE, clock=reactor, relay=relay),
        )
        relay.start()
        processor.start(topology.PROCESSOR_QUEUE)
    counts = {"sent": 0, "answered": 0}
    marks: dict[str, tuple[float, float, dict[int, int]]] = {}

    def mark(name: str) -> None:
        marks[name] = (time.thread_time(), time.perf_counter(), thread_ticks())

    class Charger:
        connection: ChargerConnection
        #: The bodies this charger sends, made before the measurement: each
        #: MeterValues a new reading of its session.
        bodies: list[str]
        next_body = 0

        def send_text(self, text: str) -> None:
            counts["answered"] += 1
            answered = counts["answered"]
            if answered == args.warmup:
                mark("start")
                if callgrind is not None:
                    callgrind.cg_start()
            elif answered == args.warmup + args.messages:
                if callgrind is not None:
                    callgrind.cg_stop()
                mark("end")
                reactor.stop()
                return
            reactor.callLater(0, self.send_next)

        def send_next(self) -> None:
            counts["sent"] += 1
            body = self.bodies[self.next_body]
            self.next_body += 1
            frame = f'[2,"{counts["sent"]:010d}","{args.action}",{body}]'
            self.connection.text_received(frame)

        def close(self, code: int, reason: str) -> None:
            pass

    for charge_point_id, transaction_id in sessions.items():
        charger = Charger()
        each = 2 * (args.warmup + args.messages) // len(sessions) + 10
        charger.bodies = [
            meter_values_body(transaction_id, n) if args.action == "MeterValues" else "{}"
            for n in range(1, each + 1)
        ]
        charger.connection = ChargerConnection(
            charge_point_id,
            connection_id=f"c{charge_point_id}",
            registration_status="Accepted",
            transport=charger,
            handler=handlers,
            schemas=schemas,
            traffic=traffic,
            clock=reactor,
            call_timeout=30,
        )
        reactor.callLater(0, charger.send_next)
    reactor.callWhenRunning(settle_heap)
    reactor.run()
    shutil.rmtree(data_dir, ignore_errors=True)

    (cpu0, wall0, ticks0), (cpu1, wall1, ticks1) = marks["start"], marks["end"]
    reactor_thread = threading.get_native_id()
    others = sum(
        ticks1[tid] - ticks0.get(tid, 0) for tid in ticks1 if tid != reactor_thread
    ) / os.sysconf("SC_CLK_TCK")
    n = args.messages
    print(
        f"{args.action}: {n / (wall1 - wall0):.0f}/s; reactor thread "
        f"{1e6 * (cpu1 - cpu0) / n:.1f} us/msg, other threads {1e6 * others / n:.1f} us/msg"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
