"""Tests for ocppd.ocpp.connection: one charger's OCPP-J conversation, without sockets."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus.interface import BusError
from ocppd.ocpp.commands import ChargerDisconnected
from ocppd.ocpp.connection import MAX_QUEUED_CALLS, BuiltAnswer, ChargerConnection
from ocppd.ocpp.errors import OcppError
from ocppd.ocpp.registry import CLOSE_REPLACED, ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.ratelog import RepeatLog
from tests.ocpp.fakes import FakeTransport, RecordingTraffic, ScriptedHandler

SCHEMAS = SchemaRegistry.load()


class ChargerConnectionTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.transport = FakeTransport()
        self.handler = ScriptedHandler()
        self.traffic = RecordingTraffic()
        self.connection = ChargerConnection(
            "CP1",
            connection_id="c1",
            registration_status="Accepted",
            transport=self.transport,
            handler=self.handler,  # type: ignore[arg-type]
            schemas=SCHEMAS,
            traffic=self.traffic,  # type: ignore[arg-type]
            clock=Clock(),
            call_timeout=30,
        )

    def heartbeat_still_answered(self) -> None:
        self.connection.text_received('[2,"hb","Heartbeat",{}]')
        self.handler.pending[-1].callback({"currentTime": "2026-01-01T00:00:00.000Z"})
        self.assertEqual(
            self.transport.last(), [3, "hb", {"currentTime": "2026-01-01T00:00:00.000Z"}]
        )

    def test_bad_input_matrix(self) -> None:
        """Each malformed frame gets the right CALLERROR; a Heartbeat is still answered after."""
        cases = [
            ("not json", "-1", "FormationViolation"),
            ('[2,"a1","Heartbeat",{"x":NaN}]', "a1", "FormationViolation"),
            ('{"a":1}', "-1", "ProtocolError"),
            ('[2,"a2"]', "a2", "ProtocolError"),
            ('[7,"a3","Heartbeat",{}]', "a3", "PropertyConstraintViolation"),
            ('[2,"a4","FlyToTheMoon",{}]', "a4", "NotImplemented"),
            ('[2,"a5","Reset",{"type":"Hard"}]', "a5", "NotSupported"),
            (
                '[2,"a6","SecurityEventNotification",{"type":"x","timestamp":"2026-01-01T00:00:00Z"}]',
                "a6",
                "NotSupported",
            ),
            (
                '[2,"a7","Authorize",{"idTag":"' + "x" * 21 + '"}]',
                "a7",
                "PropertyConstraintViolation",
            ),
            ('[2,"a8","Authorize",{"idTag":5}]', "a8", "TypeConstraintViolation"),
            ('[2,"a9","Authorize",{}]', "a9", "OccurenceConstraintViolation"),
            ('[2,"a10","Authorize",{"idTag":"x","more":1}]', "a10", "FormationViolation"),
            (
                '[2,"a11","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Napping"}]',
                "a11",
                "PropertyConstraintViolation",
            ),
            ("[" * 100000, "-1", "FormationViolation"),
        ]
        for text, unique_id, code in cases:
            self.connection.text_received(text)
            frame = self.transport.last()
            self.assertEqual(frame[:3], [4, unique_id, code], text[:60])
            self.assertIsInstance(frame[3], str)
            self.assertIsInstance(frame[4], dict)
            self.heartbeat_still_answered()
        self.assertEqual(
            [e for e in self.traffic.events if e[0] == "rejected"][5:8],
            [
                ("rejected", ("NotImplemented", "FlyToTheMoon")),
                ("rejected", ("NotSupported", "Reset")),
                ("rejected", ("NotSupported", "SecurityEventNotification")),
            ],
        )
        self.assertEqual(len(self.handler.calls), len(cases))  # only the Heartbeats reached it

    def test_calls_handled_one_at_a_time_in_order(self) -> None:
        """A second CALL waits for the first's answer: MeterValues never overtakes a Start."""
        self.connection.text_received('[2,"1","Heartbeat",{}]')
        self.connection.text_received('[2,"2","Heartbeat",{}]')
        self.assertEqual([c.unique_id for c in self.handler.calls], ["1"])
        self.handler.pending[0].callback({"currentTime": "2026-01-01T00:00:00Z"})
        self.assertEqual([c.unique_id for c in self.handler.calls], ["1", "2"])
        self.handler.pending[1].callback({"currentTime": "2026-01-01T00:00:01Z"})
        self.assertEqual([f[1] for f in self.transport.frames()], ["1", "2"])

    def test_ready_answers_sent_at_once_in_order(self) -> None:
        """
        Answers the handler has at once are sent at once, and a call queued
        behind a waiting one is answered, in order, when its turn comes.
        """
        now = {"currentTime": "2026-01-01T00:00:00.000Z"}
        self.handler.ready["Heartbeat"] = now
        self.connection.text_received('[2,"1","Heartbeat",{}]')
        self.assertEqual(self.transport.last(), [3, "1", now])
        self.connection.text_received('[2,"2","Authorize",{"idTag":"T"}]')
        self.connection.text_received('[2,"3","Heartbeat",{}]')
        self.connection.text_received('[2,"4","Heartbeat",{}]')
        self.assertEqual([f[1] for f in self.transport.frames()], ["1"])
        self.handler.pending[0].callback({"idTagInfo": {"status": "Accepted"}})
        self.assertEqual([f[1] for f in self.transport.frames()], ["1", "2", "3", "4"])

    def test_handler_raising_at_once_is_internal_error(self) -> None:
        """A handler raising rather than failing a Deferred: InternalError; the next call works."""
        self.handler.ready["Heartbeat"] = ZeroDivisionError()
        self.connection.text_received('[2,"z","Heartbeat",{}]')
        self.assertEqual(self.transport.last()[:3], [4, "z", "InternalError"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        del self.handler.ready["Heartbeat"]
        self.heartbeat_still_answered()

    def test_too_many_queued_calls(self) -> None:
        """Past MAX_QUEUED_CALLS waiting CALLs, more are refused rather than buffered forever."""
        for i in range(MAX_QUEUED_CALLS + 2):
            self.connection.text_received(f'[2,"q{i}","Heartbeat",{{}}]')
        self.assertEqual(self.transport.last()[:3], [4, f"q{MAX_QUEUED_CALLS + 1}", "GenericError"])

    def test_handler_ocpp_error_becomes_call_error(self) -> None:
        """An OcppError from a handler is sent as a CALLERROR with its code."""
        self.connection.text_received('[2,"s","Heartbeat",{}]')
        self.handler.pending[0].errback(OcppError("SecurityError", "not yet"))
        self.assertEqual(self.transport.last(), [4, "s", "SecurityError", "not yet", {}])

    def test_handler_crash_is_internal_error(self) -> None:
        """An unexpected exception is logged, answered with InternalError; the next call works."""
        self.connection.text_received('[2,"c","Heartbeat",{}]')
        self.handler.pending[0].errback(ZeroDivisionError())
        self.assertEqual(self.transport.last()[:3], [4, "c", "InternalError"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
        self.heartbeat_still_answered()

    def test_bus_refusal_is_internal_error_without_traceback(self) -> None:
        """A BusError (broker away) is answered InternalError and logged as one line."""
        self.connection.text_received('[2,"b","Heartbeat",{}]')
        self.handler.pending[0].errback(BusError("not connected"))
        self.assertEqual(self.transport.last()[:3], [4, "b", "InternalError"])
        self.assertEqual(self.flushLoggedErrors(BusError), [])

    def test_outage_failures_of_many_chargers_are_logged_once_with_a_count(self) -> None:
        """
        The store failing every charger's StartTransaction (PostgreSQL
        stopped) writes one traceback and, a minute later, one line counting
        the rest; refusals by the bus likewise, not a line per call.
        """
        clock = Clock()
        failures = RepeatLog(ChargerConnection.log, clock)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for n in range(50):
            handler = ScriptedHandler()
            transport = FakeTransport()
            connection = ChargerConnection(
                f"CP{n}",
                connection_id=f"c{n}",
                registration_status="Accepted",
                transport=transport,
                handler=handler,  # type: ignore[arg-type]
                schemas=SCHEMAS,
                traffic=self.traffic,  # type: ignore[arg-type]
                clock=clock,
                call_timeout=30,
                failures=failures,
            )
            connection.text_received(
                '[2,"s","StartTransaction",{"connectorId":1,"idTag":"T",'
                '"meterStart":0,"timestamp":"2026-01-01T00:00:00Z"}]'
            )
            handler.pending[0].errback(ConnectionRefusedError("database is down"))
            connection.text_received('[2,"h","Heartbeat",{}]')
            handler.pending[1].errback(BusError("not connected"))
            self.assertEqual(
                [f[:3] for f in transport.frames()][-2:],
                [[4, "s", "InternalError"], [4, "h", "InternalError"]],
            )
        clock.advance(60)
        lines = [e for e in events if e.get("log_namespace", "").endswith("ChargerConnection")]
        self.assertEqual(len(lines), 4, [e["log_format"] for e in lines])
        self.assertEqual(len(self.flushLoggedErrors(ConnectionRefusedError)), 1)
        self.assertEqual(sorted(e["suppressed"] for e in lines), [0, 0, 49, 49])

    def test_invalid_own_response_is_internal_error(self) -> None:
        """A response of ours that fails its schema is never sent; InternalError is."""
        self.connection.text_received('[2,"r","Heartbeat",{}]')
        self.handler.pending[0].callback({"currentTime": 12})
        self.assertEqual(self.transport.last()[:3], [4, "r", "InternalError"])

    def test_built_answer_sent_without_its_schema(self) -> None:
        """
        A BuiltAnswer is valid by construction, so it is not checked again: the
        proof that the check is skipped is an invalid one going out as it is.
        """
        self.connection.text_received('[2,"r","Heartbeat",{}]')
        self.handler.pending[0].callback(BuiltAnswer(currentTime=12))
        self.assertEqual(self.transport.last(), [3, "r", {"currentTime": 12}])

    def test_replies_go_to_the_command_queue(self) -> None:
        """A CALLRESULT from the charger answers our outstanding command."""
        results: list[object] = []
        self.connection.call("ClearCache", {}).addBoth(results.append)
        sent = self.transport.last()
        self.assertEqual(sent[0], 2)
        self.connection.text_received(json.dumps([3, sent[1], {"status": "Accepted"}]))
        self.assertEqual(results, [{"status": "Accepted"}])
        self.assertIn(("sent", "ClearCache"), self.traffic.events)
        self.assertIn(("reply", ("ClearCache", "CallResult")), self.traffic.events)

    def test_malformed_reply_fails_the_command_without_an_answer(self) -> None:
        """A broken CALLRESULT is never answered (OCPP-J answers CALLs only); our command fails."""
        results: list[object] = []
        self.connection.call("ClearCache", {}).addBoth(results.append)
        unique_id = self.transport.last()[1]
        self.connection.text_received(f'[3,"{unique_id}"]')
        self.assertEqual(len(self.transport.sent), 1)  # only our CALL
        self.assertEqual(results[0].value.code, "ProtocolError")  # type: ignore[attr-defined]
        self.assertIn(("rejected", ("ProtocolError", None)), self.traffic.events)

    def test_nothing_sent_after_connection_lost(self) -> None:
        """An answer that completes after the socket closed is not written."""
        self.connection.text_received('[2,"late","Heartbeat",{}]')
        self.connection.connection_lost()
        self.handler.pending[0].callback({"currentTime": "2026-01-01T00:00:00Z"})
        self.assertEqual(self.transport.sent, [])

    def test_idle_connection_is_small(self) -> None:
        """
        No per-connection dict, and no command queue until a command is sent:
        most connections idle between reconnects and never get one.
        """
        self.assertFalse(hasattr(self.connection, "__dict__"))
        self.assertIsNone(self.connection._commands)
        self.heartbeat_still_answered()
        self.assertIsNone(self.connection._commands)
        self.connection.call("ClearCache", {})
        self.assertIsNotNone(self.connection._commands)

    def test_command_after_connection_lost_fails_at_once(self) -> None:
        """Lost before its first command: the queue made afterwards refuses at once."""
        self.connection.connection_lost("gone")
        with self.assertRaises(ChargerDisconnected):
            self.connection.call("ClearCache", {})
        self.assertEqual(self.transport.sent, [])


class RegistryTests(SynchronousTestCase):
    def make(
        self, registry: Any, charge_point_id: str = "CP1"
    ) -> tuple[ChargerConnection, FakeTransport]:
        transport = FakeTransport()
        connection = ChargerConnection(
            charge_point_id,
            connection_id=f"c{len(registry)}",
            registration_status="Accepted",
            transport=transport,
            handler=ScriptedHandler(),  # type: ignore[arg-type]
            schemas=SCHEMAS,
            traffic=RecordingTraffic(),  # type: ignore[arg-type]
            clock=Clock(),
            call_timeout=30,
        )
        return connection, transport

    def test_newest_wins_and_stale_unregister_is_ignored(self) -> None:
        """Registering a second connection closes the first; its late unregister changes nothing."""
        registry = ConnectionRegistry()
        old, old_transport = self.make(registry)
        registry.register(old)
        new, _ = self.make(registry)
        registry.register(new)
        self.assertEqual(old_transport.closed, (CLOSE_REPLACED, "replaced by a newer connection"))
        self.assertFalse(registry.unregister(old))
        self.assertIs(registry.get("CP1"), new)

    def test_close_all_waits_for_the_sockets(self) -> None:
        """close_all fires once every connection has gone, or after its timeout."""
        clock = Clock()
        registry = ConnectionRegistry()
        first, first_transport = self.make(registry, "CP1")
        second, _ = self.make(registry, "CP2")
        registry.register(first)
        registry.register(second)
        done: list[object] = []
        registry.close_all(clock).addCallback(done.append)
        self.assertEqual(first_transport.closed, (1001, "central system shutting down"))
        registry.unregister(first)
        self.assertEqual(done, [])
        registry.unregister(second)
        self.assertEqual(done, [None])
        self.assertEqual(clock.getDelayedCalls(), [])
        # A connection that never closes: close_all gives up after the timeout.
        stuck, _ = self.make(registry, "CP3")
        registry.register(stuck)
        late: list[object] = []
        registry.close_all(clock, timeout=6).addCallback(late.append)
        clock.advance(6)
        self.assertEqual(late, [None])
