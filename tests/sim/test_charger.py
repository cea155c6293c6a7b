"""SimulatedCharger on a Clock with a fake socket: no network, no real time."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp.frames import Call
from tests.sim.fakes import Site


def energy_values(calls: list[Call]) -> list[str]:
    """The Energy.Active.Import.Register values of every MeterValues, in order."""
    return [
        sample["value"]
        for call in calls
        if call.action == "MeterValues"
        for value in call.payload["meterValue"]
        for sample in value["sampledValue"]
        if sample["measurand"] == "Energy.Active.Import.Register"
    ]


def measurand(call: Call, name: str) -> str:
    for sample in call.payload["meterValue"][0]["sampledValue"]:
        if sample["measurand"] == name:
            return str(sample["value"])
    raise AssertionError(f"no {name} in {call.payload}")


class BootTests(SynchronousTestCase):
    def test_boot_then_status_then_heartbeat_at_the_given_interval(self) -> None:
        """
        BootNotification goes first and alone; once Accepted a status per
        connector (0 included) follows, and heartbeats come at the interval
        the central system returned.
        """
        site = Site(connectors=2)
        site.boot_answer = {"status": "Accepted", "interval": 120}
        site.connect()
        self.assertEqual(site.pending().action, "BootNotification")  # type: ignore[union-attr]
        calls = site.answer_all()
        self.assertEqual(site.actions(calls), ["BootNotification"] + ["StatusNotification"] * 3)
        self.assertEqual([c.payload["connectorId"] for c in calls[1:]], [0, 1, 2])
        site.clock.advance(119)
        self.assertIsNone(site.pending())
        site.clock.advance(1)
        self.assertEqual(site.actions(site.answer_all()), ["Heartbeat"])
        site.clock.advance(120)
        self.assertEqual(site.actions(site.answer_all()), ["Heartbeat"])

    def test_pending_boot_is_retried_and_nothing_else_is_sent(self) -> None:
        """A Pending charger sends nothing but BootNotification, again after the interval."""
        site = Site()
        site.boot_answer = {"status": "Pending", "interval": 10}
        site.connect()
        site.answer()
        site.charger.start_session(1, "TAG1")  # a driver plugs in meanwhile
        self.assertIsNone(site.pending())
        site.clock.advance(10)
        self.assertEqual(site.pending().action, "BootNotification")  # type: ignore[union-attr]
        site.boot_answer = {"status": "Accepted", "interval": 10}
        actions = site.actions(site.answer_all())
        self.assertEqual(actions[:2], ["BootNotification", "StartTransaction"])


class MeterTests(SynchronousTestCase):
    def test_meter_values_are_integer_wh_and_increase(self) -> None:
        """
        Every meter interval a MeterValues carries the transactionId and an
        integer Wh register that only grows; meterStop is the last reading.
        """
        site = Site(meter_interval=10, time_scale=60)
        site.boot()
        session = site.charger.start_session(1, "TAG1")
        assert session is not None
        site.answer_all()
        calls = []
        for _ in range(6):
            site.clock.advance(10)
            calls += site.answer_all()
        values = energy_values(calls)
        self.assertEqual(len(values), 6)
        registers = [int(v) for v in values]  # raises if not an integer string
        self.assertEqual([str(r) for r in registers], values)
        self.assertGreater(registers[0], session.meter_start)
        self.assertEqual(registers, sorted(set(registers)))
        meter_values = [c for c in calls if c.action == "MeterValues"]
        self.assertEqual({c.payload["transactionId"] for c in meter_values}, {101})
        # 11 kW for 10 s x 60 = 600 s of battery time per sample is about 1833 Wh.
        self.assertAlmostEqual(registers[1] - registers[0], 1833, delta=2)
        site.clock.advance(5)
        site.charger.stop_session(1)
        stop, status = site.answer_all()
        self.assertEqual((stop.action, status.payload["status"]), ("StopTransaction", "Available"))
        self.assertGreaterEqual(stop.payload["meterStop"], registers[-1])
        self.assertEqual(stop.payload["transactionId"], 101)

    def test_power_tapers_as_the_battery_fills(self) -> None:
        """The reported power is constant at first, then falls, while energy still grows."""
        site = Site(meter_interval=60, time_scale=30)
        site.boot()
        site.charger.start_session(1, "TAG1")
        site.answer_all()
        calls = []
        for _ in range(30):  # 15 hours of battery time
            site.clock.advance(60)
            calls += site.answer_all()
        samples = [c for c in calls if c.action == "MeterValues"]
        powers = [int(measurand(c, "Power.Active.Import")) for c in samples]
        self.assertEqual(powers[0], 11_000)
        self.assertLess(powers[-1], 2_000)
        self.assertEqual(powers, sorted(powers, reverse=True))
        socs = [int(measurand(c, "SoC")) for c in samples]
        self.assertEqual(socs, sorted(socs))
        self.assertGreater(float(measurand(samples[0], "Current.Import")), 15.0)


class CommandTests(SynchronousTestCase):
    def booted(self, **settings: Any) -> Site:
        site = Site(**settings)
        site.boot()
        return site

    def test_remote_start_starts_a_session_and_a_busy_connector_is_rejected(self) -> None:
        """RemoteStart on a free connector starts a session; on a busy one it is Rejected."""
        site = self.booted()
        answer = site.command("RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 1})
        self.assertEqual(answer, [3, answer[1], {"status": "Accepted"}])
        start = site.answer()
        self.assertEqual(start.action, "StartTransaction")
        self.assertEqual((start.payload["connectorId"], start.payload["idTag"]), (1, "TAG1"))
        again = site.command("RemoteStartTransaction", {"idTag": "TAG2", "connectorId": 1})
        self.assertEqual(again[2], {"status": "Rejected"})
        other = site.command("RemoteStartTransaction", {"idTag": "TAG2"})
        self.assertEqual(other[2], {"status": "Accepted"})  # no connector: the free one
        site.answer_all()
        self.assertEqual(site.charger.connectors[2].session.id_tag, "TAG2")  # type: ignore[union-attr]

    def test_remote_stop_stops_the_session(self) -> None:
        """RemoteStop of a known transaction stops it (reason Remote); an unknown one: Rejected."""
        site = self.booted()
        site.charger.start_session(1, "TAG1")
        site.answer_all()
        self.assertEqual(
            site.command("RemoteStopTransaction", {"transactionId": 999})[2],
            {"status": "Rejected"},
        )
        answer = site.command("RemoteStopTransaction", {"transactionId": 101})
        self.assertEqual(answer[2], {"status": "Accepted"})
        stop = site.answer()
        self.assertEqual(stop.action, "StopTransaction")
        self.assertEqual(stop.payload["reason"], "Remote")
        self.assertIsNone(site.charger.connectors[1].session)

    def test_change_configuration_is_remembered(self) -> None:
        """ChangeConfiguration is Accepted, seen by GetConfiguration, and applied (heartbeat)."""
        site = self.booted()
        answer = site.command("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "5"})
        self.assertEqual(answer[2], {"status": "Accepted"})
        got = site.command("GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey"]})
        self.assertEqual(
            got[2],
            {
                "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "5"}],
                "unknownKey": ["NoSuchKey"],
            },
        )
        site.clock.advance(5)
        self.assertEqual(site.actions(site.answer_all()), ["Heartbeat"])
        for key, value, status in [
            ("NumberOfConnectors", "4", "Rejected"),  # read-only
            ("HeartbeatInterval", "soon", "Rejected"),
            ("Nonsense", "1", "NotSupported"),
        ]:
            answer = site.command("ChangeConfiguration", {"key": key, "value": value})
            self.assertEqual(answer[2], {"status": status}, key)
        everything = site.command("GetConfiguration", {})[2]
        keys = {entry["key"] for entry in everything["configurationKey"]}
        self.assertIn("MeterValueSampleInterval", keys)
        self.assertNotIn("unknownKey", everything)

    def test_reset_stops_sessions_closes_and_boots_again(self) -> None:
        """
        Reset stops every session with SoftReset/HardReset, closes the
        socket once the stops are answered, and the next connection boots.
        """
        for kind, reason in [("Soft", "SoftReset"), ("Hard", "HardReset")]:
            site = self.booted()
            site.charger.start_session(1, "TAG1")
            site.charger.start_session(2, "TAG2")
            site.answer_all()
            self.assertEqual(site.command("Reset", {"type": kind})[2], {"status": "Accepted"})
            self.assertEqual(site.transport.closed, [])
            calls = site.answer_all()
            stops = [c for c in calls if c.action == "StopTransaction"]
            self.assertEqual([s.payload["reason"] for s in stops], [reason, reason])
            self.assertEqual(site.transport.closed, [(1000, reason)])
            site.charger.connection_lost("closed")
            site.connect()
            self.assertEqual(site.pending().action, "BootNotification")  # type: ignore[union-attr]
            site.answer_all()
            self.assertEqual(site.charger.stats.boots, 2)
            self.assertIsNotNone(site.charger.start_session(1, "TAG1"))

    def test_trigger_message_sends_the_message(self) -> None:
        """TriggerMessage is Accepted and the requested message follows."""
        site = self.booted()
        for requested, extra in [
            ("Heartbeat", {}),
            ("StatusNotification", {"connectorId": 2}),
            ("MeterValues", {"connectorId": 1}),
            ("BootNotification", {}),
        ]:
            answer = site.command("TriggerMessage", {"requestedMessage": requested, **extra})
            self.assertEqual(answer[2], {"status": "Accepted"})
            calls = site.answer_all()
            self.assertEqual(calls[0].action, requested)
        rejected = site.command(
            "TriggerMessage", {"requestedMessage": "Heartbeat", "connectorId": 9}
        )
        self.assertEqual(rejected[2], {"status": "Rejected"})

    def test_get_diagnostics_uploads_and_says_so(self) -> None:
        """
        GetDiagnostics to an http location: the file's name in the answer, then
        Uploading, the upload to location + name, and Uploaded (UploadFailed
        when the upload fails); without an uploader, no file.
        """
        site = self.booted()
        uploads: list[tuple[str, bytes]] = []
        outcome: list[Deferred[Any]] = []

        def upload(url: str, body: bytes) -> Deferred[Any]:
            uploads.append((url, body))
            outcome.append(Deferred())
            return outcome[-1]

        self.assertEqual(
            site.command("GetDiagnostics", {"location": "http://cs.example/up/"})[2], {}
        )
        site.charger._upload = upload
        answer = site.command("GetDiagnostics", {"location": "http://cs.example/up/tok/"})
        self.assertEqual(answer[2], {"fileName": "CP-1-diagnostics.log"})
        [(url, body)] = uploads
        self.assertEqual(url, "http://cs.example/up/tok/CP-1-diagnostics.log")
        self.assertIn(b"HeartbeatInterval=", body)
        self.assertEqual(
            [(c.action, c.payload) for c in site.answer_all()],
            [("DiagnosticsStatusNotification", {"status": "Uploading"})],
        )
        outcome[0].callback(None)
        self.assertEqual([c.payload for c in site.answer_all()], [{"status": "Uploaded"}])
        site.command("GetDiagnostics", {"location": "https://cs.example/up/other"})
        self.assertEqual(uploads[1][0], "https://cs.example/up/other/CP-1-diagnostics.log")
        site.answer_all()
        outcome[1].errback(RuntimeError("503"))
        self.flushLoggedErrors()
        self.assertEqual([c.payload for c in site.answer_all()], [{"status": "UploadFailed"}])
        self.assertEqual(site.command("GetDiagnostics", {"location": "ftp://cs.example/"})[2], {})

    def test_simple_commands(self) -> None:
        """ClearCache, UnlockConnector and ChangeAvailability answer as a healthy charger does."""
        site = self.booted()
        self.assertEqual(site.command("ClearCache", {})[2], {"status": "Accepted"})
        self.assertEqual(
            site.command("UnlockConnector", {"connectorId": 1})[2], {"status": "Unlocked"}
        )
        self.assertEqual(
            site.command("UnlockConnector", {"connectorId": 7})[2], {"status": "NotSupported"}
        )
        answer = site.command("ChangeAvailability", {"connectorId": 2, "type": "Inoperative"})
        self.assertEqual(answer[2], {"status": "Accepted"})
        status = site.answer_all()
        self.assertEqual(status[0].payload["status"], "Unavailable")
        self.assertIsNone(site.charger.start_session(2, "TAG1"))
        site.charger.start_session(1, "TAG1")
        site.answer_all()
        scheduled = site.command("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"})
        self.assertEqual(scheduled[2], {"status": "Scheduled"})

    def test_unsupported_and_unknown_actions(self) -> None:
        """OCPP-J 1.6 table 7: a known action we do not do is NotSupported, else NotImplemented."""
        site = self.booted()
        answer = site.command(
            "UpdateFirmware",
            {"location": "ftp://example.com/", "retrieveDate": "2026-12-07T10:00:00Z"},
        )
        self.assertEqual(answer[2], "NotSupported")
        self.assertEqual(site.command("MakeCoffee", {})[2], "NotImplemented")
        invalid = site.command("RemoteStartTransaction", {"connectorId": 1})
        self.assertEqual(invalid[2], "OccurenceConstraintViolation")
        self.assertEqual(site.command("Heartbeat", {})[2], "NotSupported")


class QueueTests(SynchronousTestCase):
    def test_transaction_messages_are_resent_in_order_after_a_reconnect(self) -> None:
        """
        Offline, the session keeps metering; after the reconnect and the
        boot, the queued MeterValues and StopTransaction go out in order.
        """
        site = Site(meter_interval=10, time_scale=60)
        site.boot()
        site.charger.start_session(1, "TAG1")
        site.answer_all()
        old = site.transport
        site.charger.connection_lost("network down")
        for _ in range(3):
            site.clock.advance(10)
        site.charger.stop_session(1)
        self.assertEqual(old.sent, site.transport.sent)  # nothing written while offline
        site.connect()
        calls = site.answer_all()
        actions = site.actions(calls)
        self.assertEqual(actions[0], "BootNotification")
        transactional = [a for a in actions if a in ("MeterValues", "StopTransaction")]
        self.assertEqual(transactional, ["MeterValues"] * 3 + ["StopTransaction"])
        registers = [int(v) for v in energy_values(calls)]
        self.assertEqual(registers, sorted(set(registers)))
        stop = next(c for c in calls if c.action == "StopTransaction")
        self.assertGreaterEqual(stop.payload["meterStop"], registers[-1])

    def test_an_unanswered_start_is_resent_and_its_id_reaches_later_messages(self) -> None:
        """
        A StartTransaction lost with the connection is resent after the
        boot; MeterValues queued behind it carry the id its answer gave.
        """
        site = Site(meter_interval=10, time_scale=60)
        site.boot()
        site.charger.start_session(1, "TAG1")
        lost = site.pending()
        assert lost is not None
        site.charger.connection_lost("network down")
        site.clock.pump([10, 10])
        site.connect()
        calls = site.answer_all()
        starts = [c for c in calls if c.action == "StartTransaction"]
        self.assertEqual(len(starts), 1)
        self.assertEqual(starts[0].payload, lost.payload)
        meter = [c for c in calls if c.action == "MeterValues"]
        self.assertEqual(len(meter), 2)
        self.assertEqual({c.payload["transactionId"] for c in meter}, {101})

    def test_timeouts_retry_transaction_messages_only(self) -> None:
        """A timed-out StartTransaction is retried; a timed-out Heartbeat is dropped."""
        site = Site(call_timeout=5, meter_interval=0)
        site.boot()
        site.charger.start_session(1, "TAG1")
        first = site.pending()
        site.clock.advance(5)  # no answer: timeout, wait retry_interval
        self.assertEqual(site.pending(), first)
        site.clock.advance(5)
        second = site.pending()
        assert first is not None and second is not None
        self.assertEqual(second.action, "StartTransaction")
        self.assertNotEqual(second.unique_id, first.unique_id)
        self.assertEqual(second.payload, first.payload)
        site.answer_all()
        site.clock.advance(300)
        beat = site.pending()
        assert beat is not None
        self.assertEqual(beat.action, "Heartbeat")
        site.clock.advance(5)
        self.assertEqual(site.charger.outbox.queued_actions, [])  # dropped, not retried
        sent = len(site.transport.sent)
        site.clock.advance(30)
        self.assertEqual(len(site.transport.sent), sent)  # and never resent
