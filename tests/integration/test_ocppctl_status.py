"""
``ocppctl status`` in a subprocess against a node running in this process:
the embedded bus (ready, a charger connected and online, the journal's
backlog), RabbitMQ down (not ready, exit 1, each problem named), the real
RabbitMQ (its queues' counts), and no daemon at all.
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import TestCase

from ocppd import cli
from ocppd.store import chargers
from tests.integration.clients import connect
from tests.integration.daemon import (
    RunningDaemon,
    amqp_overrides,
    cancel_spent_autobahn_timers,
    poll,
    start_daemon,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KEY = "status-key-0123456789"


def closed_port() -> int:
    """A port nothing listens on (bound, then released at once)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    return port


class StatusCommandTests(TestCase):
    timeout = 90

    @inlineCallbacks
    def status(self, daemon: RunningDaemon | None, *argv: str) -> Any:
        """Run ``ocppctl status --json`` with the daemon's settings: (exit code, document)."""
        settings = daemon.config_args if daemon is not None else []
        out, err, code = yield getProcessOutputAndValue(
            sys.executable,
            ["-m", "ocppd.cli", *settings, *argv, "status", "--json"],
            env=dict(os.environ),
            path=ROOT,
        )
        self.assertEqual(err, b"")
        return code, json.loads(out)

    def status_once_ready(self, daemon: RunningDaemon) -> Deferred[tuple[int, Any]]:
        """
        ``status`` of a daemon expected ready, polled: a readiness probe that
        misses its 2 s on the loaded machine makes one answer "not ready".
        """
        return poll(
            lambda: self.status(daemon, "--set", self.web_listen(daemon)),
            until=lambda result: result[1]["ready"],
        )

    def web_listen(self, daemon: RunningDaemon) -> str:
        return f"web.listen=tcp:{daemon.web_port}:interface=127.0.0.1"

    @inlineCallbacks
    def test_embedded_node(self) -> Any:
        daemon = yield start_daemon(self)
        daemon.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")
        client = yield connect(daemon.port, "CP1", KEY)
        self.addCleanup(client.close)
        yield daemon.wait_for(chargers.get_charge_point, "CP1", until=lambda r: r.online)
        code, status = yield self.status_once_ready(daemon)
        self.assertEqual(code, 0, status)
        self.assertEqual(status["daemon"]["node"], "test-node")
        self.assertEqual(status["daemon"]["chargers"], {"connected": 1})
        self.assertEqual(status["chargersOnline"], {"test-node": 1})
        self.assertEqual(status["daemon"]["bus"]["backend"], "memory")
        services = status["daemon"]["services"]
        self.assertLessEqual({"store", "bus", "presence", "timers", "listeners"}, set(services))
        self.assertEqual(set(services.values()), {"running"})
        self.assertIsNone(status["databaseProblem"])
        for queue in status["queues"].values():
            self.assertEqual(queue["dead"], 0)

    @inlineCallbacks
    def test_broker_down(self) -> Any:
        broker = closed_port()
        daemon = yield start_daemon(
            self,
            "bus.backend=amqp",
            f"bus.url=amqp://guest:guest@127.0.0.1:{broker}/%2F",
            "bus.connect_timeout=1",
        )
        code, status = yield self.status(daemon, "--set", self.web_listen(daemon))
        self.assertEqual(code, 1)
        self.assertFalse(status["ready"])
        self.assertEqual(status["daemon"]["problems"], {"bus": "not connected to RabbitMQ"})
        self.assertIn("RabbitMQ", status["queuesProblem"])
        self.assertEqual(status["queues"], {})

    @inlineCallbacks
    def test_real_rabbitmq_queues(self) -> Any:
        overrides = amqp_overrides(self)
        daemon = yield start_daemon(self, *overrides)
        code, status = yield self.status_once_ready(daemon)
        self.assertEqual(code, 0, status)
        self.assertIsNone(status["queuesProblem"])
        # The lag is the daemon's consumer's: nothing held, 0 (not unknown).
        self.assertEqual(
            status["queues"]["processor"], {"waiting": 0, "dead": 0, "lagSeconds": 0.0}
        )
        self.assertEqual(status["daemon"]["consumers"]["processor"], {"lagSeconds": 0.0})
        self.assertEqual(status["daemon"]["bus"]["connected"], True)

    @inlineCallbacks
    def test_no_daemon(self) -> Any:
        self.addCleanup(cancel_spent_autobahn_timers)
        data_dir = os.path.abspath(self.mktemp())
        settings = ["--set", f"ocppd.data_dir={data_dir}"]
        self.assertEqual(cli.main([*settings, "db", "upgrade"], stdout=io.StringIO()), 0)
        closed = closed_port()
        code, status = yield self.status(
            None, *settings, "--set", f"web.listen=tcp:{closed}:interface=127.0.0.1"
        )
        self.assertEqual(code, 1)
        self.assertIsNone(status["daemon"])
        self.assertIn(f"http://127.0.0.1:{closed}/ready", status["daemonProblem"])
        self.assertEqual(status["chargersOnline"], {})
