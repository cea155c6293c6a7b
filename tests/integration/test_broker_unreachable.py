"""
The broker becomes unreachable, for real: ocppd talks to the shared RabbitMQ
through a TCP proxy this test controls (the shared broker itself is never
stopped; other tests use it). Cutting the proxy drops the daemon's AMQP
connection and refuses its reconnections until the proxy listens again.

What a charger is told while the broker is away must hold afterwards: a
refused StartTransaction leaves no session (its resend gets one), a
StatusNotification is refused rather than answered and lost, and a
disconnect, which nobody would send again, is kept until the bus takes it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.interfaces import IListeningPort
from twisted.protocols import portforward

from ocppd.store import chargers, outbox, tables, transactions
from tests.integration.daemon import poll
from tests.integration.test_amqp_faults import (
    T0,
    AmqpFaultTestCase,
    iso,
    sleep,
    start_daemon,
    start_transaction,
)

BROKER_PORT = 5672


class _TrackedProxyServer(portforward.ProxyServer):
    def connectionMade(self) -> None:
        self.factory.proxy.connections.add(self)
        super().connectionMade()

    def connectionLost(self, reason: Any) -> None:
        self.factory.proxy.connections.discard(self)
        super().connectionLost(reason)


class BrokerProxy:
    """A TCP proxy to the broker on an ephemeral port, which ``cut`` and ``restore`` switch."""

    def __init__(self) -> None:
        self.connections: set[_TrackedProxyServer] = set()
        self._port: IListeningPort | None = None
        self.number = 0

    def open(self) -> None:
        factory = portforward.ProxyFactory("127.0.0.1", BROKER_PORT)
        factory.protocol = _TrackedProxyServer
        factory.proxy = self  # type: ignore[attr-defined]
        self._port = reactor.listenTCP(self.number, factory, interface="127.0.0.1")
        self.number = self._port.getHost().port

    @inlineCallbacks
    def cut(self) -> Any:
        """Refuse new connections and abort the open ones (both directions)."""
        port, self._port = self._port, None
        if port is not None:
            yield port.stopListening()
        for server in list(self.connections):
            if server.peer is not None:
                server.peer.transport.abortConnection()
            server.transport.abortConnection()

    def restore(self) -> None:
        self.open()


class BrokerUnreachableTests(AmqpFaultTestCase):
    timeout = 90

    @inlineCallbacks
    def start_behind_proxy(self) -> Any:
        proxy = BrokerProxy()
        proxy.open()
        self.addCleanup(proxy.cut)
        settings = self.amqp()
        url = f"amqp://guest:guest@127.0.0.1:{proxy.number}/{quote('/', safe='')}"
        daemon = yield start_daemon(self, *settings, f"bus.url={url}")
        self.prepare(daemon)
        # The relay retries every 0.2 s here, not up to 30 s.
        daemon.node.relay.retry_delays = (0.2,)
        return proxy, daemon

    @inlineCallbacks
    def wait_for_outage(self, daemon: Any) -> Any:
        """Until the daemon's bus knows it is disconnected (a publish fails at once)."""
        yield poll(
            lambda: sleep(0).addCallback(lambda _: daemon.node.bus.connected),
            until=lambda connected: not connected,
        )

    @inlineCallbacks
    def test_refused_start_leaves_no_session_and_its_resend_gets_one(self) -> Any:
        """
        A StartTransaction while the broker is away is answered InternalError
        and leaves no active session behind (the tag would be ConcurrentTx
        everywhere); the charger's resend once the broker is back gets one
        session, which is active.
        """
        proxy, daemon = yield self.start_behind_proxy()
        charger = yield self.connect_charger(daemon, answer_timeout=2.0, retry_pause=0.2)
        yield proxy.cut()
        yield self.wait_for_outage(daemon)
        starting = charger.call("StartTransaction", start_transaction(), deadline=60)
        yield poll(
            lambda: sleep(0).addCallback(lambda _: charger.counts["error InternalError"]),
            until=lambda n: n >= 2,
        )
        active = yield daemon.query(transactions.active_transactions)
        self.assertEqual(active, [], f"charger {dict(charger.counts)}")
        proxy.restore()
        started = yield starting
        tx = started["transactionId"]
        active = yield daemon.wait_for(
            transactions.active_transactions, until=lambda rows: len(rows) == 1
        )
        self.assertEqual([r.id for r in active], [tx])
        rows = yield daemon.query(lambda c: c.execute(tables.transactions.select()).all())
        self.assertEqual(len(rows), 1, f"charger {dict(charger.counts)}")

    @inlineCallbacks
    def test_status_refused_and_disconnect_kept_while_the_broker_is_away(self) -> Any:
        """
        A StatusNotification (Faulted) while the broker is away is refused
        until it can be published, then stored; the charger's disconnect
        while it is away is kept in the outbox and stored once it is back, so
        the charger is not shown online after it left.
        """
        proxy, daemon = yield self.start_behind_proxy()
        charger = yield self.connect_charger(daemon, answer_timeout=2.0, retry_pause=0.2)
        available = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
        yield charger.call("StatusNotification", {**available, "timestamp": iso(T0)})
        yield daemon.wait_for(chargers.get_charge_point, "CP1", until=lambda r: r.online)
        yield proxy.cut()
        yield self.wait_for_outage(daemon)
        faulted = {
            "connectorId": 1,
            "errorCode": "GroundFailure",
            "status": "Faulted",
            "timestamp": iso(T0.replace(minute=5)),
        }
        reporting = charger.call("StatusNotification", faulted, deadline=60)
        yield poll(
            lambda: sleep(0).addCallback(lambda _: charger.counts["error InternalError"]),
            until=lambda n: n >= 2,
        )
        proxy.restore()
        yield reporting
        connectors = yield daemon.wait_for(
            chargers.list_connectors,
            "CP1",
            until=lambda rows: any(r.status == "Faulted" for r in rows),
            timeout=30,
        )
        self.assertEqual([(c.connector_id, c.status) for c in connectors], [(1, "Faulted")])

        yield daemon.wait_for(chargers.get_charge_point, "CP1", until=lambda r: r.online)
        yield proxy.cut()
        yield self.wait_for_outage(daemon)
        charger.client.close()
        yield charger.client.closed
        kept = yield daemon.wait_for(outbox.count_events, until=lambda n: n >= 1)
        self.assertEqual(kept, 1)
        proxy.restore()
        yield daemon.wait_for(
            chargers.get_charge_point, "CP1", until=lambda r: not r.online, timeout=30
        )
        yield daemon.wait_for(outbox.count_events, until=lambda n: n == 0)
