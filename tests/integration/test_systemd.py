"""
``twistd ocppd`` under what systemd gives a ``Type=notify`` service with
socket activation, without systemd: a ``NOTIFY_SOCKET`` datagram socket this
test opens and reads (READY=1 once the listeners answer, WATCHDOG=1 every half
of WATCHDOG_USEC, STOPPING=1 at SIGTERM), and listening sockets this test
opens and passes to the child as systemd would (``LISTEN_FDS``,
``LISTEN_FDNAMES``, ``LISTEN_PID``), with a connection made before the daemon
ran that the daemon then answers.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import SkipTest

from tests.integration.clients import raw_handshake, raw_request
from tests.integration.daemon import poll
from tests.integration.test_twistd import BIN, READY, ROOT, TwistdTestCase

#: Sets LISTEN_PID to its own pid, then execs the rest of its argv (which
#: keeps the pid): what systemd does between fork and exec.
SET_LISTEN_PID = (
    "import os, sys; os.environ['LISTEN_PID'] = str(os.getpid()); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)
#: The listeners of etc/ocppd.socket: its sockets in the order of its ListenStream lines.
ACTIVATED = ("ocpp.listen=systemd:domain=INET:index=0", "web.listen=systemd:domain=INET:index=1")
#: WATCHDOG_USEC the test asks for: a WATCHDOG=1 every 0.2 s.
WATCHDOG_USEC = 400_000


class NotifySocket:
    """A datagram socket at a short path (AF_UNIX paths are short), read without blocking."""

    def __init__(self, testcase: TwistdTestCase) -> None:
        folder = tempfile.mkdtemp(prefix="ocppd-notify-")
        testcase.addCleanup(shutil.rmtree, folder)
        self.path = os.path.join(folder, "notify")
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        testcase.addCleanup(self.socket.close)
        self.socket.bind(self.path)
        self.socket.setblocking(False)
        #: (monotonic time, datagram) as received.
        self.received: list[tuple[float, str]] = []

    def read(self) -> list[str]:
        while True:
            try:
                data = self.socket.recv(4096)
            except BlockingIOError:
                return [message for _, message in self.received]
            self.received.append((time.monotonic(), data.decode()))

    def lines(self) -> list[str]:
        return [line for message in self.read() for line in message.split("\n")]


def listening_socket(testcase: TwistdTestCase) -> socket.socket:
    sock = socket.socket()
    testcase.addCleanup(sock.close)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


class NotifyTests(TwistdTestCase):
    @inlineCallbacks
    def wait(self, condition: Any, process: Any, seconds: float = 50) -> Any:
        """Until ``condition()`` holds (fails after ``seconds``: 20 ran out under CI load)."""
        for _ in range(int(seconds / 0.05)):
            if condition() or process.ended.called:
                break
            yield deferLater(reactor, 0.05, lambda: None)
        self.assertTrue(condition(), process.text)

    @inlineCallbacks
    def test_ready_watchdog_stopping(self) -> Any:
        notify = NotifySocket(self)
        process, transport = self.twistd(
            env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}
        )
        try:
            yield self.wait(lambda: "READY=1" in notify.lines(), process)
            # READY=1 comes with the listeners up: both answer at once.
            ready = READY.search(process.text)
            assert ready is not None, process.text
            ocpp_port, web_port = int(ready.group(1)), int(ready.group(2))
            lines = notify.lines()
            self.assertEqual(lines[0], "STATUS=Starting")
            status = lines[lines.index("READY=1") + 1]
            self.assertEqual(
                status,
                f"STATUS=Serving chargers: OCPP on 127.0.0.1:{ocpp_port}, "
                f"web on 127.0.0.1:{web_port}",
            )
            # (Polled: a readiness probe that misses its 2 s on the loaded
            # machine makes one answer 503; the listener answers either way.)
            yield poll(
                lambda: raw_request(web_port, b"GET /ready HTTP/1.0\r\n\r\n"),
                until=lambda answer: b" 200 " in answer.split(b"\r\n")[0],
            )
            answer = yield raw_handshake(ocpp_port, "/ocpp/NOBODY")
            self.assertIn(b" 404 ", answer.split(b"\r\n")[0])

            # The watchdog keeps ticking, from the reactor. Its interval (half of
            # WATCHDOG_USEC) is tests/test_systemd.py's to check: timing the gaps
            # here measured the machine's load (a stalled child missed 0.4 s).
            def watchdogs() -> int:
                return notify.lines().count("WATCHDOG=1")

            before = watchdogs()
            yield self.wait(lambda: watchdogs() >= before + 3, process)
            self.assertNotIn("STOPPING=1", notify.lines())
            transport.signalProcess(signal.SIGTERM)
            yield self.wait(lambda: "STOPPING=1" in notify.lines(), process)
        finally:
            status = yield self.stop(process, transport)
        self.assertEqual(status, (None, signal.SIGTERM), process.text)
        lines = notify.lines()
        self.assertIn("STATUS=Stopping: closing connections, draining the bus", lines)
        self.assertNotIn("Traceback", process.text)

    @inlineCallbacks
    def test_no_notify_socket_no_notice(self) -> Any:
        """Without NOTIFY_SOCKET (Type=simple) nothing is sent and nothing is logged of it."""
        process, transport = self.twistd(env={"NOTIFY_SOCKET": ""})
        self.assertIsNotNone((yield self.until_ready(process)), process.text)
        yield self.stop(process, transport)
        self.assertNotIn("notify systemd", process.text)

    @inlineCallbacks
    def test_failed_start_says_why(self) -> Any:
        notify = NotifySocket(self)
        busy = listening_socket(self).getsockname()[1]
        process, _ = self.twistd(
            f"ocpp.listen=tcp:{busy}:interface=127.0.0.1", env={"NOTIFY_SOCKET": notify.path}
        )
        status = yield self.ended(process)
        self.assertEqual(status, (1, None), process.text)
        lines = notify.lines()
        self.assertNotIn("READY=1", lines)
        self.assertIn(
            f"STATUS=Start failed: cannot listen on tcp:{busy}:interface=127.0.0.1 for OCPP:"
            " address already in use",
            lines,
        )


class SocketActivationTests(TwistdTestCase):
    def activated(self, ocpp: socket.socket, web: socket.socket) -> tuple[Any, Any]:
        """twistd with ``ocpp`` and ``web`` passed as systemd passes etc/ocppd.socket's."""
        return self.twistd(
            *ACTIVATED,
            env={"LISTEN_FDS": "2", "LISTEN_FDNAMES": "ocppd.socket:ocppd.socket"},
            child_fds={3: ocpp.fileno(), 4: web.fileno()},
            launcher=[sys.executable, "-c", SET_LISTEN_PID],
        )

    @inlineCallbacks
    def test_listeners_from_listen_fds(self) -> Any:
        """
        The listeners are the sockets passed in (by position, as
        etc/ocppd.socket passes them); a connection made
        before the daemon ran waits in the backlog and is answered: a restart
        under socket activation drops no pending connection.
        """
        ocpp, web = listening_socket(self), listening_socket(self)
        ocpp_port, web_port = ocpp.getsockname()[1], web.getsockname()[1]
        # Made, and its request sent, while nothing serves the socket yet.
        early = raw_handshake(ocpp_port, "/ocpp/NOBODY", {"Sec-WebSocket-Protocol": "ocpp1.6"})
        yield deferLater(reactor, 0.2, lambda: None)
        self.assertFalse(early.called)
        process, transport = self.activated(ocpp, web)
        try:
            answer = yield early
            self.assertIn(b" 404 ", answer.split(b"\r\n")[0], process.text)
            ready = READY.search(process.text)
            assert ready is not None, process.text
            self.assertEqual((int(ready.group(1)), int(ready.group(2))), (ocpp_port, web_port))
            answer = yield raw_request(web_port, b"GET /health HTTP/1.0\r\n\r\n")
            self.assertIn(b" 200 ", answer.split(b"\r\n")[0])
        finally:
            status = yield self.stop(process, transport)
        self.assertEqual(status, (None, signal.SIGTERM), process.text)
        # The socket outlives the daemon, as systemd's does: the next one serves it.
        late = raw_request(web_port, b"GET /health HTTP/1.0\r\n\r\n")
        process, transport = self.activated(ocpp, web)
        try:
            answer = yield late
            self.assertIn(b" 200 ", answer.split(b"\r\n")[0], process.text)
        finally:
            yield self.stop(process, transport)


class UnitFileTests(TwistdTestCase):
    """etc/ocppd.service, etc/ocppd.socket and etc/ocppd-processor.service as systemd reads them."""

    def test_units_verify(self) -> None:
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise SkipTest("systemd-analyze is not installed")
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        etc = os.path.join(ROOT, "etc")
        units = ("ocppd.service", "ocppd.socket", "ocppd-processor.service")
        for name in units:
            with open(os.path.join(etc, name), encoding="utf-8") as f:
                text = f.read()
            # Its ExecStart must exist for verify: this environment's twistd.
            text = text.replace("/opt/ocppd/bin/twistd", os.path.join(BIN, "twistd"))
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                f.write(text)
        result = subprocess.run(
            [analyze, "verify", *units],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # verify exits 0 even for settings it ignores; it names each on stderr.
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))

    def test_service_is_notify_with_watchdog(self) -> None:
        with open(os.path.join(ROOT, "etc", "ocppd.service"), encoding="utf-8") as f:
            settings = [line.strip() for line in f if not line.startswith("#")]
        for setting in ("Type=notify", "WatchdogSec=30", "NoNewPrivileges=yes", "User=ocppd"):
            self.assertIn(setting, settings)
        with open(os.path.join(ROOT, "etc", "ocppd.socket"), encoding="utf-8") as f:
            listens = [line.strip() for line in f if line.startswith("ListenStream=")]
        self.assertEqual(listens, ["ListenStream=9000", "ListenStream=8080"])
