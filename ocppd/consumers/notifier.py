"""
The notifier: domain events on the bus -> WAMP EVENTs on the push channel.

Each node consumes its own ephemeral queue (``topology.notifier_queue``), so
every browser sees every event it may read, whichever node it is connected
to. A push is worth nothing after the fact: nothing is stored, nothing is
retried, every delivery is acknowledged (unlike ``BusConsumer``).

:func:`push_events` is the mapping of docs/events.md ("Push topics"), pure and
total: a payload it cannot read yields no event and a log line, never an
exception that would bounce the message through the bus's retries.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any, Protocol

from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime

from ocppd.bus.envelope import Envelope
from ocppd.bus.interface import Delivery, IBus, IConsumer
from ocppd.bus.memory import MemoryBus
from ocppd.consumers import traffic
from ocppd.logs import Logger
from ocppd.measurands import newest_of, read_samples
from ocppd.ocpp.actions import CHARGER_INITIATED
from ocppd.push import topics
from ocppd.timeutil import parse_iso

#: (topic, event) where event is the EVENT's one argument {"type", "at", "data"}.
Push = tuple[str, dict[str, Any]]


class PushTarget(Protocol):
    def listening(self) -> bool:
        """Whether anyone subscribes to anything: if not, no push is worth building."""

    def publish(self, topic: str, event: dict[str, Any]) -> int: ...


def _event(type_: str, at: Any, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": type_, "at": at, "data": data}


def _user_id(value: Any) -> int | None:
    # bool is an int in Python; a user id never is.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- charger state ------------------------------------------------------------------


def _charger(envelope: Envelope) -> list[Push]:
    online = {"charger.connected": True, "charger.disconnected": False}.get(envelope.type)
    if online is None:
        return []
    at = envelope.payload.get("at") or envelope.time
    type_ = "charger.online" if online else "charger.offline"
    data = {"chargePointId": envelope.charge_point_id}
    return [(topics.CHARGERS_STATUS, _event(type_, at, data))]


def _connector_status(envelope: Envelope) -> list[Push]:
    request = envelope.payload["request"]
    data = {
        "chargePointId": envelope.charge_point_id,
        "connectorId": request["connectorId"],
        "status": request["status"],
        "errorCode": request["errorCode"],
    }
    at = envelope.payload.get("receivedAt") or envelope.time
    return [(topics.CHARGERS_STATUS, _event("connector.status", at, data))]


def _own(envelope: Envelope, topic_of: Callable[[str], str], event: dict[str, Any]) -> list[Push]:
    """The push of ``event`` on its charger's own topic (the broker filters by charger)."""
    cp = envelope.charge_point_id
    return [(topic_of(cp), event)] if cp else []


# --- meter values -------------------------------------------------------------------


def meter_reading(meter_values: list[dict[str, Any]]) -> tuple[int | None, int | None, str | None]:
    """
    The newest total energy register (Wh) and active import power (W) among
    OCPP 1.6 MeterValue objects (``measurands.newest``, as the processor reads
    them), and the timestamp of the newest MeterValue, as sent.
    """
    readings = newest_of(read_samples(meter_values))
    sampled_at: tuple[Any, str] | None = None
    for meter_value in meter_values:
        stamp = meter_value["timestamp"]
        when = parse_iso(stamp)
        if sampled_at is None or when >= sampled_at[0]:
            sampled_at = (when, stamp)
    return (readings.energy_wh, readings.power_w, None if sampled_at is None else sampled_at[1])


def _meter_values(envelope: Envelope) -> list[Push]:
    request = envelope.payload["request"]
    energy_wh, power_w, sampled_at = meter_reading(request["meterValue"])
    data = {
        "chargePointId": envelope.charge_point_id,
        "connectorId": request["connectorId"],
        "transactionId": request.get("transactionId"),
        "energyWh": energy_wh,
        "powerW": power_w,
        "sampledAt": sampled_at,
        "meterValue": request["meterValue"],
    }
    at = envelope.payload.get("receivedAt") or envelope.time
    event = _event("meter.values", at, data)
    return [(topics.ADMIN_METER, event), *_own(envelope, topics.admin_meter_topic, event)]


# --- the OCPP message log -----------------------------------------------------------


def _ocpp_messages(envelope: Envelope) -> list[Push]:
    """
    The frames of one traffic envelope, as the processor logs them: its row
    (``traffic.logged``) and, for an inbound exchange, the answer in it, as
    ``store.messages.row_frames`` reads them back.
    """
    payload = envelope.payload
    row = traffic.logged(envelope.type.split(".")[1], payload)
    if row is None:
        return []
    _, direction, message_type, body, at_field, answer_type, answer_body = row
    frames: list[tuple[str, str, Any, str]] = [(direction, message_type, body, at_field)]
    if answer_type is not None:
        answered = "out" if direction == "in" else "in"
        frames.append((answered, answer_type, answer_body, at_field))
    pushes = []
    for way, message_type, body, at_field in frames:
        at = payload.get(at_field) or envelope.time
        data = {
            "chargePointId": envelope.charge_point_id,
            "direction": way,
            "messageType": message_type,
            "action": payload.get("action"),
            "uniqueId": payload.get("uniqueId"),
            "payload": body,
            "at": at,
        }
        event = _event("ocpp.message", at, data)
        pushes.append((topics.ADMIN_OCPP, event))
        pushes += _own(envelope, topics.admin_ocpp_topic, event)
    return pushes


def _ocpp(envelope: Envelope) -> list[Push]:
    pushes = []
    if envelope.type == "ocpp.in.StatusNotification":
        pushes += _connector_status(envelope)
    elif envelope.type == "ocpp.in.MeterValues":
        pushes += _meter_values(envelope)
    return pushes + _ocpp_messages(envelope)


# --- sessions, charging, wallets, CMS -----------------------------------------------


def _session(envelope: Envelope) -> list[Push]:
    session = envelope.payload["session"]
    live = envelope.payload.get("live")
    data = dict(session)
    at: Any = envelope.time
    if live is not None:
        data["live"] = live
        at = live.get("at") or at
    event = _event(envelope.type, at, data)
    pushes = [(topics.ADMIN_SESSIONS, event)]
    user_id = _user_id(session.get("userId"))
    if user_id is not None:
        pushes.append((topics.user_session_topic(user_id), event))
    if envelope.type == "session.stopped" and session.get("cost") is not None:
        revenue = {
            "sessionId": session["id"],
            "chargePointId": session["chargePointId"],
            "amount": session["cost"],
            "currency": session["currency"],
            "energyWh": session.get("energyWh"),
        }
        pushes.append((topics.ADMIN_REVENUE, _event("revenue.added", at, revenue)))
    return pushes


def _charging(envelope: Envelope) -> list[Push]:
    user_id = _user_id(envelope.payload.get("userId"))
    if user_id is None:
        return []
    event = _event(envelope.type, envelope.time, dict(envelope.payload))
    return [(topics.user_session_topic(user_id), event)]


def _wallet(envelope: Envelope) -> list[Push]:
    payload = envelope.payload
    user_id = _user_id(payload.get("userId"))
    if user_id is None or envelope.type != "wallet.transaction":
        return []
    transaction = payload["transaction"]
    data = {
        "balance": payload["balance"],
        "currency": payload["currency"],
        "transaction": transaction,
    }
    at = transaction.get("at") or envelope.time
    return [(topics.user_wallet_topic(user_id), _event("wallet.transaction", at, data))]


def _cms(envelope: Envelope) -> list[Push]:
    return [(topics.ADMIN_CMS, _event("cms.changed", envelope.time, dict(envelope.payload)))]


_BY_FIRST_WORD: dict[str, Callable[[Envelope], list[Push]]] = {
    "charger": _charger,
    "ocpp": _ocpp,
    "session": _session,
    "charging": _charging,
    "wallet": _wallet,
    "cms": _cms,
}

_log = Logger()


def shown_inbound(*, log_heartbeats: bool) -> frozenset[str]:
    """
    The charger's CALLs the live log shows: what the stored log keeps
    (``[ocpp] log_heartbeats``). A node's notifier queue is bound to these
    only (``topology.notifier_patterns``), so the rest never reaches it.
    """
    return CHARGER_INITIATED if log_heartbeats else CHARGER_INITIATED - {"Heartbeat"}


def push_events(envelope: Envelope) -> list[Push]:
    """
    The pushes one bus envelope makes (docs/events.md, "Push topics"); empty
    for a key that feeds no topic or a payload that lacks what the topic needs.
    """
    mapper = _BY_FIRST_WORD.get(envelope.type.split(".", 1)[0])
    if mapper is None:
        return []
    try:
        return mapper(envelope)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as e:
        _log.warn(
            "No push for {routing_key} message {message_id}: unexpected payload ({error})",
            routing_key=envelope.type,
            message_id=envelope.id,
            error=f"{type(e).__name__}: {e}",
        )
        return []


#: How long the notifier on RabbitMQ keeps consuming after the node's last
#: subscriber left: a page reloaded or a tab switched does not churn consumers.
IDLE_GRACE = 30.0


class WatchedDemand:
    """
    Whether a node's notifier should consume its queue: while anyone on the
    node subscribes, and for ``grace`` seconds after the last one left. Pure
    but for ``clock``; ``changed`` is called with the new answer each time
    it changes.
    """

    def __init__(
        self,
        clock: IReactorTime,
        grace: float,
        listening: bool,
        changed: Callable[[bool], None],
    ) -> None:
        self._clock = clock
        self._grace = grace
        self._changed = changed
        self._idle_timer: IDelayedCall | None = None
        #: The answer now.
        self.wanted = listening

    def listening(self, listening: bool) -> None:
        """The node's subscribers went from none to some (True) or back (False)."""
        if listening:
            self._cancel_timer()
            if not self.wanted:
                self.wanted = True
                self._changed(True)
        elif self.wanted and self._idle_timer is None:
            self._idle_timer = self._clock.callLater(self._grace, self._idle)

    def _idle(self) -> None:
        self._idle_timer = None
        self.wanted = False
        self._changed(False)

    def _cancel_timer(self) -> None:
        timer, self._idle_timer = self._idle_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def stop(self) -> None:
        """No more answers (the notifier stops)."""
        self._cancel_timer()


class Notifier:
    """
    Consumes this node's notifier queue into the push channel.

    With ``idle_grace`` (RabbitMQ), only while someone on the node subscribes
    (:class:`WatchedDemand`, told by ``listening_changed``): every MeterValues
    reaches every node's queue twice, and decoding a delivery that no browser
    reads costs the node more than dropping it. Without a consumer the
    auto-delete queue is gone, so the broker routes nothing to it
    (docs/bus.md). On the embedded bus the notifier always consumes, and the
    bus queues nothing for it while nobody on the node subscribes
    (``MemoryBus.consume``'s ``wanted``); what was queued before the last
    subscriber left is dropped here, no push built.
    """

    log = _log

    def __init__(
        self,
        bus: IBus,
        target: PushTarget,
        *,
        clock: IReactorTime | None = None,
        idle_grace: float | None = None,
    ) -> None:
        if idle_grace is not None and clock is None:
            raise ValueError("idle_grace needs a clock")
        self._bus = bus
        self._target = target
        self._clock = clock
        self._idle_grace = idle_grace
        self._consumer: IConsumer | None = None
        self._queue: str | None = None
        self._demand: WatchedDemand | None = None
        #: A consume or a stop of the consumer is under way (they never overlap).
        self._switching = False
        self._settle_waiters: list[Deferred[None]] = []

    @property
    def consuming(self) -> bool:
        """Whether the notifier holds a consumer of its queue (or is getting one)."""
        return self._consumer is not None

    def start(self, queue: str) -> Deferred[Any]:
        self._queue = queue
        if self._idle_grace is None or self._clock is None:
            return self._consume_now()
        self._demand = WatchedDemand(
            self._clock, self._idle_grace, self._target.listening(), self._demand_changed
        )
        self._reconcile()
        return self.settled()

    @inlineCallbacks
    def _consume_now(self) -> Generator[Deferred[Any], Any, None]:
        assert self._queue is not None
        if isinstance(self._bus, MemoryBus):
            # What is published while nobody on the node subscribes is not
            # even queued for the notifier (MemoryBus.consume's ``wanted``).
            consuming = self._bus.consume(self._queue, self.handle, wanted=self._target.listening)
        else:
            consuming = self._bus.consume(self._queue, self.handle)
        self._consumer = yield consuming

    def listening_changed(self, listening: bool) -> None:
        """The push channel's subscribers went from none to some, or back."""
        if self._demand is not None:
            self._demand.listening(listening)

    def _demand_changed(self, wanted: bool) -> None:
        self.log.info(
            "{action} the notifier queue {queue}",
            action="Consuming" if wanted else "No subscriber left: no longer consuming",
            queue=self._queue,
        )
        self._reconcile()

    def _reconcile(self) -> None:
        """Start or stop the consumer to match the demand, one switch at a time."""
        demand = self._demand
        if self._switching or demand is None or self._queue is None:
            return
        switch: Deferred[Any]
        if demand.wanted and self._consumer is None:
            switch = self._bus.consume(self._queue, self.handle).addCallback(self._consumed)
        elif not demand.wanted and self._consumer is not None:
            # Waits for the broker's cancel-ok, so a consume that follows
            # never races the auto-delete queue's removal.
            consumer, self._consumer = self._consumer, None
            switch = maybeDeferred(consumer.stop)
        else:
            return
        self._switching = True
        switch.addErrback(
            lambda failure: self.log.failure(
                "Switching the notifier's consumer of {queue} failed", failure, queue=self._queue
            )
        )
        switch.addBoth(self._switch_done)

    def _consumed(self, consumer: IConsumer) -> Deferred[None] | None:
        if self._demand is None:  # stopped meanwhile
            return consumer.stop()
        self._consumer = consumer
        return None

    def _switch_done(self, _: object) -> None:
        self._switching = False
        self._reconcile()
        if not self._switching:
            waiters, self._settle_waiters = self._settle_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def settled(self) -> Deferred[None]:
        """Fires once no start or stop of the consumer is under way."""
        if not self._switching:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._settle_waiters.append(waiter)
        return waiter

    def stop(self) -> Deferred[None] | None:
        demand, self._demand = self._demand, None
        if demand is not None:
            demand.stop()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            return consumer.stop()
        return None

    def handle(self, delivery: Delivery) -> None:
        """Never raises: a push that fails is logged and gone, the message acked."""
        if not self._target.listening():
            # Nobody would receive them (on RabbitMQ within the grace after the
            # last subscriber left; on the embedded bus, what was queued before
            # they left): building a MeterValues' pushes cost ~12 us of the
            # reactor per message (samples parsed, events built) for nothing.
            return
        for topic, event in push_events(delivery.envelope):
            try:
                self._target.publish(topic, event)
            except Exception:
                self.log.failure(
                    "Push of {routing_key} message {message_id} to {topic} failed",
                    routing_key=delivery.routing_key,
                    message_id=delivery.envelope.id,
                    topic=topic,
                )
