"""
ocppd.holds: the funds of app starts the charger never made are released
after [billing] start_timeout, by a sweep in the database (Clock-driven here).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import DeferredList, inlineCallbacks, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd import holds
from ocppd.bus.envelope import Envelope
from ocppd.bus.outbox import Outbox
from ocppd.bus.relay import OutboxRelay
from ocppd.holds import HoldReleaser
from ocppd.store import users, wallets
from ocppd.store.database import Database
from ocppd.timeutil import from_timestamp
from tests.store.fixtures import make_postgres_database, make_sqlite_database

#: A reactor time: 2026-11-29T10:00:00Z.
START = 1_795_946_400.0
TIMEOUT = 180


class RecordingBus:
    """Accepts every publish and keeps it (the one IBus method EventPublisher uses)."""

    def __init__(self) -> None:
        self.published: list[tuple[str, Envelope]] = []

    def publish(self, routing_key: str, envelope: Envelope) -> Any:
        self.published.append((routing_key, envelope))
        return succeed(None)


class HoldReleaserTests(TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)

    def setUp(self) -> None:
        self.database = self.make_database()
        self.clock = Clock()
        self.clock.advance(START)
        self.bus = RecordingBus()
        self.user = self.database.run_sync(
            users.add_user, "a@example.com", "x", "customer", now=self.now()
        )

    def now(self) -> Any:
        return from_timestamp(self.clock.seconds())

    def releaser(self, node: str = "n1") -> HoldReleaser:
        """A node's releaser, and the relay that publishes its events."""
        relay = OutboxRelay(
            self.database,
            self.bus,  # type: ignore[arg-type]
            node=node,
            clock=self.clock,
            poll_interval=1e9,
        )
        relay.start()
        self.addCleanup(relay.stop)
        outbox = Outbox(node=node, clock=self.clock, relay=relay)
        return HoldReleaser(self.database, outbox, self.clock, timeout=TIMEOUT)

    def request(self, command_id: str, *, connector: int = 1) -> int:
        """An app start holding 500, requested now."""
        return int(
            self.database.run_sync(
                wallets.create_request,
                user_id=self.user,
                charge_point_id="CP1",
                connector_id=connector,
                id_tag="TAG",
                command_id=command_id,
                hold=500,
                now=self.now(),
            )
        )

    def start_session(self) -> Any:
        """The charger's StartTransaction for the request on connector 1 (session 7)."""
        return self.database.run_sync(
            wallets.claim_request_for_session,
            session_id=7,
            user_id=self.user,
            charge_point_id="CP1",
            connector_id=1,
            id_tag="TAG",
            now=self.now(),
        )

    def held(self) -> int:
        return int(self.database.run_sync(wallets.held, self.user))

    @inlineCallbacks
    def test_released_after_the_timeout_once(self) -> Any:
        """
        A start the charger accepted but never made holds its funds for
        start_timeout seconds, then a sweep releases them and says so, once;
        a later sweep (or another node's, after a restart) finds nothing.
        """
        self.request("c1")
        self.clock.advance(TIMEOUT)
        self.assertEqual((yield self.releaser().sweep()), 0)
        self.assertEqual(self.held(), 500)
        self.clock.advance(1)
        self.assertEqual((yield self.releaser().sweep()), 1)
        self.assertEqual(self.held(), 0)
        [(key, envelope)] = self.bus.published
        self.assertEqual(key, "charging.start.expired")
        self.assertEqual(
            envelope.payload,
            {
                "userId": self.user,
                "chargePointId": "CP1",
                "connectorId": 1,
                "commandId": "c1",
                "hold": 500,
                "requestedAt": "2026-11-29T10:00:00.000Z",
            },
        )
        self.assertEqual(envelope.charge_point_id, "CP1")
        self.assertEqual((yield self.releaser().sweep()), 0)
        self.assertEqual(len(self.bus.published), 1)
        request = self.database.run_sync(wallets.request_by_command, "c1")
        self.assertEqual(request.status, "failed")

    @inlineCallbacks
    def test_started_requests_keep_their_hold(self) -> Any:
        """A start that became a session holds until the session stops, however long."""
        self.request("c1")
        self.start_session()
        self.clock.advance(10 * TIMEOUT)
        self.assertEqual((yield self.releaser().sweep()), 0)
        self.assertEqual(self.held(), 500)

    @inlineCallbacks
    def test_late_start_after_release_claims_nothing(self) -> Any:
        """A StartTransaction after the release finds no request to claim: nothing held again."""
        self.request("c1")
        self.clock.advance(TIMEOUT + 1)
        yield self.releaser().sweep()
        claimed = self.start_session()
        self.assertIsNone(claimed)
        self.assertEqual(self.held(), 0)

    @inlineCallbacks
    def test_sweeps_in_batches(self) -> Any:
        """More stale requests than a batch: one sweep releases them all."""
        self.patch(holds, "BATCH", 2)
        for n in range(5):
            self.request(f"c{n}", connector=n + 1)
        self.clock.advance(TIMEOUT + 1)
        self.assertEqual((yield self.releaser().sweep()), 5)
        self.assertEqual(
            sorted(e.payload["commandId"] for _, e in self.bus.published),
            [f"c{n}" for n in range(5)],
        )

    def test_sweeps_every_sixth_of_the_timeout(self) -> None:
        """start() sweeps at once and then every timeout / 6 seconds, on the given clock."""
        releaser = self.releaser()
        sweeps: list[float] = []
        self.patch(releaser, "sweep", lambda: succeed(sweeps.append(self.clock.seconds())))
        releaser.start()
        self.addCleanup(releaser.stop)
        self.clock.advance(TIMEOUT / 6)
        self.clock.advance(TIMEOUT / 6)
        self.assertEqual(sweeps, [START, START + 30, START + 60])
        releaser.stop()
        self.clock.advance(TIMEOUT)
        self.assertEqual(len(sweeps), 3)


class PostgresHoldReleaserTests(HoldReleaserTests):
    def make_database(self) -> Database:
        return make_postgres_database(self)

    @inlineCallbacks
    def test_several_nodes_release_each_once(self) -> Any:
        """Four nodes sweeping one database at once release and announce each start once."""
        for n in range(40):
            self.request(f"c{n}", connector=n + 1)
        self.clock.advance(TIMEOUT + 1)
        results = yield DeferredList([self.releaser(f"n{i}").sweep() for i in range(4)])
        self.assertTrue(all(ok for ok, _ in results), results)
        self.assertEqual(sum(count for _, count in results), 40)
        released = [e.payload["commandId"] for _, e in self.bus.published]
        self.assertEqual(sorted(released), sorted(f"c{n}" for n in range(40)))
        self.assertEqual(self.held(), 0)
