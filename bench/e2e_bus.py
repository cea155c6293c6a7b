"""
End-to-end OCPP throughput through the embedded bus and through RabbitMQ.

    .venv/bin/python bench/e2e_bus.py [--chargers 50] [--seconds 10]

For each backend, one ``twistd ocppd`` process (pinned to CPU 0) serves
``--chargers`` WebSocket connections driven from this process (pinned to CPU 1).
Each charger boots, starts a transaction and then sends MeterValues (four
sampled values) closed-loop, one outstanding call at a time, for ``--seconds``.
Measured per backend: answered MeterValues per second, answer latency p50/p99,
and stored samples per second (until the processor has caught up). The last
lines print RabbitMQ / embedded ratios, measured in the same run.

One backend alone, as ``bench/durable_bus.py`` runs it: ``OCPPD_BENCH_BACKEND``
(``memory`` or ``amqp``), the daemon's code from ``OCPPD_BENCH_SOURCE`` (default
this tree), its database from ``OCPPD_BENCH_STORE`` (``sqlite``, the default, or
``postgres``: a fresh database on the PostgreSQL of ``OCPPD_BENCH_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/test``, dropped afterwards) and
``OCPPD_BENCH_WORKLOAD``: ``MeterValues`` (default) or ``StartStop`` (each charger
starts a session and stops it, over and over, with an id tag of its own; "stored"
then counts completed sessions).

``OCPPD_BENCH_SPLIT`` runs the daemon as two processes on RabbitMQ
(``[ocppd] role``, docs/operations.md "Roles"): an ``edge`` on CPU 0 and a
``processor`` on CPU 0 too (``one-core``) or on CPU 1 (``two-cores``, which it
then shares with this load generator); ``bench/roles.py`` compares them.

``OCPPD_BENCH_SETTINGS``: more ``--set`` settings for the daemon, separated by
spaces (``bus.flow_limit=0`` compares the embedded bus without flow control).
``drain_s`` is how long the processor took, after the last answer, to store
what was answered: the backlog the run left.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

from servers import (  # bench/ is on sys.path: run as bench/<script>.py
    AMQP_URL,
    cpu_seconds,
    delete_topology,
    free_port,
    pinned,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from autobahn.twisted.websocket import (  # noqa: E402
    WebSocketClientFactory,
    WebSocketClientProtocol,
)
from twisted.internet import defer, reactor  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: E402

BIN = os.path.dirname(sys.executable)
POSTGRES_URL = os.environ.get("OCPPD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SAMPLES_PER_MESSAGE = 4


class Charger(WebSocketClientProtocol):
    """A closed-loop charger: one call outstanding, the next sent on the answer."""

    def onOpen(self) -> None:
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        message = json.loads(payload)
        waiting = self.factory.waiting.pop(message[1], None)
        if waiting is not None:
            waiting.callback(message)

    def call(self, action: str, body: dict[str, Any]) -> defer.Deferred[Any]:
        unique_id = uuid.uuid4().hex[:16]
        d: defer.Deferred[Any] = defer.Deferred()
        self.factory.waiting[unique_id] = d
        self.sendMessage(json.dumps([2, unique_id, action, body]).encode())
        return d


class ChargerFactory(WebSocketClientFactory):
    protocol = Charger

    def __init__(self, url: str) -> None:
        super().__init__(url, protocols=["ocpp1.6"])
        self.opened: defer.Deferred[Charger] = defer.Deferred()
        #: Answers awaited, by the unique id of their CALL.
        self.waiting: dict[str, defer.Deferred[Any]] = {}


def connect(port: int, charge_point_id: str) -> defer.Deferred[Charger]:
    factory = ChargerFactory(f"ws://127.0.0.1:{port}/ocpp/{charge_point_id}")
    factory.setProtocolOptions(autoPingInterval=0)
    TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory).addErrback(
        factory.opened.errback
    )
    return factory.opened


def meter_values(transaction_id: int, n: int) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_800_000_000 + n))
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [
            {
                "timestamp": f"{stamp}.{n % 1000:03d}Z",
                "sampledValue": [
                    {"value": str(1000 + n), "measurand": "Energy.Active.Import.Register"},
                    {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                    {"value": "16", "measurand": "Current.Import", "unit": "A"},
                    {"value": "230", "measurand": "Voltage", "unit": "V"},
                ],
            }
        ],
    }


@defer.inlineCallbacks
def drive(
    port: int,
    chargers: int,
    seconds: float,
    workload: str = "MeterValues",
    on_measuring: Callable[[], object] = lambda: None,
) -> Any:
    """
    Connect, boot and start ``chargers``, then drive ``workload`` closed-loop
    for ``seconds``; ``on_measuring`` is called when that measured loop starts.
    """
    connections = yield defer.gatherResults(
        [connect(port, f"B{i:04d}") for i in range(chargers)], consumeErrors=True
    )
    transactions = []
    for i, charger in enumerate(connections):
        yield charger.call("BootNotification", {"chargePointVendor": "B", "chargePointModel": "M"})
        answer = yield charger.call(
            "StartTransaction",
            {
                "connectorId": 1,
                "idTag": f"BENCH{i:04d}" if workload == "StartStop" else "BENCH",
                "meterStart": 0,
                "timestamp": f"2027-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
            },
        )
        transactions.append(answer[2]["transactionId"])
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds

    @defer.inlineCallbacks
    def timed(charger: Charger, action: str, body: dict[str, Any]) -> Any:
        sent = time.perf_counter()
        answer = yield charger.call(action, body)
        if answer[0] == 3:
            latencies.append(time.perf_counter() - sent)
        else:
            errors[0] += 1
        return answer

    @defer.inlineCallbacks
    def loop(charger: Charger, transaction_id: int, offset: int) -> Any:
        n = offset
        while time.monotonic() < deadline:
            yield timed(charger, "MeterValues", meter_values(transaction_id, n))
            n += 1

    @defer.inlineCallbacks
    def start_stop(charger: Charger, transaction_id: int, index: int) -> Any:
        # The session of the warm-up first, then sessions of a tag of its own.
        n = 0
        while time.monotonic() < deadline:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_800_000_030 + 60 * n))
            yield timed(
                charger,
                "StopTransaction",
                {
                    "transactionId": transaction_id,
                    "meterStop": 100 * n + 50,
                    "timestamp": f"{stamp}Z",
                },
            )
            n += 1
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_800_000_000 + 60 * n))
            answer = yield timed(
                charger,
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": f"BENCH{index:04d}",
                    "meterStart": 100 * n,
                    "timestamp": f"{stamp}Z",
                },
            )
            transaction_id = answer[2]["transactionId"]

    on_measuring()
    started = time.monotonic()
    driver = start_stop if workload == "StartStop" else loop
    yield defer.gatherResults(
        [
            driver(c, t, i * 1_000_000 if driver is loop else i)
            for i, (c, t) in enumerate(zip(connections, transactions, strict=True))
        ]
    )
    elapsed = time.monotonic() - started
    for charger in connections:
        charger.sendClose(1000)
    return latencies, errors[0], elapsed


ADD_CHARGERS = """
import sys
from ocppd.store import chargers
from ocppd.store.database import Database
from ocppd.timeutil import utcnow
database = Database.from_url(sys.argv[1])
for i in range(int(sys.argv[2])):
    database.run_sync(chargers.add_charge_point, f"B{i:04d}", None, now=utcnow())
database.stop()
"""


class BenchDatabase:
    """The daemon's database: the SQLite file of its data directory, or a fresh PostgreSQL one."""

    def __init__(self, kind: str, workdir: str) -> None:
        self.kind = kind
        self.sqlite = os.path.join(workdir, "ocppd.sqlite3")
        self.name = f"ocppd_bench_{uuid.uuid4().hex[:10]}"
        base = POSTGRES_URL.rsplit("/", 1)[0]
        self.url = f"{base}/{self.name}" if kind == "postgres" else ""
        if kind == "postgres":
            self._admin(f"CREATE DATABASE {self.name}")

    def _admin(self, statement: str) -> None:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(statement)

    def drop(self) -> None:
        if self.kind == "postgres":
            self._admin(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")

    def count(self, query: str) -> int:
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self.url) as conn:
                row = conn.execute(query).fetchone()
                return int(row[0]) if row else 0
        with sqlite3.connect(self.sqlite, timeout=30) as sqlite_conn:
            return int(sqlite_conn.execute(query).fetchone()[0])

    def add_tags(self, chargers: int) -> None:
        """An id tag per charger (``BENCH0000``...), for StartStop: one session per tag."""
        rows = [(f"BENCH{i:04d}", "2027-01-01 00:00:00.000000") for i in range(chargers)]
        insert = "INSERT INTO id_tags (id_tag, status, created_at) VALUES ({0}, 'Accepted', {0})"
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self.url) as conn, conn.cursor() as cursor:
                cursor.executemany(insert.format("%s"), rows)
            return
        with sqlite3.connect(self.sqlite, timeout=30) as sqlite_conn:
            sqlite_conn.executemany(insert.format("?"), rows)


def stored_samples(database: BenchDatabase) -> int:
    return database.count("SELECT count(*) FROM meter_values")


def stored_stops(database: BenchDatabase) -> int:
    """Sessions completed, each counted as its Stop and the Start that opened it."""
    return database.count("SELECT count(*) FROM transactions WHERE status = 'completed'")


#: The CPU of the processor process, by ``OCPPD_BENCH_SPLIT``; the edge is on CPU 0.
SPLIT_PROCESSOR_CPU = {"one-core": 0, "two-cores": 1}


def wait_for_port(port: int, what: str, log: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start; see {log}")


def io_counts(daemons: list[subprocess.Popen[bytes]]) -> dict[str, int]:
    """The daemons' ``write_bytes`` and ``syscw`` (``/proc/PID/io``), summed."""
    totals = {"write_bytes": 0, "syscw": 0}
    for process in daemons:
        with open(f"/proc/{process.pid}/io") as f:
            for line in f:
                name, _, value = line.partition(":")
                if name in totals:
                    totals[name] += int(value)
    return totals


def run_backend(
    backend: str,
    chargers: int,
    seconds: float,
    workload: str = "MeterValues",
    source: str = ROOT,
    store: str = "sqlite",
    split: str | None = None,
) -> dict[str, Any]:
    if split is not None and (split not in SPLIT_PROCESSOR_CPU or backend != "amqp"):
        raise ValueError(f"split {split!r}: one of {', '.join(SPLIT_PROCESSOR_CPU)}, on amqp")
    workdir = tempfile.mkdtemp(prefix=f"ocppd-bench-{backend}-")
    port = free_port()
    web_port = free_port()
    database = BenchDatabase(store, workdir)
    settings = [
        f"ocppd.data_dir={workdir}",
        f"ocpp.listen=tcp:{port}:interface=127.0.0.1",
        # Never the default 8080: other benchmarks and tests run on this machine.
        f"web.listen=tcp:{web_port}:interface=127.0.0.1",
    ]
    if database.url:
        settings.append(f"store.url={database.url}")
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    if backend == "amqp":
        settings += ["bus.backend=amqp", f"bus.url={AMQP_URL}", f"bus.prefix={prefix}"]
    settings += os.environ.get("OCPPD_BENCH_SETTINGS", "").split()
    sets = [arg for setting in settings for arg in ("--set", setting)]
    ocppctl = [os.path.join(BIN, "python"), "-m", "ocppd.cli", *sets]
    env = {**os.environ, "PYTHONPATH": source}
    # Only `db upgrade` creates the database; the other commands refuse a missing one.
    subprocess.run(
        [*ocppctl, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=source
    )
    # The chargers in one process of the measured code (an `ocppctl charger
    # add` each took minutes on a loaded machine).
    store_url = database.url or f"sqlite:///{database.sqlite}"
    subprocess.run(
        [os.path.join(BIN, "python"), "-c", ADD_CHARGERS, store_url, str(chargers)],
        env=env,
        check=True,
        capture_output=True,
        cwd=source,
    )
    subprocess.run(
        [*ocppctl, "tag", "add", "BENCH"], env=env, check=True, capture_output=True, cwd=source
    )
    if workload == "StartStop":
        database.add_tags(chargers)
    log = open(os.path.join(workdir, "ocppd.log"), "w")
    twistd = [os.path.join(BIN, "twistd"), "-n", "--pidfile=", "ocppd", *sets]
    daemons: list[subprocess.Popen[bytes]] = []
    if split is None:
        daemons.append(
            subprocess.Popen(
                pinned(0, twistd), env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
            )
        )
    else:
        # The processor first: it takes the web port, and the edge's messages wait
        # for it on the broker anyway. Each its own node id and web port.
        processor_web = free_port()
        processor_args = [
            *twistd,
            "--role=processor",
            "--set=ocppd.node_id=bench-processor",
            f"--set=web.listen=tcp:{processor_web}:interface=127.0.0.1",
        ]
        daemons.append(
            subprocess.Popen(
                pinned(SPLIT_PROCESSOR_CPU[split], processor_args),
                env=env,
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        wait_for_port(processor_web, "the processor", log.name)
        edge_args = [*twistd, "--role=edge", "--set=ocppd.node_id=bench-edge"]
        daemons.append(
            subprocess.Popen(
                pinned(0, edge_args), env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
            )
        )
    try:
        wait_for_port(port, f"ocppd ({backend})", log.name)
        time.sleep(0.5)  # the broker connection, for amqp
        result: dict[str, Any] = {}

        def done(outcome: Any) -> None:
            result["outcome"] = outcome
            result["ended"] = time.monotonic()
            reactor.stop()

        # The daemon's CPU (all its threads) from the first measured call (after
        # the chargers' connects, boots and starts) until its processor has
        # stored the last answered message: the cost per stored message.
        server_cpu_before: list[float] = []

        def cpu_by_process() -> list[float]:
            return [cpu_seconds(process.pid) for process in daemons]

        def server_cpu_now() -> float:
            return sum(cpu_by_process())

        processes_cpu_before: list[list[float]] = []

        io_before: list[dict[str, int]] = []

        def measuring() -> None:
            processes_cpu_before.append(cpu_by_process())
            server_cpu_before.append(sum(processes_cpu_before[0]))
            io_before.append(io_counts(daemons))

        reactor.callWhenRunning(
            lambda: drive(port, chargers, seconds, workload, measuring).addBoth(done)
        )
        cpu_before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]
        latencies, errors, elapsed = result["outcome"]
        cpu_after = resource.getrusage(resource.RUSAGE_SELF)
        if workload == "StartStop":
            # Each answered message is half a session; a Stop stores the pair.
            def stored() -> int:
                return 2 * stored_stops(database)
        else:

            def stored() -> int:
                return stored_samples(database) // SAMPLES_PER_MESSAGE

        # StartStop: each charger ends on a Start, so answered = 2 x completed.
        expected = len(latencies)
        while stored() < expected and time.monotonic() - started < 300:
            time.sleep(0.2)
        stored_elapsed = time.monotonic() - started
        drained = time.monotonic() - result["ended"]
        processes_cpu = [
            after - before
            for after, before in zip(cpu_by_process(), processes_cpu_before[0], strict=True)
        ]
        server_cpu = server_cpu_now() - server_cpu_before[0]
        io_after = io_counts(daemons)
        stored_messages = stored()
        latencies.sort()
        load_cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (
            cpu_before.ru_utime + cpu_before.ru_stime
        )
        return {
            "backend": backend,
            "answered": len(latencies),
            "errors": errors,
            "rate": len(latencies) / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2],
            "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
            "stored_rate": stored_messages / stored_elapsed,
            "drain_s": drained,
            "server_us_per_stored": server_cpu * 1e6 / max(stored_messages, 1),
            "load_cpu": load_cpu / elapsed,
            "split": split,
            # Each process's share: [all], or [processor, edge] when split.
            "process_us_per_stored": [cpu * 1e6 / max(stored_messages, 1) for cpu in processes_cpu],
            # The daemons' writes to storage (/proc/PID/io), from the first measured
            # call until the last answered message was stored: the WAL, the
            # checkpoints' copies into the database files.
            "write_kb_per_stored": (io_after["write_bytes"] - io_before[0]["write_bytes"])
            / 1024
            / max(stored_messages, 1),
            "write_calls_per_stored": (io_after["syscw"] - io_before[0]["syscw"])
            / max(stored_messages, 1),
        }
    finally:
        for process in reversed(daemons):
            process.send_signal(signal.SIGTERM)
        for process in reversed(daemons):
            process.wait(timeout=30)
        log.close()
        if backend == "amqp":
            delete_topology(prefix)
        database.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chargers", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    # One reactor per process: each backend runs in a child of its own.
    if os.environ.get("OCPPD_BENCH_BACKEND"):
        result = run_backend(
            os.environ["OCPPD_BENCH_BACKEND"],
            args.chargers,
            args.seconds,
            workload=os.environ.get("OCPPD_BENCH_WORKLOAD", "MeterValues"),
            source=os.environ.get("OCPPD_BENCH_SOURCE", ROOT),
            store=os.environ.get("OCPPD_BENCH_STORE", "sqlite"),
            split=os.environ.get("OCPPD_BENCH_SPLIT") or None,
        )
        print(json.dumps(result))
        return 0
    results = {}
    for backend in ("memory", "amqp"):
        out = subprocess.run(
            [sys.executable, __file__, f"--chargers={args.chargers}", f"--seconds={args.seconds}"],
            env={**os.environ, "OCPPD_BENCH_BACKEND": backend},
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            print(out.stdout, out.stderr, file=sys.stderr)
            return 1
        results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"{args.chargers} chargers, closed loop, MeterValues with {SAMPLES_PER_MESSAGE} "
        f"samples, {args.seconds:.0f} s; ocppd on CPU 0, load on CPU 1"
    )
    print(
        f"{'bus':8} {'answered/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'stored/s':>9} "
        f"{'errors':>7} {'load CPU':>9}"
    )
    for name, r in results.items():
        print(
            f"{name:8} {r['rate']:11.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
            f"{r['stored_rate']:9.0f} {r['errors']:7d} {r['load_cpu']:8.0%}"
        )
    memory, amqp = results["memory"], results["amqp"]
    print(
        f"ratio amqp/memory: answered {amqp['rate'] / memory['rate']:.2f}, "
        f"stored {amqp['stored_rate'] / memory['stored_rate']:.2f}, "
        f"p50 latency {amqp['p50_ms'] / memory['p50_ms']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
