"""
A charger's connection history (ocppd.store.connections) and the offline
time the reports derive from it (ocppd.store.reports.charger_connected), on
both engines: redelivery, stale and early disconnects, overlapping and
unclosed connections, clipping to the span and to the charger's creation,
and pruning.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from twisted.trial.unittest import TestCase

from ocppd.store import chargers, connections, reports
from ocppd.store.database import Database
from ocppd.store.tables import charge_points, charger_connections
from tests.store.fixtures import make_postgres_database, make_sqlite_database

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)

if TYPE_CHECKING:
    _Base = TestCase
else:
    _Base = object


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


class ConnectionHistoryMixin(_Base):
    database: Database

    def make_database(self) -> Database:
        raise NotImplementedError

    def setUp(self) -> None:
        self.database = self.make_database()
        self.query = self.database.run_sync
        self.query(chargers.add_charge_point, "CP1", None, now=T0 - timedelta(days=30))

    def connect(
        self, connection_id: str, at: datetime, *, node: str = "n1", cp: str = "CP1"
    ) -> bool:
        """The processor's connect: presence and history (one statement on PostgreSQL)."""
        return bool(
            self.query(connections.connected, cp, connection_id=connection_id, node=node, at=at)
        )

    def disconnect(
        self,
        connection_id: str,
        at: datetime,
        *,
        code: int | None = 1000,
        reason: str | None = None,
        fence: int | None = None,
    ) -> bool:
        return bool(
            self.query(
                connections.disconnected,
                "CP1",
                connection_id=connection_id,
                at=at,
                fence=fence,
                code=code,
                reason=reason,
            )
        )

    def rows(self) -> list[tuple[Any, ...]]:
        c = charger_connections.c
        return [
            tuple(row)
            for row in self.query(
                lambda conn: conn.execute(
                    sa.select(
                        c.connection_id, c.node, c.connected_at, c.disconnected_at, c.close_code
                    ).order_by(c.connected_at, c.id)
                ).all()
            )
        ]

    def offline(self, start: datetime, end: datetime) -> tuple[float, int]:
        (health,) = self.query(reports.charger_health, start, end)
        return health.offline_seconds, health.outages

    # -- writing the history ---------------------------------------------------

    def test_connect_and_disconnect(self) -> None:
        self.connect("s1", hours(1))
        self.disconnect("s1", hours(2), code=1006, reason="x" * 500)
        self.assertEqual(self.rows(), [("s1", "n1", hours(1), hours(2), 1006)])
        (record,) = self.query(connections.recent_connections, "CP1")
        self.assertEqual(record.close_reason, "x" * connections.CLOSE_REASON_LENGTH)

    def test_redelivery_is_idempotent(self) -> None:
        self.connect("s1", hours(1))
        self.disconnect("s1", hours(2))
        self.connect("s1", hours(1))
        self.disconnect("s1", hours(2))
        self.assertEqual(self.rows(), [("s1", "n1", hours(1), hours(2), 1000)])

    def test_stale_disconnect_leaves_newer_connection_open(self) -> None:
        # A quick reconnect to another node: the old socket's disconnect comes last.
        self.assertTrue(self.connect("s1", hours(1), node="n1"))
        self.assertTrue(self.connect("s2", hours(2), node="n2"))
        # The presence does not apply it; the history closes its own row.
        self.assertFalse(self.disconnect("s1", hours(3)))
        self.assertEqual(
            self.rows(),
            [("s1", "n1", hours(1), hours(3), 1000), ("s2", "n2", hours(2), None, None)],
        )
        self.assertTrue(self.query(chargers.get_charge_point, "CP1").online)
        self.assertEqual(self.offline(hours(0), hours(5)), (3600.0, 1))

    def test_disconnect_before_connect(self) -> None:
        # The connect waited in the outbox: the disconnect makes the row first.
        self.disconnect("s1", hours(2))
        self.assertEqual(self.rows(), [("s1", None, hours(2), hours(2), 1000)])
        self.connect("s1", hours(1))
        self.assertEqual(self.rows(), [("s1", "n1", hours(1), hours(2), 1000)])

    def test_sweep_and_real_disconnect_keep_the_later(self) -> None:
        self.connect("s1", hours(1))
        self.connect("s2", hours(5))
        # s1: the sweep (its last sign of life, no code) first, the real close later.
        self.disconnect("s1", hours(2), code=None, reason="liveness expired")
        self.disconnect("s1", hours(3), code=1001)
        # s2: the real close first, the sweep's late announcement after it.
        self.disconnect("s2", hours(7), code=1000)
        self.disconnect("s2", hours(6), code=None, reason="liveness expired")
        self.assertEqual(
            self.rows(),
            [("s1", "n1", hours(1), hours(3), 1001), ("s2", "n1", hours(5), hours(7), 1000)],
        )

    def test_unknown_charger_and_no_socket(self) -> None:
        self.assertFalse(self.connect("s1", hours(1), cp="nobody"))
        self.assertFalse(self.disconnect("", hours(2)))
        self.assertEqual(self.rows(), [])

    def test_fenced_presence_applies_as_before(self) -> None:
        """The presence's answer is chargers.set_*'s, the history row written either way."""
        self.assertTrue(
            self.query(
                connections.connected, "CP1", connection_id="new", node="n2", at=hours(2), fence=5
            )
        )
        # An older fence's connect, stored late: no presence change, but its row.
        self.assertFalse(
            self.query(
                connections.connected, "CP1", connection_id="old", node="n1", at=hours(1), fence=4
            )
        )
        self.assertFalse(self.disconnect("old", hours(3), fence=4))
        record = self.query(chargers.get_charge_point, "CP1")
        self.assertEqual((record.online, record.connection_id), (True, "new"))
        self.assertTrue(self.disconnect("new", hours(4), fence=5))
        self.assertFalse(self.query(chargers.get_charge_point, "CP1").online)
        self.assertEqual(
            self.rows(),
            [("old", "n1", hours(1), hours(3), 1000), ("new", "n2", hours(2), hours(4), 1000)],
        )

    def test_recent_connections_newest_first_bounded(self) -> None:
        for n in range(connections.RECENT_CONNECTIONS + 3):
            self.connect(f"s{n}", hours(n))
            self.disconnect(f"s{n}", hours(n + 0.5))
        found = self.query(connections.recent_connections, "CP1")
        self.assertEqual(len(found), connections.RECENT_CONNECTIONS)
        self.assertEqual(found[0].connection_id, f"s{connections.RECENT_CONNECTIONS + 2}")
        self.assertEqual(found[0].node, "n1")

    def test_forget_connections(self) -> None:
        self.connect("old", hours(1))
        self.disconnect("old", hours(2))
        self.connect("open", hours(3))  # open, however old: kept
        self.connect("new", hours(30))
        self.disconnect("new", hours(31))
        self.assertEqual(self.query(connections.forget_connections, before=hours(20)), 1)
        self.assertEqual([row[0] for row in self.rows()], ["open", "new"])

    # -- offline time --------------------------------------------------------------

    def test_overlapping_connections_count_once(self) -> None:
        self.connect("a", hours(1))
        self.connect("b", hours(2))
        self.disconnect("a", hours(4))
        self.connect("c", hours(3))  # inside both
        self.disconnect("c", hours(3.5))
        self.disconnect("b", hours(5))
        self.connect("d", hours(7))
        self.disconnect("d", hours(8))
        # Connected 1-5 and 7-8 of 0-10: offline 0-1, 5-7, 8-10.
        self.assertEqual(self.offline(hours(0), hours(10)), (5 * 3600.0, 3))

    def test_clipped_to_the_span(self) -> None:
        self.connect("a", hours(-5))
        self.disconnect("a", hours(2))
        self.connect("b", hours(4))
        self.disconnect("b", hours(20))
        # Span 1-6: connected 1-2 and 4-6; the outage 2-4 only.
        self.assertEqual(self.offline(hours(1), hours(6)), (2 * 3600.0, 1))
        # A span inside a connection: no outage.
        self.assertEqual(self.offline(hours(5), hours(6)), (0.0, 0))
        # A span with no connection at all: offline throughout, one outage.
        self.assertEqual(self.offline(hours(2.5), hours(3.5)), (3600.0, 1))

    def test_open_current_connection_counts_to_the_end(self) -> None:
        self.connect("a", hours(2))
        self.assertEqual(self.offline(hours(0), hours(10)), (2 * 3600.0, 1))

    def test_open_orphan_ends_at_next_connection(self) -> None:
        # "a"'s node died and its disconnect never came; "b" replaced it and closed.
        self.connect("a", hours(1))
        self.connect("b", hours(3))
        self.disconnect("b", hours(4))
        self.assertEqual(self.rows()[0][3], None)
        # Connected 1-4 of 0-6.
        self.assertEqual(self.offline(hours(0), hours(6)), (3 * 3600.0, 2))

    def test_open_orphan_of_an_offline_charger_ends_when_last_seen(self) -> None:
        self.connect("a", hours(1))
        # Marked offline without the socket's own disconnect (a newer fence's).
        self.query(
            lambda conn: conn.execute(
                charge_points.update().values(online=False, last_seen_at=hours(2))
            )
        )
        # Connected 1-2 of 0-6.
        self.assertEqual(self.offline(hours(0), hours(6)), (5 * 3600.0, 2))

    def test_counted_from_the_chargers_creation(self) -> None:
        self.query(chargers.add_charge_point, "CP2", None, now=hours(4))
        self.connect("x", hours(5), cp="CP2")
        found = {h.charge_point_id: h for h in self.query(reports.charger_health, T0, hours(10))}
        # Created at 4, connected from 5 to the end (still open): offline 4-5.
        self.assertEqual((found["CP2"].offline_seconds, found["CP2"].outages), (3600.0, 1))
        # Created after the span: no time, no outage.
        later = self.query(reports.charger_health, T0, hours(3))
        self.assertEqual(
            [(h.offline_seconds, h.outages) for h in later if h.charge_point_id == "CP2"],
            [(0.0, 0)],
        )


class SQLiteConnectionHistoryTests(ConnectionHistoryMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)


class PostgresConnectionHistoryTests(ConnectionHistoryMixin, TestCase):
    def make_database(self) -> Database:
        return make_postgres_database(self)
