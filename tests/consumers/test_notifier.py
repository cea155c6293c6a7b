"""Tests for ocppd.consumers.notifier: bus envelopes -> push topics (docs/events.md)."""

from __future__ import annotations

from typing import Any, cast

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.memory import MemoryBus
from ocppd.consumers import notifier as notifier_module
from ocppd.consumers.notifier import (
    Notifier,
    WatchedDemand,
    meter_reading,
    push_events,
    shown_inbound,
)

T0 = "2026-11-29T10:00:00.000Z"


def envelope(key: str, payload: dict[str, Any], cp: str | None = "CP1") -> Envelope:
    return Envelope(id="e1", type=key, time=T0, node="n1", charge_point_id=cp, payload=payload)


SESSION = {
    "id": 11,
    "transactionId": 11,
    "chargePointId": "CP1",
    "connectorId": 1,
    "idTag": "TAG1",
    "userId": 5,
    "status": "active",
    "startedAt": T0,
    "stoppedAt": None,
    "meterStartWh": 1000,
    "meterStopWh": None,
    "energyWh": None,
    "cost": None,
    "currency": None,
    "stopReason": None,
}


class MappingTests(SynchronousTestCase):
    def test_charger_online_offline(self) -> None:
        """charger.connected/disconnected -> ocppd.chargers.status at the payload's time."""
        at = "2026-11-29T10:00:01.000Z"
        for key, type_ in (
            ("charger.connected", "charger.online"),
            ("charger.disconnected", "charger.offline"),
        ):
            self.assertEqual(
                push_events(envelope(key, {"connectionId": "c", "at": at})),
                [
                    (
                        "ocppd.chargers.status",
                        {"type": type_, "at": at, "data": {"chargePointId": "CP1"}},
                    )
                ],
            )

    def test_status_notification(self) -> None:
        """A StatusNotification: connector.status for everyone, two log frames for admins."""
        request = {"connectorId": 2, "status": "Faulted", "errorCode": "GroundFailure", "info": "x"}
        pushes = push_events(
            envelope(
                "ocpp.in.StatusNotification",
                {
                    "uniqueId": "u1",
                    "action": "StatusNotification",
                    "request": request,
                    "response": {},
                    "receivedAt": "2026-11-29T10:00:02.000Z",
                },
            )
        )
        self.assertEqual(
            pushes[0],
            (
                "ocppd.chargers.status",
                {
                    "type": "connector.status",
                    "at": "2026-11-29T10:00:02.000Z",
                    "data": {
                        "chargePointId": "CP1",
                        "connectorId": 2,
                        "status": "Faulted",
                        "errorCode": "GroundFailure",
                    },
                },
            ),
        )
        # Each log line on the network-wide topic and on the charger's own.
        self.assertEqual(
            [topic for topic, _ in pushes[1:]],
            ["ocppd.admin.ocpp", "ocppd.admin.ocpp.CP1"] * 2,
        )
        self.assertIs(pushes[1][1], pushes[2][1])
        self.assertEqual(
            [
                (e["data"]["direction"], e["data"]["messageType"], e["data"]["payload"])
                for topic, e in pushes[1:]
                if topic == "ocppd.admin.ocpp"
            ],
            [("in", "CALL", request), ("out", "CALLRESULT", {})],
        )

    def test_ocpp_log_directions(self) -> None:
        """Commands, replies, errors and rejected frames as the message log stores them."""
        cases = [
            (
                "ocpp.out.Reset",
                {"uniqueId": "c1", "action": "Reset", "request": {"type": "Soft"}, "sentAt": T0},
                [("out", "CALL", {"type": "Soft"})],
            ),
            (
                "ocpp.reply.Reset",
                {
                    "uniqueId": "c1",
                    "action": "Reset",
                    "response": {"status": "Accepted"},
                    "receivedAt": T0,
                },
                [("in", "CALLRESULT", {"status": "Accepted"})],
            ),
            (
                "ocpp.reply.Reset",
                {
                    "uniqueId": "c1",
                    "action": "Reset",
                    "error": {"code": "InternalError"},
                    "receivedAt": T0,
                },
                [("in", "CALLERROR", {"code": "InternalError"})],
            ),
            (
                "ocpp.rejected",
                {
                    "uniqueId": "r",
                    "raw": "[2,",
                    "error": {"code": "FormationViolation"},
                    "receivedAt": T0,
                },
                [
                    ("in", "CALL", {"raw": "[2,"}),
                    ("out", "CALLERROR", {"code": "FormationViolation"}),
                ],
            ),
        ]
        for key, payload, frames in cases:
            pushes = push_events(envelope(key, payload))
            self.assertEqual(
                [
                    (e["data"]["direction"], e["data"]["messageType"], e["data"]["payload"])
                    for topic, e in pushes
                    if topic == "ocppd.admin.ocpp"
                ],
                frames,
                key,
            )
            self.assertEqual({e["type"] for _, e in pushes}, {"ocpp.message"})

    def test_meter_values(self) -> None:
        """MeterValues -> ocppd.admin.meter with the newest total energy (Wh) and power (W)."""
        meter_value = [
            {"timestamp": "2026-11-29T10:00:00Z", "sampledValue": [{"value": "1000"}]},
            {
                "timestamp": "2026-11-29T10:01:00Z",
                "sampledValue": [
                    {"value": "1.25", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
                    {"value": "3700", "unit": "W", "measurand": "Power.Active.Import"},
                    {"value": "16", "unit": "A", "measurand": "Current.Import", "phase": "L1"},
                ],
            },
        ]
        pushes = push_events(
            envelope(
                "ocpp.in.MeterValues",
                {
                    "uniqueId": "m",
                    "action": "MeterValues",
                    "receivedAt": T0,
                    "response": {},
                    "request": {"connectorId": 1, "transactionId": 3, "meterValue": meter_value},
                },
            )
        )
        self.assertEqual(
            [pushes[0][0], pushes[1][0]], ["ocppd.admin.meter", "ocppd.admin.meter.CP1"]
        )
        self.assertIs(pushes[0][1], pushes[1][1])
        self.assertEqual(
            pushes[0][1]["data"],
            {
                "chargePointId": "CP1",
                "connectorId": 1,
                "transactionId": 3,
                "energyWh": 1250,
                "powerW": 3700,
                "sampledAt": "2026-11-29T10:01:00Z",
                "meterValue": meter_value,
            },
        )

    def test_meter_reading_edge_cases(self) -> None:
        """Phase values, garbage and NaN are skipped; out-of-order samples still pick the newest."""
        self.assertEqual(
            meter_reading(
                [
                    {
                        "timestamp": "2026-11-29T10:05:00Z",
                        "sampledValue": [
                            {"value": "7.4", "unit": "kW", "measurand": "Power.Active.Import"},
                            {"value": "NaN"},
                            {"value": "5000", "phase": "L1"},
                        ],
                    },
                    {"timestamp": "2026-11-29T10:01:00Z", "sampledValue": [{"value": "900"}]},
                ]
            ),
            (900, 7400, "2026-11-29T10:05:00Z"),
        )
        self.assertEqual(meter_reading([]), (None, None, None))

    def test_meter_reading_bounded(self) -> None:
        """
        Values beyond any meter are no reading, read without building them
        (issue 13 item 1: ``1e50000`` stands in for ``1e999999999``, which
        froze the reactor in ``int(Decimal(...))``); kW and kWh are rounded
        half up, as the processor rounds them.
        """
        sampled = [
            {"value": "1e50000"},
            {"value": "1e50000", "unit": "W", "measurand": "Power.Active.Import"},
        ]
        at = "2026-11-29T10:05:00Z"
        self.assertEqual(
            meter_reading([{"timestamp": at, "sampledValue": sampled}]), (None, None, at)
        )
        sampled = [
            {"value": "1.0005", "unit": "kWh"},
            {"value": "7.4005", "unit": "kW", "measurand": "Power.Active.Import"},
        ]
        self.assertEqual(
            meter_reading([{"timestamp": at, "sampledValue": sampled}]), (1001, 7401, at)
        )

    def test_sessions(self) -> None:
        """session.* -> admin and owner topics; updated carries live; a priced stop is revenue."""
        live = {
            "energyWh": 500,
            "powerW": 7200,
            "cost": 120,
            "currency": "EUR",
            "at": "2026-11-29T10:05:00.000Z",
        }
        pushes = push_events(envelope("session.updated", {"session": SESSION, "live": live}))
        event = {"type": "session.updated", "at": live["at"], "data": {**SESSION, "live": live}}
        self.assertEqual(pushes, [("ocppd.admin.sessions", event), ("ocppd.user.5.session", event)])
        stopped = {
            **SESSION,
            "status": "completed",
            "energyWh": 1500,
            "cost": 360,
            "currency": "EUR",
        }
        pushes = push_events(envelope("session.stopped", {"session": stopped}))
        self.assertEqual(
            [topic for topic, _ in pushes],
            ["ocppd.admin.sessions", "ocppd.user.5.session", "ocppd.admin.revenue"],
        )
        self.assertEqual(
            pushes[2][1],
            {
                "type": "revenue.added",
                "at": T0,
                "data": {
                    "sessionId": 11,
                    "chargePointId": "CP1",
                    "amount": 360,
                    "currency": "EUR",
                    "energyWh": 1500,
                },
            },
        )
        anonymous = push_events(
            envelope("session.started", {"session": {**SESSION, "userId": None}})
        )
        self.assertEqual([topic for topic, _ in anonymous], ["ocppd.admin.sessions"])

    def test_charging_wallet_cms(self) -> None:
        """charging.* and wallet.transaction go to their user; cms.* to the admins."""
        charging = {
            "userId": 5,
            "chargePointId": "CP1",
            "connectorId": 1,
            "idTag": "T",
            "commandId": "c",
        }
        self.assertEqual(
            push_events(envelope("charging.start.requested", charging)),
            [
                (
                    "ocppd.user.5.session",
                    {"type": "charging.start.requested", "at": T0, "data": charging},
                )
            ],
        )
        transaction = {
            "id": 3,
            "kind": "top_up",
            "amount": 2000,
            "sessionId": None,
            "reference": "r",
            "at": "2026-11-29T10:00:09.000Z",
        }
        wallet = {"userId": 5, "balance": 2500, "currency": "EUR", "transaction": transaction}
        self.assertEqual(
            push_events(envelope("wallet.transaction", wallet, cp=None)),
            [
                (
                    "ocppd.user.5.wallet",
                    {
                        "type": "wallet.transaction",
                        "at": transaction["at"],
                        "data": {"balance": 2500, "currency": "EUR", "transaction": transaction},
                    },
                )
            ],
        )
        cms = {
            "kind": "station",
            "verb": "created",
            "id": 1,
            "by": {"userId": 1, "email": "a"},
            "data": {"name": "Depot"},
        }
        self.assertEqual(
            push_events(envelope("cms.station.created", cms, cp=None)),
            [("ocppd.admin.cms", {"type": "cms.changed", "at": T0, "data": cms})],
        )

    def test_nothing_for_the_rest(self) -> None:
        """Keys that feed no topic, and payloads that lack what a topic needs, push nothing."""
        for key, payload in [
            ("command.reset.requested", {}),
            ("audit.cms.station.created", {}),
            ("session.updated", {"live": {}}),
            ("session.started", {"session": "not an object"}),
            ("wallet.transaction", {"userId": True, "balance": 1}),
            ("wallet.transaction", {"userId": 5}),
            ("charging.started", {"userId": "5"}),
            ("ocpp.in.MeterValues", {"request": {"connectorId": 1, "meterValue": [{}]}}),
            ("ocpp.in.StatusNotification", {"request": {}}),
            # A time that overflows on conversion to UTC (an OverflowError).
            (
                "ocpp.in.MeterValues",
                {
                    "request": {
                        "connectorId": 1,
                        "meterValue": [
                            {
                                "timestamp": "0001-01-01T00:00:00+01:00",
                                "sampledValue": [{"value": "1"}],
                            }
                        ],
                    }
                },
            ),
        ]:
            self.assertEqual(push_events(envelope(key, payload)), [], key)
        self.flushLoggedErrors()


class FakeTarget:
    def __init__(self, fail_on: str | None = None, *, listening: bool = True) -> None:
        self.pushed: list[tuple[str, dict[str, Any]]] = []
        self.fail_on = fail_on
        self.anyone = listening

    def listening(self) -> bool:
        return self.anyone

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        if topic == self.fail_on:
            raise ValueError("not JSON")
        self.pushed.append((topic, event))
        return 1


class NotifierTests(SynchronousTestCase):
    # The embedded bus on a Clock fires every Deferred synchronously, so
    # successResultOf/failureResultOf check each step where it happens.

    def count_builds(self) -> list[str]:
        """The ids of the envelopes the notifier builds pushes for, from now on."""
        built: list[str] = []
        real = notifier_module.push_events

        def counted(envelope: Envelope) -> list[Any]:
            built.append(envelope.id)
            return real(envelope)

        self.patch(notifier_module, "push_events", counted)
        return built

    def make_bus(self, clock: Clock, **kwargs: Any) -> MemoryBus:
        bus = MemoryBus(topology.default_topology("t", node_id="n1"), reactor=clock, **kwargs)
        bus.startService()
        return bus

    def test_consumes_its_node_queue_and_always_acks(self) -> None:
        """Events on this node's queue are pushed; a failing push is logged, never retried."""
        clock = Clock()
        bus = self.make_bus(clock)
        target = FakeTarget(fail_on="ocppd.admin.sessions")
        notifier = Notifier(bus, target)
        queue = topology.notifier_queue("n1")
        self.successResultOf(notifier.start(queue))
        connected = envelope("charger.connected", {"at": T0})
        self.successResultOf(bus.publish("charger.connected", connected))
        started = envelope("session.started", {"session": SESSION})
        self.successResultOf(bus.publish("session.started", started))
        for _ in range(3):
            clock.advance(0)
        self.assertEqual(
            [topic for topic, _ in target.pushed], ["ocppd.chargers.status", "ocppd.user.5.session"]
        )
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        self.assertEqual(bus.queue_length(queue), 0)
        self.assertEqual(self.successResultOf(bus.dead_letters(queue)), [])
        clock.advance(60)  # no retry comes back either
        self.assertEqual(len(target.pushed), 2)
        self.successResultOf(notifier.stop())

    def test_nothing_built_while_nobody_listens(self) -> None:
        """
        With no subscription on the node, a message is acknowledged and no
        push is built (``push_events`` not even called); once someone
        subscribes, the next one is pushed.
        """
        clock = Clock()
        bus = self.make_bus(clock)
        target = FakeTarget(listening=False)
        built = self.count_builds()
        queue = topology.notifier_queue("n1")
        self.successResultOf(Notifier(bus, target).start(queue))
        first = envelope("charger.connected", {"at": T0})
        self.successResultOf(bus.publish("charger.connected", first))
        clock.advance(0)
        self.assertEqual((built, target.pushed, bus.queue_length(queue)), ([], [], 0))
        target.anyone = True
        second = envelope("charger.connected", {"at": T0})
        self.successResultOf(bus.publish("charger.connected", second))
        clock.advance(0)
        self.assertEqual(built, [second.id])
        self.assertEqual([topic for topic, _ in target.pushed], ["ocppd.chargers.status"])

    def test_nothing_queued_while_nobody_listens(self) -> None:
        """
        On the embedded bus what is published while nobody on the node
        subscribes is not even queued for the notifier; what was queued
        before the last subscriber left is dropped unbuilt; a subscriber gets
        everything published from then on.
        """
        clock = Clock()
        bus = self.make_bus(clock)
        target = FakeTarget(listening=False)
        built = self.count_builds()
        queue = topology.notifier_queue("n1")
        self.successResultOf(Notifier(bus, target).start(queue))
        self.successResultOf(
            bus.publish("session.started", envelope("session.started", {"session": SESSION}))
        )
        self.assertEqual(bus.queue_length(queue), 0)
        target.anyone = True
        queued = envelope("charger.connected", {"at": T0})
        self.successResultOf(bus.publish("charger.connected", queued))
        self.assertEqual(bus.queue_length(queue), 1)
        target.anyone = False
        clock.advance(0)
        self.assertEqual((built, target.pushed, bus.queue_length(queue)), ([], [], 0))
        target.anyone = True
        pushed = envelope("charger.connected", {"at": T0})
        self.successResultOf(bus.publish("charger.connected", pushed))
        clock.advance(0)
        self.assertEqual(built, [pushed.id])
        self.assertEqual([topic for topic, _ in target.pushed], ["ocppd.chargers.status"])

    def test_heartbeats_pushed_only_when_logged(self) -> None:
        """The live log shows what the stored log keeps: Heartbeats only with log_heartbeats."""
        heartbeat = envelope(
            "ocpp.in.Heartbeat",
            {"uniqueId": "h", "action": "Heartbeat", "request": {}, "response": {}},
        )
        status = envelope(
            "ocpp.in.DataTransfer",
            {
                "uniqueId": "d",
                "action": "DataTransfer",
                "request": {"vendorId": "v"},
                "response": {},
            },
        )
        for log_heartbeats, expected in ((False, ["d", "d"]), (True, ["h", "h", "d", "d"])):
            clock = Clock()
            # The notifier queue bound as the daemon binds it (ocppd.service).
            shown = shown_inbound(log_heartbeats=log_heartbeats)
            routes = topology.default_topology("t", node_id="n1", notifier_inbound=shown)
            bus = MemoryBus(routes, reactor=clock)
            bus.startService()
            target = FakeTarget()
            notifier = Notifier(bus, target)
            self.successResultOf(notifier.start(topology.notifier_queue("n1")))
            for message in (heartbeat, status):
                self.successResultOf(bus.publish(message.type, message))
            for _ in range(3):
                clock.advance(0)
            self.assertEqual(
                [
                    event["data"]["uniqueId"]
                    for topic, event in target.pushed
                    if topic == "ocppd.admin.ocpp"
                ],
                expected,
            )
            self.assertEqual(bus.queue_length(topology.notifier_queue("n1")), 0)

    def test_full_notifier_queue_never_refuses_a_publish(self) -> None:
        """Nobody taking pushes never blocks a publish: the oldest push gives way."""
        clock = Clock()
        bus = self.make_bus(clock, max_queue_length=3)
        queue = topology.notifier_queue("n1")
        for n in range(5):
            # cms.* reaches only the notifier queue.
            self.successResultOf(
                bus.publish("cms.tag.created", envelope("cms.tag.created", {"id": n}))
            )
        self.assertEqual(bus.queue_length(queue), 3)
        # A durable queue in the same situation refuses (contrast).
        for _ in range(3):
            self.successResultOf(bus.publish("command.reset.requested", envelope("command.x", {})))
        self.failureResultOf(bus.publish("command.reset.requested", envelope("command.x", {})))
        target = FakeTarget()
        self.successResultOf(Notifier(bus, target).start(queue))
        for _ in range(5):
            clock.advance(0)
        self.assertEqual([event["data"]["id"] for _, event in target.pushed], [2, 3, 4])


class WatchedDemandTests(SynchronousTestCase):
    def make(self, listening: bool) -> tuple[Clock, WatchedDemand, list[bool]]:
        clock = Clock()
        changes: list[bool] = []
        return clock, WatchedDemand(clock, 30, listening, changes.append), changes

    def test_wanted_at_once_when_someone_subscribes(self) -> None:
        _clock, demand, changes = self.make(listening=False)
        self.assertFalse(demand.wanted)
        demand.listening(True)
        self.assertEqual((demand.wanted, changes), (True, [True]))
        demand.listening(True)  # no news: no change told
        self.assertEqual(changes, [True])

    def test_unwanted_only_after_the_grace(self) -> None:
        clock, demand, changes = self.make(listening=True)
        demand.listening(False)
        clock.advance(29.9)
        self.assertEqual((demand.wanted, changes), (True, []))
        clock.advance(0.1)
        self.assertEqual((demand.wanted, changes), (False, [False]))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_a_subscriber_within_the_grace_keeps_it(self) -> None:
        """A page reloaded: the last subscriber leaves and one comes back within 30 s."""
        clock, demand, changes = self.make(listening=True)
        demand.listening(False)
        clock.advance(20)
        demand.listening(True)
        clock.advance(60)
        self.assertEqual((demand.wanted, changes), (True, []))
        demand.listening(False)  # the grace starts anew
        clock.advance(29)
        self.assertTrue(demand.wanted)
        clock.advance(1)
        self.assertEqual((demand.wanted, changes), (False, [False]))

    def test_stop_cancels_the_timer(self) -> None:
        clock, demand, changes = self.make(listening=True)
        demand.listening(False)
        demand.stop()
        clock.advance(60)
        self.assertEqual((demand.wanted, changes), (True, []))


class _SlowConsumer:
    def __init__(self, bus: _SlowBus, queue: str) -> None:
        self.bus = bus
        self.queue = queue

    def stop(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.bus.pending.append(("stop", d))
        return d


class _SlowBus:
    """consume and stop answer only when the test says (the broker's consume-ok, cancel-ok)."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, Deferred[Any]]] = []
        self.calls: list[str] = []

    def consume(self, queue: str, handler: Any, concurrency: int = 1) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.pending.append(("consume", d))
        return d

    def answer(self) -> str:
        what, d = self.pending.pop(0)
        self.calls.append(what)
        d.callback(_SlowConsumer(self, "q") if what == "consume" else None)
        return what


class IdleNotifierTests(SynchronousTestCase):
    """The notifier on RabbitMQ: a consumer only while someone on the node subscribes."""

    def make(self, listening: bool) -> tuple[Clock, _SlowBus, Notifier, FakeTarget]:
        clock = Clock()
        bus = _SlowBus()
        target = FakeTarget(listening=listening)
        notifier = Notifier(cast(Any, bus), target, clock=clock, idle_grace=30)
        return clock, bus, notifier, target

    def test_no_consumer_while_nobody_subscribes(self) -> None:
        _clock, bus, notifier, _ = self.make(listening=False)
        self.successResultOf(notifier.start("q"))
        self.assertEqual((bus.pending, notifier.consuming), ([], False))

    def test_consumes_at_start_when_someone_subscribes(self) -> None:
        _clock, bus, notifier, _ = self.make(listening=True)
        started = notifier.start("q")
        self.assertNoResult(started)
        self.assertEqual(bus.answer(), "consume")
        self.successResultOf(started)
        self.assertTrue(notifier.consuming)

    def test_follows_the_subscribers_with_a_grace(self) -> None:
        clock, bus, notifier, _ = self.make(listening=False)
        notifier.start("q")
        notifier.listening_changed(True)
        self.assertEqual(bus.answer(), "consume")
        self.assertTrue(notifier.consuming)
        notifier.listening_changed(False)
        clock.advance(29)
        self.assertEqual(bus.pending, [])
        clock.advance(1)
        self.assertEqual(bus.answer(), "stop")
        self.assertFalse(notifier.consuming)
        self.assertEqual(bus.pending, [])

    def test_one_switch_at_a_time(self) -> None:
        """
        A subscriber arriving while the consumer is being cancelled gets a new
        one only after the cancel-ok (an auto-delete queue is deleted then).
        """
        clock, bus, notifier, _ = self.make(listening=True)
        notifier.start("q")
        bus.answer()
        notifier.listening_changed(False)
        clock.advance(30)
        notifier.listening_changed(True)
        self.assertEqual([what for what, _ in bus.pending], ["stop"])
        bus.answer()
        self.assertEqual([what for what, _ in bus.pending], ["consume"])
        bus.answer()
        self.assertTrue(notifier.consuming)
        self.assertEqual(bus.calls, ["consume", "stop", "consume"])

    def test_stop_while_consuming_starts(self) -> None:
        _clock, bus, notifier, _ = self.make(listening=True)
        notifier.start("q")
        notifier.stop()
        bus.answer()  # the consume-ok arrives after the stop: that consumer is stopped too
        self.assertEqual([what for what, _ in bus.pending], ["stop"])
        self.assertFalse(notifier.consuming)

    def test_embedded_bus_always_consumes(self) -> None:
        """Without idle_grace (the embedded bus), the notifier consumes from the start."""
        bus = _SlowBus()
        notifier = Notifier(cast(Any, bus), FakeTarget(listening=False))
        notifier.start("q")
        self.assertEqual(bus.answer(), "consume")
        self.assertTrue(notifier.consuming)
