"""
A RabbitMQ node of a test's own, for faults that would disturb everyone else
on the shared broker (a resource alarm blocks every publisher of a node).

The node gets free ports, a node name, its data and logs in a temporary
directory, no plugins (so no management listener), and is stopped (and its
process ended) when the test ends. Without ``rabbitmq-server`` the test is
skipped, or fails on CI.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import tempfile
import uuid
from collections.abc import Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from tests.services import on_ci


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        reason = f"{program} is not on PATH (the test runs a RabbitMQ node of its own)"
        if on_ci():
            raise AssertionError(f"CI requires {reason}")
        raise SkipTest(reason)
    return path


class _Server(ProcessProtocol):
    def __init__(self) -> None:
        self.ended = False
        self.waiters: list[Deferred[None]] = []
        self.output: list[bytes] = []

    def outReceived(self, data: bytes) -> None:
        self.output.append(data)

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.ended = True
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.called:
                waiter.callback(None)

    def wait(self, seconds: float | None = None) -> Deferred[None]:
        """Fires when the process has ended (a TimeoutError after ``seconds``)."""
        waiter: Deferred[None] = Deferred()
        if self.ended:
            waiter.callback(None)
            return waiter
        self.waiters.append(waiter)
        if seconds is not None:
            waiter.addTimeout(seconds, reactor)
        return waiter


class PrivateRabbitMQ:
    def __init__(self, base: str) -> None:
        self.server = _require("rabbitmq-server")
        self.ctl_path = _require("rabbitmqctl")
        self.base = os.path.abspath(base)
        self.port = _free_port()
        self.dist_port = _free_port()
        self.node = f"ocppdtest-{os.getpid()}-{uuid.uuid4().hex[:6]}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"
        self._process: Any = None
        self._protocol = _Server()

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=os.path.join(self.base, "mnesia"),
            RABBITMQ_LOG_BASE=os.path.join(self.base, "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=os.path.join(self.base, "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=os.path.join(self.base, "rabbitmq.conf"),
            RABBITMQ_FEATURE_FLAGS_FILE=os.path.join(self.base, "feature_flags"),
            RABBITMQ_PID_FILE=os.path.join(self.base, "pid"),
        )
        return env

    def _prepare_directory(self) -> None:
        for sub in ("mnesia", "log"):
            os.makedirs(os.path.join(self.base, sub), exist_ok=True)
        with open(os.path.join(self.base, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        with open(os.path.join(self.base, "rabbitmq.conf"), "w") as f:
            f.write("log.console = false\n")
        if os.geteuid() == 0:
            # Run as root, rabbitmq-server drops to the rabbitmq user.
            try:
                user = pwd.getpwnam("rabbitmq")
            except KeyError:
                return
            for path in (self.base, *_walk(self.base)):
                os.chown(path, user.pw_uid, user.pw_gid)

    @inlineCallbacks
    def start(self) -> Generator[Deferred[Any], Any, None]:
        self._prepare_directory()
        env = self._environment()
        self._process = reactor.spawnProcess(  # type: ignore[attr-defined]
            self._protocol, self.server, [self.server], env=env, path=self.base
        )
        pid_file = env["RABBITMQ_PID_FILE"]
        _, err, code = yield getProcessOutputAndValue(
            self.ctl_path, ["-n", self.node, "wait", pid_file, "--timeout", "60"], env=env
        )
        if code != 0:
            log = b"".join(self._protocol.output).decode(errors="replace")[-2000:]
            raise AssertionError(
                f"the private RabbitMQ node did not start: {err.decode(errors='replace')}\n{log}"
            )

    @inlineCallbacks
    def ctl(self, *args: str) -> Generator[Deferred[Any], Any, str]:
        """``rabbitmqctl -n <this node> ARGS``; its output."""
        out, err, code = yield getProcessOutputAndValue(
            self.ctl_path, ["-q", "-n", self.node, *args], env=self._environment()
        )
        if code != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)} exited {code}: {err.decode()}")
        return str(out.decode())

    @inlineCallbacks
    def stop(self) -> Generator[Deferred[Any], Any, None]:
        if self._process is None:
            return
        try:
            yield self.ctl("stop")
        except AssertionError:
            pass
        try:
            yield self._protocol.wait(15)
        except Exception:
            self._process.signalProcess("KILL")
            yield self._protocol.wait()


def _walk(base: str) -> list[str]:
    paths = []
    for root, dirs, files in os.walk(base):
        paths.extend(os.path.join(root, name) for name in dirs + files)
    return paths


@inlineCallbacks
def start_private_rabbitmq(case: TestCase) -> Generator[Deferred[Any], Any, PrivateRabbitMQ]:
    """A started private node, stopped when ``case`` ends."""
    # Under the system's temporary directory, not trial's: the node runs as
    # the rabbitmq user when the tests run as root, and must reach it.
    base = tempfile.mkdtemp(prefix="ocppd-rabbitmq-")
    case.addCleanup(shutil.rmtree, base, True)
    broker = PrivateRabbitMQ(base)
    case.addCleanup(broker.stop)
    yield broker.start()
    return broker
