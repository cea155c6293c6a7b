"""Simulated chargers against a whole ocppd node on ephemeral ports."""

from __future__ import annotations

import random
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, succeed
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from ocppd.ocpp.commands import ChargerDisconnected
from ocppd.sim.charger import ChargerSettings, SimulatedCharger
from ocppd.sim.client import Fleet, charger_service
from ocppd.store import transactions
from tests.integration.daemon import poll, start_daemon
from tests.sim.fakes import SCHEMAS

KEY = "sim-secret-0123456789"


def until_true(predicate: Any) -> Any:
    """Poll a plain condition of the simulator's state."""
    return poll(lambda: succeed(predicate()), until=bool, timeout=10)


class SimulatorAgainstOcppdTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def setUp(self) -> Any:
        self.daemon = yield start_daemon(self)
        for n in (1, 2, 3):
            self.daemon.ocppctl("charger", "add", f"SIM-{n}", stdin=f"{KEY}\n")
        self.daemon.ocppctl("tag", "add", "TAG1")
        self.daemon.ocppctl("tag", "add", "TAG2")
        self.chargers = [
            SimulatedCharger(
                ChargerSettings(f"SIM-{n}", meter_interval=0.1, time_scale=600, call_timeout=5),
                schemas=SCHEMAS,
                clock=reactor,
                rng=random.Random(n),
            )
            for n in (1, 2, 3)
        ]
        rng = random.Random(0)
        base_url = f"ws://127.0.0.1:{self.daemon.port}/ocpp/"
        self.fleet = Fleet(
            self.chargers,
            lambda charger: charger_service(
                charger,
                base_url=base_url,
                key=KEY,
                reactor=reactor,
                rng=rng,
                initial_delay=0.05,
                max_delay=0.5,
            ),
        )
        self.fleet.startService()
        # Before the daemon's own cleanup (last in, first out).
        self.addCleanup(self.fleet.stopService)
        yield until_true(lambda: all(c.accepted for c in self.chargers))

    @inlineCallbacks
    def test_a_session_is_stored_with_the_metered_energy(self) -> None:
        """
        Three chargers boot; one charges for a few meter intervals and stops;
        ocppd stores the session with energy = meterStop - meterStart.
        """
        charger = self.chargers[0]
        session = charger.start_session(1, "TAG1")
        assert session is not None
        transaction_id = yield session.started
        yield deferLater(reactor, 0.45, lambda: None)
        yield charger.stop_session(1)
        stored = yield self.daemon.wait_for(
            transactions.get_transaction,
            transaction_id,
            until=lambda r: r is not None and r.status == "completed",
        )
        assert session.meter_stop is not None
        self.assertEqual(stored.charge_point_id, "SIM-1")
        self.assertEqual(stored.meter_start_wh, session.meter_start)
        self.assertEqual(stored.meter_stop_wh, session.meter_stop)
        self.assertEqual(stored.energy_wh, session.meter_stop - session.meter_start)
        # 0.45 s x 600 at 11 kW is over 800 Wh: a real session, not a rounding error.
        self.assertGreater(stored.energy_wh, 500)
        samples = yield self.daemon.query(
            transactions.list_meter_values, charge_point_id="SIM-1", transaction_id=transaction_id
        )
        registers = [s.value_wh for s in samples if s.measurand == "Energy.Active.Import.Register"]
        self.assertGreaterEqual(len(registers), 3)
        self.assertEqual(registers, sorted(registers))

    @inlineCallbacks
    def test_remote_start_from_ocppd_starts_a_real_session(self) -> None:
        """
        A RemoteStartTransaction sent by the node is Accepted and becomes a
        stored active session; a second one on the busy connector is
        Rejected; RemoteStopTransaction completes it.
        """
        registry = self.daemon.node.registry
        answer = yield registry.call(
            "SIM-2", "RemoteStartTransaction", {"idTag": "TAG2", "connectorId": 1}
        )
        self.assertEqual(answer, {"status": "Accepted"})
        charger = self.chargers[1]
        yield until_true(
            lambda: (
                charger.connectors[1].session is not None
                and charger.connectors[1].session.transaction_id is not None
            )
        )
        session = charger.connectors[1].session
        assert session is not None and session.transaction_id is not None
        stored = yield self.daemon.wait_for(
            transactions.get_transaction,
            session.transaction_id,
            until=lambda r: r is not None,
        )
        self.assertEqual((stored.status, stored.id_tag, stored.connector_id), ("active", "TAG2", 1))
        busy = yield registry.call(
            "SIM-2", "RemoteStartTransaction", {"idTag": "TAG1", "connectorId": 1}
        )
        self.assertEqual(busy, {"status": "Rejected"})
        stop = yield registry.call(
            "SIM-2", "RemoteStopTransaction", {"transactionId": session.transaction_id}
        )
        self.assertEqual(stop, {"status": "Accepted"})
        done = yield self.daemon.wait_for(
            transactions.get_transaction,
            session.transaction_id,
            until=lambda r: r.status == "completed",
        )
        self.assertEqual(done.stop_reason, "Remote")
        self.assertEqual(done.energy_wh, done.meter_stop_wh - done.meter_start_wh)

    @inlineCallbacks
    def test_reset_reconnects_and_boots_again(self) -> None:
        """A Reset from the node makes the charger close, reconnect with back-off and boot."""
        charger = self.chargers[2]
        try:
            answer = yield self.daemon.node.registry.call("SIM-3", "Reset", {"type": "Soft"})
        except ChargerDisconnected:
            # A resetting charger may go before its answer is read (rarely, under
            # load, the node sees the socket drop first); real chargers do too.
            answer = None
        self.assertIn(answer, ({"status": "Accepted"}, None))
        yield until_true(lambda: charger.stats.boots == 2 and charger.accepted)
