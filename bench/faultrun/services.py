"""
Private services for one fault run: nothing here touches the shared
PostgreSQL or RabbitMQ other work tests against.

Each service lives in a temporary directory on ports of its own and is
stopped (and the directory removed) by ``close``.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> float:
    """Poll ``check`` until it holds; return the seconds it took, raise after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - started


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def children(pid: int) -> list[int]:
    """The direct children of ``pid`` (PostgreSQL's backends of its postmaster)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return found


def _run(argv: list[str], env: dict[str, str] | None = None, check: bool = True) -> str:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


class Postgres:
    """A PostgreSQL cluster of our own: initdb in a temp dir, its own port and socket dir."""

    def __init__(self) -> None:
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not versions:
            raise RuntimeError("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bin = versions[-1]
        self.dir = tempfile.mkdtemp(prefix="ocppd-faults-pg-")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.user = "postgres"
        # initdb refuses to run as root; the cluster then belongs to "postgres".
        self._as: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        _run([*self._as, f"{self.bin}/initdb", "-D", self.data, "-U", self.user, "-A", "trust"])
        self.start()
        _run([*self._as, f"{self.bin}/createdb", "-h", self.dir, "-p", str(self.port), "faults"])

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/faults"

    def _ctl(self, *args: str) -> None:
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = os.path.join(self.dir, "pg.log")
        _run([*self._as, f"{self.bin}/pg_ctl", "-D", self.data, "-l", log, "-o", opts, *args])

    def start(self) -> None:
        self._ctl("-w", "start")

    def stop(self) -> None:
        self._ctl("-w", "-m", "fast", "stop")

    def postmaster(self) -> int:
        with open(os.path.join(self.data, "postmaster.pid")) as f:
            return int(f.readline())

    def freeze(self) -> list[int]:
        """SIGSTOP the postmaster and its backends; returns the pids to thaw."""
        main = self.postmaster()
        pids = [main, *children(main)]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    @staticmethod
    def thaw(pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        try:
            self.stop()
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class Rabbit:
    """
    A RabbitMQ node of our own (``ocppdfaults-<pid>@localhost``): its own
    ports, data and log dirs, Erlang cookie (HOME) and no plugins.
    """

    SBIN = "/usr/lib/rabbitmq/bin"

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="ocppd-faults-rabbit-")
        self.port = free_port()
        self.node = f"ocppdfaults-{os.getpid()}@localhost"
        config = os.path.join(self.dir, "rabbitmq.conf")
        with open(config, "w") as f:
            f.write(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n")
        plugins = os.path.join(self.dir, "enabled_plugins")
        with open(plugins, "w") as f:
            f.write("[].\n")
        self.env = {
            **os.environ,
            "HOME": self.dir,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_CONFIG_FILE": config,
            "RABBITMQ_ENABLED_PLUGINS_FILE": plugins,
            "RABBITMQ_PID_FILE": os.path.join(self.dir, "pid"),
        }
        self._out = open(os.path.join(self.dir, "server.out"), "w")
        self.process = subprocess.Popen(
            [f"{self.SBIN}/rabbitmq-server"],
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(lambda: listening(self.port), 90, "the private RabbitMQ node")
        self.ctl("await_startup")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def ctl(self, *args: str, check: bool = True) -> str:
        return _run([f"{self.SBIN}/rabbitmqctl", "-q", "-n", self.node, *args], self.env, check)

    def close_connections(self) -> None:
        self.ctl("close_all_connections", "fault run: connections killed")

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        # The listener's port can take a moment to be free again: retry.
        for _ in range(30):
            try:
                self.ctl("start_app")
                return
            except RuntimeError:
                time.sleep(1)
        self.ctl("start_app")

    def alarm(self, on: bool) -> None:
        """A memory alarm (publishers blocked) on, or back to the default watermark."""
        self.ctl("set_vm_memory_high_watermark", "0.0000001" if on else "0.4")

    def backlog(self, prefix: str) -> int:
        """Messages ready or unacknowledged in the queues named ``prefix.*``."""
        out = self.ctl("list_queues", "name", "messages", check=False)
        total = 0
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].startswith(prefix + ".") and parts[1].isdigit():
                if ".dead" in parts[0] or "dead-letter" in parts[0] or "parked" in parts[0]:
                    continue  # dead letters stay until replayed; they are not a backlog
                total += int(parts[1])
        return total

    def close(self) -> None:
        try:
            self.ctl("stop", check=False)
            self.process.wait(timeout=60)
        except Exception:
            os.killpg(self.process.pid, signal.SIGKILL)
        self._out.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Daemon:
    """
    ``twistd -n ocppd`` as a subprocess with its own ports and data dir;
    every start appends to one log file, so faults can count its lines.
    """

    def __init__(self, settings: list[str], workdir: str) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.settings = [
            *settings,
            f"ocpp.listen=tcp:{self.port}:interface=127.0.0.1:backlog=1024",
            "web.listen=tcp:0:interface=127.0.0.1",
        ]
        self.log_path = os.path.join(workdir, "ocppd.log")
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp/"

    def ocppctl(self, *argv: str, stdin: str = "") -> None:
        sets = [arg for s in self.settings for arg in ("--set", s)]
        result = subprocess.run(
            [sys.executable, "-m", "ocppd.cli", *sets, *argv],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"ocppctl {' '.join(argv)}: {result.stderr[-2000:]}")

    def start(self) -> float:
        """Start and wait until the OCPP port listens; returns the seconds that took."""
        sets = [arg for s in self.settings for arg in ("--set", s)]
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen(
                [os.path.join(BIN, "twistd"), "-n", "--pidfile=", "ocppd", *sets],
                env={**os.environ, "PYTHONPATH": ROOT},
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        process = self.process

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"ocppd exited {process.returncode}; see {self.log_path}")
            return listening(self.port)

        return wait_until(up, 120, "ocppd to listen")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_lines(self) -> int:
        try:
            with open(self.log_path, "rb") as f:
                return sum(1 for _ in f)
        except FileNotFoundError:
            return 0
