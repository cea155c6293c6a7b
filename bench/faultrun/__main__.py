"""
``bench/faults``: the soak and fault run of issue 14; see bench/README.md.

    bench/faults --config both --chargers 20 --duration 30

For each configuration: private services, the daemon, the chargers
charging; a steady phase, then each fault followed by ``--duration`` s of
steady charging; then every session stopped, the bus drained, the record
compared with the store. Prints the Markdown table; exits 1 if anything
acknowledged was lost or stored twice.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .check import (
    Phase,
    Totals,
    compare,
    log_kinds,
    log_section,
    read_record,
    recovery_times,
    table,
)
from .faults import Fault, Services, amqp_pg_faults, embedded_faults
from .services import ROOT, Daemon, Postgres, Rabbit, wait_until

KEY = "faults-key-0123456789"
PREFIX = "FAULT"
ID_TAG = "FAULTS"
BUS_PREFIX = "faults"
BENCH = os.path.join(ROOT, "bench")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def prepare(daemon: Daemon, chargers: int) -> None:
    """
    Migrate the store; add the chargers (one key) and an idTag per connector,
    with ``ocppctl`` (in this process: one interpreter start, not hundreds).
    """
    import io

    from ocppd import cli

    sets = [arg for s in daemon.settings for arg in ("--set", s)]

    def ocppctl(*argv: str, stdin: str = "") -> None:
        out = io.StringIO()
        if cli.main([*sets, *argv], stdin=io.StringIO(stdin), stdout=out) != 0:
            raise RuntimeError(f"ocppctl {' '.join(argv)} failed: {out.getvalue()}")

    ocppctl("db", "upgrade")
    for n in range(chargers):
        ocppctl("charger", "add", f"{PREFIX}{n:04d}", stdin=KEY + "\n")
        for connector in (1, 2):
            ocppctl("tag", "add", f"{ID_TAG}{n:04d}{connector}")


def start_fleet(
    daemon: Daemon, options: argparse.Namespace, record: str
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "faultrun.chargers",
        "--url",
        daemon.url,
        "--count",
        str(options.chargers),
        "--prefix",
        PREFIX,
        "--key",
        KEY,
        "--id-tag-prefix",
        ID_TAG,
        "--record",
        record,
        "--meter-interval",
        str(options.meter_interval),
    ]
    log = open(record + ".log", "w")
    return subprocess.Popen(
        argv,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([BENCH, ROOT])},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def drained(services: Services, last: list[tuple[int, ...]]) -> bool:
    """The bus backlog is empty (RabbitMQ), or the store stopped changing (memory bus)."""
    if services.rabbit is not None:
        return services.rabbit.backlog(BUS_PREFIX) == 0
    import sqlalchemy as sa

    from ocppd.store import tables

    engine = sa.create_engine(store_url(services))
    with engine.connect() as conn:
        now = tuple(
            int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
            for t in (tables.transactions, tables.meter_values, tables.message_log)
        )
        stopped = conn.execute(
            sa.select(sa.func.count()).where(tables.transactions.c.stopped_at.isnot(None))
        ).scalar_one()
    engine.dispose()
    now = (*now, int(stopped))
    same = bool(last) and last[-1] == now
    last.append(now)
    return same


def store_url(services: Services) -> str:
    if services.postgres is not None:
        return services.postgres.url
    return f"sqlite:///{services.daemon.workdir}/data/ocppd.sqlite3"


def run_config(config: str, options: argparse.Namespace) -> tuple[list[Phase], Totals]:
    workdir = tempfile.mkdtemp(prefix=f"ocppd-faults-{config}-")
    os.makedirs(os.path.join(workdir, "data"))
    settings = [
        f"ocppd.data_dir={workdir}/data",
        "ocppd.node_id=faults",
        "ocpp.heartbeat_interval=30",
        f"web.webroot={ROOT}/webroot",
    ]
    postgres = rabbit = None
    fleet = None
    daemon = Daemon(settings, workdir)
    try:
        if config == "amqp-pg":
            say("starting a private PostgreSQL and a private RabbitMQ node")
            postgres = Postgres()
            rabbit = Rabbit()
            amqp = rabbit.url + "?heartbeat=5&blocked_connection_timeout=30"
            daemon.settings += [
                f"store.url={postgres.url}",
                "bus.backend=amqp",
                f"bus.url={amqp}",
                f"bus.prefix={BUS_PREFIX}",
            ]
            faults: list[Fault] = amqp_pg_faults()
        else:
            faults = embedded_faults()
        services = Services(daemon, BUS_PREFIX, f"{PREFIX}0000", postgres, rabbit)
        prepare(daemon, options.chargers)
        daemon.start()
        record = os.path.join(workdir, "acks.jsonl")
        say(f"{config}: ocppd pid {daemon.pid}, {options.chargers} chargers; workdir {workdir}")
        fleet = start_fleet(daemon, options, record)
        phases = [Phase(config, "steady charging", time.time(), log_from=daemon.log_lines())]
        phases[0].restored = phases[0].started
        phases[0].rss_start_kib = daemon.rss_kib()
        time.sleep(options.duration)
        for fault in faults:
            if options.only and not any(o in fault.name for o in options.only):
                continue
            previous = phases[-1]
            previous.ended = time.time()
            previous.rss_end_kib = daemon.rss_kib()
            previous.log_to = daemon.log_lines()
            phase = Phase(config, fault.name, time.time(), log_from=previous.log_to)
            phase.rss_start_kib = daemon.rss_kib()
            phases.append(phase)
            say(f"{config}: fault: {fault.name}")
            fault.inject(services)
            phase.restored = time.time()
            time.sleep(options.duration)
        last = phases[-1]
        say(f"{config}: stopping every session")
        fleet.send_signal(signal.SIGUSR1)
        fleet.wait(timeout=300)
        fleet = None
        history: list[tuple[int, ...]] = []
        took = wait_until(lambda: drained(services, history), 300, "the bus to drain", step=3)
        say(f"{config}: drained in {took:.0f} s")
        last.ended = time.time()
        last.rss_end_kib = daemon.rss_kib()
        last.log_to = daemon.log_lines()
        daemon.stop()
        with open(daemon.log_path, errors="replace") as f:
            log = f.read().splitlines()
        for phase in phases:
            phase.log_lines = phase.log_to - phase.log_from
            phase.log_kinds = log_kinds(log[phase.log_from : phase.log_to])
        events = read_record(record)
        recovery_times(phases, events)
        totals = compare(store_url(services), events, phases)
        return phases, totals
    finally:
        if fleet is not None:
            fleet.kill()
        daemon.stop()
        if rabbit is not None:
            rabbit.close()
        if postgres is not None:
            postgres.close()
        if options.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=("amqp-pg", "embedded", "both"), default="both")
    parser.add_argument("--chargers", type=int, default=20)
    parser.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="seconds of steady charging before the first fault and after each",
    )
    parser.add_argument(
        "--meter-interval",
        type=float,
        default=3.0,
        help="seconds between a session's MeterValues (lower: more load)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="run only the faults whose name contains this (repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directories")
    options = parser.parse_args(argv)
    configs = ["amqp-pg", "embedded"] if options.config == "both" else [options.config]
    phases: list[Phase] = []
    totals: dict[str, Totals] = {}
    for config in configs:
        config_phases, totals[config] = run_config(config, options)
        phases += config_phases
    print(table(phases, totals))
    print()
    print("Most frequent log lines per phase:")
    print()
    print(log_section(phases))
    bad = sum(p.lost_total + p.duplicated_total for p in phases)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
