"""
``twistd ocppd``: command-line options and the service maker.

A start that fails ends the process with exit status 1 (systemd's
``Restart=on-failure`` needs a non-zero status to act) and one line saying
why: invalid options and listener strings before anything starts, as a usage
error; anything else (a busy port, the database) once the service has tried.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from typing import TYPE_CHECKING

from twisted.application.service import IService
from twisted.internet.defer import CancelledError
from twisted.internet.error import ReactorNotRunning
from twisted.python import usage
from twisted.python.failure import Failure

from ocppd.config import ConfigError, check_listeners, load_config

if TYPE_CHECKING:
    from ocppd.service import OcppdService

#: The exit status of a failed start.
START_FAILED = 1


class Options(usage.Options):
    synopsis = (
        "[--config etc/ocppd.ini] [--role all|edge|processor] [--set section.option=value ...]"
    )
    longdesc = "Run the ocppd OCPP 1.6J central system."
    optParameters = [
        ["config", "c", None, "Configuration file (ini); defaults apply without one."],
        [
            "role",
            None,
            None,
            "What this process runs: all, edge or processor (overrides [ocppd] role;"
            " docs/operations.md).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["overrides"] = []

    def opt_set(self, value: str) -> None:
        """Override one option, e.g. --set ocpp.listen=tcp:9100 (repeatable)."""
        self["overrides"].append(value)

    def postOptions(self) -> None:
        overrides = list(self["overrides"])
        if self["role"] is not None:
            # After the --set options: the flag names the role outright.
            overrides.append(f"ocppd.role={self['role']}")
        try:
            self["parsed"] = config = load_config(self["config"], overrides)
            check_listeners(config)
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


def makeService(options: Options) -> IService:
    import txaio

    # Autobahn logs every frame and header at debug level through txaio; its
    # loggers take the level in force when they are created, at import.
    txaio.use_twisted()
    txaio.set_global_log_level("info")  # type: ignore[attr-defined]

    from twisted.internet import reactor

    from ocppd.logformat import observer, twistd_log_file
    from ocppd.service import OcppdService
    from ocppd.store.database import GIL_SWITCH_INTERVAL
    from ocppd.systemd import notify_when_serving

    # The reactor must not wait 5 ms for the GIL after each system call
    # while the database thread runs Python (docs/operations.md "Data").
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    config = options["parsed"]
    try:
        # The one place the global reactor is named: every part gets it from here.
        service = OcppdService(config, reactor)
    except OSError as e:
        # e.g. the data directory cannot be created. Nothing runs yet, not even
        # twistd's log or pidfile: Python prints the line and exits with 1.
        raise SystemExit(f"ocppd: {e}") from None
    log_to = twistd_log_file(getattr(options, "parent", None) or {})
    if log_to is not None:
        # Taken by twistd from the application it adds the service to.
        service.log_observer = observer(config.log.format, log_to, config.ocppd.node_id)
    exit_if_start_fails(service)
    settle_heap_when_serving(service)
    # Type=notify under systemd: READY=1, WATCHDOG=1, STOPPING=1 (docs/operations.md).
    notify_when_serving(service, reactor)
    return service


def exit_if_start_fails(service: OcppdService) -> None:
    """
    Make a failed start end twistd with ``START_FAILED``.

    twistd has no exit status of its own: once the reactor stops it stops the
    services, removes its pidfile, closes its log and returns, and the process
    exits 0. So a failed start stops the reactor (the service has logged the
    reason) and leaves an exit handler that turns that ending into status 1,
    after twistd's own clean-up. A stop during the start (SIGTERM) is no failure.
    """
    reactor = service.ocppd.reactor

    def failed(failure: Failure) -> None:
        if failure.check(CancelledError):
            return
        atexit.register(_exit, START_FAILED)
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass  # already stopping (a signal came too): the exit status stays 1

    def watch() -> None:
        service.when_started().addErrback(failed)

    # twistd starts the services before it runs the reactor; the start may
    # even have failed already, before the reactor could be stopped.
    reactor.callWhenRunning(watch)


def settle_heap_when_serving(service: OcppdService) -> None:
    """
    Once the node serves, start-up's heap is out of the garbage collector's
    way (``ocppd/gcsettings.py``). Process-wide, so here and not in the
    service, which tests start by the dozen in one process.
    """
    from ocppd.gcsettings import settle_heap

    def settle(_: None) -> None:
        settle_heap()

    def watch() -> None:
        # A failed start is reported by exit_if_start_fails.
        service.when_started().addCallbacks(settle, lambda _: None)

    service.ocppd.reactor.callWhenRunning(watch)


def _exit(status: int) -> None:
    # Registered last, so run first of the exit handlers; os._exit skips the
    # others, so do what they would have: flush the logs and standard streams.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):
                pass  # closed: nothing left to flush
    os._exit(status)
