"""
A charger the browser tests drive frame by frame: an OCPP-J WebSocket in the
test's reactor that sends exactly the calls a test asks for and answers the
central system's commands like a compliant charger (RemoteStart starts a
transaction when the test has set ``on_remote_start``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks

from tests.integration.clients import TestClient, connect


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CallErrorReceived(Exception):
    pass


class ScriptedCharger:
    def __init__(self, client: TestClient, charge_point_id: str) -> None:
        self.client = client
        self.charge_point_id = charge_point_id
        self.pending: dict[str, Deferred[Any]] = {}
        #: Commands received from the central system: (action, payload).
        self.commands: list[tuple[str, dict[str, Any]]] = []
        #: Called (connectorId, idTag) after a RemoteStartTransaction is accepted.
        self.on_remote_start: Callable[[int, str], Any] | None = None
        #: Called (transactionId) after a RemoteStopTransaction is accepted.
        self.on_remote_stop: Callable[[int], Any] | None = None
        self.closed = False
        self._next = client.messages.get()
        self._next.addCallback(self._received)

    @classmethod
    @inlineCallbacks
    def connect(cls, port: int, charge_point_id: str, key: str) -> Any:
        client = yield connect(port, charge_point_id, key)
        return cls(client, charge_point_id)

    def _received(self, text: str) -> None:
        frame = json.loads(text)
        if frame[0] == 3:
            self.pending.pop(frame[1]).callback(frame[2])
        elif frame[0] == 4:
            self.pending.pop(frame[1]).errback(CallErrorReceived(frame[2:]))
        elif frame[0] == 2:
            self._command(frame[1], frame[2], frame[3])
        if not self.closed:
            self._next = self.client.messages.get()
            self._next.addCallback(self._received)

    def _command(self, unique_id: str, action: str, payload: dict[str, Any]) -> None:
        self.commands.append((action, payload))
        after: Callable[[], Any] | None = None
        answer: dict[str, Any] = {"status": "Accepted"}
        if action == "RemoteStartTransaction" and self.on_remote_start is not None:
            hook = self.on_remote_start
            after = lambda: hook(payload.get("connectorId", 1), payload["idTag"])  # noqa: E731
        elif action == "RemoteStopTransaction" and self.on_remote_stop is not None:
            stop_hook = self.on_remote_stop
            after = lambda: stop_hook(payload["transactionId"])  # noqa: E731
        elif action == "GetConfiguration":
            answer = {
                "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}]
            }
        elif action == "TriggerMessage":
            answer = {"status": "Accepted"}
        elif action == "UnlockConnector":
            answer = {"status": "Unlocked"}
        elif action == "UpdateFirmware":
            answer = {}  # UpdateFirmware.conf has no field
        self.client.send(json.dumps([3, unique_id, answer]))
        if after is not None:
            after()

    def call(self, action: str, payload: dict[str, Any]) -> Deferred[Any]:
        unique_id = uuid.uuid4().hex[:12]
        d: Deferred[Any] = Deferred()
        self.pending[unique_id] = d
        self.client.send(json.dumps([2, unique_id, action, payload]))
        return d

    # -- what a charger says ------------------------------------------------------

    def boot(self) -> Deferred[Any]:
        return self.call(
            "BootNotification",
            {
                "chargePointVendor": "Acme",
                "chargePointModel": "Wallbox 22",
                "firmwareVersion": "1.2.3",
            },
        )

    def status(self, connector_id: int, status: str, error_code: str = "NoError") -> Deferred[Any]:
        return self.call(
            "StatusNotification",
            {
                "connectorId": connector_id,
                "status": status,
                "errorCode": error_code,
                "timestamp": now(),
            },
        )

    @inlineCallbacks
    def start(self, connector_id: int, id_tag: str, meter_start: int) -> Any:
        """StartTransaction; returns the transactionId."""
        answer = yield self.call(
            "StartTransaction",
            {
                "connectorId": connector_id,
                "idTag": id_tag,
                "meterStart": meter_start,
                "timestamp": now(),
            },
        )
        return answer["transactionId"]

    def meter(
        self, connector_id: int, transaction_id: int, energy_wh: int, power_w: int
    ) -> Deferred[Any]:
        return self.call(
            "MeterValues",
            {
                "connectorId": connector_id,
                "transactionId": transaction_id,
                "meterValue": [
                    {
                        "timestamp": now(),
                        "sampledValue": [
                            {
                                "value": str(energy_wh),
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "Wh",
                            },
                            {
                                "value": str(power_w),
                                "measurand": "Power.Active.Import",
                                "unit": "W",
                            },
                        ],
                    }
                ],
            },
        )

    def stop(self, transaction_id: int, meter_stop: int, reason: str = "Local") -> Deferred[Any]:
        return self.call(
            "StopTransaction",
            {
                "transactionId": transaction_id,
                "meterStop": meter_stop,
                "timestamp": now(),
                "reason": reason,
            },
        )

    def close(self) -> Deferred[Any]:
        """Close the WebSocket; fires once it is closed."""
        if not self.closed:
            self.closed = True
            self._next.addErrback(lambda _: None)
            self._next.cancel()
            self.client.close()
        return self.client.closed
