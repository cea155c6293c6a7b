"""
The README's run command for real: ``twistd -n ocppd`` in a subprocess on the
embedded default, a charger talking to it, then SIGTERM and a clean exit.
Also: the built wheel carries the twistd plugin and the migrations.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import zipfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import ProcessProtocol
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from tests.integration.clients import connect
from tests.integration.daemon import cancel_spent_autobahn_timers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Collect(ProcessProtocol):
    def __init__(self) -> None:
        self.output = b""
        self.ended: Deferred[tuple[int | None, int | None]] = Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.ended.callback((reason.value.exitCode, reason.value.signal))


class TwistdTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def test_twistd_serves_chargers_and_stops_cleanly(self) -> Any:
        """`twistd -n ocppd` runs with no broker or database server; SIGTERM stops it."""
        self.addCleanup(cancel_spent_autobahn_timers)
        workdir = os.path.abspath(self.mktemp())
        os.makedirs(workdir)
        port = free_port()
        process = _Collect()
        env = {**os.environ, "PYTHONPATH": ROOT}  # run this working tree, not a stale install
        transport = reactor.spawnProcess(
            process,
            os.path.join(BIN, "twistd"),
            [
                "twistd",
                "-n",
                "--pidfile=",
                "ocppd",
                "--config",
                os.path.join(ROOT, "etc", "ocppd.ini"),
                "--set",
                f"ocpp.listen=tcp:{port}:interface=127.0.0.1",
                "--set",
                "ocpp.unknown_chargers=pending",
                "--set",
                f"ocppd.data_dir={workdir}/var",
            ],
            env=env,
            path=workdir,
        )
        try:
            for _ in range(300):
                if b"ready" in process.output or process.ended.called:
                    break
                yield deferLater(reactor, 0.05, lambda: None)
            self.assertIn(b"ready", process.output, process.output.decode(errors="replace"))
            client = yield connect(port, "SIM-1", "k")
            client.send(
                '[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
            )
            answer = json.loads((yield client.messages.get()))
            self.assertEqual(answer[:2], [3, "1"])
            self.assertEqual(answer[2]["status"], "Pending")
        finally:
            if not process.ended.called:
                transport.signalProcess(signal.SIGTERM)
            status = yield process.ended
        output = process.output.decode(errors="replace")
        # twistd re-raises the signal that stopped it, so the exit status says SIGTERM.
        self.assertEqual(status, (None, signal.SIGTERM), output)
        self.assertIn("every message was delivered", output)
        self.assertIn("ocppd node", output.split("Received SIGTERM")[-1])
        self.assertRegex(output, r"ocppd node \S+ stopped")
        self.assertNotIn("Traceback", output)
        self.assertTrue(os.path.exists(os.path.join(workdir, "var", "ocppd.sqlite3")))


class WheelTests(TestCase):
    timeout = 120

    def test_wheel_contains_plugin_and_migrations(self) -> None:
        """The wheel ships twisted/plugins/ocppd_plugin.py (no __init__) and the alembic scripts."""
        out = os.path.abspath(self.mktemp())
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "-q",
                "-w",
                out,
                ROOT,
            ],
            check=True,
            capture_output=True,
        )
        [wheel] = [name for name in os.listdir(out) if name.endswith(".whl")]
        names = zipfile.ZipFile(os.path.join(out, wheel)).namelist()
        self.assertIn("twisted/plugins/ocppd_plugin.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertTrue(any(n.startswith("ocppd/store/migrations/versions/") for n in names))
        self.assertIn("ocppd/store/migrations/env.py", names)
