"""
Builds the daemon from its configuration and starts/stops it in order.

Start: store (migrations, or a check that none are pending) -> bus ->
consumers (and the sweeps: pruning, expired holds) -> web and OCPP
listeners. A start that fails logs one line (``StartupError``: what failed
and why) and closes what listens; ``when_started`` fails, so whoever runs
the service (``ocppd.tap`` under twistd) can end the process.
Stop, in reverse: no new chargers, close their sockets (their disconnect
events still reach the bus), drain the bus into the processor, stop the
processor, close the database.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

import sqlalchemy as sa
from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks, maybeDeferred, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from ocppd.api.accounts import Accounts
from ocppd.api.app import Api
from ocppd.api.cms import CmsService
from ocppd.api.commands import CommandService
from ocppd.api.customer import CustomerService
from ocppd.api.reviews import SessionReviews
from ocppd.bus import topology
from ocppd.bus.memory import MemoryBus
from ocppd.bus.outbox import Outbox
from ocppd.bus.publisher import EventPublisher
from ocppd.bus.relay import OutboxRelay
from ocppd.config import Config
from ocppd.consumers.audit import AuditConsumer
from ocppd.consumers.funds_stop import FundsStopConsumer
from ocppd.consumers.notifier import Notifier, shown_inbound
from ocppd.consumers.processor import OcppProcessor, billing_limits
from ocppd.holds import HoldReleaser
from ocppd.logs import Logger
from ocppd.ocpp.admission import ChargerAdmission
from ocppd.ocpp.handlers import CentralSystemHandlers
from ocppd.ocpp.liveness import ChargerLiveness
from ocppd.ocpp.protocol import OcppServerFactory
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.ocpp.tagcache import IdTagCache
from ocppd.ocpp.traffic import TrafficPublisher
from ocppd.payments import make_payment_provider
from ocppd.presence.interface import IPresence
from ocppd.presence.memory import MemoryPresence
from ocppd.push.channel import PushChannel, ticket_authenticator
from ocppd.push.session import ticket_digest
from ocppd.ratelog import flush_all
from ocppd.routing.executor import CommandExecutor
from ocppd.routing.interface import IServing
from ocppd.routing.local import LocalCommandTransport
from ocppd.routing.router import CommandRouter, OwnerLookup
from ocppd.shared.interface import ISharedState
from ocppd.shared.memory import MemorySharedState
from ocppd.store import messages, migrate, processed, transactions
from ocppd.store.database import Database, describe_error, location
from ocppd.store.journal import StoreJournal
from ocppd.timeutil import format_iso, from_timestamp
from ocppd.web import WebSite, static_trees

if TYPE_CHECKING:
    from ocppd.bus.amqp import AmqpBus
    from ocppd.routing.amqp import AmqpCommandTransport

#: Message-log rows deleted per transaction when pruning: the processor's
#: writes wait for one chunk at most.
MESSAGE_LOG_PRUNE_CHUNK = 10_000
#: Unconfirmed sessions deleted per transaction.
PRUNE_CHUNK = 1_000
#: How long a start refused while the bus was down waits for the charger's
#: resend (which gets the same id) before its row is deleted: chargers retry
#: within minutes; an hour also covers a start the bus took but whose confirm
#: was lost and which the processor confirms once it reaches it.
UNCONFIRMED_START_KEEP = timedelta(hours=1)


class StartupError(Exception):
    """A start-up step failed for a reason the operator can act on; ``str()`` says which."""


class Ocppd:
    """Every collaborator of one node, wired once (Synapse's ``HomeServer`` idea)."""

    log = Logger()

    def __init__(self, config: Config, reactor: Any) -> None:
        self.config = config
        self.reactor = reactor
        self.node_id = config.ocppd.node_id
        self.topology = topology.default_topology(
            config.bus.prefix,
            node_id=self.node_id,
            notifier_inbound=shown_inbound(log_heartbeats=config.ocpp.log_heartbeats),
        )
        self.database = Database.from_url(
            config.store_url, reactor=reactor, max_threads=config.store.max_threads
        )
        self.bus = self._make_bus()
        self.schemas = SchemaRegistry.load()
        self.relay = OutboxRelay(self.database, self.bus, node=self.node_id, clock=reactor)
        self.outbox = Outbox(node=self.node_id, clock=reactor, relay=self.relay)
        self.traffic = TrafficPublisher(
            self.bus,
            node=self.node_id,
            clock=reactor,
            outbox=self.outbox,
            database=self.database,
        )
        self.tags = IdTagCache(self.database, reactor, ttl=config.ocpp.tag_cache_ttl)
        self.registry = ConnectionRegistry()
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
            presence=self.presence,
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
        self.commands = CommandService(
            database=self.database,
            router=self.router,
            schemas=self.schemas,
            outbox=self.outbox,
            timeout=config.ocpp.call_timeout,
        )
        self.cms = CmsService(database=self.database, outbox=self.outbox)
        self.reviews = SessionReviews(
            database=self.database, outbox=self.outbox, wallet_currency=config.billing.currency
        )
        self.customer = CustomerService(
            database=self.database,
            outbox=self.outbox,
            commands=self.commands,
            payments=make_payment_provider(config.billing.payment_provider),
            billing=config.billing,
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
        )
        self.notifier = Notifier(self.bus, self.push)
        # A sign-out ends the token's push sessions on every node (docs/push.md).
        self.accounts.revoked.append(self._publish_revoked)
        self.shared.on_revoked(self.push.revoke_digest)
        self.api = Api(
            push=self.push.resource(),
            database=self.database,
            accounts=self.accounts,
            commands=self.commands,
            cms=self.cms,
            customer=self.customer,
            reviews=self.reviews,
            static=static_trees(config.web.webroot),
        )
        self.web_site = WebSite(
            self.api.resource(),
            max_body_size=config.web.max_body_size,
            header_timeout=config.web.header_timeout,
            idle_timeout=config.web.idle_timeout,
            reactor=reactor,
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
        def failed(failure: Failure) -> None:
            self.log.warn(
                "Could not tell the other nodes of a sign-out ({reason}); their push"
                " sessions of that token end when their ticket is next checked",
                reason=failure.getErrorMessage(),
            )

        self.shared.publish_revoked(ticket_digest(token)).addErrback(failed)

    def _make_shared_state(self) -> ISharedState:
        presence = self.config.presence
        if presence.backend == "redis":
            from ocppd.shared.redis import RedisSharedState

            return RedisSharedState(
                clock=self.reactor, reactor=self.reactor, url=presence.url, prefix=presence.prefix
            )
        return MemorySharedState(self.reactor)

    def _make_presence(self) -> IPresence:
        presence = self.config.presence
        if presence.backend == "redis":
            from ocppd.presence.redis import RedisPresence

            return RedisPresence(
                node_id=self.node_id,
                clock=self.reactor,
                reactor=self.reactor,
                lease=presence.lease,
                url=presence.url,
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
        # The embedded bus journals to the store, so that what it accepted
        # survives a crash (docs/bus.md, "Durability").
        return MemoryBus(
            self.topology,
            reactor=self.reactor,
            retry_delays=bus.retry_delays,
            max_attempts=bus.max_attempts,
            journal=StoreJournal(self.database, self.node_id),
        )


class OcppdService(Service):
    """The one service ``twistd ocppd`` runs."""

    log = Logger()

    def __init__(self, config: Config, reactor: IReactorTime | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.ocppd = Ocppd(config, reactor)
        self.ocpp_port: IListeningPort | None = None
        self.web_port: IListeningPort | None = None
        self._started: Deferred[None] | None = None
        self._start_failure: Failure | None = None
        self._pruner: LoopingCall | None = None
        self._serving_commands: IServing | None = None

    def startService(self) -> None:
        super().startService()
        self._started = self._start()
        self._started.addErrback(self._start_failed)

    def _start_failed(self, failure: Failure) -> None:
        self._start_failure = failure
        if failure.check(CancelledError) and not self.running:
            self.log.info("ocppd stopped while starting")
            return
        if failure.check(StartupError):
            # The operator's problem, said in one line: no traceback to wade through.
            self.log.critical("ocppd: {reason}", reason=failure.getErrorMessage())
        else:
            self.log.failure("ocppd: start failed: {reason}", failure, reason=failure.value)
        # Nothing serves after a failed start, not even until the process ends.
        for port in (self.web_port, self.ocpp_port):
            if port is not None:
                maybeDeferred(port.stopListening).addErrback(
                    lambda failure: self.log.failure("Could not stop listening", failure)
                )
        self.web_port = self.ocpp_port = None

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
    def _start(self) -> Generator[Deferred[Any], Any, None]:
        node, config = self.ocppd, self.ocppd.config
        if config.billing.payment_provider == "test":
            # Every start, so no operator runs it unaware: it mints money.
            self.log.warn(
                "[billing] payment_provider = test approves every top-up: customers add "
                "wallet money for free. For demos and tests only."
            )
        node.database.start()
        self._prepare_store()
        try:
            # The embedded bus loads its journal here, before anything is served.
            node.bus.startService()
        except sa.exc.SQLAlchemyError as e:
            raise StartupError(
                f"cannot read the bus journal in {location(node.database.engine.url)}: "
                f"{describe_error(e)}"
            ) from e
        # Connects while the bus does: a broker that is down costs one wait, not two.
        routing = self._start_command_routing()
        if config.bus.backend == "amqp":
            yield self._wait_for_broker(cast("AmqpBus", node.bus), config.bus.connect_timeout)
        # Before the processor applies what the previous process left on the
        # bus, and before chargers connect: what the store says this node held
        # when it ended, it no longer holds.
        yield node.liveness.release_held()
        node.relay.start()
        yield node.processor.start(topology.PROCESSOR_QUEUE)
        yield node.audit.start(topology.AUDIT_QUEUE)
        yield node.funds_stop.start(topology.FUNDS_STOP_QUEUE)
        yield routing
        self._say_retention()
        self._pruner = LoopingCall(self._prune)
        self._pruner.clock = node.reactor
        self._pruner.start(3600, now=True).addErrback(
            lambda failure: self.log.failure("Hourly pruning stopped", failure)
        )
        node.holds.start()
        yield node.notifier.start(topology.notifier_queue(node.node_id))
        yield self._start_presence()
        node.liveness.start()
        self.web_port = yield self._listen(config.web.listen, node.web_site, "the web")
        self.ocpp_port = yield self._listen(config.ocpp.listen, node.ocpp_factory, "OCPP")
        self.log.info(
            "ocppd node {node_id} ready: OCPP 1.6J on {address}, web on {web}, "
            "store {store}, bus {bus}",
            node_id=node.node_id,
            address=self.ocpp_port.getHost(),
            web=self.web_port.getHost(),
            store=location(node.database.engine.url),
            bus=config.bus.backend,
        )

    @inlineCallbacks
    def _start_command_routing(self) -> Generator[Deferred[Any], Any, None]:
        """Take the commands other nodes route to this node's chargers."""
        node = self.ocppd
        transport = node.command_transport
        if isinstance(transport, Service):
            transport.startService()
        # Registered at once; on RabbitMQ taken from the queue once connected.
        self._serving_commands = yield transport.serve(node.node_id, node.command_executor.handle)
        if isinstance(transport, Service):
            wait = cast("AmqpCommandTransport", transport).when_connected()
            wait.addTimeout(node.config.bus.connect_timeout, node.reactor)
            try:
                yield wait
            except defer.TimeoutError:
                self.log.warn(
                    "RabbitMQ not reachable for commands yet; commands to chargers of "
                    "other nodes answer 503 until it is"
                )

    def _stop_command_routing(self) -> Deferred[Any] | None:
        serving, self._serving_commands = self._serving_commands, None
        transport = self.ocppd.command_transport
        if isinstance(transport, Service) and transport.running:
            return maybeDeferred(transport.stopService)
        return None if serving is None else serving.stop()

    def _prepare_store(self) -> None:
        """
        Bring the schema to this version's head (``auto_upgrade``), or refuse
        a database at any other revision: serving on it would answer every
        request with a database error.
        """
        config, engine = self.ocppd.config, self.ocppd.database.engine
        try:
            # Blocking is fine here: nothing is served before the schema is current.
            if config.store.auto_upgrade:
                migrate.upgrade(engine)
            migrate.require_current(engine)
        except migrate.SchemaNotCurrent as e:
            raise StartupError(e.explain(config.path)) from e
        except sa.exc.SQLAlchemyError as e:
            raise StartupError(
                f"cannot use the database {location(engine.url)}: {describe_error(e)}"
            ) from e

    @inlineCallbacks
    def _listen(
        self, description: str, factory: IProtocolFactory, purpose: str
    ) -> Generator[Deferred[Any], Any, IListeningPort]:
        try:
            port = yield serverFromString(self.ocppd.reactor, description).listen(factory)
        except CancelledError:
            raise  # stopped while starting: no failure
        except Exception as e:  # any endpoint type's failure: the line names it
            raise StartupError(
                f"cannot listen on {description} for {purpose}: {_listen_error(e)}"
            ) from e
        return cast(IListeningPort, port)

    def _say_retention(self) -> None:
        """One line at start on how long the message log keeps frames: it decides the disk."""
        days = self.ocppd.config.store.keep_message_log_days
        if days:
            self.log.info(
                "OCPP message log: frames kept {days} days ([store] keep_message_log_days)",
                days=days,
            )
        else:
            self.log.warn(
                "OCPP message log: every frame kept forever ([store] keep_message_log_days = 0);"
                " the database grows without bound"
            )

    @inlineCallbacks
    def _prune(self) -> Generator[Deferred[Any], Any, None]:
        for step in (self._prune_claims, self._prune_message_log, self._prune_unconfirmed):
            if not self.running:
                return  # stopping: the database closes under the next step
            yield step()

    @inlineCallbacks
    def _delete_in_chunks(
        self, delete: Callable[..., int], chunk: int, what: str, **kwargs: Any
    ) -> Generator[Deferred[Any], Any, None]:
        """
        Run ``delete(conn, limit=chunk, **kwargs)`` until it deletes fewer than
        ``chunk`` rows (one short transaction each, so writers are not held up),
        and log how many went as ``what``.
        """
        total = 0
        try:
            while self.running:
                count = yield self.ocppd.database.run(delete, limit=chunk, **kwargs)
                total += count
                if count < chunk:
                    break
        except Exception:
            # Logged, and tried again next hour: a busy database is no reason to stop.
            self.log.failure("Could not delete {what}", what=what)
        if total:
            self.log.info("Deleted {count} {what}", count=total, what=what)

    def _prune_unconfirmed(self) -> Deferred[None]:
        """Delete starts refused (the bus was down) that no charger resent within the bound."""
        before = from_timestamp(self.ocppd.reactor.seconds()) - UNCONFIRMED_START_KEEP
        return self._delete_in_chunks(
            transactions.expire_unconfirmed,
            PRUNE_CHUNK,
            f"starts refused before {format_iso(before)} and never resent",
            created_before=before,
        )

    def _prune_message_log(self) -> Deferred[None]:
        node = self.ocppd
        days = node.config.store.keep_message_log_days
        if not days:
            return succeed(None)
        before = from_timestamp(node.reactor.seconds()) - timedelta(days=days)
        return self._delete_in_chunks(
            messages.forget_messages,
            MESSAGE_LOG_PRUNE_CHUNK,
            f"message log rows older than {format_iso(before)}",
            before=before,
        )

    @inlineCallbacks
    def _prune_claims(self) -> Generator[Deferred[Any], Any, None]:
        node = self.ocppd
        keep = timedelta(days=node.config.store.keep_claims_days)
        before = from_timestamp(node.reactor.seconds()) - keep
        try:
            count = yield node.database.run(processed.forget_processed, before=before)
        except Exception:
            # Logged, and tried again next hour: a busy database is no reason to stop.
            self.log.failure("Could not prune idempotency claims")
            return
        if count:
            self.log.info(
                "Pruned {count} idempotency claims older than {before}", count=count, before=before
            )

    @inlineCallbacks
    def _start_presence(self) -> Generator[Deferred[Any], Any, None]:
        node = self.ocppd
        node.shared.start()
        node.presence.start()
        if node.config.presence.backend != "redis":
            return
        from ocppd.presence.redis import RedisPresence

        presence = cast(RedisPresence, node.presence)
        timeout = node.config.bus.connect_timeout
        if not (yield presence.when_connected(timeout)):
            self.log.warn(
                "Presence: Redis at {address} not reachable after {timeout} s; chargers are"
                " refused (503) until it is",
                address=str(presence.address),
                timeout=timeout,
            )

    @inlineCallbacks
    def _wait_for_broker(self, bus: AmqpBus, timeout: float) -> Generator[Deferred[Any], Any, None]:
        connected = bus.when_connected()
        connected.addTimeout(timeout, self.ocppd.reactor)
        try:
            yield connected
        except defer.TimeoutError:
            self.log.warn(
                "RabbitMQ not reachable after {timeout} s; taking chargers anyway, "
                "transaction messages are refused until it is",
                timeout=timeout,
            )

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        super().stopService()
        node = self.ocppd
        if self._started is not None and not self._started.called:
            self._started.cancel()
        port, self.ocpp_port = self.ocpp_port, None
        web_port, self.web_port = self.web_port, None
        pruner, self._pruner = self._pruner, None
        if pruner is not None and pruner.running:
            pruner.stop()
        node.holds.stop()
        node.liveness.stop()
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("stop listening", port.stopListening if port else lambda: None),
            ("stop the web listener", web_port.stopListening if web_port else lambda: None),
            ("stop the notifier", node.notifier.stop),
            ("stop taking routed commands", self._stop_command_routing),
            ("close push sessions", node.push.close_all),
            ("close charger connections", lambda: node.registry.close_all(node.reactor)),
            # Its stops may wait minutes between tries: not worth holding the drain.
            ("stop the funds-stop consumer", node.funds_stop.stop),
            ("stop presence", node.presence.stop),
            ("stop the shared state", node.shared.stop),
            # The bus drains into its consumers, so they stop after it.
            ("drain the bus", node.bus.stopService),
            ("stop the processor", node.processor.stop),
            ("stop the audit consumer", node.audit.stop),
            # What the relay has not published stays in the outbox for the next start.
            ("stop the outbox relay", node.relay.stop),
            ("close the database", node.database.stop),
            # What rate-limited logs still count, written now rather than lost.
            ("write pending log summaries", flush_all),
        ]
        # Each step runs even if an earlier one failed: a charger socket that
        # will not close must not keep the bus from draining or the DB open.
        for name, step in steps:
            try:
                yield maybeDeferred(step)
            except Exception:
                self.log.failure("Shutdown step {step!r} failed", step=name)
        self.log.info("ocppd node {node_id} stopped", node_id=node.node_id)


def _listen_error(error: Exception) -> str:
    """Why a listener could not open: the system's reason ("address already in use")."""
    if isinstance(error, CannotListenError) and isinstance(error.socketError, OSError):
        reason = error.socketError.strerror or str(error.socketError)
        return reason[:1].lower() + reason[1:]
    return str(error)
