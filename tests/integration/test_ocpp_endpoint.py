"""
End-to-end tests of the OCPP endpoint: a whole ocppd node on real 127.0.0.1
sockets, embedded store and bus, driven by real WebSocket clients.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from ocpp.v16 import call
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from ocppd.store import chargers, messages, transactions
from tests.integration.clients import basic_auth, connect, raw_handshake, raw_request
from tests.integration.daemon import amqp_overrides, postgres_overrides, start_daemon
from tests.integration.ocpp_client import in_reactor, run_charger

KEY = "s3cret-key-000001"


def status_line(response: bytes) -> str:
    return response.split(b"\r\n", 1)[0].decode()


class HandshakeTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def setUp(self) -> Any:
        self.daemon = yield start_daemon(self)
        self.daemon.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")

    @inlineCallbacks
    def test_refusals(self) -> Any:
        """Unknown charger 404; wrong, missing or mismatched credentials 401 with a challenge."""
        port = self.daemon.port
        cases = [
            ("/ocpp/NOPE", {"Authorization": basic_auth("NOPE", KEY)}, "404"),
            ("/elsewhere", {}, "404"),
            ("/ocpp/CP1", {"Authorization": basic_auth("CP1", "wrong")}, "401"),
            ("/ocpp/CP1", {}, "401"),
            ("/ocpp/CP1", {"Authorization": basic_auth("CP2", KEY)}, "401"),
            ("/ocpp/CP1", {"Authorization": "Basic !!!"}, "401"),
        ]
        for path, headers, status in cases:
            headers = {"Sec-WebSocket-Protocol": "ocpp1.6", **headers}
            response = yield raw_handshake(port, path, headers)
            self.assertIn(f" {status} ", status_line(response), (path, headers))
            if status == "401":
                self.assertIn(b"WWW-Authenticate: Basic", response)
        self.assertEqual(len(self.daemon.node.registry), 0)

    @inlineCallbacks
    def test_fault_gets_a_fixed_status_line(self) -> Any:
        """A database fault in the handshake: 500 with a fixed reason; the SQL only in the log."""
        yield self.daemon.query(
            lambda conn: conn.execute(sa.text("ALTER TABLE charge_points RENAME TO elsewhere"))
        )
        response = yield raw_handshake(
            self.daemon.port,
            "/ocpp/CP1",
            {"Sec-WebSocket-Protocol": "ocpp1.6", "Authorization": basic_auth("CP1", KEY)},
        )
        self.assertEqual(status_line(response), "HTTP/1.1 500 Internal Server Error")
        for leak in (b"charge_points", b"SELECT", b"sqlite"):
            self.assertNotIn(leak, response.lower())
        # The node's own sweeps (charger liveness) may meet the missing table too.
        logged = self.flushLoggedErrors(sa.exc.OperationalError)
        self.assertTrue(logged)
        for failure in logged:
            self.assertIn("no such table: charge_points", str(failure.value))

    @inlineCallbacks
    def test_plain_http_is_refused(self) -> Any:
        """A request without the WebSocket upgrade gets no page, only a 4xx."""
        response = yield raw_request(self.daemon.port, b"GET /ocpp/CP1 HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertRegex(status_line(response), r"^HTTP/1.1 4\d\d ")
        self.assertNotIn(b"Autobahn", response)

    @inlineCallbacks
    def test_no_subprotocol_completes_then_closes(self) -> Any:
        """OCPP-J 3.2: without ocpp1.6 the handshake completes without the header, then closes."""
        client = yield connect(self.daemon.port, "CP1", KEY, protocols=["ocpp2.0.1"])
        self.assertIsNone(client.factory.negotiated)
        code, reason = yield client.closed
        self.assertEqual(code, 1002)
        self.assertIn("ocpp1.6", reason)

    @inlineCallbacks
    def test_right_key_negotiates_ocpp16(self) -> Any:
        """The right key connects with subprotocol ocpp1.6 and the charger is registered."""
        client = yield connect(self.daemon.port, "CP1", KEY)
        self.assertEqual(client.factory.negotiated, "ocpp1.6")
        self.assertIn("CP1", self.daemon.node.registry)
        client.close()
        yield client.closed


class PendingPolicyTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def test_unknown_charger_registered_as_pending(self) -> Any:
        """With unknown_chargers=pending, a new charger is let in but only boots."""
        daemon = yield start_daemon(self, "ocpp.unknown_chargers=pending")
        client = yield connect(daemon.port, "NEW1", "its-key-0123456789")
        client.send('[2,"b","BootNotification",{"chargePointVendor":"V","chargePointModel":"M"}]')
        answer = json.loads((yield client.messages.get()))
        self.assertEqual(answer[2]["status"], "Pending")
        client.send('[2,"h","Heartbeat",{}]')
        self.assertEqual(json.loads((yield client.messages.get()))[:3], [4, "h", "SecurityError"])
        record = yield daemon.query(chargers.get_charge_point, "NEW1")
        self.assertEqual(record.registration_status, "Pending")
        self.assertIsNotNone(record.key_hash)
        client.close()
        yield client.closed


class ConnectionTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def setUp(self) -> Any:
        # The default pings: only PingTimeoutTests waits for one, and a 1 s ping
        # timeout would drop a live client whose answer a loaded machine's
        # reactor took longer to read.
        self.daemon = yield start_daemon(self, "ocpp.max_message_size=4096")
        for cp in ("CP1", "CP2"):
            self.daemon.ocppctl("charger", "add", cp, stdin=KEY + "\n")

    @inlineCallbacks
    def heartbeat(self, client: Any, unique_id: str = "hb") -> Any:
        client.send(f'[2,"{unique_id}","Heartbeat",{{}}]')
        answer = json.loads((yield client.messages.get()))
        self.assertEqual(answer[:2], [3, unique_id])
        self.assertIn("currentTime", answer[2])

    @inlineCallbacks
    def test_malformed_frames_over_a_real_socket(self) -> Any:
        """
        Malformed frames get CALLERRORs and the same connection keeps
        answering; the rejected frames are logged, Heartbeats by default not.
        """
        client = yield connect(self.daemon.port, "CP1", KEY)
        for text, expected in [
            ("{nope", [4, "-1", "FormationViolation"]),
            ('[2,"x1","NoSuchAction",{}]', [4, "x1", "NotImplemented"]),
            (
                '[2,"x2","StartTransaction",{"connectorId":"1","idTag":"T","meterStart":0,'
                '"timestamp":"2026-01-01T00:00:00Z"}]',
                [4, "x2", "TypeConstraintViolation"],
            ),
            ('[2,"x3","MeterValues",{"connectorId":1}]', [4, "x3", "OccurenceConstraintViolation"]),
        ]:
            yield self.heartbeat(client)
            client.send(text)
            self.assertEqual(json.loads((yield client.messages.get()))[:3], expected)
        # Each Heartbeat was processed before the frame after it was logged.
        rows = yield self.daemon.wait_for(
            messages.list_messages, "CP1", until=lambda rows: len(rows) >= 8
        )
        self.assertEqual(len(rows), 8)
        self.assertNotIn("Heartbeat", {r.action for r in rows})
        self.assertIn("FormationViolation", json.dumps([r.payload for r in rows]))
        client.close()
        yield client.closed

    @inlineCallbacks
    def test_oversized_frame_closes_only_that_connection(self) -> Any:
        """A message over max_message_size closes that socket (1009); others are unharmed."""
        big = yield connect(self.daemon.port, "CP1", KEY)
        other = yield connect(self.daemon.port, "CP2", KEY)
        big.send('[2,"big","DataTransfer",{"vendorId":"V","data":"' + "x" * 8000 + '"}]')
        code, _ = yield big.closed
        self.assertEqual(code, 1009)
        yield self.heartbeat(other)
        self.assertNotIn("CP1", self.daemon.node.registry)
        other.close()
        yield other.closed

    @inlineCallbacks
    def test_binary_frame_closes(self) -> Any:
        """OCPP-J is text: a binary frame closes the connection with 1003."""
        client = yield connect(self.daemon.port, "CP1", KEY)
        client.send_bytes(b"\x00\x01", binary=True)
        code, _ = yield client.closed
        self.assertEqual(code, 1003)

    @inlineCallbacks
    def test_newest_connection_wins(self) -> Any:
        """A second connection with the same id replaces the first, which is closed."""
        first = yield connect(self.daemon.port, "CP1", KEY)
        second = yield connect(self.daemon.port, "CP1", KEY)
        code, _ = yield first.closed
        self.assertEqual(code, 4000)
        yield self.heartbeat(second)
        connection = self.daemon.node.registry.get("CP1")
        self.assertIsNotNone(connection)
        # The replaced socket's disconnect must not mark the charger offline.
        record = yield self.daemon.wait_for(
            chargers.get_charge_point,
            "CP1",
            until=lambda r: r.online and r.connection_id == connection.connection_id,
        )
        self.assertTrue(record.online)
        second.close()
        yield second.closed
        yield self.daemon.wait_for(chargers.get_charge_point, "CP1", until=lambda r: not r.online)


class PingTimeoutTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def setUp(self) -> Any:
        self.daemon = yield start_daemon(self, "ocpp.ping_interval=1", "ocpp.ping_timeout=1")
        self.daemon.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")

    @inlineCallbacks
    def test_dead_socket_found_by_ping_timeout(self) -> Any:
        """A peer that stops answering pings is dropped within the ping timeout, not hours later."""
        # A raw client: completes the handshake, then never reads or answers a ping.
        closed = raw_handshake(
            self.daemon.port,
            "/ocpp/CP1",
            {"Sec-WebSocket-Protocol": "ocpp1.6", "Authorization": basic_auth("CP1", KEY)},
        )
        for _ in range(100):
            if "CP1" in self.daemon.node.registry:
                break
            yield deferLater(reactor, 0.02, lambda: None)
        self.assertIn("CP1", self.daemon.node.registry)
        response = yield closed
        self.assertIn(" 101 ", status_line(response))
        self.assertNotIn("CP1", self.daemon.node.registry)


class ChargingSessionTests(TestCase):
    """A full session by a real OCPP 1.6 client (the ocpp package over websockets)."""

    timeout = 60

    def daemon_overrides(self) -> list[str]:
        """Settings for the node under test: the embedded default here."""
        return []

    @inlineCallbacks
    def setUp(self) -> Any:
        self.daemon = yield start_daemon(self, *self.daemon_overrides())
        self.daemon.ocppctl("charger", "add", "CP1", "--station", "Main St", stdin=KEY + "\n")
        self.daemon.ocppctl("tag", "add", "TAG1")
        self.daemon.ocppctl("tag", "add", "BLOCKED1", "--status", "Blocked")

    @inlineCallbacks
    def test_full_session(self) -> Any:
        """Boot, status, authorize, start, meter values, stop: answered right and stored."""
        registry = self.daemon.node.registry

        async def scenario(cp: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            out["boot"] = await cp.call(
                call.BootNotification(
                    charge_point_vendor="Acme",
                    charge_point_model="Fast-22",
                    charge_point_serial_number="SN-1",
                    firmware_version="1.2.3",
                )
            )
            out["status"] = await cp.call(
                call.StatusNotification(
                    connector_id=1,
                    error_code="NoError",
                    status="Available",
                    timestamp="2026-11-29T10:00:00Z",
                )
            )
            out["authorize"] = await cp.call(call.Authorize(id_tag="TAG1"))
            out["unknown_tag"] = await cp.call(call.Authorize(id_tag="NOBODY"))
            start = call.StartTransaction(
                connector_id=1, id_tag="TAG1", meter_start=1000, timestamp="2026-11-29T10:00:05Z"
            )
            out["start"] = await cp.call(start)
            out["start_again"] = await cp.call(start)  # a resend after a reconnect
            tx = out["start"].transaction_id
            meter = call.MeterValues(
                connector_id=1,
                transaction_id=tx,
                meter_value=[
                    {
                        "timestamp": "2026-11-29T10:15:00Z",
                        "sampledValue": [
                            {
                                "value": "4.5",
                                "measurand": "Energy.Active.Import.Register",
                                "unit": "kWh",
                            },
                            {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                        ],
                    }
                ],
            )
            out["meter"] = await cp.call(meter)
            out["meter_again"] = await cp.call(meter)
            # The central system sends a command while the session runs.
            out["command"] = await in_reactor(registry.call, "CP1", "ClearCache", {})
            stop = call.StopTransaction(
                meter_stop=8500,
                timestamp="2026-11-29T10:30:00Z",
                transaction_id=tx,
                reason="Local",
                id_tag="TAG1",
            )
            out["stop"] = await cp.call(stop)
            out["stop_again"] = await cp.call(stop)
            out["late_meter"] = await cp.call(
                call.MeterValues(
                    connector_id=1,
                    transaction_id=tx,
                    meter_value=[
                        {
                            "timestamp": "2026-11-29T10:31:00Z",
                            "sampledValue": [{"value": "9999", "unit": "Wh"}],
                        }
                    ],
                )
            )
            out["unknown_stop"] = await cp.call(
                call.StopTransaction(
                    meter_stop=5, timestamp="2026-11-29T10:32:00Z", transaction_id=999999
                )
            )
            out["heartbeat"] = await cp.call(call.Heartbeat())
            return out

        out = yield run_charger(self.daemon.url("CP1"), "CP1", KEY, scenario)
        self.assertEqual(out["boot"].status, "Accepted")
        self.assertEqual(out["boot"].interval, 300)
        self.assertEqual(out["authorize"].id_tag_info["status"], "Accepted")
        self.assertEqual(out["unknown_tag"].id_tag_info["status"], "Invalid")
        tx = out["start"].transaction_id
        self.assertEqual(out["start"].id_tag_info["status"], "Accepted")
        self.assertEqual(out["start_again"].transaction_id, tx)
        self.assertEqual(out["command"], {"status": "Accepted"})
        self.assertEqual(out["stop"].id_tag_info["status"], "Accepted")
        self.assertTrue(out["heartbeat"].current_time.endswith("Z"))

        session = yield self.daemon.wait_for(
            transactions.get_transaction,
            tx,
            until=lambda t: t is not None and t.status == "completed",
        )
        self.assertEqual((session.meter_start_wh, session.meter_stop_wh), (1000, 8500))
        self.assertEqual(session.energy_wh, 7500)
        self.assertEqual(session.stop_reason, "Local")
        self.assertEqual(session.started_at.isoformat(), "2026-11-29T10:00:05+00:00")
        samples = yield self._meter_values(tx)
        by_measurand = {(s.measurand, s.value) for s in samples}
        self.assertIn(("Energy.Active.Import.Register", "4.5"), by_measurand)
        self.assertIn(("Power.Active.Import", "11000"), by_measurand)
        self.assertEqual(len(samples), 3)  # two samples once, plus the late one
        self.assertEqual([s.value_wh for s in samples if s.value == "4.5"], [4500])
        record = yield self.daemon.query(chargers.get_charge_point, "CP1")
        self.assertEqual(
            (record.vendor, record.model, record.firmware_version), ("Acme", "Fast-22", "1.2.3")
        )
        connectors = yield self.daemon.query(chargers.list_connectors, "CP1")
        self.assertEqual([(c.connector_id, c.status) for c in connectors], [(1, "Available")])
        unmatched = yield self.daemon.wait_for(
            transactions.list_unmatched_stops, "CP1", until=lambda rows: len(rows) == 1
        )
        self.assertEqual(unmatched[0].transaction_id, 999999)
        # The last logged answer (the unknown stop); Heartbeats are not logged by default.
        log = yield self.daemon.wait_for(
            messages.list_messages,
            "CP1",
            until=lambda rows: (
                sum(r.action == "StopTransaction" and r.direction == "out" for r in rows) == 3
            ),
        )
        kinds = {(r.direction, r.message_type, r.action) for r in log}
        self.assertIn(("in", "CALL", "StartTransaction"), kinds)
        self.assertIn(("out", "CALLRESULT", "StartTransaction"), kinds)
        self.assertIn(("out", "CALL", "ClearCache"), kinds)
        self.assertIn(("in", "CALLRESULT", "ClearCache"), kinds)

    @inlineCallbacks
    def _meter_values(self, tx: int) -> Any:
        return (
            yield self.daemon.wait_for(
                lambda conn: transactions.list_meter_values(conn, transaction_id=tx),
                until=lambda rows: len(rows) >= 3,
            )
        )

    @inlineCallbacks
    def test_offline_start_with_blocked_tag_is_recorded(self) -> Any:
        """A StartTransaction with a refused tag is answered with its status and still recorded."""

        async def scenario(cp: Any) -> Any:
            await cp.call(call.BootNotification(charge_point_vendor="V", charge_point_model="M"))
            return await cp.call(
                call.StartTransaction(
                    connector_id=2,
                    id_tag="BLOCKED1",
                    meter_start=0,
                    timestamp="2026-11-29T09:00:00Z",
                )
            )

        start = yield run_charger(self.daemon.url("CP1"), "CP1", KEY, scenario)
        self.assertEqual(start.id_tag_info["status"], "Blocked")
        session = yield self.daemon.query(transactions.get_transaction, start.transaction_id)
        self.assertEqual((session.id_tag, session.id_tag_status), ("BLOCKED1", "Blocked"))


class AmqpChargingSessionTests(ChargingSessionTests):
    """The same sessions with the production bus: RabbitMQ on 127.0.0.1:5672."""

    def daemon_overrides(self) -> list[str]:
        return amqp_overrides(self)

    def test_runs_on_rabbitmq(self) -> None:
        """The node under test really publishes to the broker (not the embedded bus)."""
        bus = self.daemon.node.bus
        self.assertEqual(type(bus).__name__, "AmqpBus")
        self.assertTrue(bus.connected)


class PostgresChargingSessionTests(ChargingSessionTests):
    """The same sessions with the production store: PostgreSQL on 127.0.0.1:5432."""

    def daemon_overrides(self) -> list[str]:
        return postgres_overrides(self)

    def test_runs_on_postgres(self) -> None:
        """The node under test really stores to PostgreSQL, in its own schema."""
        engine = self.daemon.node.database.engine
        self.assertEqual(engine.dialect.name, "postgresql")
        self.assertIn("search_path", str(engine.url))
