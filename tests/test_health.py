"""
Tests for ocppd.health: /health and /ready, the probes' timeout, shared runs
and reuse on a Clock; and through the whole web app (StubTreq) for each
failure: the database, the broker (AMQP bus), Redis (presence), the listeners.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import sqlalchemy as sa
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from ocppd import __version__
from ocppd.health import PROBE_TIMEOUT, REUSE_SECONDS, Health, node_checks
from ocppd.nodeservices import ProbesService
from ocppd.timeutil import format_iso, from_timestamp
from tests.api.inline import InlineNode


class HealthTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.health = Health(node_id="n1", clock=self.clock)

    def result(self) -> tuple[bool, dict[str, Any]]:
        return self.successResultOf(self.health.ready())

    def test_alive(self) -> None:
        self.assertEqual(
            self.health.alive(), {"status": "alive", "node": "n1", "version": __version__}
        )

    def test_all_well(self) -> None:
        self.health.add_check("a", lambda: None)
        self.health.add_details("extra", lambda: {"x": 1})
        ok, body = self.result()
        self.assertTrue(ok)
        self.assertEqual(body["status"], "ready")
        self.assertEqual(body["checks"], {"a": "ok"})
        self.assertEqual(body["problems"], {})
        self.assertEqual(body["extra"], {"x": 1})

    def test_problem_and_failure_are_named(self) -> None:
        self.health.add_check("a", lambda: "not connected to X")
        self.health.add_check("b", lambda: fail(sa.exc.OperationalError("s", {}, Exception("h"))))
        self.health.add_check("c", lambda: None)
        ok, body = self.result()
        self.assertFalse(ok)
        self.assertEqual(body["status"], "not ready")
        self.assertEqual(
            body["problems"], {"a": "not connected to X", "b": "failed (OperationalError)"}
        )
        self.assertEqual(body["checks"]["c"], "ok")
        self.flushLoggedErrors()

    def test_probe_without_answer_times_out(self) -> None:
        self.health.add_check("slow", Deferred)
        waiting = self.health.ready()
        self.assertNoResult(waiting)
        self.clock.advance(PROBE_TIMEOUT)
        ok, body = self.successResultOf(waiting)
        self.assertFalse(ok)
        self.assertEqual(body["problems"], {"slow": "no answer within 2 s"})

    def test_runs_are_shared_and_reused(self) -> None:
        """However many requests come, the probes run once per REUSE_SECONDS."""
        pending: list[Deferred[None]] = []

        def probe() -> Deferred[None]:
            pending.append(Deferred())
            return pending[-1]

        self.health.add_check("db", probe)
        first, second = self.health.ready(), self.health.ready()
        self.assertEqual(len(pending), 1)
        pending[0].callback(None)
        self.assertEqual(self.successResultOf(first), self.successResultOf(second))
        self.health.ready()
        self.assertEqual(len(pending), 1)
        self.clock.advance(REUSE_SECONDS)
        self.health.ready()
        self.assertEqual(len(pending), 2)
        pending[1].callback(None)


@attrs.define
class FakeListeners:
    running: bool = True
    ocpp_port: Any = "ocpp port"
    web_port: Any = "web port"

    def ports(self) -> tuple[tuple[str, Any], ...]:
        return (("OCPP", self.ocpp_port), ("web", self.web_port))


@attrs.define
class FakeService:
    name: str
    running: bool


class ReadyRouteTests(SynchronousTestCase):
    """GET /ready and /health through the whole web app, with each failure."""

    def node(self, *overrides: str, listeners: FakeListeners | None = None) -> InlineNode:
        inline = InlineNode(self, *overrides)
        node = inline.node
        node_checks(node.health, node, listeners or FakeListeners())  # type: ignore[arg-type]
        return inline

    def get(self, inline: InlineNode, path: str) -> tuple[int, dict[str, Any]]:
        response = self.successResultOf(inline.treq.get(f"http://ocppd.test{path}"))
        body = self.successResultOf(response.content())
        self.assertEqual(response.headers.getRawHeaders("cache-control"), ["no-store"])
        return response.code, json.loads(body)

    def test_health(self) -> None:
        code, body = self.get(self.node(), "/health")
        self.assertEqual((code, body["status"], body["node"]), (200, "alive", "inline"))

    def test_ready(self) -> None:
        code, body = self.get(self.node(), "/ready")
        self.assertEqual(code, 200, body)
        self.assertEqual(
            body["checks"], {"database": "ok", "bus": "ok", "presence": "ok", "listeners": "ok"}
        )
        self.assertEqual(body["bus"], {"backend": "memory", "connected": True, "blocked": None})
        self.assertEqual(body["chargers"], {"connected": 0})
        self.assertEqual(body["role"], "all")

    def test_database_unreachable(self) -> None:
        inline = self.node()
        error = sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
        self.patch(inline.node.database, "run", lambda *a, **kw: fail(error))
        code, body = self.get(inline, "/ready")
        self.assertEqual(code, 503)
        self.assertEqual(body["problems"], {"database": "failed (OperationalError)"})
        self.assertNotIn("connection refused", json.dumps(body))

    def test_database_stalled(self) -> None:
        inline = self.node()
        self.patch(inline.node.database, "run", lambda *a, **kw: Deferred())
        waiting = inline.treq.get("http://ocppd.test/ready")
        inline.clock.advance(PROBE_TIMEOUT)
        inline.treq.flush()
        response = self.successResultOf(waiting)
        self.assertEqual(response.code, 503)
        body = json.loads(self.successResultOf(response.content()))
        self.assertEqual(body["problems"], {"database": "no answer within 2 s"})

    def test_broker_down(self) -> None:
        """The AMQP bus not connected (its broker down): 503 naming the bus."""
        code, body = self.get(self.node("bus.backend=amqp"), "/ready")
        self.assertEqual(code, 503)
        self.assertEqual(body["problems"], {"bus": "not connected to RabbitMQ"})
        self.assertEqual(body["bus"]["connected"], False)

    def test_redis_down(self) -> None:
        """presence = redis and Redis not connected: 503 naming presence."""
        code, body = self.get(self.node("presence.backend=redis"), "/ready")
        self.assertEqual(code, 503)
        self.assertEqual(body["problems"], {"presence": "not connected to Redis"})

    def test_services_shown(self) -> None:
        """The node's parts (the bus with its consumers...), running or not."""
        inline = InlineNode(self)
        bus, timers = FakeService("bus", running=True), FakeService("timers", running=False)
        node_checks(
            inline.node.health,
            inline.node,
            FakeListeners(),  # type: ignore[arg-type]
            services=[bus, timers],  # type: ignore[list-item]
        )
        _, body = self.get(inline, "/ready")
        self.assertEqual(body["services"], {"bus": "running", "timers": "stopped"})

    def test_consumer_lags_shown(self) -> None:
        """Each consumed queue with the age of the oldest message its consumer holds."""
        inline = self.node()
        now = inline.clock.seconds()
        held = {"processor": format_iso(from_timestamp(now - 12.5)), "audit": None}
        self.patch(inline.node.bus, "oldest_unprocessed", lambda: held)
        _, body = self.get(inline, "/ready")
        self.assertEqual(
            body["consumers"], {"audit": {"lagSeconds": 0.0}, "processor": {"lagSeconds": 12.5}}
        )

    def test_listeners_down(self) -> None:
        listeners = FakeListeners(ocpp_port=None)
        code, body = self.get(self.node(listeners=listeners), "/ready")
        self.assertEqual((code, body["problems"]), (503, {"listeners": "OCPP listener not up"}))
        listeners.running = False
        inline = self.node(listeners=listeners)
        code, body = self.get(inline, "/ready")
        self.assertEqual(body["problems"], {"listeners": "OCPP and web listener not up"})


class PublicBodyTests(SynchronousTestCase):
    """Only the node's own host reads the version, node id, counts and parts."""

    def get_from(self, peer: str, path: str, *headers: bytes, proxies: str = "") -> Any:
        inline = InlineNode(self, *([f"web.trusted_proxies={proxies}"] if proxies else []))
        node_checks(inline.node.health, inline.node, FakeListeners())  # type: ignore[arg-type]
        address = IPv4Address("TCP", peer, 40000)
        channel = inline.node.web_site.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        extra = b"".join(header + b"\r\n" for header in headers)
        channel.dataReceived(b"GET %s HTTP/1.0\r\nHost: ocppd.test\r\n%s\r\n" % (path, extra))
        channel.connectionLost(Exception("test over"))
        return json.loads(transport.value().partition(b"\r\n\r\n")[2])

    def test_remote_client_sees_the_public_body(self) -> None:
        body = self.get_from("203.0.113.9", b"/ready")
        self.assertEqual(set(body), {"status", "checks", "problems"})
        self.assertEqual(body["status"], "ready")
        self.assertEqual(self.get_from("203.0.113.9", b"/health"), {"status": "alive"})

    def test_loopback_sees_the_details(self) -> None:
        body = self.get_from("127.0.0.1", b"/ready")
        self.assertEqual(body["version"], __version__)
        self.assertEqual(body["chargers"], {"connected": 0})
        self.assertEqual(self.get_from("127.0.0.1", b"/health")["node"], "inline")

    def test_client_behind_a_local_proxy_is_not_local(self) -> None:
        """nginx on the same host: the client it names is who asks."""
        body = self.get_from(
            "127.0.0.1", b"/ready", b"X-Forwarded-For: 203.0.113.9", proxies="127.0.0.1"
        )
        self.assertEqual(set(body), {"status", "checks", "problems"})


class ProcessorProbesTests(SynchronousTestCase):
    """
    A processor node's web listener (``ocppd.probes``): /health and /ready
    only, as the full web listener answers them; no presence to check.
    """

    def get_from(self, peer: str, path: bytes) -> tuple[bytes, Any]:
        inline = InlineNode(self, "ocppd.role=processor", "presence.backend=redis")
        probes = ProbesService(inline.node)
        # Up, as its start would leave it (the listening itself: tests/test_roles.py).
        probes.running, probes.port = True, "port"  # type: ignore[assignment]
        node_checks(inline.node.health, inline.node, probes)
        address = IPv4Address("TCP", peer, 40000)
        channel = probes.site.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        channel.dataReceived(b"GET %s HTTP/1.0\r\nHost: ocppd.test\r\n\r\n" % path)
        channel.connectionLost(Exception("test over"))
        head, _, body = transport.value().partition(b"\r\n\r\n")
        return head.split(b"\r\n")[0], json.loads(body)

    def test_ready_on_the_node_host(self) -> None:
        status, body = self.get_from("127.0.0.1", b"/ready")
        self.assertEqual(status, b"HTTP/1.0 200 OK", body)
        self.assertEqual(body["role"], "processor")
        # Redis is configured, but a processor does not use it: not checked, not shown.
        self.assertEqual(body["checks"], {"database": "ok", "bus": "ok", "listeners": "ok"})
        self.assertNotIn("presence", body)
        self.assertEqual(self.get_from("127.0.0.1", b"/health")[1]["node"], "inline")

    def test_remote_client_sees_the_public_body(self) -> None:
        _, body = self.get_from("203.0.113.9", b"/ready")
        self.assertEqual(set(body), {"status", "checks", "problems"})
        self.assertEqual(self.get_from("203.0.113.9", b"/health")[1], {"status": "alive"})

    def test_nothing_else_served(self) -> None:
        for path in (b"/api/me", b"/cms/", b"/push", b"/metrics"):
            status, body = self.get_from("127.0.0.1", path)
            self.assertEqual(status, b"HTTP/1.0 404 Not Found", path)
            self.assertEqual(body["error"], "not_found")
