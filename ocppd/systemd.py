"""
systemd's notify protocol (``Type=notify``), spoken over the datagram socket
systemd names in ``NOTIFY_SOCKET``, without libsystemd:

- ``READY=1`` once the node serves: every part started, both listeners up,
  RabbitMQ connected (or its ``[bus] connect_timeout`` passed: the node then
  serves without it, and says so in ``STATUS=``);
- ``WATCHDOG=1`` from the reactor every half of ``WATCHDOG_USEC``: a reactor
  that hangs (a blocking call, a busy loop) stops sending it, and systemd
  kills and restarts the process (``WatchdogSec=`` in the unit);
- ``STOPPING=1`` when the stop begins (SIGTERM), so systemd shows it;
- ``STATUS=`` lines for ``systemctl status`` at each of these moments.

Nothing is sent without ``NOTIFY_SOCKET`` (not under systemd, or
``Type=simple``). A datagram that cannot be sent is logged, never raised: the
daemon runs on whatever systemd does. Socket activation needs nothing here:
Twisted's ``systemd:`` endpoint adopts the sockets of ``LISTEN_FDS``
(docs/operations.md, "systemd").
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from ocppd.logs import Logger

if TYPE_CHECKING:
    from ocppd.service import OcppdService

__all__ = ["Notifier", "notify_when_serving", "watchdog_interval"]

#: Longest STATUS= text sent (a datagram must stay small; reasons can be long).
MAX_STATUS = 400


def _address(value: str) -> str | None:
    """The socket address of ``NOTIFY_SOCKET``: a path, or ``@name`` for the abstract namespace."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # vsock and other forms: not spoken here


class Notifier:
    """Sends notify datagrams to one socket; see the module docstring."""

    log = Logger()

    def __init__(self, address: str) -> None:
        self.address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._socket.setblocking(False)
        self._failing = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Notifier | None:
        address = _address(environ.get("NOTIFY_SOCKET", ""))
        return None if address is None else cls(address)

    def send(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; whether it went."""
        message = "\n".join(_one_line(line) for line in assignments).encode("utf-8")
        try:
            self._socket.sendto(message, self.address)
        except OSError as e:
            if not self._failing:  # once per outage, not every watchdog tick
                self.log.warn(
                    "Could not notify systemd at {address!r}: {error}",
                    address=self.address,
                    error=str(e),
                )
            self._failing = True
            return False
        self._failing = False
        return True

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text[:MAX_STATUS]}")

    def close(self) -> None:
        self._socket.close()


def _one_line(text: str) -> str:
    # A newline would start another assignment: a reason must not forge one.
    return text.replace("\n", " ").replace("\r", " ")


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between ``WATCHDOG=1`` (half of ``WATCHDOG_USEC``), or None when not asked."""
    watchdog_pid = environ.get("WATCHDOG_PID")
    if watchdog_pid and watchdog_pid != str(pid):
        return None  # meant for another process (our parent)
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2_000_000 if usec > 0 else None


def notify_when_serving(
    service: OcppdService, reactor: Any, environ: Mapping[str, str] | None = None
) -> Notifier | None:
    """
    Tell systemd about ``service``: the watchdog from the moment the reactor
    runs, READY=1 when the start succeeded, STOPPING=1 when the stop begins.
    None (and nothing done) without ``NOTIFY_SOCKET``.
    """
    environ = os.environ if environ is None else environ
    notifier = Notifier.from_environment(environ)
    if notifier is None:
        return None
    interval = watchdog_interval(environ, os.getpid())
    node = service.ocppd
    notifier.status("Starting")

    def ready(_: object) -> None:
        bus = node.config.bus
        web, ocpp = service.web_port, service.ocpp_port
        unreachable = bus.backend == "amqp" and not getattr(node.bus, "connected", True)
        if ocpp is None:
            # A processor node (ocppd.roles): it takes no chargers.
            serving = "Processing" + ("; RabbitMQ not reachable yet" if unreachable else "")
            where = f"probes on {_port(web)}"
        else:
            if unreachable:
                serving = "Serving chargers; RabbitMQ not reachable yet (transactions refused)"
            else:
                serving = "Serving chargers"
            where = f"OCPP on {_port(ocpp)}, web on {_port(web)}"
        notifier.send("READY=1", f"STATUS={serving}: {where}"[: MAX_STATUS + 7])

    def failed(failure: Failure) -> None:
        notifier.status(f"Start failed: {failure.getErrorMessage()}")

    def stopping() -> None:
        notifier.send("STOPPING=1", "STATUS=Stopping: closing connections, draining the bus")

    def running() -> None:
        service.when_started().addCallbacks(ready, failed)
        if interval is not None:
            watchdog = LoopingCall(notifier.send, "WATCHDOG=1")
            watchdog.clock = reactor
            watchdog.start(interval, now=True)

    reactor.callWhenRunning(running)
    reactor.addSystemEventTrigger("before", "shutdown", stopping)
    return notifier


def _port(port: Any) -> str:
    host = port.getHost() if port is not None else None
    if host is None:
        return "?"
    return f"{getattr(host, 'host', '?')}:{getattr(host, 'port', '?')}"
