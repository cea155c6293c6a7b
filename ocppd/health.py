"""
``GET /health`` and ``GET /ready`` on the web listener: whether the process
answers at all (liveness), and whether the node can serve (readiness: the
database answers, the bus is connected, presence is reachable when
configured, both listeners are up), for load balancers, Kubernetes probes,
``ocppctl status`` and the systemd readiness notice.

Each check is a small probe returning the problem (a short text without
addresses or credentials) or None. The web listener is open to anyone, so
``/ready`` costs a bounded amount whatever the request rate: concurrent
requests share one run of the probes, and a result is reused for
:data:`REUSE_SECONDS`; each probe is given :data:`PROBE_TIMEOUT` seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.application.service import IService
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.defer import TimeoutError as DeferredTimeoutError
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from ocppd import __version__
from ocppd.logs import Logger
from ocppd.roles import serves_chargers

if TYPE_CHECKING:
    from ocppd.nodeservices import ListenersService, ProbesService
    from ocppd.service import Ocppd

__all__ = [
    "PROBE_TIMEOUT",
    "REUSE_SECONDS",
    "Health",
    "consumer_lags",
    "is_local",
    "node_checks",
    "public",
]

#: Seconds a probe may take before it counts as failed ("no answer").
PROBE_TIMEOUT = 2.0
#: Seconds a readiness result is reused for the next requests.
REUSE_SECONDS = 1.0

#: A probe: the problem, or None when all is well (or a Deferred of either).
Probe = Callable[[], "Deferred[str | None] | str | None"]
#: What a node tells about itself besides the checks (bus state, chargers, role).
Details = Callable[[], Any]


class Health:
    """The node's liveness and readiness; probes are added by whoever owns the part."""

    log = Logger()

    def __init__(self, *, node_id: str, clock: IReactorTime) -> None:
        self.node_id = node_id
        self._clock = clock
        self._probes: dict[str, Probe] = {}
        self._details: dict[str, Details] = {}
        self._running: Deferred[tuple[bool, dict[str, Any]]] | None = None
        self._waiting: list[Deferred[tuple[bool, dict[str, Any]]]] = []
        self._last: tuple[float, tuple[bool, dict[str, Any]]] | None = None

    def add_check(self, name: str, probe: Probe) -> None:
        self._probes[name] = probe

    def add_details(self, name: str, details: Details) -> None:
        self._details[name] = details

    def alive(self, *, detailed: bool = True) -> dict[str, Any]:
        """The body of ``/health``: the process answers; no probe runs."""
        body = {"status": "alive", "node": self.node_id, "version": __version__}
        return body if detailed else public(body)

    def ready(self) -> Deferred[tuple[bool, dict[str, Any]]]:
        """Whether every check passes, and the body of ``/ready``."""
        now = self._clock.seconds()
        if self._last is not None and now - self._last[0] < REUSE_SECONDS:
            return succeed(self._last[1])
        waiter: Deferred[tuple[bool, dict[str, Any]]] = Deferred()
        self._waiting.append(waiter)
        if self._running is None:
            self._running = self._run()
            self._running.addCallback(self._finished)
        return waiter

    def _finished(self, result: tuple[bool, dict[str, Any]]) -> None:
        self._running = None
        self._last = (self._clock.seconds(), result)
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            waiter.callback(result)

    def _run(self) -> Deferred[tuple[bool, dict[str, Any]]]:
        names = list(self._probes)
        runs = [self._probe(name) for name in names]

        def outcome(results: list[tuple[bool, Any]]) -> tuple[bool, dict[str, Any]]:
            checks = {
                name: problem or "ok" for name, (_, problem) in zip(names, results, strict=True)
            }
            problems = {name: text for name, text in checks.items() if text != "ok"}
            body: dict[str, Any] = {
                "status": "not ready" if problems else "ready",
                "node": self.node_id,
                "version": __version__,
                "checks": checks,
                "problems": problems,
            }
            for name, details in self._details.items():
                try:
                    body[name] = details()
                except Exception:
                    self.log.failure("Readiness details {name!r} failed", name=name)
                    body[name] = None
            return not problems, body

        return DeferredList(runs, consumeErrors=True).addCallback(outcome)

    def _probe(self, name: str) -> Deferred[str | None]:
        running: Deferred[Any] = maybeDeferred(self._probes[name])
        running.addTimeout(PROBE_TIMEOUT, self._clock)

        def failed(failure: Failure) -> str:
            if failure.check(DeferredTimeoutError):
                return f"no answer within {PROBE_TIMEOUT:g} s"
            # The type only: a driver's message may hold a host name or worse.
            self.log.warn(
                "Readiness check {name!r} failed: {error}",
                name=name,
                error=failure.getErrorMessage(),
            )
            return f"failed ({type(failure.value).__name__})"

        return running.addErrback(failed)


#: What anyone may read of /health and /ready: whether the node serves and
#: which check fails. The version (which tells an attacker what to try), the
#: node id, its counts and parts are for the node's own host (``ocppctl status``).
PUBLIC_KEYS = ("status", "checks", "problems")


def public(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` without what only the node's own host may read."""
    return {key: body[key] for key in PUBLIC_KEYS if key in body}


def is_local(address: Any) -> bool:
    """Whether a client address (``IRequest.getClientAddress()``) is this host's loopback."""
    import ipaddress

    try:
        return ipaddress.ip_address(str(getattr(address, "host", ""))).is_loopback
    except ValueError:
        return False


def consumer_lags(bus: Any, now: float) -> dict[str, dict[str, float]]:
    """
    Each queue this node consumes, with the age of the oldest message its
    consumer has not finished (``lagSeconds``, 0 when none waits): what
    ``ocppctl status`` shows as the lag of RabbitMQ's queues, which the
    broker cannot tell without taking the message.
    """
    from ocppd.metrics.collector import message_age

    return {
        queue: {"lagSeconds": round(message_age(published, now), 3)}
        for queue, published in sorted(bus.oldest_unprocessed().items())
    }


def _select_one(conn: Any) -> str | None:
    import sqlalchemy as sa

    conn.execute(sa.text("SELECT 1"))
    return None


def node_checks(
    health: Health,
    node: Ocppd,
    listeners: ListenersService | ProbesService,
    services: Sequence[IService] = (),
) -> None:
    """
    Add a node's checks and details to ``health``; ``listeners`` is the part
    that opens its listeners (a processor node's: the probes listener alone);
    ``services`` are the node's parts (store, bus and its consumers...), shown
    running or stopped. A node that runs no presence has no presence check.
    """
    config = node.config

    def database() -> Deferred[str | None]:
        return node.database.run(_select_one)

    def bus() -> str | None:
        if config.bus.backend != "amqp":
            return None  # the embedded bus is in this process
        amqp: Any = node.bus
        if not amqp.connected:
            return "not connected to RabbitMQ"
        if amqp.blocked:
            return "RabbitMQ blocks publishing (a resource alarm)"
        return None

    def presence() -> str | None:
        connected = getattr(node.presence, "connected", None)
        if config.presence.backend != "redis" or connected is None:
            return None
        return None if connected() else "not connected to Redis"

    def listening() -> str | None:
        down = [
            purpose for purpose, port in listeners.ports() if port is None or not listeners.running
        ]
        return f"{' and '.join(down)} listener not up" if down else None

    # A processor node holds no chargers: it runs no presence to check.
    runs_presence = serves_chargers(config.ocppd.role)
    health.add_check("database", database)
    health.add_check("bus", bus)
    if runs_presence:
        health.add_check("presence", presence)
    health.add_check("listeners", listening)
    health.add_details("role", lambda: config.ocppd.role)

    def bus_details() -> dict[str, Any]:
        amqp = config.bus.backend == "amqp"
        return {
            "backend": config.bus.backend,
            "connected": bool(getattr(node.bus, "connected", True)) if amqp else True,
            "blocked": getattr(node.bus, "blocked", None) if amqp else None,
        }

    health.add_details("bus", bus_details)
    if runs_presence:
        health.add_details(
            "presence", lambda: {"backend": config.presence.backend, "problem": presence()}
        )
    health.add_details("chargers", lambda: {"connected": len(node.registry)})
    health.add_details("consumers", lambda: consumer_lags(node.bus, node.reactor.seconds()))
    if services:
        health.add_details(
            "services",
            lambda: {
                str(service.name): "running" if service.running else "stopped"
                for service in services
            },
        )
