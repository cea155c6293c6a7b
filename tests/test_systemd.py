"""Tests for ocppd.systemd's pieces: the notify socket's address, the datagrams, the watchdog."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from ocppd.systemd import Notifier, notify_when_serving, watchdog_interval


class WatchdogIntervalTests(SynchronousTestCase):
    def test_half_of_watchdog_usec(self) -> None:
        self.assertEqual(watchdog_interval({"WATCHDOG_USEC": "30000000"}, 7), 15.0)
        self.assertEqual(
            watchdog_interval({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "7"}, 7), 0.2
        )

    def test_not_asked(self) -> None:
        for environ in (
            {},
            {"WATCHDOG_USEC": "0"},
            {"WATCHDOG_USEC": "soon"},
            {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "8"},  # our parent's
        ):
            self.assertIsNone(watchdog_interval(environ, 7), environ)


class _RunningClock(Clock):
    """A Clock as the reactor of notify_when_serving: it is running already."""

    def callWhenRunning(self, f: Callable[..., Any], *args: Any) -> None:
        f(*args)

    def addSystemEventTrigger(self, *args: Any) -> None:
        pass


class NotifierTests(SynchronousTestCase):
    def receiver(self, abstract: bool = False) -> tuple[socket.socket, str]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        if abstract:
            name = f"ocppd-test-{os.getpid()}-{id(self)}"
            sock.bind("\0" + name)
            return sock, "@" + name
        folder = tempfile.mkdtemp(prefix="ocppd-")
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "notify")
        sock.bind(path)
        return sock, path

    def notifier(self, value: str) -> Notifier:
        notifier = Notifier.from_environment({"NOTIFY_SOCKET": value})
        assert notifier is not None
        self.addCleanup(notifier.close)
        return notifier

    def test_path_socket(self) -> None:
        sock, path = self.receiver()
        self.assertTrue(self.notifier(path).send("READY=1", "STATUS=Serving"))
        self.assertEqual(sock.recv(1024), b"READY=1\nSTATUS=Serving")

    def test_abstract_socket(self) -> None:
        sock, name = self.receiver(abstract=True)
        self.assertTrue(self.notifier(name).send("WATCHDOG=1"))
        self.assertEqual(sock.recv(1024), b"WATCHDOG=1")

    def test_no_or_unknown_socket(self) -> None:
        self.assertIsNone(Notifier.from_environment({}))
        self.assertIsNone(Notifier.from_environment({"NOTIFY_SOCKET": "vsock:2:1234"}))

    def test_status_cannot_forge_an_assignment(self) -> None:
        sock, path = self.receiver()
        self.notifier(path).status("Start failed: x\nREADY=1")
        self.assertEqual(sock.recv(1024), b"STATUS=Start failed: x READY=1")

    def test_failure_logged_once_per_outage(self) -> None:
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        folder = tempfile.mkdtemp(prefix="ocppd-")
        self.addCleanup(shutil.rmtree, folder)
        notifier = self.notifier(os.path.join(folder, "gone"))
        self.assertFalse(notifier.send("WATCHDOG=1"))
        self.assertFalse(notifier.send("WATCHDOG=1"))
        warnings = [e for e in events if "Could not notify systemd" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 1)

    def test_watchdog_every_half_of_watchdog_usec(self) -> None:
        """WATCHDOG=1 at once, then every WATCHDOG_USEC / 2 of the reactor's time."""
        sock, path = self.receiver()
        sock.setblocking(False)
        clock = _RunningClock()
        # A node whose start never ends: only the watchdog speaks.
        service = SimpleNamespace(ocppd=None, when_started=Deferred)
        notifier = notify_when_serving(
            service,  # type: ignore[arg-type]
            clock,
            {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"},
        )
        assert notifier is not None
        self.addCleanup(notifier.close)

        def received() -> list[bytes]:
            datagrams = []
            while True:
                try:
                    datagrams.append(sock.recv(1024))
                except BlockingIOError:
                    return datagrams

        self.assertEqual(received(), [b"STATUS=Starting", b"WATCHDOG=1"])
        clock.advance(0.199)
        self.assertEqual(received(), [])
        clock.advance(0.001)
        self.assertEqual(received(), [b"WATCHDOG=1"])
        clock.advance(0.2)
        self.assertEqual(received(), [b"WATCHDOG=1"])
