"""
Tests for ocppd.status (``ocppctl status``) without a daemon: the /ready URL
from ``[web] listen``, what the database says (chargers online per node, the
embedded bus's waiting messages, lag and dead letters, the outbox), and the
lines printed.
"""

from __future__ import annotations

import io
import os
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus.envelope import Envelope
from ocppd.config import load_config
from ocppd.status import Status, consumers_lag, daemon_url, from_database, print_status
from ocppd.store import migrate
from ocppd.store.database import Database
from ocppd.store.journal import journal_database, prepare_journal_file
from ocppd.store.tables import bus_journal, charge_points, outbox
from ocppd.timeutil import utcnow


class DaemonUrlTests(SynchronousTestCase):
    def url(self, listen: str) -> str | None:
        return daemon_url(load_config(None, [f"web.listen={listen}"]))

    def test_forms(self) -> None:
        self.assertEqual(self.url("tcp:8080"), "http://127.0.0.1:8080/ready")
        self.assertEqual(self.url("tcp:8080:interface=0.0.0.0"), "http://127.0.0.1:8080/ready")
        self.assertEqual(self.url("tcp:0:interface=10.1.2.3"), "http://10.1.2.3:0/ready")
        self.assertEqual(self.url("tcp6:8080:interface=\\:\\:"), "http://[::1]:8080/ready")
        self.assertEqual(
            self.url("ssl:8443:privateKey=etc/key.pem:certKey=etc/cert.pem"),
            "https://127.0.0.1:8443/ready",
        )
        self.assertIsNone(self.url("unix:/run/ocppd.sock"))


class DatabaseTests(SynchronousTestCase):
    def setUp(self) -> None:
        data_dir = os.path.abspath(self.mktemp())
        os.makedirs(data_dir)
        self.config = load_config(None, [f"ocppd.data_dir={data_dir}", "ocppd.node_id=n1"])
        database = Database.from_url(self.config.store_url)
        migrate.upgrade(database.engine)
        self.engine = database.engine
        self.addCleanup(self.engine.dispose)
        now = utcnow()
        # Whole milliseconds, as envelopes hold their time: ages come out exact.
        self.now = now.replace(microsecond=now.microsecond // 1000 * 1000)

    def insert(self, table: sa.Table, *rows: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(table), list(rows))

    def journal_row(self, seq: int, queue: str, age: float, dead: bool = False) -> dict[str, Any]:
        envelope = Envelope.create(
            "ocpp.in.Heartbeat", {}, node="n1", now=self.now - timedelta(seconds=age)
        )
        return {
            "node": "n1",
            "seq": seq,
            "queue": queue,
            "routing_key": envelope.type,
            "message_id": envelope.id,
            "body": envelope.to_bytes(),
            "dead_attempts": 5 if dead else None,
            "dead_reason": "ValueError: x" if dead else None,
            "dead_failed_at": self.now if dead else None,
        }

    def test_empty(self) -> None:
        status = Status()
        from_database(status, self.config, self.now)
        self.assertEqual(status.chargers_online, {})
        self.assertEqual(status.queues, {})
        self.assertEqual(status.outbox, {"waiting": 0, "lagSeconds": None})
        self.assertIsNone(status.database_problem)

    def test_queues_lag_dead_letters_outbox_chargers(self) -> None:
        self.insert(
            bus_journal,
            self.journal_row(1, "processor", age=3),  # dead, not waiting
            self.journal_row(2, "processor", age=90.5),
            self.journal_row(3, "processor", age=10),
            self.journal_row(4, "audit", age=1, dead=True),
        )
        # Another node's journal is not this node's backlog.
        self.insert(bus_journal, {**self.journal_row(9, "processor", age=999), "node": "n2"})
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(bus_journal)
                .where(bus_journal.c.seq == 1)
                .values(dead_attempts=5, dead_reason="KeyError", dead_failed_at=self.now)
            )
        self.insert(
            outbox,
            {
                "node": "n1",
                "routing_key": "k",
                "envelope": "{}",
                "created_at": self.now - timedelta(seconds=4),
            },
        )
        for charger, node in (("CP1", "n1"), ("CP2", "n1"), ("CP3", "n2"), ("CP4", None)):
            self.insert(
                charge_points,
                {
                    "charge_point_id": charger,
                    "registration_status": "Accepted",
                    "online": node is not None,
                    "node": node,
                    "created_at": self.now,
                },
            )
        status = Status()
        from_database(status, self.config, self.now)
        self.assertEqual(
            status.queues,
            {
                "processor": {"waiting": 2, "dead": 1, "lagSeconds": 90.5},
                "audit": {"waiting": 0, "dead": 1, "lagSeconds": None},
            },
        )
        self.assertEqual(status.outbox, {"waiting": 1, "lagSeconds": 4.0})
        self.assertEqual(status.chargers_online, {"n1": 2, "n2": 1})
        out = io.StringIO()
        print_status(status, out)
        text = out.getvalue()
        self.assertIn("queue      processor: 2 waiting, oldest 90.5 s, 1 dead letters", text)
        self.assertIn("online     3 chargers online in the database: n1 2, n2 1", text)
        self.assertIn("outbox     1 events waiting for the relay, oldest 4 s", text)

    def test_queues_from_the_journal_file(self) -> None:
        """
        Once a daemon made the journal file beside the SQLite store, the
        queues are read there; before, from the store (what an older
        version left).
        """
        self.insert(bus_journal, self.journal_row(1, "audit", age=2))
        status = Status()
        from_database(status, self.config, self.now)
        self.assertEqual(status.queues, {"audit": {"waiting": 1, "dead": 0, "lagSeconds": 2.0}})
        journal = journal_database(self.config.store_url)
        assert journal is not None
        self.addCleanup(journal.engine.dispose)
        journal.run_sync(prepare_journal_file)
        with journal.engine.begin() as conn:
            conn.execute(sa.insert(bus_journal), [self.journal_row(5, "processor", age=7)])
        status = Status()
        from_database(status, self.config, self.now)
        self.assertEqual(status.queues, {"processor": {"waiting": 1, "dead": 0, "lagSeconds": 7.0}})

    def test_database_unreachable_is_reported(self) -> None:
        config = load_config(
            None, ["store.url=postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"]
        )
        status = Status()
        from_database(status, config, self.now)
        self.assertIn("OperationalError", status.database_problem or "")


class ConsumerLagTests(SynchronousTestCase):
    def test_broker_queues_take_the_daemons_lag(self) -> None:
        """RabbitMQ's queues get their lag from the daemon's consumers (``/ready``)."""
        status = Status(
            daemon={
                "status": "ready",
                "consumers": {"processor": {"lagSeconds": 42.5}, "audit": {"lagSeconds": 0.0}},
            },
            queues={
                "processor": {"waiting": 900, "dead": 0, "lagSeconds": None},
                "audit": {"waiting": 0, "dead": 0, "lagSeconds": None},
                "funds_stop": {"waiting": 0, "dead": 0, "lagSeconds": None},
            },
        )
        consumers_lag(status)
        self.assertEqual(status.queues["processor"]["lagSeconds"], 42.5)
        self.assertEqual(status.queues["audit"]["lagSeconds"], 0.0)
        # Not consumed by this node (or not said): unknown, not zero.
        self.assertIsNone(status.queues["funds_stop"]["lagSeconds"])
        out = io.StringIO()
        print_status(status, out)
        self.assertIn(
            "queue      processor: 900 waiting, oldest 42.5 s, 0 dead letters", out.getvalue()
        )

    def test_no_daemon_or_an_older_one(self) -> None:
        for daemon in (None, {"status": "ready"}, {"consumers": {"processor": "x"}}):
            status = Status(
                daemon=daemon, queues={"processor": {"waiting": 1, "dead": 0, "lagSeconds": None}}
            )
            consumers_lag(status)
            self.assertIsNone(status.queues["processor"]["lagSeconds"])


class PrintTests(SynchronousTestCase):
    def test_not_ready_daemon(self) -> None:
        status = Status(
            daemon={
                "status": "not ready",
                "node": "n1",
                "version": "0.1",
                "problems": {"bus": "not connected to RabbitMQ"},
                "bus": {"backend": "amqp", "connected": False, "blocked": None},
                "chargers": {"connected": 4},
            }
        )
        out = io.StringIO()
        print_status(status, out)
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0], "node       n1 (ocppd 0.1)")
        self.assertEqual(lines[1], "daemon     not ready: bus: not connected to RabbitMQ")
        self.assertEqual(lines[2], "bus        amqp, NOT connected")
        self.assertEqual(lines[3], "chargers   4 connected to this node")
        self.assertFalse(status.ready)

    def test_role_shown(self) -> None:
        """The node's role, and what it means, under its name; a daemon from before roles: none."""
        for role, line in (
            ("processor", "role       processor (the processor and audit consumers only;"),
            ("edge", "role       edge (chargers and web; the processor runs elsewhere)"),
        ):
            out = io.StringIO()
            print_status(Status(daemon={"status": "ready", "node": "n1", "role": role}), out)
            self.assertTrue(out.getvalue().splitlines()[1].startswith(line), out.getvalue())
        out = io.StringIO()
        print_status(Status(daemon={"status": "ready", "node": "n1"}), out)
        self.assertNotIn("role", out.getvalue())

    def test_processor_takes_no_chargers(self) -> None:
        """A processor says it holds no chargers, not "0 connected"; an edge counts its own."""
        for role, line in (
            ("processor", "chargers   none: this node takes no chargers (role processor)"),
            ("edge", "chargers   3 connected to this node"),
            ("all", "chargers   3 connected to this node"),
        ):
            daemon = {"status": "ready", "node": "n1", "role": role}
            daemon["chargers"] = {"connected": 0 if role == "processor" else 3}
            out = io.StringIO()
            print_status(Status(daemon=daemon), out)
            self.assertIn(line, out.getvalue().splitlines())
            self.assertNotIn("0 connected", out.getvalue())

    def test_daemon_away(self) -> None:
        status = Status(daemon_problem="http://127.0.0.1:1/ready: Connection refused")
        out = io.StringIO()
        print_status(status, out)
        self.assertIn("daemon     not answering: http://127.0.0.1:1/ready", out.getvalue())
