"""
A recorded stream of bus traffic, replayed through the processor, and the
canonical record of everything it came to (``test_recorded_stream``).

The stream (``recorded/stream.jsonl``) is what a node's processor queue
carries in a day of three chargers, interleaved with what the request path
writes meanwhile (users, tariffs, allocated sessions, app requests); its
golden record (``recorded/golden.json``) is every stored row, every event and
every push it produced, from the code as it was before the processor was
optimised (issue 16: "no behaviour changes").

    python -m tests.consumers.recorded_stream stream   # rewrite the stream
    python -m tests.consumers.recorded_stream golden   # rewrite the golden record

The replay and the canonical record are in ``tests.consumers.stream_replay``.

Rewrite the golden record only for a change of behaviour that was meant, and
say so in the commit: the test exists to catch the others.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from ocppd.bus import topology
from ocppd.store import migrate
from ocppd.store.database import Database
from ocppd.timeutil import format_iso, parse_iso
from tests.consumers.stream_replay import NODE, T0, replay

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recorded")
STREAM = os.path.join(HERE, "stream.jsonl")
GOLDEN = os.path.join(HERE, "golden.json")

REGISTERED = datetime(2026, 11, 1, tzinfo=UTC)


# --- building the stream -------------------------------------------------------------


def _iso(minutes: float) -> str:
    return format_iso(T0 + timedelta(minutes=minutes))


class StreamBuilder:
    """Writes steps: ``{"store": op, "args": {...}}`` or ``{"batch": [...], "at": iso}``."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self._next_id = 0

    def store(self, op: str, **args: Any) -> None:
        self.steps.append({"store": op, "args": args})

    def envelope(
        self, type_: str, payload: dict[str, Any], cp: str | None = "CP1", *, at: float
    ) -> dict[str, Any]:
        self._next_id += 1
        return {
            "id": f"e{self._next_id:04d}",
            "type": type_,
            "time": _iso(at),
            "node": NODE,
            "charge_point_id": cp,
            "payload": payload,
        }

    def inbound(
        self,
        action: str,
        request: dict[str, Any],
        response: dict[str, Any] | None = None,
        *,
        cp: str | None = "CP1",
        at: float,
    ) -> dict[str, Any]:
        payload = {
            "uniqueId": f"u{self._next_id + 1}",
            "action": action,
            "request": request,
            "response": {} if response is None else response,
            "receivedAt": _iso(at),
        }
        return self.envelope(topology.ocpp_in(action), payload, cp, at=at)

    def meter(
        self,
        tx: int | None,
        samples: list[tuple[float, list[dict[str, Any]]]],
        cp: str = "CP1",
        connector: int = 1,
        *,
        at: float,
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "connectorId": connector,
            "meterValue": [
                {"timestamp": _iso(minute), "sampledValue": sampled} for minute, sampled in samples
            ],
        }
        if tx is not None:
            request["transactionId"] = tx
        return self.inbound("MeterValues", request, cp=cp, at=at)

    def batch(self, *envelopes: dict[str, Any]) -> None:
        at = max(parse_iso(e["time"]) for e in envelopes) + timedelta(seconds=1)
        self.steps.append({"batch": list(envelopes), "at": format_iso(at)})


def _energy(value: str, unit: str = "Wh", **more: Any) -> dict[str, Any]:
    return {"value": value, "unit": unit, "measurand": "Energy.Active.Import.Register", **more}


def build_stream() -> list[dict[str, Any]]:
    s = StreamBuilder()
    day = format_iso(REGISTERED)
    # -- the request path's setup: people, prices, chargers, tags, wallets.
    s.store("add_user", email="alice@example.com", now=day)  # user 1
    s.store("add_user", email="bob@example.com", now=day)  # user 2
    s.store("add_user", email="carol@example.com", now=day)  # user 3
    s.store("add_user", email="dave@example.com", now=day)  # user 4
    s.store(
        "add_tariff",
        name="T",
        currency="EUR",
        price_per_kwh=30,
        price_per_minute=2,
        session_fee=50,
        now=day,
    )  # tariff 1
    s.store("add_tariff", name="USD", currency="USD", price_per_kwh=25, now=day)  # tariff 2
    s.store("add_charge_point", charge_point_id="CP1", tariff_id=1, now=day)
    s.store("add_charge_point", charge_point_id="CP2", tariff_id=None, now=day)
    s.store("add_charge_point", charge_point_id="CP3", tariff_id=2, now=day)
    s.store("add_id_tag", id_tag="TAG1", user_id=1, now=day)
    s.store("add_id_tag", id_tag="TAG2", user_id=2, now=day)
    s.store("add_id_tag", id_tag="TAG3", user_id=None, now=day)
    s.store("add_id_tag", id_tag="TAG4", user_id=3, now=day)
    s.store("add_id_tag", id_tag="TAG5", user_id=4, now=day)
    s.store("add_id_tag", id_tag="TAG6", user_id=1, now=day)
    s.store("top_up", user_id=1, amount=10_000, key="pay-1", now=day)
    s.store("top_up", user_id=2, amount=1_000, key="pay-2", now=day)
    s.store("top_up", user_id=3, amount=150, key="pay-3", now=day)
    s.store("top_up", user_id=4, amount=5_000, key="pay-4", now=day)

    # -- CP1 connects (fenced), boots, reports status, heartbeats.
    s.batch(
        s.envelope(
            topology.CHARGER_CONNECTED,
            {"connectionId": "c1", "node": NODE, "remote": "10.0.0.1:1", "at": _iso(0), "fence": 5},
            at=0,
        )
    )
    boot = s.inbound(
        "BootNotification",
        {
            "chargePointVendor": "Acme",
            "chargePointModel": "Volt 22",
            "chargePointSerialNumber": "S-1",
            "firmwareVersion": "1.0.0",
            "meterType": "MID",
        },
        {"status": "Accepted", "currentTime": _iso(0.01), "interval": 300},
        at=0.01,
    )
    s.batch(
        boot,
        s.inbound(
            "StatusNotification",
            {"connectorId": 0, "errorCode": "NoError", "status": "Available"},
            at=0.02,
        ),
        s.inbound(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": "Available",
                "timestamp": _iso(0.02),
            },
            at=0.02,
        ),
        s.inbound("Heartbeat", {}, {"currentTime": _iso(0.1)}, at=0.1),
        boot,  # the same delivery twice in one batch
    )
    s.batch(boot)  # redelivered later: applied once
    s.batch(s.inbound("Heartbeat", {}, {"currentTime": _iso(0.3)}, at=0.3))
    s.batch(s.inbound("Heartbeat", {}, {"currentTime": _iso(1.0)}, at=1.0))

    # -- CP2 and CP3: no fence (older nodes), a stale connect, a mismatched disconnect.
    s.batch(
        s.envelope(
            topology.CHARGER_CONNECTED,
            {"connectionId": "c2", "node": NODE, "remote": "10.0.0.2:1", "at": _iso(1)},
            "CP2",
            at=1,
        ),
        s.envelope(
            topology.CHARGER_CONNECTED,
            {"connectionId": "c3", "node": NODE, "remote": "10.0.0.3:1", "at": _iso(1), "fence": 9},
            "CP3",
            at=1,
        ),
        s.inbound(
            "BootNotification",
            {
                "chargePointVendor": "Other",
                "chargePointModel": "M2",
                "iccid": "8931",
                "imsi": "2040",
            },
            {"status": "Accepted", "currentTime": _iso(1.01), "interval": 300},
            cp="CP2",
            at=1.01,
        ),
    )

    # -- Session 1 (tx 1): TAG1, alice, a local start on CP1/1.
    s.store(
        "allocate_transaction",
        charge_point_id="CP1",
        connector_id=1,
        id_tag="TAG1",
        id_tag_status="Accepted",
        meter_start_wh=1000,
        started_at=_iso(5),
        now=_iso(5),
        confirmed=False,
    )
    s.batch(
        s.inbound("Authorize", {"idTag": "TAG1"}, {"idTagInfo": {"status": "Accepted"}}, at=4.9),
        s.inbound(
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG1", "meterStart": 1000, "timestamp": _iso(5)},
            {"transactionId": 1, "idTagInfo": {"status": "Accepted"}},
            at=5,
        ),
        s.inbound(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": "Charging", "timestamp": _iso(5)},
            at=5.01,
        ),
    )
    periodic = s.meter(
        1,
        [
            (
                10,
                [
                    _energy("2000", context="Sample.Periodic", location="Outlet"),
                    {"value": "7.4", "unit": "kW", "measurand": "Power.Active.Import"},
                    {"value": "32.1", "unit": "A", "measurand": "Current.Import", "phase": "L1"},
                    {"value": "31.9", "unit": "A", "measurand": "Current.Import", "phase": "L2"},
                    {"value": "230.4", "unit": "V", "measurand": "Voltage", "phase": "L1-N"},
                    {"value": "41", "unit": "Percent", "measurand": "SoC", "location": "EV"},
                    {"value": "35.5", "unit": "Celsius", "measurand": "Temperature"},
                ],
            )
        ],
        at=10,
    )
    s.batch(periodic)
    # Redelivered: nothing stored twice; unclaimed, it announces its live
    # session.updated again, the same as the first time.
    s.batch(periodic)
    s.batch(
        # A resend (new envelope, same content): no duplicate sample.
        s.meter(
            1, [(10, periodic["payload"]["request"]["meterValue"][0]["sampledValue"])], at=10.5
        ),
        s.meter(
            1,
            [
                (
                    15,
                    [
                        _energy("3.0005", unit="kWh"),
                        {"value": "7400", "unit": "W", "measurand": "Power.Active.Import"},
                        {"value": "48", "unit": "Percent", "measurand": "SoC"},
                    ],
                ),
                (14, [_energy("2.9", unit="kWh")]),
            ],
            at=15,
        ),
        # Odd values: not numbers, or numbers beyond what is read; stored as sent.
        s.meter(
            1,
            [
                (
                    16,
                    [
                        {
                            "value": "abc",
                            "unit": "Wh",
                            "measurand": "Energy.Active.Import.Interval",
                        },
                        {
                            "value": "NaN",
                            "unit": "W",
                            "measurand": "Power.Active.Import",
                            "phase": "L1",
                        },
                        {
                            "value": "9" * 60,
                            "unit": "Wh",
                            "measurand": "Energy.Reactive.Import.Register",
                        },
                        {
                            "value": " 1e3 ",
                            "unit": "varh",
                            "measurand": "Energy.Reactive.Export.Register",
                        },
                        {"value": "-5", "measurand": "Current.Offered"},
                        {"value": "12,5", "unit": "kW", "measurand": "Power.Offered"},
                        {"value": "0x10", "format": "Raw"},
                        {"value": "AA55", "format": "SignedData", "context": "Transaction.Begin"},
                    ],
                )
            ],
            at=16,
        ),
    )
    # Out of order: an older reading after a newer one moves nothing back.
    s.batch(s.meter(1, [(12, [_energy("2500")])], at=17))
    s.batch(s.inbound("Heartbeat", {}, {"currentTime": _iso(20)}, at=20))
    s.batch(
        s.meter(
            1,
            [
                (
                    25,
                    [
                        _energy("5500"),
                        {"value": "11", "unit": "kW", "measurand": "Power.Active.Import"},
                    ],
                )
            ],
            at=25,
        )
    )

    # -- Session 2 (tx 2): bob from the app on CP1/2; a reading reaches the
    # processor before the start does (another node), the start's funds guard stops it.
    s.store(
        "create_request",
        user_id=2,
        charge_point_id="CP1",
        connector_id=2,
        id_tag="TAG2",
        command_id="cmd-bob",
        hold=300,
        now=_iso(26),
    )
    s.store(
        "allocate_transaction",
        charge_point_id="CP1",
        connector_id=2,
        id_tag="TAG2",
        id_tag_status="Accepted",
        meter_start_wh=0,
        started_at=_iso(27),
        now=_iso(27),
        confirmed=False,
    )
    s.batch(
        s.envelope(
            topology.ocpp_out("RemoteStartTransaction"),
            {
                "uniqueId": "cmd-bob",
                "action": "RemoteStartTransaction",
                "request": {"connectorId": 2, "idTag": "TAG2"},
                "sentAt": _iso(26.5),
            },
            at=26.5,
        ),
        s.envelope(
            topology.ocpp_reply("RemoteStartTransaction"),
            {
                "uniqueId": "cmd-bob",
                "action": "RemoteStartTransaction",
                "response": {"status": "Accepted"},
                "receivedAt": _iso(26.6),
            },
            at=26.6,
        ),
    )
    bob_start = s.inbound(
        "StartTransaction",
        {"connectorId": 2, "idTag": "TAG2", "meterStart": 0, "timestamp": _iso(27)},
        {"transactionId": 2, "idTagInfo": {"status": "Accepted"}},
        at=27,
    )
    s.batch(s.meter(2, [(40, [_energy("9000")])], connector=2, at=40))
    s.batch(bob_start)
    s.batch(s.meter(2, [(45, [_energy("9500")])], connector=2, at=45))  # asked once only

    # -- Session 3 (tx 3): carol from the app on CP1/3; the guard stops it on a reading.
    s.store(
        "create_request",
        user_id=3,
        charge_point_id="CP1",
        connector_id=3,
        id_tag="TAG4",
        command_id="cmd-carol",
        hold=150,
        now=_iso(30),
    )
    s.store(
        "allocate_transaction",
        charge_point_id="CP1",
        connector_id=3,
        id_tag="TAG4",
        id_tag_status="Accepted",
        meter_start_wh=100,
        started_at=_iso(31),
        now=_iso(31),
        confirmed=False,
    )
    s.batch(
        s.inbound(
            "StartTransaction",
            {"connectorId": 3, "idTag": "TAG4", "meterStart": 100, "timestamp": _iso(31)},
            {"transactionId": 3, "idTagInfo": {"status": "Accepted"}},
            at=31,
        )
    )
    s.batch(s.meter(3, [(35, [_energy("1100")])], connector=3, at=35))  # within the hold
    s.batch(s.meter(3, [(50, [_energy("3600")])], connector=3, at=50))  # beyond: stop asked
    s.batch(s.meter(3, [(52, [_energy("3700")])], connector=3, at=52))  # asked once only

    # -- Session 4 (tx 4): TAG3 (nobody's) on CP2, which has no tariff: unpriced.
    s.store(
        "allocate_transaction",
        charge_point_id="CP2",
        connector_id=1,
        id_tag="TAG3",
        id_tag_status="Accepted",
        meter_start_wh=500,
        started_at=_iso(33),
        now=_iso(33),
    )
    s.batch(
        s.inbound(
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG3", "meterStart": 500, "timestamp": _iso(33)},
            {"transactionId": 4, "idTagInfo": {"status": "Accepted"}},
            cp="CP2",
            at=33,
        ),
        s.meter(4, [(34, [_energy("800")])], cp="CP2", at=34),
        # Another charger's transaction id names nothing here.
        s.meter(1, [(34, [_energy("123456")])], cp="CP2", at=34.1),
        # A reading without a transaction, and one naming an unknown one.
        s.meter(None, [(34, [_energy("77")])], cp="CP2", connector=0, at=34.2),
        s.meter(999, [(34, [_energy("88")])], cp="CP2", at=34.3),
    )

    # -- Session 5 (tx 5): dave on CP3 (USD tariff: priced, not debited).
    s.store(
        "allocate_transaction",
        charge_point_id="CP3",
        connector_id=1,
        id_tag="TAG5",
        id_tag_status="Accepted",
        meter_start_wh=0,
        started_at=_iso(36),
        now=_iso(36),
    )
    s.batch(
        s.inbound(
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG5", "meterStart": 0, "timestamp": _iso(36)},
            {"transactionId": 5, "idTagInfo": {"status": "Accepted"}},
            cp="CP3",
            at=36,
        ),
        s.meter(5, [(36.5, [_energy("250")])], cp="CP3", at=36.5),
    )
    # -- Session 6 (tx 6): alice's other tag on CP1/4, an implausible meter: held for review.
    s.store(
        "allocate_transaction",
        charge_point_id="CP1",
        connector_id=4,
        id_tag="TAG6",
        id_tag_status="Accepted",
        meter_start_wh=0,
        started_at=_iso(37),
        now=_iso(37),
    )
    # -- Session 7 (tx 7): a start answered Invalid on CP1/5 that delivered energy: review too.
    s.store(
        "allocate_transaction",
        charge_point_id="CP1",
        connector_id=5,
        id_tag="NOBODY",
        id_tag_status="Invalid",
        meter_start_wh=0,
        started_at=_iso(38),
        now=_iso(38),
    )
    s.batch(
        s.inbound(
            "StartTransaction",
            {"connectorId": 4, "idTag": "TAG6", "meterStart": 0, "timestamp": _iso(37)},
            {"transactionId": 6, "idTagInfo": {"status": "Accepted"}},
            at=37,
        ),
        s.inbound(
            "StartTransaction",
            {"connectorId": 5, "idTag": "NOBODY", "meterStart": 0, "timestamp": _iso(38)},
            {"transactionId": 7, "idTagInfo": {"status": "Invalid"}},
            at=38,
        ),
        # A start whose answer carries no usable id.
        s.inbound(
            "StartTransaction",
            {"connectorId": 3, "idTag": "TAG3", "meterStart": 0, "timestamp": _iso(38)},
            {"transactionId": 0, "idTagInfo": {"status": "Accepted"}},
            cp="CP2",
            at=38.1,
        ),
    )

    # -- Other traffic: data transfer, firmware and diagnostics, commands, rejects.
    s.batch(
        s.inbound(
            "DataTransfer",
            {"vendorId": "com.acme", "messageId": "stats", "data": '{"x": 1}'},
            {"status": "Accepted", "data": "ok"},
            at=41,
        ),
        s.inbound("FirmwareStatusNotification", {"status": "Downloading"}, at=41.1),
        s.inbound("DiagnosticsStatusNotification", {"status": "Uploaded"}, cp="CP2", at=41.2),
        s.envelope(
            topology.ocpp_out("GetConfiguration"),
            {
                "uniqueId": "cmd-2",
                "action": "GetConfiguration",
                "request": {},
                "sentAt": _iso(41.3),
            },
            at=41.3,
        ),
        s.envelope(
            topology.ocpp_reply("GetConfiguration"),
            {
                "uniqueId": "cmd-2",
                "action": "GetConfiguration",
                "error": {"code": "NotImplemented", "description": "no", "details": {}},
                "receivedAt": _iso(41.4),
            },
            at=41.4,
        ),
        s.envelope(
            topology.OCPP_REJECTED,
            {
                "uniqueId": "bad-1",
                "action": "Heartbeat",
                "raw": '[2,"bad-1","Heartbeat",{"x":1}]',
                "truncated": False,
                "error": {"code": "FormationViolation", "description": "bad", "details": {}},
                "receivedAt": _iso(41.5),
            },
            at=41.5,
        ),
        s.envelope(topology.ocpp_in("Heartbeat"), {"receivedAt": _iso(41.6)}, None, at=41.6),
        s.envelope("ocpp.sideways.Heartbeat", {"receivedAt": _iso(41.7)}, at=41.7),
        # A reading without its connector: this one fails alone in its batch.
        s.inbound("MeterValues", {"meterValue": [], "transactionId": 1}, at=41.8),
        s.inbound(
            "StatusNotification",
            {
                "connectorId": 2,
                "errorCode": "NoError",
                "status": "Preparing",
                "timestamp": _iso(42),
            },
            at=42,
        ),
    )
    # Alone, a failing message fails its batch.
    s.batch(s.inbound("StatusNotification", {"connectorId": 2}, at=42.5))

    # -- Stops.
    stop1 = s.inbound(
        "StopTransaction",
        {
            "transactionId": 1,
            "meterStop": 6000,
            "timestamp": _iso(55),
            "reason": "EVDisconnected",
            "idTag": "TAG1",
            "transactionData": [
                {
                    "timestamp": _iso(5),
                    "sampledValue": [_energy("1000", context="Transaction.Begin")],
                },
                {
                    "timestamp": _iso(55),
                    "sampledValue": [_energy("6000", context="Transaction.End")],
                },
            ],
        },
        {"idTagInfo": {"status": "Accepted"}},
        at=55,
    )
    s.batch(
        stop1,
        s.inbound(
            "StatusNotification",
            {
                "connectorId": 1,
                "errorCode": "NoError",
                "status": "Finishing",
                "timestamp": _iso(55),
            },
            at=55.01,
        ),
        s.meter(1, [(56, [_energy("6100")])], at=56),  # late: changes nothing
    )
    s.batch(stop1)  # redelivered
    s.batch(
        # Resent by the charger (a new envelope): a duplicate stop.
        s.inbound("StopTransaction", stop1["payload"]["request"], {}, at=56.5)
    )
    s.batch(
        s.inbound(
            "StopTransaction",
            {"transactionId": 2, "meterStop": 9600, "timestamp": _iso(46), "reason": "Remote"},
            at=46.5,
        ),
        s.inbound(
            "StopTransaction",
            {"transactionId": 3, "meterStop": 3800, "timestamp": _iso(53), "reason": "Remote"},
            at=53.5,
        ),
        s.inbound(
            "StopTransaction",
            {"transactionId": 4, "meterStop": 900, "timestamp": _iso(57)},
            cp="CP2",
            at=57,
        ),
        s.inbound(
            "StopTransaction",
            {"transactionId": 5, "meterStop": 4000, "timestamp": _iso(58), "reason": "Local"},
            cp="CP3",
            at=58,
        ),
        s.inbound(
            "StopTransaction",
            {"transactionId": 6, "meterStop": 400_000, "timestamp": _iso(59 + 120)},
            at=59,
        ),
        s.inbound(
            "StopTransaction",
            {"transactionId": 7, "meterStop": 1500, "timestamp": _iso(59)},
            at=59.1,
        ),
        # Unknown, and another charger's: kept as unmatched stops.
        s.inbound(
            "StopTransaction",
            {"transactionId": 4242, "meterStop": 1, "timestamp": _iso(59)},
            cp="CP2",
            at=59.2,
        ),
        s.inbound(
            "StopTransaction",
            {"transactionId": 5, "meterStop": 1, "timestamp": _iso(59)},
            cp="CP2",
            at=59.3,
        ),
    )

    # -- Presence: a stale connect, disconnects with the right and a wrong connection id.
    s.batch(
        s.envelope(
            topology.CHARGER_DISCONNECTED,
            {"connectionId": "c1", "code": 1006, "reason": None, "at": _iso(60), "fence": 5},
            at=60,
        ),
        s.envelope(
            topology.CHARGER_CONNECTED,
            {
                "connectionId": "c0",
                "node": NODE,
                "remote": "10.0.0.1:2",
                "at": _iso(-5),
                "fence": 3,
            },
            at=60.1,
        ),
        s.envelope(
            topology.CHARGER_DISCONNECTED,
            {"connectionId": "other", "code": 1000, "reason": "x", "at": _iso(61)},
            "CP2",
            at=61,
        ),
        s.envelope(
            topology.CHARGER_CONNECTED,
            {"connectionId": "c3b", "node": "n2", "remote": "r", "at": _iso(62), "fence": True},
            "CP3",
            at=62,
        ),
        s.envelope(
            topology.CHARGER_DISCONNECTED,
            {"connectionId": "c3b", "code": 1000, "reason": None, "at": _iso(63), "fence": -1},
            "CP3",
            at=63,
        ),
    )
    s.batch(s.inbound("Heartbeat", {}, {"currentTime": _iso(70)}, cp="CP2", at=70))
    closings(s)
    return s.steps


def closings(s: StreamBuilder) -> None:
    """
    Sessions that cannot end (issue 18): a reboot, an ``Available`` and a
    newer start close what is still open there, on its last reading.
    """
    # -- Session 8 (tx 8): alice from the app on CP1/1, metered, and
    # session 9 (tx 9): bob on CP1/2, metered but never delivered.
    s.store(
        "create_request",
        user_id=1,
        charge_point_id="CP1",
        connector_id=1,
        id_tag="TAG1",
        command_id="cmd-alice",
        hold=500,
        now=_iso(71),
    )
    for tx, connector, tag, start, at in ((8, 1, "TAG1", 10_000, 72), (9, 2, "TAG2", 0, 73)):
        s.store(
            "allocate_transaction",
            charge_point_id="CP1",
            connector_id=connector,
            id_tag=tag,
            id_tag_status="Accepted",
            meter_start_wh=start,
            started_at=_iso(at),
            now=_iso(at),
            confirmed=False,
        )
        s.batch(
            s.inbound(
                "StartTransaction",
                {
                    "connectorId": connector,
                    "idTag": tag,
                    "meterStart": start,
                    "timestamp": _iso(at),
                },
                {"transactionId": tx, "idTagInfo": {"status": "Accepted"}},
                at=at,
            )
        )
    s.batch(
        s.meter(8, [(75, [_energy("12000")])], at=75),
        s.meter(9, [(74.5, [_energy("0")])], connector=2, at=75.1),
    )
    # -- Session 10 (tx 10): carol on CP1/3, started after the boot below was
    # received, which reaches the processor after its start: it stays open.
    s.store(
        "allocate_transaction",
        charge_point_id="CP1",
        connector_id=3,
        id_tag="TAG4",
        id_tag_status="Accepted",
        meter_start_wh=4000,
        started_at=_iso(80),
        now=_iso(80),
    )
    start10 = s.inbound(
        "StartTransaction",
        {"connectorId": 3, "idTag": "TAG4", "meterStart": 4000, "timestamp": _iso(80)},
        {"transactionId": 10, "idTagInfo": {"status": "Accepted"}},
        at=80,
    )
    reboot = s.inbound(
        "BootNotification",
        {"chargePointVendor": "Acme", "chargePointModel": "Volt 22", "firmwareVersion": "1.0.1"},
        {"status": "Accepted", "currentTime": _iso(79), "interval": 300},
        at=79,
    )
    # The reboot closes tx 8 (billed on 12000 Wh, alice's hold released) and
    # tx 9 (nothing delivered: no fee, no time), not tx 10.
    s.batch(start10, reboot)
    s.batch(reboot)  # redelivered: closes nothing again
    # The charger's own stop of tx 8, queued over the reboot: billed again on
    # its 12500 Wh (137), the 21 more debited as one correction; resent, nothing.
    late = s.inbound(
        "StopTransaction",
        {"transactionId": 8, "meterStop": 12_500, "timestamp": _iso(78), "reason": "PowerLoss"},
        at=81,
    )
    s.batch(late)
    s.batch(s.inbound("StopTransaction", late["payload"]["request"], at=81.5))  # resent

    # -- Session 11 (tx 11): TAG3 on CP2/1 (no tariff); its connector reports
    # Available without a stop: closed, unpriced. The charger's 0 and another
    # connector close nothing.
    s.store(
        "allocate_transaction",
        charge_point_id="CP2",
        connector_id=1,
        id_tag="TAG3",
        id_tag_status="Accepted",
        meter_start_wh=900,
        started_at=_iso(82),
        now=_iso(82),
    )
    s.batch(
        s.inbound(
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG3", "meterStart": 900, "timestamp": _iso(82)},
            {"transactionId": 11, "idTagInfo": {"status": "Accepted"}},
            cp="CP2",
            at=82,
        ),
        s.meter(11, [(83, [_energy("1500")])], cp="CP2", at=83),
    )
    available = s.inbound(
        "StatusNotification",
        {"connectorId": 1, "errorCode": "NoError", "status": "Available"},
        cp="CP2",
        at=84,
    )
    s.batch(
        s.inbound(
            "StatusNotification",
            {"connectorId": 0, "errorCode": "NoError", "status": "Available"},
            cp="CP2",
            at=83.9,
        ),
        s.inbound(
            "StatusNotification",
            {"connectorId": 2, "errorCode": "NoError", "status": "Available"},
            cp="CP2",
            at=83.95,
        ),
        available,
    )
    s.batch(available)  # redelivered

    # -- Session 12 (tx 12): dave on CP1/3 while tx 10 is still open there:
    # tx 10 is superseded (never delivered: no fee). A resend of tx 10's
    # start afterwards closes nothing newer.
    s.store(
        "allocate_transaction",
        charge_point_id="CP1",
        connector_id=3,
        id_tag="TAG5",
        id_tag_status="Accepted",
        meter_start_wh=4000,
        started_at=_iso(86),
        now=_iso(86),
    )
    s.batch(
        s.inbound(
            "StartTransaction",
            {"connectorId": 3, "idTag": "TAG5", "meterStart": 4000, "timestamp": _iso(86)},
            {"transactionId": 12, "idTagInfo": {"status": "Accepted"}},
            at=86,
        )
    )
    s.batch(
        s.inbound(
            "StartTransaction",
            start10["payload"]["request"],
            start10["payload"]["response"],
            at=87,
        ),
        s.meter(10, [(87.5, [_energy("4100")])], connector=3, at=87.5),  # closed: no change
        s.meter(12, [(88, [_energy("4800")])], connector=3, at=88),
    )
    late_stops(s)


def late_stops(s: StreamBuilder) -> None:
    """
    A charger's own stop after the central system closed the session
    (issue 18): billed again on its reading by one correction, or held for
    review when it would take back what was billed.
    """
    # -- Session 13 (tx 13): alice on CP1/1, closed by an operator on its
    # reading of 21000 Wh (billed 84); the charger's stop at 21500 Wh then
    # bills 100, a correction of 16.
    s.store(
        "allocate_transaction",
        charge_point_id="CP1",
        connector_id=1,
        id_tag="TAG1",
        id_tag_status="Accepted",
        meter_start_wh=20_000,
        started_at=_iso(90),
        now=_iso(90),
    )
    s.batch(
        s.inbound(
            "StartTransaction",
            {"connectorId": 1, "idTag": "TAG1", "meterStart": 20_000, "timestamp": _iso(90)},
            {"transactionId": 13, "idTagInfo": {"status": "Accepted"}},
            at=90,
        ),
        s.meter(13, [(92, [_energy("21000")])], at=92),
    )
    s.store("close_by_hand", transaction_id=13, now=_iso(93))
    s.batch(
        s.inbound(
            "StopTransaction",
            {"transactionId": 13, "meterStop": 21_500, "timestamp": _iso(92.5), "reason": "Local"},
            at=94,
        )
    )
    # -- CP1 reboots: tx 12 (dave on CP1/3) closed on 4800 Wh. Its charger's
    # stop says 4600 Wh, below what was billed: held for review, nothing
    # credited; sent again, nothing.
    s.batch(
        s.inbound(
            "BootNotification",
            {"chargePointVendor": "Acme", "chargePointModel": "Volt 22"},
            {"status": "Accepted", "currentTime": _iso(95), "interval": 300},
            at=95,
        )
    )
    lower = s.inbound(
        "StopTransaction",
        {"transactionId": 12, "meterStop": 4600, "timestamp": _iso(89), "reason": "PowerLoss"},
        at=96,
    )
    s.batch(lower)
    s.batch(s.inbound("StopTransaction", lower["payload"]["request"], at=96.5))


def write_stream(path: str = STREAM) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for step in build_stream():
            f.write(json.dumps(step, sort_keys=True) + "\n")


def read_stream(path: str = STREAM) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_golden(path: str = GOLDEN) -> None:
    """Replay the stream on a new SQLite file and write what came of it."""
    with tempfile.TemporaryDirectory() as directory:
        database = Database.from_url(f"sqlite:///{directory}/golden.sqlite3")
        try:
            migrate.upgrade(database.engine)
            record = replay(database, read_stream())
        finally:
            database.stop()
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, sort_keys=True)
        f.write("\n")


def _steps(argv: list[str]) -> Iterator[Callable[[], None]]:
    for command in argv:
        yield {"stream": write_stream, "golden": write_golden}[command]


if __name__ == "__main__":
    for run in _steps(sys.argv[1:] or ["stream", "golden"]):
        run()
