"""
The daemon as a tree of services: children start one after the other (each
start waited for), stop in reverse, and a failed start stops what had started.

``NODE_PARTS`` is the one spelling of a node's parts in order: the tests of
the roles (tests/test_roles.py) derive theirs from it.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import TestCase

from ocppd.config import load_config
from ocppd.service import OcppdService
from ocppd.servicetree import OrderedServices

#: Every part of a node (``[ocppd] role = all``), in start order.
NODE_PARTS = [
    "store",
    "last_seen",
    "bus",
    "redis",
    "presence",
    "timers",
    "alerts",
    "metrics",
    "listeners",
]


class Recording(Service):
    """A child that writes its starts and stops into ``log``; its start may wait on a Deferred."""

    def __init__(self, name: str, log: list[str], start: Deferred[None] | None = None) -> None:
        self.name = name
        self.log = log
        self.start: Deferred[None] | None = start
        self.stop: Deferred[None] | None = None

    def startService(self) -> Deferred[None] | None:  # type: ignore[override]
        super().startService()
        self.log.append(f"start {self.name}")
        return self.start

    def stopService(self) -> Deferred[None] | None:  # type: ignore[override]
        super().stopService()
        self.log.append(f"stop {self.name}")
        return self.stop


class Failing(Recording):
    def startService(self) -> Deferred[None] | None:  # type: ignore[override]
        super().startService()
        raise RuntimeError(f"{self.name} cannot start")


def tree(*children: Service) -> OrderedServices:
    parent = OrderedServices()
    for child in children:
        parent.add(child)
    return parent


class OrderedServicesTests(TestCase):
    def test_each_start_waited_for_then_stop_in_reverse(self) -> None:
        """The next child starts only once the one before has; the stop goes back, waiting too."""
        log: list[str] = []
        slow: Deferred[None] = Deferred()
        a, b, c = Recording("a", log), Recording("b", log, slow), Recording("c", log)
        root = tree(a, b, c)
        started = root.startService()
        self.assertEqual(log, ["start a", "start b"])
        self.assertNoResult(started)
        slow.callback(None)
        self.successResultOf(started)
        self.assertEqual(log, ["start a", "start b", "start c"])

        log.clear()
        b.stop = Deferred()
        stopped = root.stopService()
        self.assertEqual(log, ["stop c", "stop b"])  # a waits for b's stop
        self.assertNoResult(stopped)
        b.stop.callback(None)
        self.successResultOf(stopped)
        self.assertEqual(log, ["stop c", "stop b", "stop a"])

    def test_failed_start_stops_the_started_in_reverse(self) -> None:
        """A child's start fails: it and every child before it stop, last first; the start fails."""
        log: list[str] = []
        root = tree(
            Recording("a", log), Recording("b", log), Failing("c", log), Recording("d", log)
        )
        self.failureResultOf(root.startService(), RuntimeError)
        self.assertEqual(log, ["start a", "start b", "start c", "stop c", "stop b", "stop a"])
        self.flushLoggedErrors(RuntimeError)
        log.clear()
        self.successResultOf(root.stopService())  # twistd stops it later: nothing is left to stop
        self.assertEqual(log, [])

    def test_failing_stop_does_not_keep_the_others_running(self) -> None:
        """One child's stop fails: logged, and the children before it still stop."""
        log: list[str] = []
        a, b = Recording("a", log), Recording("b", log)
        root = tree(a, b)
        self.successResultOf(root.startService())
        b.stop = Deferred()
        stopped = root.stopService()
        b.stop.errback(RuntimeError("b will not stop"))
        self.successResultOf(stopped)
        self.assertEqual(log[-2:], ["stop b", "stop a"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_stop_while_starting(self) -> None:
        """A stop during a child's start cancels it and stops what started, in reverse."""
        log: list[str] = []
        waiting: Deferred[None] = Deferred()
        root = tree(Recording("a", log), Recording("b", log, waiting), Recording("c", log))
        started = root.startService()
        stopped = root.stopService()
        self.successResultOf(stopped)
        self.failureResultOf(started, CancelledError)
        self.assertEqual(log, ["start a", "start b", "stop b", "stop a"])


class OcppdServiceTreeTests(TestCase):
    def service(self, *overrides: str) -> tuple[OcppdService, MemoryReactor]:
        data_dir = os.path.abspath(self.mktemp())
        os.makedirs(data_dir)
        config = load_config(
            None,
            [
                f"ocppd.data_dir={data_dir}",
                "ocpp.listen=tcp:0:interface=127.0.0.1",
                "web.listen=tcp:0:interface=127.0.0.1",
                *overrides,
            ],
        )
        reactor = MemoryReactor()
        return OcppdService(config, reactor), reactor

    def test_children_in_order(self) -> None:
        """
        Store, the Heartbeats' last_seen_at writer, bus (with its consumers),
        Redis link, presence, timers, alert evaluator, the metrics listener,
        the listeners: in order.
        """
        service, _ = self.service()
        self.assertEqual([child.name for child in service.children], NODE_PARTS)

    def test_start_order_and_reverse_stop(self) -> None:
        """
        On a MemoryReactor: each part starts after the one before it, the
        listeners (real, on the MemoryReactor) open metrics, web, then OCPP,
        and the stop runs in reverse, the store closing last.
        """
        service, reactor = self.service("metrics.listen=tcp:0:interface=127.0.0.1")
        log: list[str] = []
        for child in service.children[:-2]:
            name = child.name
            self.patch(child, "startService", lambda name=name: log.append(f"start {name}"))
            self.patch(child, "stopService", lambda name=name: log.append(f"stop {name}"))
        for child in service.children[-2:]:

            def stop_logged(name: str = child.name, original: Any = child.stopService) -> Any:
                log.append(f"stop {name}")
                return original()

            self.patch(child, "stopService", stop_logged)
        service.startService()
        self.successResultOf(service.when_started())
        # The metrics listener and the listeners are real: what they open is below.
        self.assertEqual(log, [f"start {name}" for name in NODE_PARTS[:-2]])
        self.assertEqual(
            [factory for _, factory, _, _ in reactor.tcpServers],
            [service.ocppd.metrics_site, service.ocppd.web_site, service.ocppd.ocpp_factory],
        )
        # The OCPP listener's backlog holds a reconnect storm (ocppd.listen); the others: Twisted's.
        self.assertEqual([backlog for _, _, backlog, _ in reactor.tcpServers], [50, 50, 4096])
        log.clear()
        self.successResultOf(service.stopService())
        self.assertEqual(log, [f"stop {name}" for name in reversed(NODE_PARTS)])
        self.assertEqual(log[-1], "stop store")
        self.assertEqual((service.web_port, service.ocpp_port), (None, None))
        self.assertIsNone(service.metrics.port)

    def test_failed_child_stops_the_started_in_reverse(self) -> None:
        """Presence fails to start: it and the parts before it stop, in reverse; none listens."""
        service, reactor = self.service()
        log: list[str] = []
        for child in service.children:
            name = child.name
            self.patch(child, "startService", lambda name=name: log.append(f"start {name}"))
            self.patch(child, "stopService", lambda name=name: log.append(f"stop {name}"))

        def broken() -> None:
            log.append("start presence")
            raise RuntimeError("no presence today")

        self.patch(service.presence, "startService", broken)
        service.startService()
        self.failureResultOf(service.when_started(), RuntimeError)
        started = NODE_PARTS[: NODE_PARTS.index("presence") + 1]
        self.assertEqual(
            log,
            [f"start {name}" for name in started] + [f"stop {name}" for name in reversed(started)],
        )
        self.assertEqual(reactor.tcpServers, [])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
