"""
One simulated OCPP 1.6J charge point, as a state machine without I/O.

The Autobahn edge (``ocppd.sim.client``) calls :meth:`SimulatedCharger.connection_made`,
:meth:`~SimulatedCharger.text_received` and :meth:`~SimulatedCharger.connection_lost`;
everything else (boot, heartbeat, status, sessions, meter values, answers to
the central system's commands) happens here, on the injected clock, so tests
drive it with ``twisted.internet.task.Clock`` and a fake transport.

Behaviour follows what real chargers do where OCPP leaves room:

- after (re)connecting it sends BootNotification first and nothing else until
  it is Accepted (OCPP 1.6 section 4.2), retrying at the ``interval`` the
  central system returned; then a StatusNotification per connector (0 too)
  and the transaction messages left over from the last connection;
- sessions keep metering while offline; their MeterValues queue up and are
  sent, in order, after the reconnect (``ocppd.sim.outbox``);
- a Reset stops the sessions with reason SoftReset/HardReset, waits (a
  bounded time) until those stops are answered, closes the connection and
  boots again when the reconnect comes.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from ocppd.logs import Logger
from ocppd.ocpp import errors
from ocppd.ocpp.actions import classify_inbound
from ocppd.ocpp.connection import MessageTransport
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.frames import (
    CALL_ERROR,
    CALL_RESULT,
    Call,
    CallError,
    CallResult,
    FrameError,
    parse_frame,
)
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.sim.battery import Battery
from ocppd.sim.outbox import Outbox, OutboxError

#: The central system's commands this charger answers; any other OCPP action
#: is NotSupported, any other name NotImplemented (OCPP-J 1.6 table 7).
SUPPORTED_COMMANDS: frozenset[str] = frozenset(
    {
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "DataTransfer",
        "GetConfiguration",
        "GetDiagnostics",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "Reset",
        "TriggerMessage",
        "UnlockConnector",
    }
)

#: Sends a diagnostics file (its URL, its bytes) over HTTP: fires on success.
Uploader = Callable[[str, bytes], Deferred[Any]]

#: A command's answer payload, and what to do once it is sent.
_Answer = tuple[dict[str, Any], Callable[[], None] | None]

#: Measurands in every MeterValues, in this order.
MEASURANDS = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,SoC"

#: Heartbeat interval before the central system has told us one, and the
#: BootNotification retry delay when its answer says 0.
DEFAULT_HEARTBEAT = 60.0

#: Close code used for a Reset (the normal closure: the charger goes away on purpose).
CLOSE_NORMAL = 1000


def iso_time(seconds: float) -> str:
    """An OCPP dateTime (UTC, milliseconds) for a clock reading in POSIX seconds."""
    stamp = datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


@attrs.frozen
class ChargerSettings:
    """
    What a simulated charger is; fixed for its lifetime.

    ``time_scale`` is how many simulated seconds the battery charges per
    clock second, so a test or a demo sees a session's whole curve in
    seconds (the meter interval itself is in clock seconds).
    """

    charge_point_id: str
    connectors: int = 2
    meter_interval: float = 10.0
    time_scale: float = 1.0
    call_timeout: float = 30.0
    max_power_w: float = 11_000.0
    battery_capacity_wh: float = 60_000.0
    vendor: str = "ocppd"
    model: str = "ocppd-sim"
    firmware: str = "sim-1.0"


@attrs.define
class _Key:
    """One configuration key: a value as the wire has it, and what it may hold."""

    value: str
    readonly: bool = False
    kind: str = "str"  # "seconds", "int", "bool", "str"

    def accepts(self, value: str) -> bool:
        if self.kind == "seconds":
            try:
                return 0 <= float(value) < 1e9
            except ValueError:
                return False
        if self.kind == "int":
            return value.isdigit()
        if self.kind == "bool":
            return value.lower() in ("true", "false")
        return True


def default_configuration(settings: ChargerSettings) -> dict[str, _Key]:
    """The configuration keys a fresh charger reports (OCPP 1.6 section 9.1)."""
    interval = f"{settings.meter_interval:g}"
    return {
        "AuthorizeRemoteTxRequests": _Key("false", kind="bool"),
        "ClockAlignedDataInterval": _Key("0", kind="int"),
        "ConnectionTimeOut": _Key("60", kind="int"),
        "GetConfigurationMaxKeys": _Key("50", readonly=True, kind="int"),
        "HeartbeatInterval": _Key(f"{DEFAULT_HEARTBEAT:g}", kind="seconds"),
        "LocalAuthorizeOffline": _Key("true", kind="bool"),
        "LocalPreAuthorize": _Key("false", kind="bool"),
        "MeterValueSampleInterval": _Key(interval, kind="seconds"),
        "MeterValuesSampledData": _Key(MEASURANDS),
        "NumberOfConnectors": _Key(str(settings.connectors), readonly=True, kind="int"),
        "ResetRetries": _Key("1", kind="int"),
        "StopTransactionOnInvalidId": _Key("true", kind="bool"),
        "SupportedFeatureProfiles": _Key("Core,RemoteTrigger", readonly=True),
        "TransactionMessageAttempts": _Key("3", kind="int"),
        "TransactionMessageRetryInterval": _Key("5", kind="int"),
        "UnlockConnectorOnEVSideDisconnect": _Key("true", kind="bool"),
    }


@attrs.define
class Session:
    """A charging session on one connector, from the charger's point of view."""

    connector_id: int
    id_tag: str
    meter_start: int
    started_at: str
    battery: Battery
    last_sample: float
    #: Known once the central system answered the StartTransaction.
    transaction_id: int | None = None
    meter_stop: int | None = None
    timer: IDelayedCall | None = None
    #: Fires with the transactionId once the StartTransaction is answered.
    started: Deferred[int] = attrs.field(factory=Deferred)


@attrs.define
class Connector:
    """One connector: its status, its energy register and its session."""

    connector_id: int
    register_wh: float
    status: str = "Available"
    operative: bool = True
    session: Session | None = None


@attrs.define
class Stats:
    """Counters for the simulator's summary line."""

    boots: int = 0
    sessions_started: int = 0
    sessions_stopped: int = 0
    commands: int = 0


class SimulatedCharger:
    """
    One charge point's OCPP behaviour; see the module docstring.

    ``rng`` decides the initial energy registers and each arriving
    vehicle's state of charge; seed it for reproducible runs.
    """

    log = Logger()

    def __init__(
        self,
        settings: ChargerSettings,
        *,
        schemas: SchemaRegistry,
        clock: IReactorTime,
        rng: random.Random | None = None,
        upload: Uploader | None = None,
    ) -> None:
        self.settings = settings
        #: How GetDiagnostics files are sent (HTTP PUT); None: there are none to send.
        self._upload = upload
        self.charge_point_id = settings.charge_point_id
        self._schemas = schemas
        self._clock = clock
        self._rng = rng if rng is not None else random.Random(settings.charge_point_id)
        self.configuration = default_configuration(settings)
        self.connectors: dict[int, Connector] = {
            n: Connector(n, register_wh=float(self._rng.randrange(0, 2_000_000)))
            for n in range(1, settings.connectors + 1)
        }
        self.outbox = Outbox(
            settings.charge_point_id,
            schemas=schemas,
            clock=clock,
            timeout=settings.call_timeout,
            may_send=self._may_send,
        )
        self.stats = Stats()
        #: The central system's last BootNotification verdict on this connection.
        self.registration: str | None = None
        self._transport: MessageTransport | None = None
        self._heartbeat: IDelayedCall | None = None
        self._boot_retry: IDelayedCall | None = None
        self._resetting = False
        self._stopped = False
        #: Consecutive failed WebSocket handshakes, for the reconnect back-off.
        self.handshake_failures = 0

    # -- the connection -------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._transport is not None

    @property
    def accepted(self) -> bool:
        """Whether the central system accepted our boot on this connection."""
        return self.registration == "Accepted"

    def connection_made(self, transport: MessageTransport) -> None:
        """The WebSocket is open: boot first, then the rest may follow."""
        self._transport = transport
        self.handshake_failures = 0
        self.registration = None
        self.outbox.online(transport.send_text)
        self._boot()

    def handshake_failed(self, reason: str) -> None:
        """The central system refused the WebSocket (wrong key, unknown id)."""
        self.handshake_failures += 1
        self.log.warn(
            "{charge_point_id}: handshake refused ({reason})",
            charge_point_id=self.charge_point_id,
            reason=reason,
        )

    def connection_lost(self, reason: str = "connection lost") -> None:
        """The WebSocket closed: stop talking, keep metering, keep transaction messages."""
        self.log.info(
            "{charge_point_id}: disconnected ({reason})",
            charge_point_id=self.charge_point_id,
            reason=reason,
        )
        self._transport = None
        self.registration = None
        for timer in (self._heartbeat, self._boot_retry):
            if timer is not None and timer.active():
                timer.cancel()
        self._heartbeat = self._boot_retry = None
        self.outbox.offline()
        if self._resetting:
            self._rebooted()

    def text_received(self, text: str) -> None:
        """A text frame from the central system."""
        try:
            frame = parse_frame(text)
        except FrameError as e:
            if e.message_type_id in (CALL_RESULT, CALL_ERROR):
                if e.unique_id != "-1":
                    self.outbox.reply_received(CallError(e.unique_id, e.code, e.description))
                return
            self._send(CallError(e.unique_id, e.code, e.description, e.details))
            return
        if isinstance(frame, Call):
            self._call_received(frame)
        else:
            self.outbox.reply_received(frame)

    def stop(self) -> None:
        """The simulator shuts down: no more timers."""
        self._stopped = True
        for connector in self.connectors.values():
            if connector.session is not None and connector.session.timer is not None:
                if connector.session.timer.active():
                    connector.session.timer.cancel()
        for timer in (self._heartbeat, self._boot_retry):
            if timer is not None and timer.active():
                timer.cancel()
        self.outbox.clear("simulator stopped")

    def _send(self, frame: CallResult | CallError) -> None:
        if self._transport is not None:
            self._transport.send_text(frame.marshal())

    def _may_send(self, action: str) -> bool:
        return action == "BootNotification" or self.accepted

    def _call(
        self, action: str, payload: Any, *, front: bool = False
    ) -> Deferred[dict[str, Any] | None]:
        """Queue a CALL whose failure is only worth a log line."""
        d = self.outbox.call(action, payload, front=front)
        d.addErrback(self._call_failed, action)
        return d

    def _call_failed(self, failure: Failure, action: str) -> None:
        failure.trap(OutboxError)
        self.log.info(
            "{charge_point_id}: {action} failed: {error}",
            charge_point_id=self.charge_point_id,
            action=action,
            error=failure.getErrorMessage(),
        )

    # -- boot and heartbeat ---------------------------------------------------

    def boot_payload(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "chargePointVendor": settings.vendor[:20],
            "chargePointModel": settings.model[:20],
            "chargePointSerialNumber": settings.charge_point_id[:25],
            "firmwareVersion": settings.firmware[:50],
        }

    def _boot(self) -> None:
        self._boot_retry = None
        d = self.outbox.call("BootNotification", self.boot_payload(), front=True)
        d.addCallbacks(self._booted, self._boot_failed)

    def _boot_failed(self, failure: Failure) -> None:
        failure.trap(OutboxError)
        if self.connected and not self._stopped:
            self.log.info(
                "{charge_point_id}: BootNotification failed ({error}); retrying",
                charge_point_id=self.charge_point_id,
                error=failure.getErrorMessage(),
            )
            self._boot_retry = self._clock.callLater(DEFAULT_HEARTBEAT, self._boot)

    def _booted(self, answer: dict[str, Any] | None) -> None:
        assert answer is not None
        self.registration = answer["status"]
        interval = float(answer["interval"])
        self.stats.boots += 1
        self.log.info(
            "{charge_point_id}: boot {status}, interval {interval}",
            charge_point_id=self.charge_point_id,
            status=self.registration,
            interval=interval,
        )
        if not self.accepted:
            # Pending or Rejected: ask again after the interval we were given.
            if not self._stopped:
                delay = interval if interval > 0 else DEFAULT_HEARTBEAT
                self._boot_retry = self._clock.callLater(delay, self._boot)
            return
        if interval > 0:
            self.configuration["HeartbeatInterval"].value = f"{interval:g}"
        self._schedule_heartbeat()
        self._send_status(0)
        for connector_id in self.connectors:
            self._send_status(connector_id)
        self.outbox.pump()

    @property
    def heartbeat_interval(self) -> float:
        return float(self.configuration["HeartbeatInterval"].value)

    @property
    def meter_interval(self) -> float:
        return float(self.configuration["MeterValueSampleInterval"].value)

    def _schedule_heartbeat(self) -> None:
        if self._heartbeat is not None and self._heartbeat.active():
            self._heartbeat.cancel()
        self._heartbeat = None
        if self.heartbeat_interval > 0 and self.accepted and not self._stopped:
            self._heartbeat = self._clock.callLater(self.heartbeat_interval, self._beat)

    def _beat(self) -> None:
        self._heartbeat = None
        self._call("Heartbeat", {})
        self._schedule_heartbeat()

    def _send_status(self, connector_id: int) -> None:
        if connector_id == 0:
            status = (
                "Available"
                if any(c.operative for c in self.connectors.values())
                else ("Unavailable")
            )
        else:
            status = self.connectors[connector_id].status
        self._call(
            "StatusNotification",
            {
                "connectorId": connector_id,
                "errorCode": "NoError",
                "status": status,
                "timestamp": iso_time(self._clock.seconds()),
            },
        )

    def _set_status(self, connector: Connector, status: str) -> None:
        if connector.status != status:
            connector.status = status
            if self.accepted:
                self._send_status(connector.connector_id)

    # -- sessions -------------------------------------------------------------

    def free_connector(self) -> Connector | None:
        """The first connector that could start a session now."""
        for connector in self.connectors.values():
            if connector.session is None and connector.operative and not self._resetting:
                return connector
        return None

    def start_session(self, connector_id: int, id_tag: str) -> Session | None:
        """
        A vehicle plugs in on ``connector_id`` and ``id_tag`` is presented;
        ``None`` if that connector cannot charge now (busy, inoperative, or
        a reset is under way). Works offline: the StartTransaction waits in
        the queue, as on a real charger.
        """
        connector = self.connectors.get(connector_id)
        if connector is None or connector.session is not None or not connector.operative:
            return None
        if self._resetting:
            return None
        now = self._clock.seconds()
        session = Session(
            connector_id=connector_id,
            id_tag=id_tag,
            meter_start=int(connector.register_wh),
            started_at=iso_time(now),
            battery=Battery(
                capacity_wh=self.settings.battery_capacity_wh,
                soc=self._rng.uniform(0.1, 0.6),
                max_power_w=self.settings.max_power_w,
            ),
            last_sample=now,
        )
        connector.session = session
        self.stats.sessions_started += 1
        d = self.outbox.call(
            "StartTransaction",
            {
                "connectorId": connector_id,
                "idTag": id_tag,
                "meterStart": session.meter_start,
                "timestamp": session.started_at,
            },
        )
        d.addCallbacks(
            self._start_answered,
            self._start_failed,
            callbackArgs=(session,),
            errbackArgs=(session,),
        )
        self._set_status(connector, "Charging")
        self._schedule_sample(session)
        return session

    def _start_answered(self, answer: dict[str, Any] | None, session: Session) -> None:
        assert answer is not None
        session.transaction_id = answer["transactionId"]
        status = answer["idTagInfo"]["status"]
        self.log.info(
            "{charge_point_id}: transaction {transaction_id} on connector {connector_id}: {status}",
            charge_point_id=self.charge_point_id,
            transaction_id=session.transaction_id,
            connector_id=session.connector_id,
            status=status,
        )
        session.started.callback(answer["transactionId"])
        stop_on_invalid = self.configuration["StopTransactionOnInvalidId"].value == "true"
        if status != "Accepted" and stop_on_invalid:
            self.stop_session(session.connector_id, "DeAuthorized")

    def _start_failed(self, failure: Failure, session: Session) -> None:
        failure.trap(OutboxError)
        # Never started as far as the central system knows: end it quietly.
        self.log.warn(
            "{charge_point_id}: StartTransaction failed: {error}",
            charge_point_id=self.charge_point_id,
            error=failure.getErrorMessage(),
        )
        connector = self.connectors[session.connector_id]
        if connector.session is session:
            self._end_locally(connector)
        session.started.errback(failure)
        session.started.addErrback(lambda _: None)

    def _end_locally(self, connector: Connector) -> Session | None:
        session, connector.session = connector.session, None
        if session is not None and session.timer is not None and session.timer.active():
            session.timer.cancel()
        self._set_status(connector, "Available" if connector.operative else "Unavailable")
        return session

    def _read_meter(self, connector: Connector, session: Session) -> None:
        """Advance the vehicle's battery to now and the register with it."""
        now = self._clock.seconds()
        session.battery, energy = session.battery.charge(
            (now - session.last_sample) * self.settings.time_scale
        )
        session.last_sample = now
        connector.register_wh += energy

    def _schedule_sample(self, session: Session) -> None:
        if self.meter_interval > 0 and not self._stopped:
            session.timer = self._clock.callLater(self.meter_interval, self._sample, session)

    def _sample(self, session: Session) -> None:
        session.timer = None
        connector = self.connectors[session.connector_id]
        if connector.session is not session:
            return
        self.send_meter_values(connector, "Sample.Periodic")
        self._schedule_sample(session)

    def sampled_values(self, connector: Connector, context: str) -> list[dict[str, str]]:
        """The sampled values for ``connector`` now, as OCPP strings."""
        session = connector.session
        power = session.battery.power_w if session is not None else 0.0
        current = session.battery.current_a if session is not None else 0.0
        values = [
            {
                "value": str(int(connector.register_wh)),
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "location": "Outlet",
                "unit": "Wh",
            },
            {
                "value": str(round(power)),
                "context": context,
                "measurand": "Power.Active.Import",
                "location": "Outlet",
                "unit": "W",
            },
            {
                "value": f"{current:.1f}",
                "context": context,
                "measurand": "Current.Import",
                "location": "Outlet",
                "unit": "A",
            },
        ]
        if session is not None:
            values.append(
                {
                    "value": str(round(session.battery.soc * 100)),
                    "context": context,
                    "measurand": "SoC",
                    "location": "EV",
                    "unit": "Percent",
                }
            )
        return values

    def send_meter_values(self, connector: Connector, context: str) -> None:
        """Read the meter now and queue a MeterValues (sent with its session's id)."""
        session = connector.session
        if session is not None:
            self._read_meter(connector, session)
        payload: dict[str, Any] = {
            "connectorId": connector.connector_id,
            "meterValue": [
                {
                    "timestamp": iso_time(self._clock.seconds()),
                    "sampledValue": self.sampled_values(connector, context),
                }
            ],
        }
        if session is None:
            self._call("MeterValues", payload)
            return

        def build() -> dict[str, Any] | None:
            if session.transaction_id is None:
                return None  # its StartTransaction was never answered
            return {**payload, "transactionId": session.transaction_id}

        self._call("MeterValues", build)

    def stop_session(self, connector_id: int, reason: str = "Local") -> Deferred[Any] | None:
        """
        End the session on ``connector_id`` with an OCPP stop ``reason``;
        ``None`` if there is none. Fires when the StopTransaction is answered.
        """
        connector = self.connectors.get(connector_id)
        if connector is None or connector.session is None:
            return None
        session = connector.session
        self._read_meter(connector, session)
        session.meter_stop = int(connector.register_wh)
        self.stats.sessions_stopped += 1
        timestamp = iso_time(self._clock.seconds())

        def build() -> dict[str, Any] | None:
            if session.transaction_id is None:
                return None
            assert session.meter_stop is not None
            return {
                "transactionId": session.transaction_id,
                "idTag": session.id_tag,
                "meterStop": session.meter_stop,
                "timestamp": timestamp,
                "reason": reason,
            }

        stopped = self._call("StopTransaction", build)
        # After the StopTransaction, as a charger reports the freed connector.
        self._end_locally(connector)
        return stopped

    def session_by_transaction(self, transaction_id: int) -> Session | None:
        for connector in self.connectors.values():
            if connector.session is not None and connector.session.transaction_id == transaction_id:
                return connector.session
        return None

    # -- the central system's commands ----------------------------------------

    def _call_received(self, call: Call) -> None:
        self.stats.commands += 1
        refusal = classify_inbound(call.action, supported=SUPPORTED_COMMANDS)
        if refusal is not None:
            self._send(CallError(call.unique_id, refusal, f"{call.action} is not supported"))
            return
        try:
            self._schemas.validate_request(call.action, call.payload)
        except OcppError as e:
            self._send(CallError(call.unique_id, e.code, e.description, e.details))
            return
        handler: Callable[[dict[str, Any]], _Answer]
        handler = getattr(self, f"_on_{call.action}")
        try:
            answer, then = handler(call.payload)
            self._schemas.validate_response(call.action, answer)
        except OcppError as e:
            self._send(CallError(call.unique_id, e.code, e.description))
            return
        except Exception:
            self.log.failure("{charge_point_id}: handling {action} failed", action=call.action)
            self._send(CallError(call.unique_id, errors.INTERNAL_ERROR, "internal error"))
            return
        self._send(CallResult(call.unique_id, answer))
        if then is not None:
            then()

    def _on_RemoteStartTransaction(self, payload: dict[str, Any]) -> _Answer:
        connector_id = payload.get("connectorId")
        if connector_id is None:
            free = self.free_connector()
            connector_id = free.connector_id if free is not None else 0
        connector = self.connectors.get(connector_id)
        if (
            connector is None
            or connector.session is not None
            or not connector.operative
            or self._resetting
        ):
            return {"status": "Rejected"}, None
        id_tag = payload["idTag"]
        return {"status": "Accepted"}, lambda: self._remote_start(connector_id, id_tag)

    def _remote_start(self, connector_id: int, id_tag: str) -> None:
        self.start_session(connector_id, id_tag)

    def _on_RemoteStopTransaction(self, payload: dict[str, Any]) -> _Answer:
        session = self.session_by_transaction(payload["transactionId"])
        if session is None:
            return {"status": "Rejected"}, None
        connector_id = session.connector_id
        return {"status": "Accepted"}, lambda: self._stop_quietly(connector_id, "Remote")

    def _stop_quietly(self, connector_id: int, reason: str) -> None:
        self.stop_session(connector_id, reason)

    def _on_Reset(self, payload: dict[str, Any]) -> _Answer:
        reason = "HardReset" if payload["type"] == "Hard" else "SoftReset"
        return {"status": "Accepted"}, lambda: self._reset(reason)

    def _reset(self, reason: str) -> None:
        if self._resetting:
            return
        self._resetting = True
        stops = [
            d
            for d in (self.stop_session(n, reason) for n in list(self.connectors))
            if d is not None
        ]
        done = DeferredList(stops, consumeErrors=True)
        # Bounded: a central system that never answers must not stop the reboot.
        guard = self._clock.callLater(self.settings.call_timeout, done.cancel)

        def close(_: object) -> None:
            if guard.active():
                guard.cancel()
            if self._transport is not None:
                self.log.info(
                    "{charge_point_id}: rebooting ({reason})",
                    charge_point_id=self.charge_point_id,
                    reason=reason,
                )
                self._transport.close(CLOSE_NORMAL, reason)
            else:
                self._rebooted()

        done.addBoth(close)

    def _rebooted(self) -> None:
        """After a reset: a fresh start; the next connection boots again."""
        self._resetting = False
        for connector in self.connectors.values():
            connector.status = "Available" if connector.operative else "Unavailable"

    def _on_ChangeConfiguration(self, payload: dict[str, Any]) -> _Answer:
        key = self.configuration.get(payload["key"])
        if key is None:
            return {"status": "NotSupported"}, None
        if key.readonly or not key.accepts(payload["value"]):
            return {"status": "Rejected"}, None
        key.value = payload["value"]
        if payload["key"] == "HeartbeatInterval":
            return {"status": "Accepted"}, self._schedule_heartbeat
        if payload["key"] == "TransactionMessageAttempts":
            self.outbox.attempts = max(1, int(key.value))
        if payload["key"] == "TransactionMessageRetryInterval":
            self.outbox.retry_interval = float(key.value)
        return {"status": "Accepted"}, None

    def _on_GetConfiguration(self, payload: dict[str, Any]) -> _Answer:
        wanted = payload.get("key") or sorted(self.configuration)
        known = [
            {
                "key": name,
                "readonly": self.configuration[name].readonly,
                "value": self.configuration[name].value,
            }
            for name in wanted
            if name in self.configuration
        ]
        unknown = [name for name in wanted if name not in self.configuration]
        answer: dict[str, Any] = {"configurationKey": known}
        if unknown:
            answer["unknownKey"] = unknown
        return answer, None

    def _on_TriggerMessage(self, payload: dict[str, Any]) -> _Answer:
        message = payload["requestedMessage"]
        connector_id = payload.get("connectorId")
        if connector_id is not None and connector_id not in self.connectors and connector_id != 0:
            return {"status": "Rejected"}, None
        return {"status": "Accepted"}, lambda: self._trigger(message, connector_id)

    def _trigger(self, message: str, connector_id: int | None) -> None:
        if message == "BootNotification":
            self._boot()
        elif message == "Heartbeat":
            self._call("Heartbeat", {})
        elif message == "StatusNotification":
            for n in [connector_id] if connector_id is not None else [0, *self.connectors]:
                self._send_status(n)
        elif message == "MeterValues":
            ids = [connector_id] if connector_id else list(self.connectors)
            for n in ids:
                self.send_meter_values(self.connectors[n], "Trigger")
        elif message == "DiagnosticsStatusNotification":
            self._call("DiagnosticsStatusNotification", {"status": "Idle"})
        elif message == "FirmwareStatusNotification":
            self._call("FirmwareStatusNotification", {"status": "Idle"})

    def _on_GetDiagnostics(self, payload: dict[str, Any]) -> _Answer:
        location: str = payload["location"]
        if self._upload is None or not location.lower().startswith(("http://", "https://")):
            return {}, None  # OCPP 1.6: no fileName, no diagnostics available
        name = f"{self.charge_point_id}-diagnostics.log"
        url = location + name if location.endswith("/") else f"{location}/{name}"
        return {"fileName": name}, lambda: self._send_diagnostics(url)

    def _send_diagnostics(self, url: str) -> None:
        """Upload a small log of this charger's state, saying so as OCPP asks."""
        assert self._upload is not None
        self._call("DiagnosticsStatusNotification", {"status": "Uploading"})
        lines = [f"{self.charge_point_id} diagnostics"]
        lines += [f"{key}={k.value}" for key, k in sorted(self.configuration.items())]
        lines += [f"connector {n}: {c.status}" for n, c in sorted(self.connectors.items())]
        body = ("\n".join(lines) + "\n").encode("utf-8")

        def done(outcome: object) -> None:
            failed = isinstance(outcome, Failure)
            if isinstance(outcome, Failure):
                self.log.warn(
                    "{charge_point_id}: diagnostics upload failed: {reason}",
                    charge_point_id=self.charge_point_id,
                    reason=outcome.getErrorMessage(),
                )
            status = "UploadFailed" if failed else "Uploaded"
            self._call("DiagnosticsStatusNotification", {"status": status})

        self._upload(url, body).addBoth(done)

    def _on_ClearCache(self, payload: dict[str, Any]) -> _Answer:
        return {"status": "Accepted"}, None

    def _on_UnlockConnector(self, payload: dict[str, Any]) -> _Answer:
        connector_id = payload["connectorId"]
        if connector_id not in self.connectors:
            return {"status": "NotSupported"}, None
        # OCPP 1.6 section 5.17: an ongoing transaction is stopped first.
        return {"status": "Unlocked"}, lambda: self._stop_quietly(connector_id, "UnlockCommand")

    def _on_ChangeAvailability(self, payload: dict[str, Any]) -> _Answer:
        connector_id = payload["connectorId"]
        operative = payload["type"] == "Operative"
        if connector_id == 0:
            targets = list(self.connectors.values())
        elif connector_id in self.connectors:
            targets = [self.connectors[connector_id]]
        else:
            return {"status": "Rejected"}, None
        scheduled = False
        for connector in targets:
            connector.operative = operative
            if connector.session is not None:
                scheduled = True  # takes effect when the session ends
            else:
                self._set_status(connector, "Available" if operative else "Unavailable")
        return {"status": "Scheduled" if scheduled else "Accepted"}, None

    def _on_DataTransfer(self, payload: dict[str, Any]) -> _Answer:
        return {"status": "UnknownVendorId"}, None
