"""
The README's run command for real: ``twistd -n ocppd`` in a subprocess on the
embedded default, a charger talking to it, then SIGTERM and a clean exit; and
starts that fail (a busy port, a bad listener, no database): exit status 1,
one line. Also: the built wheel carries the twistd plugin and the migrations.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import zipfile
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import ProcessProtocol
from twisted.trial.unittest import TestCase

from tests.integration.clients import connect
from tests.integration.daemon import cancel_spent_autobahn_timers, held_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
INI = os.path.join(ROOT, "etc", "ocppd.ini")


#: The line a node logs once it serves, with the ports it got (it listens on port 0).
READY = re.compile(
    r"ocppd node \S+ ready: OCPP 1\.6J on \w+Address\(.*?port=(\d+)\), "
    r"web on \w+Address\(.*?port=(\d+)\)"
)


class _Collect(ProcessProtocol):
    def __init__(self) -> None:
        self.output = b""
        self.ended: Deferred[tuple[int | None, int | None]] = Deferred()
        self._waiting: list[tuple[re.Pattern[str], Deferred[re.Match[str] | None]]] = []

    def outReceived(self, data: bytes) -> None:
        self.output += data
        self._answer_waiting()

    errReceived = outReceived

    def processEnded(self, reason: Any) -> None:
        self.ended.callback((reason.value.exitCode, reason.value.signal))
        self._answer_waiting()

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace")

    def search(self, pattern: re.Pattern[str]) -> Deferred[re.Match[str] | None]:
        """
        ``pattern``'s first match in the output once the process wrote it; None
        if the process ended without writing it. No deadline of its own: on a
        loaded machine a start takes what it takes, and the test's timeout is
        the guard against a hang.
        """
        waiting: Deferred[re.Match[str] | None] = Deferred()
        self._waiting.append((pattern, waiting))
        self._answer_waiting()
        return waiting

    def _answer_waiting(self) -> None:
        text = self.text
        still = []
        for pattern, waiting in self._waiting:
            found = pattern.search(text)
            if found is not None or self.ended.called:
                waiting.callback(found)
            else:
                still.append((pattern, waiting))
        self._waiting = still


class TwistdTestCase(TestCase):
    timeout = 60

    def twistd(
        self,
        *overrides: str,
        env: dict[str, str] | None = None,
        child_fds: dict[int, int] | None = None,
        launcher: list[str] | None = None,
        options: tuple[str, ...] = (),
    ) -> tuple[_Collect, Any]:
        """
        Run `twistd -n ocppd` on this working tree with etc/ocppd.ini, on
        ports it picks (127.0.0.1 port 0) unless overridden, in a folder of its own;
        with ``env`` added to the environment, ``child_fds`` (child fd: this
        process's fd) passed beyond the standard streams, and the command run
        by ``launcher`` (an argv that ends with the program to run), and ``options``
        (such as ``--role edge``) after the configuration's.
        """
        self.addCleanup(cancel_spent_autobahn_timers)
        self.workdir = os.path.abspath(self.mktemp())
        os.makedirs(self.workdir)
        self.pidfile = os.path.join(self.workdir, "twistd.pid")
        settings = [
            "ocpp.listen=tcp:0:interface=127.0.0.1",
            "web.listen=tcp:0:interface=127.0.0.1",
            f"ocppd.data_dir={self.workdir}/var",
            *overrides,
        ]
        process = _Collect()
        # Run this working tree, not a stale install.
        environment = {**os.environ, "PYTHONPATH": ROOT, **(env or {})}
        program = os.path.join(BIN, "twistd")
        argv = [program, "-n", f"--pidfile={self.pidfile}", "ocppd", "--config", INI]
        for setting in settings:
            argv += ["--set", setting]
        argv += options
        if launcher:
            argv = [*launcher, *argv]
        fds: dict[int, Any] = {0: "w", 1: "r", 2: "r", **(child_fds or {})}
        transport = reactor.spawnProcess(
            process, argv[0], argv, env=environment, path=self.workdir, childFDs=fds
        )
        self.addCleanup(self._stop_if_running, process, transport)
        return process, transport

    def _stop_if_running(self, process: _Collect, transport: Any) -> Deferred[Any]:
        """
        A daemon the test left running (it failed or timed out first) must not
        outlive it. SIGTERM, as a test's own stop: this cleanup may run before
        one of the test's that expects the daemon's clean stop.
        """
        return self.stop(process, transport)

    def until_ready(self, process: _Collect) -> Deferred[re.Match[str] | None]:
        """The READY line's match once the daemon logged it; None if it ended without."""
        return process.search(READY)

    def stop(self, process: _Collect, transport: Any) -> Deferred[tuple[int | None, int | None]]:
        """SIGTERM unless it ended; fires with the exit (code, signal)."""
        if not process.ended.called:
            transport.signalProcess(signal.SIGTERM)
        return process.ended

    def ended(self, process: _Collect) -> Deferred[tuple[int | None, int | None]]:
        """
        The exit (code, signal) of a daemon expected to stop by itself (a start
        that fails). No deadline: the test's timeout is the guard against a
        hang, and the daemon is stopped at cleanup if it still runs.
        """
        return process.ended

    @inlineCallbacks
    def assert_start_fails(self, *overrides: str, line: str, options: tuple[str, ...] = ()) -> Any:
        """twistd exits 1 with ``line`` logged once, no traceback, nothing served, no pidfile."""
        process, _ = self.twistd(*overrides, options=options)
        status = yield self.ended(process)
        output = process.text
        self.assertEqual(status, (1, None), output)
        self.assertEqual(output.count(line), 1, output)
        self.assertNotIn("Traceback", output)
        self.assertIsNone(READY.search(output), output)
        self.assertFalse(os.path.exists(self.pidfile))
        self.output = output
        return output


class TwistdTests(TwistdTestCase):
    @inlineCallbacks
    def test_twistd_serves_chargers_and_stops_cleanly(self) -> Any:
        """`twistd -n ocppd` runs with no broker or database server; SIGTERM stops it."""
        process, transport = self.twistd("ocpp.unknown_chargers=pending")
        try:
            ready = yield self.until_ready(process)
            assert ready is not None, process.text
            self.assertTrue(os.path.exists(self.pidfile))
            client = yield connect(int(ready.group(1)), "SIM-1", "sim-1-key-0123456789")
            client.send(
                '[2,"1","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]'
            )
            answer = json.loads((yield client.messages.get()))
            self.assertEqual(answer[:2], [3, "1"])
            self.assertEqual(answer[2]["status"], "Pending")
        finally:
            status = yield self.stop(process, transport)
        output = process.text
        # twistd re-raises the signal that stopped it, so the exit status says SIGTERM.
        self.assertEqual(status, (None, signal.SIGTERM), output)
        self.assertIn("every message was delivered", output)
        self.assertRegex(output, r"Garbage collector: \d+ start-up objects frozen")
        self.assertIn("ocppd node", output.split("Received SIGTERM")[-1])
        self.assertRegex(output, r"ocppd node \S+ stopped")
        self.assertNotIn("Traceback", output)
        self.assertTrue(os.path.exists(os.path.join(self.workdir, "var", "ocppd.sqlite3")))
        self.assertFalse(os.path.exists(self.pidfile))


class FailedStartTests(TwistdTestCase):
    """A start that fails ends twistd with status 1, so systemd's Restart=on-failure acts."""

    def assert_busy_port_fails(self, option: str, purpose: str) -> Deferred[str]:
        """Listening on a port this test holds ends twistd with a line naming it and why."""
        listen = f"tcp:{held_port(self)}:interface=127.0.0.1"
        line = f"ocppd: cannot listen on {listen} for {purpose}: address already in use"
        return self.assert_start_fails(f"{option}={listen}", line=line)

    @inlineCallbacks
    def test_busy_ocpp_port(self) -> Any:
        """The OCPP port is taken: exit 1, one line; the web port opened first is closed."""
        output = yield self.assert_busy_port_fails("ocpp.listen", "OCPP")
        [web_port] = re.findall(r"WebSite starting on (\d+)", output)
        with socket.socket() as sock, self.assertRaises(ConnectionRefusedError):
            sock.connect(("127.0.0.1", int(web_port)))

    @inlineCallbacks
    def test_busy_web_port(self) -> Any:
        """The web port is taken: exit 1, one line, and no charger was ever taken."""
        output = yield self.assert_busy_port_fails("web.listen", "the web")
        self.assertNotIn("OcppServerFactory starting on", output)

    @inlineCallbacks
    def test_invalid_endpoint_is_a_usage_error(self) -> Any:
        """`tcp:notaport` is refused with the options, before anything starts."""
        output = yield self.assert_start_fails(
            "ocpp.listen=tcp:notaport",
            line="ocpp.listen: 'tcp:notaport' is not a usable endpoint",
        )
        self.assertNotIn("starting up", output)

    @inlineCallbacks
    def test_unmigrated_database(self) -> Any:
        """auto_upgrade off and no `ocppctl db upgrade`: exit 1 naming the command to run."""
        yield self.assert_start_fails("store.auto_upgrade=false", line="ocppd: no database at ")
        path = os.path.join(self.workdir, "var", "ocppd.sqlite3")
        self.assertIn(
            f"ocppd: no database at {path}: run `ocppctl --config {INI} db upgrade`\n", self.output
        )
        self.assertFalse(os.path.exists(path))

    @inlineCallbacks
    def test_role_without_a_shared_bus(self) -> Any:
        """`--role edge` on the embedded bus: exit 1, one line, no database made."""
        yield self.assert_start_fails(
            line="ocppd: [ocppd] role = edge needs [bus] backend = amqp: ",
            options=("--role", "edge"),
        )
        self.assertFalse(os.path.exists(os.path.join(self.workdir, "var", "ocppd.sqlite3")))


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
