"""
``[ocppd] role`` (``ocppd.roles``): which parts a node of each role runs, in
which order, which consumers its bus starts and stops, what its topology
declares, and ``twistd ocppd --role``. A role other than ``all`` on the
embedded bus is refused at start (tests/test_startup.py); an edge and a
processor on RabbitMQ and PostgreSQL together: tests/integration/test_roles.py.
The parts of a node and their order are spelled once, in tests/test_servicetree.py
(``NODE_PARTS``); here, what each role changes of them.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet.defer import succeed
from twisted.internet.testing import MemoryReactor
from twisted.python import usage
from twisted.trial.unittest import TestCase

from ocppd.bus import topology
from ocppd.config import load_config
from ocppd.roles import role_problem
from ocppd.service import OcppdService
from ocppd.systemd import notify_when_serving
from ocppd.tap import Options
from tests.test_servicetree import NODE_PARTS

#: What a processor leaves out of a node's parts: the charger side.
CHARGER_SIDE = {"last_seen", "redis", "presence", "timers", "listeners"}
#: A processor's parts: the others in the same order, then its probes listener.
PROCESSOR_PARTS = [name for name in NODE_PARTS if name not in CHARGER_SIDE] + ["probes"]


def node_service(testcase: TestCase, role: str, *overrides: str) -> tuple[OcppdService, Any]:
    """A node of ``role`` on RabbitMQ (nothing connects it here), and its MemoryReactor."""
    data_dir = os.path.abspath(testcase.mktemp())
    os.makedirs(data_dir)
    config = load_config(
        None,
        [
            f"ocppd.data_dir={data_dir}",
            "ocppd.node_id=n1",
            f"ocppd.role={role}",
            "bus.backend=amqp",
            "ocpp.listen=tcp:0:interface=127.0.0.1",
            "web.listen=tcp:0:interface=127.0.0.1",
            *overrides,
        ],
    )
    reactor = MemoryReactor()
    return OcppdService(config, reactor), reactor


class RoleTreeTests(TestCase):
    """The parts of a node of each role, in the order they start."""

    def test_all_runs_everything(self) -> None:
        service, _ = node_service(self, "all")
        self.assertEqual([child.name for child in service.children], NODE_PARTS)

    def test_edge_has_every_part(self) -> None:
        """An edge runs every part; what it leaves out is inside the bus (below)."""
        service, _ = node_service(self, "edge")
        self.assertEqual([child.name for child in service.children], NODE_PARTS)

    def test_processor_runs_no_charger_side(self) -> None:
        """A processor: no Redis link, presence, timers or listeners; the probes listener."""
        self.assertLess(CHARGER_SIDE, set(NODE_PARTS))
        service, _ = node_service(self, "processor")
        self.assertEqual([child.name for child in service.children], PROCESSOR_PARTS)

    def test_processor_start_and_stop_order(self) -> None:
        """
        The processor's parts start in order, its probes listener opens last
        (after metrics) on [web] listen, and the stop runs in reverse.
        """
        service, reactor = node_service(
            self, "processor", "metrics.listen=tcp:0:interface=127.0.0.1"
        )
        log: list[str] = []
        for child in service.children[:-2]:
            name = child.name
            self.patch(child, "startService", lambda name=name: log.append(f"start {name}"))
            self.patch(child, "stopService", lambda name=name: log.append(f"stop {name}"))
        service.startService()
        self.successResultOf(service.when_started())
        # The metrics and probes listeners are real: what they open is below.
        started = PROCESSOR_PARTS[:-2]
        self.assertEqual(log, [f"start {name}" for name in started])
        self.assertEqual(
            [factory for _, factory, _, _ in reactor.tcpServers],
            [service.ocppd.metrics_site, service.probes.site],
        )
        self.assertIs(service.web_port, service.probes.port)
        self.assertIsNone(service.ocpp_port)
        log.clear()
        self.successResultOf(service.stopService())
        self.assertEqual(log, [f"stop {name}" for name in reversed(started)])
        self.assertIsNone(service.web_port)

    def test_topology(self) -> None:
        """
        Every role declares the durable queues (an edge's messages wait for a
        processor that is not up yet); only nodes with browsers have a notifier queue.
        """
        durable = {topology.PROCESSOR_QUEUE, topology.AUDIT_QUEUE, topology.FUNDS_STOP_QUEUE}
        for role, notifier in (("all", True), ("edge", True), ("processor", False)):
            service, _ = node_service(self, role)
            names = {queue.name for queue in service.ocppd.topology.queues}
            expected = durable | ({topology.notifier_queue("n1")} if notifier else set())
            self.assertEqual(names, expected, role)


class ProcessorNoticeTests(TestCase):
    """What a processor tells systemd when it serves (``ocppd.systemd``): no chargers."""

    def test_ready_status(self) -> None:
        service, reactor = node_service(self, "processor")
        for child in service.children[:-1]:
            self.patch(child, "startService", lambda: None)
            self.patch(child, "stopService", lambda: None)
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(receiver.close)
        path = os.path.join(os.path.abspath(self.mktemp()))
        receiver.bind(path)
        notifier = notify_when_serving(service, reactor, {"NOTIFY_SOCKET": path})
        assert notifier is not None
        self.addCleanup(notifier.close)
        self.assertEqual(receiver.recv(1024), b"STATUS=Starting")
        # As twistd does: the services start, then the reactor runs.
        service.startService()
        for hook, args, kwargs in reactor.whenRunningHooks:
            hook(*args, **kwargs)
        port = service.probes.port
        assert port is not None
        host = port.getHost()
        self.assertEqual(
            receiver.recv(1024).decode(),
            "READY=1\nSTATUS=Processing; RabbitMQ not reachable yet: probes on "
            f"{host.host}:{host.port}",
        )
        self.successResultOf(service.stopService())


class RoleBusTests(TestCase):
    """What the bus part of each role starts and stops, in order."""

    def steps(self, role: str) -> tuple[list[str], list[str]]:
        service, _ = node_service(self, role)
        node, bus = service.ocppd, service.bus
        log: list[str] = []

        def step(name: str, result: Any = None) -> Any:
            return lambda *args, **kwargs: log.append(name) or succeed(result)

        self.patch(node.bus, "startService", step("bus"))
        self.patch(node.bus, "stopService", step("drain the bus"))
        self.patch(bus, "_wait_for_broker", step("wait for the broker"))
        self.patch(bus, "_start_command_routing", step("command routing"))
        self.patch(bus, "_stop_command_routing", step("stop command routing"))
        self.patch(node.liveness, "release_held", step("release held chargers"))
        self.patch(node.relay, "start", step("relay"))
        self.patch(node.relay, "stop", step("stop relay"))
        for name in ("processor", "audit", "funds_stop", "notifier"):
            consumer = getattr(node, name)
            self.patch(consumer, "start", step(name))
            self.patch(consumer, "stop", step(f"stop {name}"))
        self.successResultOf(bus.startService())
        started = list(log)
        log.clear()
        self.successResultOf(bus.stopService())
        return started, log

    def test_all(self) -> None:
        started, stopped = self.steps("all")
        self.assertEqual(
            started,
            [
                "bus",
                "command routing",
                "wait for the broker",
                "release held chargers",
                "relay",
                "processor",
                "audit",
                "funds_stop",
                "notifier",
            ],
        )
        self.assertEqual(
            stopped,
            [
                "stop notifier",
                "stop command routing",
                "stop funds_stop",
                "drain the bus",
                "stop processor",
                "stop audit",
                "stop relay",
            ],
        )

    def test_edge_stores_nothing(self) -> None:
        """An edge publishes; the processor and audit consumers are the processor node's."""
        started, stopped = self.steps("edge")
        self.assertEqual(
            started,
            [
                "bus",
                "command routing",
                "wait for the broker",
                "release held chargers",
                "relay",
                "funds_stop",
                "notifier",
            ],
        )
        self.assertEqual(
            stopped,
            [
                "stop notifier",
                "stop command routing",
                "stop funds_stop",
                "drain the bus",
                "stop relay",
            ],
        )

    def test_processor_holds_no_chargers(self) -> None:
        """A processor: no commands, no held chargers, no funds stops or pushes."""
        started, stopped = self.steps("processor")
        self.assertEqual(started, ["bus", "wait for the broker", "relay", "processor", "audit"])
        self.assertEqual(stopped, ["drain the bus", "stop processor", "stop audit", "stop relay"])


class RoleOptionTests(TestCase):
    """``[ocppd] role`` and ``twistd ocppd --role``."""

    def test_default_is_all(self) -> None:
        self.assertEqual(load_config(None).ocppd.role, "all")

    def test_unknown_role_refused(self) -> None:
        options = Options()
        with self.assertRaises(usage.UsageError) as raised:
            options.parseOptions(["--role", "router"])
        self.assertEqual(
            str(raised.exception), "ocppd.role: 'router' is not one of all, edge, processor"
        )

    def test_flag_overrides_the_file_and_set(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write("[ocppd]\nrole = edge\n")
        options = Options()
        options.parseOptions(["--config", path])
        self.assertEqual(options["parsed"].ocppd.role, "edge")
        options = Options()
        options.parseOptions(["--config", path, "--set", "ocppd.role=all", "--role", "processor"])
        self.assertEqual(options["parsed"].ocppd.role, "processor")

    def test_roles_need_a_shared_bus(self) -> None:
        self.assertIsNone(role_problem("all", "memory"))
        self.assertIsNone(role_problem("edge", "amqp"))
        self.assertIsNone(role_problem("processor", "amqp"))
        self.assertIn("needs [bus] backend = amqp", role_problem("edge", "memory") or "")
        self.assertIn("needs [bus] backend = amqp", role_problem("processor", "memory") or "")
