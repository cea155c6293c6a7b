"""
The servers under test, each in a process of its own pinned to the server CPU:
ocppd (``twistd -n ocppd`` on a copy of a prepared SQLite data directory), the
bare Autobahn ceiling and the ``ocpp``-package peer.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
#: The tree(s) whose ``ocppd`` is measured: this one, or the copies (the code
#: before an optimisation) that OCPPD_BENCH_SOURCE names. First on this
#: process's path too, so that ``prepare_ocppd`` migrates the template with the
#: code the server will run, not with the ``ocppd`` the venv has installed
#: (an editable install of another checkout would write revisions the
#: measured code does not know).
SOURCE = os.environ.get("OCPPD_BENCH_SOURCE", ROOT)
sys.path[:0] = SOURCE.split(os.pathsep)
BIN = os.path.dirname(sys.executable)
SERVER_CPU = 0
LOAD_CPU = 1
#: The Basic-auth password of every benchmark charger.
AMQP_URL = os.environ.get("OCPPD_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
KEY = "bench-key-0123456789"
#: Chargers of the throughput runs (registered with ``ocppctl charger add``).
LOAD_PREFIX = "BENCH"
#: Chargers of the idle-connection runs (registered in bulk, see ``prepare_ocppd``).
IDLE_PREFIX = "IDLE"

NAMES = {
    "ocppd": "ocppd",
    "ocppd-noproc": "ocppd, processor off",
    "ocppd-loghb": "ocppd, Heartbeats logged",
    "ocppd-metrics": "ocppd, metrics on",
    "ceiling": "bare Autobahn",
    "peer": "ocpp pkg + websockets",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cpu: int, argv: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(cpu), *argv]
    return argv


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to the hard limit (children inherit it)."""
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """The resident set of ``pid`` now, or with ``field="VmHWM"`` its peak."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def delete_topology(prefix: str) -> None:
    """Remove a run's queues and exchanges (``prefix``) from the broker."""
    import pika  # only here: pika stays inside ocppd/bus/amqp.py in the product

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()
    queues = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name"], capture_output=True, text=True
    ).stdout.split()
    for name in queues:
        if name.startswith(prefix + "."):
            channel.queue_delete(queue=name)
    for kind in ("ocpp", "events", "commands", "audit"):
        channel.exchange_delete(exchange=f"{prefix}.{kind}")
    connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: Options of the benchmarks' OCPP listener beyond port and interface.
LISTEN_OPTIONS = ":backlog=1024"


def ocppd_settings(data_dir: str, port: int, listen_options: str = LISTEN_OPTIONS) -> list[str]:
    settings = [
        f"ocppd.data_dir={data_dir}",
        # A backlog of 1024: the idle runs connect thousands of chargers.
        f"ocpp.listen=tcp:{port}:interface=127.0.0.1{listen_options}",
        "web.listen=tcp:0:interface=127.0.0.1",
        "ocpp.heartbeat_interval=300",
    ]
    return [arg for setting in settings for arg in ("--set", setting)]


def prepare_ocppd(load_chargers: int, idle_chargers: int) -> str:
    """
    A data directory with the store migrated, ``load_chargers`` chargers added
    with ``ocppctl charger add``, the ``BENCH`` idTag, and ``idle_chargers``
    more added in one transaction (sharing one key hash, made as the CLI would).
    """
    from ocppd import cli
    from ocppd.credentials import hash_charger_key
    from ocppd.store import chargers
    from ocppd.store.database import Database
    from ocppd.timeutil import utcnow

    data_dir = tempfile.mkdtemp(prefix="ocppd-bench-template-")
    sets = ["--set", f"ocppd.data_dir={data_dir}"]
    quiet = io.StringIO()
    if cli.main([*sets, "db", "upgrade"], stdout=quiet) != 0:
        raise RuntimeError("ocppctl db upgrade failed")
    for i in range(load_chargers):
        argv = [*sets, "charger", "add", f"{LOAD_PREFIX}{i:05d}"]
        if cli.main(argv, stdin=io.StringIO(KEY + "\n"), stdout=quiet) != 0:
            raise RuntimeError(f"ocppctl {' '.join(argv)} failed")
    if cli.main([*sets, "tag", "add", "BENCH"], stdout=quiet) != 0:
        raise RuntimeError("ocppctl tag add failed")
    key_hash = hash_charger_key(KEY)
    database = Database.from_url(f"sqlite:///{data_dir}/ocppd.sqlite3", max_threads=1)
    now = utcnow()

    def add_all(conn: Any) -> None:
        for i in range(idle_chargers):
            chargers.add_charge_point(conn, f"{IDLE_PREFIX}{i:05d}", key_hash, now=now)

    database.run_sync(add_all)
    database.engine.dispose()
    return data_dir


class Server:
    """One server process under test."""

    def __init__(
        self,
        kind: str,
        template: str | None = None,
        *,
        listen_options: str = LISTEN_OPTIONS,
        settings: tuple[str, ...] = (),
    ) -> None:
        self.kind = kind
        self.port = free_port()
        #: The metrics listener's port (``ocppd-metrics`` only).
        self.metrics_port: int | None = None
        self.workdir = tempfile.mkdtemp(prefix=f"ocppd-bench-{kind}-")
        # The daemon runs the working tree's ocppd, or another copy of it
        # (e.g. the code before an optimisation) named by OCPPD_BENCH_SOURCE.
        source = os.environ.get("OCPPD_BENCH_SOURCE", SOURCE)
        env = {**os.environ, "PYTHONPATH": source}
        python = os.path.join(BIN, "python")
        if kind in ("ocppd", "ocppd-noproc", "ocppd-loghb", "ocppd-metrics"):
            assert template is not None
            if kind == "ocppd-noproc":
                env["PYTHONPATH"] = os.path.join(BENCH, "diag") + os.pathsep + source
                env["OCPPD_BENCH_NOPROC"] = "1"
            data_dir = os.path.join(self.workdir, "data")
            shutil.copytree(template, data_dir)
            argv = [
                os.path.join(BIN, "twistd"),
                "-n",
                "--pidfile=",
                "ocppd",
                *ocppd_settings(data_dir, self.port, listen_options),
            ]
            if kind == "ocppd-loghb":
                argv += ["--set", "ocpp.log_heartbeats=true"]
            if kind == "ocppd-metrics":
                self.metrics_port = free_port()
                argv += ["--set", f"metrics.listen=tcp:{self.metrics_port}:interface=127.0.0.1"]
            # More settings of a measurement (``storm.py --set``).
            argv += [arg for setting in settings for arg in ("--set", setting)]
        elif kind == "ceiling":
            argv = [python, os.path.join(BENCH, "ref_autobahn.py"), str(self.port)]
        elif kind == "peer":
            argv = [python, os.path.join(BENCH, "ref_ocpp_peer.py"), str(self.port)]
        else:
            raise ValueError(kind)
        self.log_path = os.path.join(self.workdir, "server.log")
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            pinned(SERVER_CPU, argv),
            env=env,
            cwd=self.workdir,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_listening()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + float(os.environ.get("OCPPD_BENCH_START_TIMEOUT", "60"))
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.kind} exited; see {self.log_path}")
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    time.sleep(0.3)
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not start; see {self.log_path}")

    def stop(self) -> None:
        keep = os.environ.get("OCPPD_BENCH_KEEP_LOGS")
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        if keep:
            # OCPPD_BENCH_KEEP_LOGS=DIR: each server's log survives its run.
            os.makedirs(keep, exist_ok=True)
            shutil.copy(self.log_path, os.path.join(keep, f"{self.kind}-{self.port}.log"))
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
