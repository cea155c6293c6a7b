"""Run a whole ocppd node inside the test's reactor, on ephemeral 127.0.0.1 ports."""

from __future__ import annotations

import io
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from ocppd import cli
from ocppd.config import load_config
from ocppd.service import OcppdService
from ocppd.store.database import default_sqlite_url
from tests.nodecache import seed_migrated_sqlite, share_schemas
from tests.services import RABBITMQ_URL, require_service


def held_port(testcase: TestCase) -> int:
    """A 127.0.0.1 port this test holds, listening, until it ends: a port that is busy."""
    sock = socket.socket()
    testcase.addCleanup(sock.close)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return int(sock.getsockname()[1])


class RunningDaemon:
    def __init__(self, service: OcppdService, config_args: list[str]) -> None:
        self.service = service
        self.node = service.ocppd
        self.config_args = config_args
        assert service.ocpp_port is not None
        self.port: int = service.ocpp_port.getHost().port
        assert service.web_port is not None
        self.web_port: int = service.web_port.getHost().port

    def url(self, charge_point_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp/{charge_point_id}"

    def ocppctl(self, *argv: str, stdin: str = "") -> str:
        out = io.StringIO()
        code = cli.main([*self.config_args, *argv], stdin=io.StringIO(stdin), stdout=out)
        if code != 0:
            raise AssertionError(f"ocppctl {' '.join(argv)} exited {code}")
        return out.getvalue()

    def query(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Deferred[Any]:
        return self.node.database.run(func, *args, **kwargs)

    def wait_for(
        self,
        func: Callable[..., Any],
        *args: Any,
        until: Callable[[Any], bool],
        timeout: float = 30,
    ) -> Deferred[Any]:
        """Poll the store until ``until(result)`` holds (the processor runs off the bus)."""
        return poll(lambda: self.query(func, *args), until=until, timeout=timeout)


@inlineCallbacks
def poll(
    fetch: Callable[[], Deferred[Any]], *, until: Callable[[Any], bool], timeout: float = 30
) -> Any:
    """
    Call ``fetch`` every 20 ms until ``until(result)`` holds; fail after
    ``timeout`` s (a bound for a hang: under CI's load the reactor stalls).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = yield fetch()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out polling: last result {result!r}")
        yield deferLater(reactor, 0.02, lambda: None)


def cancel_spent_autobahn_timers() -> None:
    """
    Cancel txaio's batched-timer buckets left after sockets closed.

    Autobahn schedules its handshake, ping and close timeouts through txaio's
    batched timer; cancelling such a timeout leaves the bucket's DelayedCall
    scheduled until it fires (with nothing left to do), which trial reports as
    a dirty reactor when a test ends within seconds of a socket closing.
    Called last, once every node and client of the test has stopped.
    """
    for call in reactor.getDelayedCalls():
        if getattr(call.func, "__name__", "") == "_notify_bucket" and call.active():
            call.cancel()


@inlineCallbacks
def start_daemon(testcase: TestCase, *overrides: str, migrated: bool = True) -> Any:
    service, args = start_service(testcase, *overrides, migrated=migrated)
    yield service.when_started()
    return RunningDaemon(service, args)


def start_service(
    testcase: TestCase, *overrides: str, migrated: bool = True
) -> tuple[OcppdService, list[str]]:
    """
    Start a node's service on ephemeral ports and a data dir of its own, without
    waiting for it: ``when_started`` tells how the start went. Returns the service
    and the ``--set`` arguments of its configuration.

    Its SQLite store in that data dir starts as a copy of one this process
    migrated once (``migrated=False``: no file, the node's start creates it);
    its OCPP schemas are the process's compiled ones (``tests.nodecache``).
    """
    # Registered first, so it runs after every other cleanup of the test.
    testcase.addCleanup(cancel_spent_autobahn_timers)
    data_dir = os.path.abspath(testcase.mktemp())
    os.makedirs(data_dir)
    args = [
        "--set",
        f"ocppd.data_dir={data_dir}",
        "--set",
        "ocppd.node_id=test-node",
        "--set",
        "ocpp.listen=tcp:0:interface=127.0.0.1",
        "--set",
        "web.listen=tcp:0:interface=127.0.0.1",
        "--set",
        "bus.retry_delays=0.05",
    ]
    for override in overrides:
        args += ["--set", override]
    config = load_config(None, args[1::2])
    if migrated and config.store_url == default_sqlite_url(data_dir):
        seed_migrated_sqlite(data_dir)
    share_schemas(testcase)
    service = OcppdService(config, reactor)
    service.startService()
    testcase.addCleanup(service.stopService)
    return service, args


def amqp_overrides(testcase: TestCase) -> list[str]:
    """
    Settings that put a daemon on the real RabbitMQ under a fresh prefix, and
    a cleanup that deletes its queues and exchanges. Call before start_daemon:
    cleanups run last-in first-out, so the daemon stops before the deletion.
    """
    from ocppd.bus.amqp import AmqpBus
    from ocppd.bus.topology import default_topology

    require_service("RabbitMQ", "127.0.0.1", 5672)
    prefix = f"t{uuid.uuid4().hex[:10]}"

    @inlineCallbacks
    def delete_topology() -> Any:
        bus = AmqpBus(
            default_topology(prefix),
            url=RABBITMQ_URL,
            reactor=reactor,
            retry_delays=(0.05,),
            max_attempts=3,
            connection_name=f"cleanup {prefix}",
        )
        bus.startService()
        try:
            yield bus.when_connected(failAfterFailures=3)
            yield bus.delete_topology()
        finally:
            yield bus.stopService()

    testcase.addCleanup(delete_topology)
    return ["bus.backend=amqp", f"bus.url={RABBITMQ_URL}", f"bus.prefix={prefix}"]


def postgres_overrides(testcase: TestCase) -> list[str]:
    """
    Settings that put a daemon's store on the real PostgreSQL, in a schema of
    its own at the head revision with no rows (``tests.pgschemas``). Call
    before start_daemon, like amqp_overrides: the daemon stops before the
    schema is emptied for the process's next test.
    """
    from tests.pgschemas import migrated_postgres_schema

    url, schema = migrated_postgres_schema(testcase)
    separator = "&" if "?" in url else "?"
    return [f"store.url={url}{separator}options=-csearch_path%3D{schema}"]
