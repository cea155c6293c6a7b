"""
The OCPP message processor: persists what chargers said, off the bus.

Each envelope is applied in one database transaction that first claims its id
(``processed_messages``), so at-least-once delivery stores everything exactly
once; one whose effects are idempotent (a log-only message, a MeterValues:
``OcppProcessor.needs_claim``) needs no claim. Content-level rules in the
store make a charger's own resends and out-of-order arrivals harmless (see
``ocppd.store.transactions``).

One table, keyed by routing key, says what each envelope does beyond the
message log: its parts are ``traffic`` (the log and ``last_seen_at``),
``charger_state`` (boot, status, firmware and diagnostics states,
presence), ``sessions`` (start, meter values, stop: live cost, the funds
guard, the bill) and ``closing`` (the
sessions a boot, an ``Available`` or a newer start on their connector
proves over: closed on their last reading and billed).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from sqlalchemy.engine import Connection
from twisted.internet.interfaces import IReactorTime

from ocppd.billing import Limits
from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import IBus
from ocppd.bus.outbox import Outbox
from ocppd.bus.publisher import EventPublisher
from ocppd.consumers import charger_state, traffic
from ocppd.consumers.base import BusConsumer, DeferredWrites, FollowUp, FollowUpHook
from ocppd.consumers.policy import DEFAULT_LIMITS, BillingPolicy, billing_limits
from ocppd.consumers.sessions import Sessions
from ocppd.store.database import Database

__all__ = [
    "BATCH_WAIT",
    "CONSUMER",
    "DEFAULT_LIMITS",
    "SQLITE_CONCURRENCY",
    "SQLITE_MAX_BATCH",
    "OcppProcessor",
    "billing_limits",
]

CONSUMER = "processor"

#: What an envelope does beyond the message log; the events it made true, if any.
Effect = Callable[[Connection, str, Envelope, DeferredWrites], "list[FollowUp] | None"]


def each(*effects: Effect) -> Effect:
    """One effect of several, applied in order; their events in that order."""

    def applied(
        conn: Connection, charge_point_id: str, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp]:
        follow_ups: list[FollowUp] = []
        for effect in effects:
            follow_ups.extend(effect(conn, charge_point_id, envelope, writes) or ())
        return follow_ups

    return applied


_METER_VALUES = topology.ocpp_in("MeterValues")

#: Seconds a busy processor waits for a fuller batch (see ``BusConsumer.batch_wait``).
BATCH_WAIT = 0.05

#: On a SQLite store: deliveries taken at once, and most messages per transaction.
#: Each commit writes to the WAL every page its batch touched, and with many
#: chargers a batch touches a leaf of each per-charger index per message: a
#: batch of 500 shares those pages among several messages of each charger
#: (bench/e2e_bus.py, 100 chargers: 37 -> 15 KB written and ~300 -> ~245 us of
#: CPU per stored MeterValues; bench/RESULTS.md). Charger answers don't wait
#: for it, since the bus journals to a file of its own (ocppd.store.journal);
#: other writers to the store (a StartTransaction's id, the API) wait at most
#: one batch. PostgreSQL, with writers that don't exclude each other and
#: RabbitMQ's prefetch (200) in front, keeps the class's.
SQLITE_CONCURRENCY = 1000
SQLITE_MAX_BATCH = 500


class OcppProcessor(BusConsumer):
    """
    Consumes ``topology.PROCESSOR_QUEUE`` and writes to the store: sessions,
    meter values, pricing at stop, the wallet debit, and the funds guard of
    app-started sessions. Returns the domain events of docs/events.md.
    """

    name = CONSUMER
    # Group commit (see BusConsumer): under load, one transaction per batch;
    # twice a batch in flight, so that the next fills while one commits.
    concurrency = 200
    batch_wait = BATCH_WAIT
    # A live estimate, superseded by the next MeterValues: not worth a row
    # in the outbox per reading (docs/events.md).
    direct_events = frozenset({"session.updated"})

    def __init__(
        self,
        bus: IBus,
        database: Database,
        *,
        events: EventPublisher | None = None,
        on_follow_up: FollowUpHook | None = None,
        wallet_currency: str = "EUR",
        stop_margin: int = 0,
        limits: Limits = DEFAULT_LIMITS,
        log_heartbeats: bool = False,
        clock: IReactorTime,
        outbox: Outbox | None = None,
    ) -> None:
        super().__init__(
            bus, database, events=events, on_follow_up=on_follow_up, clock=clock, outbox=outbox
        )
        if database.dialect == "sqlite":
            self.concurrency = SQLITE_CONCURRENCY
            self.max_batch = SQLITE_MAX_BATCH
        self.policy = BillingPolicy(wallet_currency, stop_margin, limits)
        #: Whether Heartbeat frames go to the message log ([ocpp] log_heartbeats).
        self.log_heartbeats = log_heartbeats
        self._last_seen = traffic.LastSeen()
        sessions = self._sessions = Sessions(self.policy)
        presence = charger_state.Presence(clock)
        #: The effects beyond the message log, by routing key: these are
        #: claimed (``needs_claim``, MeterValues aside); every other
        #: ``ocpp.*`` key only logs.
        self.effect_of: dict[str, Effect] = {
            topology.ocpp_in("BootNotification"): each(
                charger_state.boot, sessions.closings.rebooted
            ),
            topology.ocpp_in("StatusNotification"): each(
                charger_state.status, sessions.closings.available
            ),
            topology.ocpp_in("FirmwareStatusNotification"): charger_state.firmware_status,
            topology.ocpp_in("DiagnosticsStatusNotification"): charger_state.diagnostics_status,
            topology.ocpp_in("StartTransaction"): sessions.started,
            topology.ocpp_in("MeterValues"): sessions.meter_values,
            topology.ocpp_in("StopTransaction"): sessions.stopped,
            topology.CHARGER_CONNECTED: presence.connected,
            topology.CHARGER_DISCONNECTED: presence.disconnected,
        }

    @property
    def wallet_currency(self) -> str:
        return self.policy.wallet_currency

    @wallet_currency.setter
    def wallet_currency(self, value: str) -> None:
        self.policy.wallet_currency = value

    @property
    def limits(self) -> Limits:
        """What a stopped session must stay within to be billed without review."""
        return self.policy.limits

    @limits.setter
    def limits(self, value: Limits) -> None:
        self.policy.limits = value

    def together(self, envelope: Envelope) -> Hashable | None:
        """
        Consecutive MeterValues go together: their sessions' statements are
        sent at once. Only while the effect table gives MeterValues
        ``Sessions.meter_values`` alone, which ``effects_together`` spells out:
        any other effect there applies each message through ``effects``,
        rather than being skipped for a run.
        """
        if (
            envelope.type == _METER_VALUES
            and envelope.charge_point_id is not None
            and self.effect_of.get(_METER_VALUES) == self._sessions.meter_values
        ):
            return _METER_VALUES
        return None

    def effects_together(
        self, conn: Connection, envelopes: list[Envelope], writes: DeferredWrites
    ) -> list[list[FollowUp] | None]:
        """
        Consecutive MeterValues: each logged and its samples deferred, as
        ``effects`` would, then their sessions' meters advanced together
        (``Sessions.metered``: one round trip on PostgreSQL).
        """
        read = []
        for envelope in envelopes:
            charge_point_id = envelope.charge_point_id
            assert charge_point_id is not None  # ``together`` keys no other
            self._log_traffic(envelope, charge_point_id, "in.MeterValues", writes)
            read.append(self._sessions.read_meter(charge_point_id, envelope, writes))
        return list(self._sessions.metered(conn, read))

    def needs_claim(self, envelope: Envelope) -> bool:
        """
        Keys with an effect, and every key that is not OCPP traffic, are
        claimed; the rest (Heartbeat, answers to commands, ...) only append
        to the log and ``last_seen_at``, which ``traffic`` defers.

        So is a MeterValues not, while its effect is ``Sessions.meter_values``
        (the hot message; its claim cost about 6 % of the processor's
        instructions, bench/RESULTS.md): applied again, its log rows and
        samples are keyed appends skipped when present, ``last_seen_at`` only
        moves forward, its session's meter only to a newer reading (an
        atomic ``UPDATE`` on PostgreSQL, the write lock on SQLite), and the
        funds guard asks for a stop once (``wallets.mark_stop_requested``).
        What it announces again is ``session.updated``, a live estimate
        that only the notifier consumes, as a push that replaces the last
        (docs/bus.md, "Claims").
        """
        if envelope.type == _METER_VALUES:
            return self.effect_of.get(_METER_VALUES) != self._sessions.meter_values
        return envelope.type in self.effect_of or envelope.type.partition(".")[0] != "ocpp"

    def effects(
        self, conn: Connection, envelope: Envelope, writes: DeferredWrites
    ) -> list[FollowUp] | None:
        charge_point_id = envelope.charge_point_id
        if charge_point_id is None:
            # Every type this queue carries is about a charger; a message
            # without one is a publisher's bug, not worth retrying.
            self.log.error(
                "Processor ignores {type} {id} without a charge point id",
                type=envelope.type,
                id=envelope.id,
            )
            return None
        kind, _, rest = envelope.type.partition(".")
        if kind == "ocpp" and not self._log_traffic(envelope, charge_point_id, rest, writes):
            return None
        effect = self.effect_of.get(envelope.type)
        return None if effect is None else effect(conn, charge_point_id, envelope, writes)

    def _log_traffic(
        self, envelope: Envelope, charge_point_id: str, rest: str, writes: DeferredWrites
    ) -> bool:
        """Log ``envelope``'s frames and note an inbound charger seen; False for an unknown key."""
        direction, _, action = rest.partition(".")
        unlogged = direction == "in" and action == "Heartbeat" and not self.log_heartbeats
        if not unlogged:
            row = traffic.logged(direction, envelope.payload)
            if row is None:
                self.log.warn("Processor ignores unknown envelope type {type}", type=envelope.type)
                return False
            traffic.log_row(envelope, charge_point_id, row, writes)
        if direction == "in":
            self._last_seen.seen(charge_point_id, traffic.received_at(envelope), writes)
        return True
