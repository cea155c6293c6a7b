"""
Builds the daemon from its configuration (``Ocppd``) and runs it as a tree of
services (``OcppdService``), started in order and stopped in reverse:

1. store: the database threads, migrations (or a check that none are pending);
   last_seen: the writer of the chargers' Heartbeats (``ocppd.ocpp.last_seen``);
2. bus: the bus (the embedded one loads its journal), command routing, the
   release of what the previous process held, the outbox relay, the
   processor, audit, funds-stop and notifier consumers;
3. redis: the node's link to Redis (``[presence] backend = redis``; nothing otherwise);
4. presence and the shared state (on that link);
5. timers: pruning, the sweep of expired holds, liveness checks;
6. alerts: the alert evaluator and its deliveries (``ocppd.alerts``);
7. metrics: the ``GET /metrics`` listener (``[metrics] listen``; nothing when off);
8. listeners: web and OCPP.

That is ``[ocppd] role = all``. An ``edge`` node has the same children, its
bus without the processor and audit consumers; a ``processor`` node has the
store, the bus with only those two, alerts, metrics and the probes listener
(``/health`` and ``/ready`` on ``[web] listen``): ``ocppd.roles``.

A start that fails stops what had started (in reverse), logs one line
(``StartupError``: what failed and why), and ``when_started`` fails, so whoever
runs the service (``ocppd.tap`` under twistd) can end the process. The stop
goes in reverse: no new chargers, close their sockets (their disconnect events
still reach the bus), stop presence, close the Redis link, drain the bus into
the processor, stop the processor, close the database.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, fail, inlineCallbacks
from twisted.internet.interfaces import IListeningPort
from twisted.logger import ILogObserver
from twisted.python.components import Componentized
from twisted.python.failure import Failure

from ocppd.alerts.setup import make_alerts
from ocppd.api.accounts import Accounts
from ocppd.api.app import Api
from ocppd.api.closing import SessionClosing
from ocppd.api.cms import CmsService
from ocppd.api.cms_people import CmsPeople
from ocppd.api.commands import CommandService
from ocppd.api.customer import CustomerService
from ocppd.api.online import OnlineView
from ocppd.api.payments import PaymentWebhooks
from ocppd.api.receipt_words import ReceiptWords
from ocppd.api.receipts import Receipts
from ocppd.api.reviews import SessionReviews
from ocppd.bus import topology
from ocppd.bus.memory import MemoryBus
from ocppd.bus.outbox import Outbox
from ocppd.bus.publisher import EventPublisher
from ocppd.bus.relay import OutboxRelay
from ocppd.config import Config
from ocppd.consumers.audit import AuditConsumer
from ocppd.consumers.funds_stop import FundsStopConsumer
from ocppd.consumers.notifier import IDLE_GRACE, Notifier, shown_inbound
from ocppd.consumers.processor import OcppProcessor, billing_limits
from ocppd.diagnostics import DiagnosticsFiles
from ocppd.diagnostics_pruning import DiagnosticsPruner
from ocppd.firmware import FirmwareFiles
from ocppd.health import Health, node_checks
from ocppd.holds import HoldReleaser
from ocppd.logs import Logger
from ocppd.maptiles import map_settings, tile_sources
from ocppd.metrics.ocpp import OcppMetrics
from ocppd.nodeservices import (
    AlertsService,
    BusService,
    ListenersService,
    MetricsService,
    PresenceService,
    ProbesService,
    RedisService,
    StartupError,
    StoreService,
    TimersService,
)
from ocppd.ocpp.admission import ChargerAdmission
from ocppd.ocpp.handlers import CentralSystemHandlers
from ocppd.ocpp.last_seen import LastSeenWriter
from ocppd.ocpp.liveness import ChargerLiveness
from ocppd.ocpp.protocol import OcppServerFactory
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.ocpp.tagcache import IdTagCache
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.payments import make_payment_provider
from ocppd.presence.interface import IPresence
from ocppd.presence.memory import MemoryPresence
from ocppd.proxies import TrustedProxies, parse_networks
from ocppd.push.channel import PushChannel, ticket_authenticator
from ocppd.push.session import ticket_digest
from ocppd.roles import role_problem, serves_chargers
from ocppd.routing.executor import CommandExecutor
from ocppd.routing.local import LocalCommandTransport
from ocppd.routing.router import CommandRouter, OwnerLookup
from ocppd.servicetree import OrderedServices
from ocppd.shared.interface import ISharedState
from ocppd.shared.memory import MemorySharedState
from ocppd.store.database import Database, location
from ocppd.store.journal import StoreJournal, journal_database
from ocppd.web import WebSite, static_trees

if TYPE_CHECKING:
    from ocppd.bus.amqp import AmqpBus
    from ocppd.metrics.resource import MetricsSite
    from ocppd.redis.link import RedisLink
    from ocppd.routing.amqp import AmqpCommandTransport


class Ocppd:
    """Every collaborator of one node, wired once (Synapse's ``HomeServer`` idea)."""

    log = Logger()

    def __init__(self, config: Config, reactor: Any) -> None:
        self.config = config
        self.reactor = reactor
        self.node_id = config.ocppd.node_id
        self.role = config.ocppd.role
        self.topology = topology.default_topology(
            config.bus.prefix,
            # A processor node pushes to no browser: no notifier queue of its own
            # for the broker to fill (ocppd.roles).
            node_id=self.node_id if serves_chargers(self.role) else None,
            notifier_inbound=shown_inbound(log_heartbeats=config.ocpp.log_heartbeats),
        )
        self.database = Database.from_url(
            config.store_url, reactor=reactor, max_threads=config.store.max_threads
        )
        #: On a SQLite store (a file), the embedded bus's journal file
        #: (``ocppd.store.journal``); None: the journal is in the store.
        self.journal_database = (
            journal_database(config.store_url, reactor=reactor)
            if config.bus.backend == "memory"
            else None
        )
        self.bus = self._make_bus()
        self.schemas = SchemaRegistry.load()
        self.relay = OutboxRelay(self.database, self.bus, node=self.node_id, clock=reactor)
        self.outbox = Outbox(node=self.node_id, clock=reactor, relay=self.relay)
        # The chargers' Heartbeats, unless the message log keeps them, are not
        # published: their one effect, last_seen_at, is written by this node
        # (ocppd.ocpp.last_seen; docs/bus.md "Heartbeats are not published").
        self.last_seen = LastSeenWriter(self.database, reactor)
        self.traffic = TrafficPublisher(
            self.bus,
            node=self.node_id,
            clock=reactor,
            outbox=self.outbox,
            database=self.database,
            heartbeats=None if config.ocpp.log_heartbeats else self.last_seen,
        )
        self.trusted_proxies = TrustedProxies(parse_networks(config.web.trusted_proxies))
        self.tags = IdTagCache(self.database, reactor, ttl=config.ocpp.tag_cache_ttl)
        self.registry = ConnectionRegistry()
        #: What the OCPP endpoint counts, only while metrics are on: off, the
        #: endpoint pays nothing for them.
        self.ocpp_metrics = OcppMetrics() if config.metrics.listen else None
        # One command and one subscriber connection to Redis for the whole node.
        self.redis = self._make_redis_link()
        self.presence = self._make_presence()
        # Sign-in and charger-key limits, token revocations: seen by every node.
        self.shared = self._make_shared_state()
        self.handlers = CentralSystemHandlers(
            database=self.database,
            tags=self.tags,
            traffic=self.traffic,
            clock=reactor,
            heartbeat_interval=config.ocpp.heartbeat_interval,
            answer_timeout=config.ocpp.answer_timeout,
        )
        self.liveness = ChargerLiveness(
            self.database,
            self.registry,
            self.traffic,
            reactor,
            node=self.node_id,
            timeout=config.ocpp.liveness_timeout,
        )
        self.admission = ChargerAdmission(
            self.database,
            reactor,
            unknown_chargers=config.ocpp.unknown_chargers,
            max_pending_chargers=config.ocpp.max_pending_chargers,
            shared=self.shared,
            cache_ttl=config.ocpp.admission_cache_ttl,
        )
        self.ocpp_factory = OcppServerFactory(
            admission=self.admission,
            registry=self.registry,
            handler=self.handlers,
            schemas=self.schemas,
            traffic=self.traffic,
            clock=reactor,
            call_timeout=config.ocpp.call_timeout,
            max_message_size=config.ocpp.max_message_size,
            ping_interval=config.ocpp.ping_interval,
            ping_timeout=config.ocpp.ping_timeout,
            open_handshake_timeout=config.ocpp.open_handshake_timeout,
            max_handshake_size=config.ocpp.max_handshake_size,
            max_handshakes=config.ocpp.max_handshakes,
            presence=self.presence,
            trusted_proxies=self.trusted_proxies,
            metrics=self.ocpp_metrics,
        )
        self.audit = AuditConsumer(self.bus, self.database, clock=reactor)
        self.accounts = Accounts(
            self.database, reactor, token_ttl=config.web.token_ttl, shared=self.shared
        )
        # Commands reach a charger on whichever node holds its socket.
        self.command_transport = self._make_command_transport()
        self.router = CommandRouter(
            node_id=self.node_id,
            registry=self.registry,
            owner_of=self._owner_lookup(),
            transport=self.command_transport,
            schemas=self.schemas,
            clock=reactor,
        )
        self.command_executor = CommandExecutor(self.registry, max_timeout=config.ocpp.call_timeout)
        # Upload URLs for GetDiagnostics, and the files chargers send to them.
        self.diagnostics = DiagnosticsFiles(
            self.database,
            directory=config.diagnostics_dir,
            public_url=config.files.public_url,
            ttl=config.files.upload_ttl,
            now=self.outbox.now,
            outbox=self.outbox,
        )
        # Keeps the diagnostics folder bounded by age and total size (hourly).
        self.diagnostics_pruner = DiagnosticsPruner(
            self.diagnostics,
            self.database,
            reactor,
            keep_days=config.files.diagnostics_keep_days,
            max_total=config.files.max_diagnostics_total,
        )
        self.commands = CommandService(
            database=self.database,
            router=self.router,
            schemas=self.schemas,
            outbox=self.outbox,
            timeout=config.ocpp.call_timeout,
            charger_changed=self.admission.forget,
            diagnostics=self.diagnostics,
        )
        # Whether chargers are online, as the API shows it: presence is the truth.
        self.online = OnlineView(self.presence)
        self.cms = CmsService(
            database=self.database,
            outbox=self.outbox,
            online=self.online,
            charger_changed=self.admission.forget,
        )
        # Customers, cards and wallets in the CMS: a tag or account changed is
        # forgotten by this node's tag cache at once (other nodes': within its ttl),
        # and a blocked account's push sessions end on every node.
        self.people = CmsPeople(
            database=self.database,
            outbox=self.outbox,
            billing=config.billing,
            tag_changed=self.tags.invalidate,
            tokens_revoked=self._publish_revoked_digest,
        )
        self.reviews = SessionReviews(
            database=self.database, outbox=self.outbox, wallet_currency=config.billing.currency
        )
        self.payments = payments = make_payment_provider(config.billing, reactor)
        self.payment_webhooks = PaymentWebhooks(
            database=self.database, outbox=self.outbox, provider=payments, clock=reactor
        )
        self.customer = CustomerService(
            database=self.database,
            outbox=self.outbox,
            commands=self.commands,
            payments=payments,
            billing=config.billing,
            online=self.online,
        )
        self.processor = OcppProcessor(
            self.bus,
            self.database,
            events=EventPublisher(self.bus, node=self.node_id, clock=reactor),
            wallet_currency=config.billing.currency,
            stop_margin=config.billing.stop_margin,
            limits=billing_limits(config.billing),
            log_heartbeats=config.ocpp.log_heartbeats,
            clock=reactor,
            outbox=self.outbox,
        )
        # An operator's hand close bills as the processor does, with its policy.
        self.closing = SessionClosing(
            database=self.database, outbox=self.outbox, policy=self.processor.policy
        )
        self.funds_stop = FundsStopConsumer(
            self.bus, self.database, self.customer.stop_for_funds, clock=reactor
        )
        self.holds = HoldReleaser(
            self.database,
            self.outbox,
            reactor,
            timeout=config.billing.start_timeout,
        )
        push = config.push
        self.push = PushChannel(
            authenticate=ticket_authenticator(self.accounts.user_for_token),
            clock=reactor,
            allowed_origins=push.allowed_origins,
            max_message_size=push.max_message_size,
            max_buffer=push.max_buffer,
            max_subscriptions=push.max_subscriptions,
            hello_timeout=push.hello_timeout,
            ping_interval=push.ping_interval,
            ping_timeout=push.ping_timeout,
            open_handshake_timeout=push.open_handshake_timeout,
            trusted_proxies=self.trusted_proxies,
        )
        if config.bus.backend == "amqp":
            # On RabbitMQ the notifier's queue is consumed only while a browser
            # on this node subscribes (docs/bus.md, "The notifier's queue").
            self.notifier = Notifier(self.bus, self.push, clock=reactor, idle_grace=IDLE_GRACE)
            self.push.broker.listening_observers.append(self.notifier.listening_changed)
            self.push.broker.ready = self.notifier.settled
        else:
            self.notifier = Notifier(self.bus, self.push)
        # A sign-out ends the token's push sessions on every node (docs/push.md).
        self.accounts.revoked.append(self._publish_revoked)
        self.shared.on_revoked(self.push.revoke_digest)
        self.alerts = make_alerts(
            config, reactor, self.database, self.outbox, self.bus, self.journal_database
        )
        self.health = Health(node_id=self.node_id, clock=reactor)
        self.api = Api(
            push=self.push.resource(),
            health=self.health,
            database=self.database,
            accounts=self.accounts,
            commands=self.commands,
            cms=self.cms,
            people=self.people,
            customer=self.customer,
            reviews=self.reviews,
            closing=self.closing,
            diagnostics=self.diagnostics,
            firmware=FirmwareFiles(config.files.firmware_dir, config.files.public_url),
            online=self.online,
            payments=self.payment_webhooks,
            receipts=Receipts(
                database=self.database,
                billing=config.billing,
                words=ReceiptWords.load(config.web.webroot),
            ),
            static=static_trees(config.web.webroot),
            map_settings=map_settings(config.web),
        )
        self.web_site = WebSite(
            self.api.resource(),
            max_body_size=config.web.max_body_size,
            max_upload_size=config.files.max_diagnostics_size,
            header_timeout=config.web.header_timeout,
            idle_timeout=config.web.idle_timeout,
            reactor=reactor,
            trusted_proxies=self.trusted_proxies,
            img_sources=tile_sources(config.web.map_tiles),
        )
        self.metrics_site = self._make_metrics_site()

    def _make_metrics_site(self) -> MetricsSite | None:
        """The metrics listener's site (``ocppd.metrics``), or None when metrics are off."""
        if self.ocpp_metrics is None:
            return None
        from ocppd.metrics.collector import node_registry
        from ocppd.metrics.resource import MetricsResource, MetricsSite

        web = self.config.web
        return MetricsSite(
            MetricsResource(node_registry(self, self.ocpp_metrics), self.health),
            # Scrapes and probes are GETs: no body worth taking.
            max_body_size=4096,
            header_timeout=web.header_timeout,
            idle_timeout=web.idle_timeout,
            reactor=self.reactor,
        )

    def _owner_lookup(self) -> OwnerLookup:
        """Which node holds a charger: presence (docs/presence.md), embedded or on Redis."""
        return self.presence.owner_node

    def _make_command_transport(self) -> LocalCommandTransport | AmqpCommandTransport:
        bus = self.config.bus
        if bus.backend == "amqp":
            from ocppd.routing.amqp import AmqpCommandTransport

            return AmqpCommandTransport(
                url=bus.url,
                reactor=self.reactor,
                prefix=bus.prefix,
                connection_name=f"ocppd {self.node_id} commands",
                connect_timeout=bus.connect_timeout,
            )
        return LocalCommandTransport(self.reactor)

    def _publish_revoked(self, token: str) -> None:
        self._publish_revoked_digest(ticket_digest(token))

    def _publish_revoked_digest(self, digest: str) -> None:
        def failed(failure: Failure) -> None:
            self.log.warn(
                "Could not tell the other nodes of a sign-out ({reason}); their push"
                " sessions of that token end when their ticket is next checked",
                reason=failure.getErrorMessage(),
            )

        self.shared.publish_revoked(digest).addErrback(failed)

    def _make_redis_link(self) -> RedisLink | None:
        presence = self.config.presence
        if presence.backend != "redis":
            return None
        from ocppd.redis.link import RedisLink

        return RedisLink(reactor=self.reactor, url=presence.url)

    def _make_shared_state(self) -> ISharedState:
        presence = self.config.presence
        if self.redis is not None:
            from ocppd.shared.redis import RedisSharedState

            return RedisSharedState(clock=self.reactor, link=self.redis, prefix=presence.prefix)
        return MemorySharedState(self.reactor)

    def _make_presence(self) -> IPresence:
        presence = self.config.presence
        if self.redis is not None:
            from ocppd.presence.redis import RedisPresence

            return RedisPresence(
                node_id=self.node_id,
                clock=self.reactor,
                lease=presence.lease,
                link=self.redis,
                prefix=presence.prefix,
            )
        return MemoryPresence(node_id=self.node_id, clock=self.reactor, lease=presence.lease)

    def _make_bus(self) -> MemoryBus | AmqpBus:
        bus = self.config.bus
        if bus.backend == "amqp":
            # Imported only when configured: pika stays out of embedded installs' way.
            from ocppd.bus.amqp import AmqpBus

            return AmqpBus(
                self.topology,
                url=bus.url,
                reactor=self.reactor,
                retry_delays=bus.retry_delays,
                max_attempts=bus.max_attempts,
                prefetch=bus.prefetch,
                quorum_queues=bus.quorum_queues,
                connection_name=f"ocppd {self.node_id}",
            )
        # The embedded bus journals to its own file beside a SQLite store, or
        # to the store, so that what it accepted survives a crash (docs/bus.md,
        # "Durability").
        return MemoryBus(
            self.topology,
            reactor=self.reactor,
            retry_delays=bus.retry_delays,
            max_attempts=bus.max_attempts,
            journal=StoreJournal(self.journal_database or self.database, self.node_id),
            flow_limit=bus.flow_limit,
        )

    @property
    def journal_location(self) -> Any:
        """The URL of the database the embedded bus journals to."""
        return (self.journal_database or self.database).engine.url


class OcppdService(OrderedServices):
    """
    The one service ``twistd ocppd`` runs: the node's parts as children,
    started in order and stopped in reverse (``ocppd.nodeservices``).
    """

    log = Logger()
    #: The log observer for twistd (``[log] format``, set by ``ocppd.tap``),
    #: given to the application this service joins; None: twistd's own.
    log_observer: ILogObserver | None = None

    def __init__(self, config: Config, reactor: Any) -> None:
        super().__init__()
        self.ocppd = Ocppd(config, reactor)
        self.role = config.ocppd.role
        self.store = StoreService(self.ocppd)
        self.bus = BusService(self.ocppd)
        self.redis = RedisService(self.ocppd)
        self.presence = PresenceService(self.ocppd)
        self.timers = TimersService(self.ocppd)
        self.alerts = AlertsService(self.ocppd)
        self.metrics = MetricsService(self.ocppd)
        self.listeners = ListenersService(self.ocppd)
        self.probes = ProbesService(self.ocppd)
        children: tuple[Service, ...]
        if serves_chargers(self.role):
            children = (
                self.store,
                # Before the bus and the listeners, so it stops after them: every
                # Heartbeat answered is noted before its last write.
                self.ocppd.last_seen,
                self.bus,
                self.redis,
                self.presence,
                self.timers,
                self.alerts,
                self.metrics,
                self.listeners,
            )
            listening: ListenersService | ProbesService = self.listeners
        else:
            # No chargers and no browsers: nothing reads presence or the shared
            # state, and the timers (liveness, holds, pruning) are the edges'.
            children = (self.store, self.bus, self.alerts, self.metrics, self.probes)
            listening = self.probes
        for child in children:
            self.add(child)
        node_checks(self.ocppd.health, self.ocppd, listening, services=self.children)
        self._started: Deferred[None] | None = None
        self._start_failure: Failure | None = None

    def setServiceParent(self, parent: Any) -> None:
        # twistd's AppLogger takes the application's ILogObserver component.
        if self.log_observer is not None and isinstance(parent, Componentized):
            parent.setComponent(ILogObserver, self.log_observer)
        super().setServiceParent(parent)

    @property
    def web_port(self) -> IListeningPort | None:
        if not serves_chargers(self.role):
            return self.probes.port
        return self.listeners.web_port

    @property
    def ocpp_port(self) -> IListeningPort | None:
        return self.listeners.ocpp_port

    def startService(self) -> Deferred[None]:
        problem = role_problem(self.role, self.ocppd.config.bus.backend)
        if problem is not None:
            # Refused before anything starts, as a failed start: one line, exit 1.
            Service.startService(self)
            started: Deferred[None] = fail(StartupError(problem))
        else:
            started = super().startService()
        started.addCallbacks(self._ready, self._start_failed)
        self._started = started
        return started

    def _ready(self, _: None) -> None:
        node, config = self.ocppd, self.ocppd.config
        assert self.web_port is not None
        metrics = self.metrics.port
        if self.ocpp_port is None:
            self.log.info(
                "ocppd node {node_id} ready as a processor: probes on {web}, "
                "store {store}, bus {bus}, metrics {metrics}",
                node_id=node.node_id,
                web=self.web_port.getHost(),
                store=location(node.database.engine.url),
                bus=config.bus.backend,
                metrics="off" if metrics is None else f"on {metrics.getHost()}",
            )
            return
        self.log.info(
            "ocppd node {node_id} ready{role}: OCPP 1.6J on {address}, web on {web}, "
            "store {store}, bus {bus}, metrics {metrics}",
            node_id=node.node_id,
            role=" as an edge" if self.role == "edge" else "",
            address=self.ocpp_port.getHost(),
            web=self.web_port.getHost(),
            store=location(node.database.engine.url),
            bus=config.bus.backend,
            metrics="off" if metrics is None else f"on {metrics.getHost()}",
        )

    def _start_failed(self, failure: Failure) -> None:
        # What had started is stopped again by now (in reverse): nothing
        # serves after a failed start, not even until the process ends.
        self._start_failure = failure
        if failure.check(CancelledError) and not self.running:
            self.log.info("ocppd stopped while starting")
            return
        if failure.check(StartupError):
            # The operator's problem, said in one line: no traceback to wade through.
            self.log.critical("ocppd: {reason}", reason=failure.getErrorMessage())
        else:
            self.log.failure("ocppd: start failed: {reason}", failure, reason=failure.value)

    def when_started(self) -> Deferred[None]:
        """
        Fires once every part is up (tests use it to learn the port), or fails
        with what made the start fail (``StartupError`` for the expected causes).
        """
        assert self._started is not None
        d: Deferred[None] = Deferred()

        def forward(_: None) -> None:
            if self._start_failure is None:
                d.callback(None)
            else:
                d.errback(self._start_failure)

        self._started.addCallback(forward)
        return d

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        yield super().stopService()
        self.log.info("ocppd node {node_id} stopped", node_id=self.ocppd.node_id)
