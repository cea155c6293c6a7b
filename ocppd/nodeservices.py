"""
The children of a node's service (``ocppd.service.OcppdService``), in their
start order: the store, the bus with its consumers, the Redis link, presence,
the timers, the alert evaluator, the metrics listener, the listeners (a
``processor`` node: the probes listener instead, and no Redis link, presence
or timers; ``ocppd.roles``). Each starts what it owns and stops it again; the
parent starts them one after the other and stops them in reverse
(docs/operations.md, "Start and stop order").
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
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.internet.task import LoopingCall

from ocppd.bus import topology
from ocppd.listen import OCPP_BACKLOG, with_default_backlog
from ocppd.logs import Logger
from ocppd.probes import ProbesResource
from ocppd.ratelog import flush_all
from ocppd.roles import serves_chargers, stores_traffic
from ocppd.routing.interface import IServing
from ocppd.store import connections, messages, migrate, processed, transactions
from ocppd.store.database import describe_error, location
from ocppd.store.journal import JournalFileTooNew, move_store_records, prepare_journal_file
from ocppd.timeutil import format_iso, from_timestamp
from ocppd.web import WebSite

if TYPE_CHECKING:
    from ocppd.bus.amqp import AmqpBus
    from ocppd.routing.amqp import AmqpCommandTransport
    from ocppd.service import Ocppd

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


class _Part(Service):
    """A child of the node's service: ``node`` holds what it starts."""

    log = Logger()

    def __init__(self, node: Ocppd, name: str) -> None:
        self.node = node
        self.name = name

    @inlineCallbacks
    def _steps(
        self, steps: list[tuple[str, Callable[[], Any]]]
    ) -> Generator[Deferred[Any], Any, None]:
        # Each step runs even if an earlier one failed: a charger socket that
        # will not close must not keep the bus from draining or the DB open.
        for name, step in steps:
            try:
                yield maybeDeferred(step)
            except Exception:
                self.log.failure("Shutdown step {step!r} failed", step=name)


class StoreService(_Part):
    """The database: its threads, and a schema at this version's head."""

    def __init__(self, node: Ocppd) -> None:
        super().__init__(node, "store")

    def startService(self) -> None:
        super().startService()
        if self.node.config.billing.payment_provider == "test":
            # Every start, so no operator runs it unaware: it mints money.
            self.log.warn(
                "[billing] payment_provider = test approves every top-up: customers add "
                "wallet money for free. For demos and tests only."
            )
        billing = self.node.config.billing
        if billing.payment_provider == "stripe" and billing.stripe_secret_key.startswith(
            ("sk_test_", "rk_test_")
        ):
            # Stripe's test cards pay test-mode sessions: as free as the test provider.
            self.log.warn(
                "[billing] stripe_secret_key is a Stripe test-mode key: top-ups are paid "
                "with test cards, so customers add wallet money for free. Use a live key "
                "in production."
            )
        self.node.database.start()
        self._prepare_store()
        self._prepare_journal_file()

    def _prepare_store(self) -> None:
        """
        Bring the schema to this version's head (``auto_upgrade``), or refuse
        a database at any other revision: serving on it would answer every
        request with a database error.
        """
        config, engine = self.node.config, self.node.database.engine
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

    def _prepare_journal_file(self) -> None:
        """
        On a SQLite store, the embedded bus's journal file: its table, and the
        records an older version left in the store's ``bus_journal``, moved
        there before the bus loads them (``ocppd.store.journal``).
        """
        node = self.node
        journal = node.journal_database
        if journal is None:
            return
        journal.start()
        try:
            journal.run_sync(prepare_journal_file)
            moved = move_store_records(node.database, journal, node.node_id)
        except (sa.exc.SQLAlchemyError, JournalFileTooNew) as e:
            raise StartupError(
                f"cannot use the bus journal {location(journal.engine.url)}: {describe_error(e)}"
            ) from e
        if moved:
            self.log.info(
                "Moved {count} bus journal records from the store to {path}",
                count=moved,
                path=location(journal.engine.url),
            )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        journal = self.node.journal_database
        return self._steps(
            [
                ("close the database", self.node.database.stop),
                ("close the bus journal", journal.stop if journal is not None else lambda: None),
                # What rate-limited logs still count, written now rather than lost.
                ("write pending log summaries", flush_all),
            ]
        )


class BusService(_Part):
    """
    The bus and what consumes it: the outbox relay, the processor, audit,
    funds-stop and notifier consumers, and the commands other nodes route here.
    An ``edge`` node runs no processor or audit consumer; a ``processor`` node
    only those two (it holds no chargers: no commands, funds stops or pushes).
    """

    def __init__(self, node: Ocppd) -> None:
        super().__init__(node, "bus")
        self._serving_commands: IServing | None = None
        role = node.config.ocppd.role
        self.serves_chargers = serves_chargers(role)
        self.stores_traffic = stores_traffic(role)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        super().startService()
        node, config = self.node, self.node.config
        try:
            # The embedded bus loads its journal here, before anything is served.
            node.bus.startService()
        except sa.exc.SQLAlchemyError as e:
            raise StartupError(
                f"cannot read the bus journal in {location(node.journal_location)}: "
                f"{describe_error(e)}"
            ) from e
        # Connects while the bus does: a broker that is down costs one wait, not two.
        routing = self._start_command_routing() if self.serves_chargers else succeed(None)
        if config.bus.backend == "amqp":
            yield self._wait_for_broker(cast("AmqpBus", node.bus), config.bus.connect_timeout)
        if self.serves_chargers:
            # Before the processor applies what the previous process left on the
            # bus, and before chargers connect: what the store says this node held
            # when it ended, it no longer holds.
            yield node.liveness.release_held()
        node.relay.start()
        if self.stores_traffic:
            yield node.processor.start(topology.PROCESSOR_QUEUE)
            yield node.audit.start(topology.AUDIT_QUEUE)
        if self.serves_chargers:
            yield node.funds_stop.start(topology.FUNDS_STOP_QUEUE)
            yield routing
            yield node.notifier.start(topology.notifier_queue(node.node_id))

    @inlineCallbacks
    def _start_command_routing(self) -> Generator[Deferred[Any], Any, None]:
        """Take the commands other nodes route to this node's chargers."""
        node = self.node
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
        transport = self.node.command_transport
        if isinstance(transport, Service) and transport.running:
            return maybeDeferred(transport.stopService)
        return None if serving is None else serving.stop()

    @inlineCallbacks
    def _wait_for_broker(self, bus: AmqpBus, timeout: float) -> Generator[Deferred[Any], Any, None]:
        connected = bus.when_connected()
        connected.addTimeout(timeout, self.node.reactor)
        try:
            yield connected
        except defer.TimeoutError:
            self.log.warn(
                "RabbitMQ not reachable after {timeout} s; taking chargers anyway, "
                "transaction messages are refused until it is",
                timeout=timeout,
            )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        node = self.node
        steps: list[tuple[str, Callable[[], Any]]] = []
        if self.serves_chargers:
            steps += [
                ("stop the notifier", node.notifier.stop),
                ("stop taking routed commands", self._stop_command_routing),
                # Its stops may wait minutes between tries: not worth holding the drain.
                ("stop the funds-stop consumer", node.funds_stop.stop),
            ]
        # The bus drains into its consumers, so they stop after it.
        steps.append(("drain the bus", node.bus.stopService))
        if self.stores_traffic:
            steps += [
                ("stop the processor", node.processor.stop),
                ("stop the audit consumer", node.audit.stop),
            ]
        # What the relay has not published stays in the outbox for the next start.
        steps.append(("stop the outbox relay", node.relay.stop))
        return self._steps(steps)


class RedisService(_Part):
    """
    The node's link to Redis, which presence and the shared state use: up
    before them, closed after them (nothing when presence is embedded).
    """

    def __init__(self, node: Ocppd) -> None:
        super().__init__(node, "redis")

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        super().startService()
        link = self.node.redis
        if link is None:
            return
        link.start()
        timeout = self.node.config.bus.connect_timeout
        if not (yield link.when_connected(timeout)):
            self.log.warn(
                "Redis at {address} not reachable after {timeout} s; chargers are"
                " refused (503) until it is",
                address=str(link.address),
                timeout=timeout,
            )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        link = self.node.redis
        return self._steps([("close the Redis link", link.stop if link else lambda: None)])


class PresenceService(_Part):
    """Which node holds which charger, and the state every node shares (limits, revocations)."""

    def __init__(self, node: Ocppd) -> None:
        super().__init__(node, "presence")

    def startService(self) -> None:
        super().startService()
        self.node.shared.start()
        self.node.presence.start()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        return self._steps(
            [
                ("stop presence", self.node.presence.stop),
                ("stop the shared state", self.node.shared.stop),
            ]
        )


class TimersService(_Part):
    """
    The hourly pruning, the sweep of expired holds, the liveness checks, the
    diagnostics files' pruning.
    """

    def __init__(self, node: Ocppd) -> None:
        super().__init__(node, "timers")
        self.pruner: LoopingCall | None = None

    def startService(self) -> None:
        super().startService()
        node = self.node
        self._say_retention()
        self.pruner = LoopingCall(self.prune)
        self.pruner.clock = node.reactor
        self.pruner.start(3600, now=True).addErrback(
            lambda failure: self.log.failure("Hourly pruning stopped", failure)
        )
        node.holds.start()
        node.liveness.startService()
        node.diagnostics_pruner.startService()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        pruner, self.pruner = self.pruner, None
        if pruner is not None and pruner.running:
            pruner.stop()
        self.node.holds.stop()
        # Each waits for its run under way: the database closes after the timers.
        return self._steps(
            [
                ("stop the liveness checks", self.node.liveness.stopService),
                ("stop the diagnostics pruning", self.node.diagnostics_pruner.stopService),
            ]
        )

    def _say_retention(self) -> None:
        """One line at start on how long the message log keeps frames: it decides the disk."""
        days = self.node.config.store.keep_message_log_days
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
    def prune(self) -> Generator[Deferred[Any], Any, None]:
        for step in (
            self.prune_claims,
            self._prune_message_log,
            self._prune_unconfirmed,
            self._prune_connection_history,
        ):
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
                count = yield self.node.database.run(delete, limit=chunk, **kwargs)
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
        before = from_timestamp(self.node.reactor.seconds()) - UNCONFIRMED_START_KEEP
        return self._delete_in_chunks(
            transactions.expire_unconfirmed,
            PRUNE_CHUNK,
            f"starts refused before {format_iso(before)} and never resent",
            created_before=before,
        )

    def _prune_message_log(self) -> Deferred[None]:
        node = self.node
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

    def _prune_connection_history(self) -> Deferred[None]:
        """Delete connections that ended longer ago than ``[reports] connection_history_days``."""
        node = self.node
        days = node.config.reports.connection_history_days
        if not days:
            return succeed(None)
        before = from_timestamp(node.reactor.seconds()) - timedelta(days=days)
        return self._delete_in_chunks(
            connections.forget_connections,
            PRUNE_CHUNK,
            f"connections that ended before {format_iso(before)}",
            before=before,
        )

    @inlineCallbacks
    def prune_claims(self) -> Generator[Deferred[Any], Any, None]:
        node = self.node
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


class AlertsService(_Part):
    """The alert evaluator and its deliveries (``ocppd.alerts``)."""

    def __init__(self, node: Ocppd) -> None:
        super().__init__(node, "alerts")

    def startService(self) -> None:
        super().startService()
        self.node.alerts.start()

    def stopService(self) -> Deferred[None]:
        super().stopService()
        # What is not yet delivered waits in the store for the next start or
        # another node; the open alerts stay open, so nothing is raised again.
        return self._steps([("stop the alert evaluator", self.node.alerts.stop)])


class ListenersService(_Part):
    """The web and OCPP listeners; their stop also closes push sessions and charger sockets."""

    def __init__(self, node: Ocppd) -> None:
        super().__init__(node, "listeners")
        self.web_port: IListeningPort | None = None
        self.ocpp_port: IListeningPort | None = None

    def ports(self) -> tuple[tuple[str, IListeningPort | None], ...]:
        """The listeners this part opens, by purpose (what ``/ready`` checks)."""
        return (("OCPP", self.ocpp_port), ("web", self.web_port))

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        super().startService()
        node, config = self.node, self.node.config
        self.web_port = yield _listen(node.reactor, config.web.listen, node.web_site, "the web")
        self.ocpp_port = yield _listen(
            node.reactor, config.ocpp.listen, node.ocpp_factory, "OCPP", backlog=OCPP_BACKLOG
        )
        if not node.ocpp_factory.gate.watch(self.ocpp_port):
            self.log.warn(
                "The OCPP listener ({listen}) cannot pause its accepts: [ocpp] max_handshakes"
                " does not apply",
                listen=config.ocpp.listen,
            )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        node = self.node
        port, self.ocpp_port = self.ocpp_port, None
        web_port, self.web_port = self.web_port, None
        if port is not None:
            node.ocpp_factory.gate.forget(port)
        return self._steps(
            [
                ("stop listening", port.stopListening if port else lambda: None),
                ("stop the web listener", web_port.stopListening if web_port else lambda: None),
                ("close push sessions", node.push.close_all),
                ("close charger connections", lambda: node.registry.close_all(node.reactor)),
                ("close the payment provider's connections", self._close_payments),
            ]
        )

    def _close_payments(self) -> Any:
        provider = self.node.payments
        return provider.close() if provider is not None else None


class ProbesService(_Part):
    """
    A ``processor`` node's web listener (``[web] listen``): ``/health`` and
    ``/ready`` only (``ocppd.probes``), so probes and ``ocppctl status`` find
    it where they find any node's.
    """

    def __init__(self, node: Ocppd) -> None:
        super().__init__(node, "probes")
        self.port: IListeningPort | None = None
        web = node.config.web
        self.site = WebSite(
            ProbesResource(node.health),
            # Probes are GETs: no body worth taking.
            max_body_size=4096,
            header_timeout=web.header_timeout,
            idle_timeout=web.idle_timeout,
            reactor=node.reactor,
            trusted_proxies=node.trusted_proxies,
        )

    def ports(self) -> tuple[tuple[str, IListeningPort | None], ...]:
        """The listeners this part opens, by purpose (what ``/ready`` checks)."""
        return (("web", self.port),)

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        super().startService()
        node = self.node
        self.port = yield _listen(node.reactor, node.config.web.listen, self.site, "the web")

    def stopService(self) -> Deferred[None]:
        super().stopService()
        port, self.port = self.port, None
        return self._steps(
            [("stop the web listener", port.stopListening if port else lambda: None)]
        )


class MetricsService(_Part):
    """
    The metrics listener (``[metrics] listen``, ``ocppd.metrics``): up
    before the listeners, so the start of serving is seen, and closed after
    them, so is the drain. Nothing when metrics are off.
    """

    def __init__(self, node: Ocppd) -> None:
        super().__init__(node, "metrics")
        self.port: IListeningPort | None = None

    @inlineCallbacks
    def startService(self) -> Generator[Deferred[Any], Any, None]:
        super().startService()
        node = self.node
        if node.metrics_site is None:
            return
        self.port = yield _listen(
            node.reactor, node.config.metrics.listen, node.metrics_site, "metrics"
        )

    def stopService(self) -> Deferred[None]:
        super().stopService()
        port, self.port = self.port, None
        return self._steps(
            [("stop the metrics listener", port.stopListening if port else lambda: None)]
        )


@inlineCallbacks
def _listen(
    reactor: Any,
    description: str,
    factory: IProtocolFactory,
    purpose: str,
    *,
    backlog: int | None = None,
) -> Generator[Deferred[Any], Any, IListeningPort]:
    """
    Listen on ``description``, with ``backlog`` unless it names one
    (``ocppd.listen``); ``StartupError`` in one line saying why not.
    """
    endpoint = description if backlog is None else with_default_backlog(description, backlog)
    try:
        port = yield serverFromString(reactor, endpoint).listen(factory)
    except CancelledError:
        raise  # stopped while starting: no failure
    except Exception as e:  # any endpoint type's failure: the line names it
        raise StartupError(
            f"cannot listen on {description} for {purpose}: {_listen_error(e)}"
        ) from e
    return cast(IListeningPort, port)


def _listen_error(error: Exception) -> str:
    """Why a listener could not open: the system's reason ("address already in use")."""
    if isinstance(error, CannotListenError) and isinstance(error.socketError, OSError):
        reason = error.socketError.strerror or str(error.socketError)
        return reason[:1].lower() + reason[1:]
    return str(error)
