"""
A frozen PostgreSQL and a frozen RabbitMQ (issue 14, item 7): each is frozen
through a TCP proxy this test controls (``tests.proxy``: the connections stay
open, nothing is forwarded), never the shared service. A StartTransaction is
answered InternalError within ``answer_timeout`` instead of waiting out the
stall, a Heartbeat is answered meanwhile, and after the thaw the charger's
resend gets the same transaction, stored once. On CI an unreachable service
fails these tests.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, maybeDeferred
from twisted.trial.unittest import TestCase

from ocppd.ocpp.errors import AnswerTimedOut
from ocppd.ocpp.frames import Call
from ocppd.ocpp.handlers import CentralSystemHandlers
from ocppd.ocpp.tagcache import IdTagCache
from ocppd.store import chargers, migrate, tags
from ocppd.store.database import Database
from ocppd.store.tables import transactions
from ocppd.timeutil import utcnow
from tests.integration.clients import connect
from tests.integration.daemon import amqp_overrides, poll, start_daemon
from tests.ocpp.fakes import RecordingTraffic
from tests.proxy import start_proxy
from tests.store.fixtures import postgres_schema, search_path_options

KEY = "s3cret-key-stall"
#: How long a test waits for an answer due after one second (the bound).
WAIT = 15


def start(connector: int) -> dict[str, Any]:
    return {
        "connectorId": connector,
        "idTag": "TAG1",
        "meterStart": 1000,
        "timestamp": "2026-11-29T11:00:00Z",
    }


class Charger:
    def __init__(self, charge_point_id: str, registration_status: str = "Accepted") -> None:
        self.charge_point_id = charge_point_id
        self.registration_status = registration_status


def sessions_of(conn: Any, connector: int) -> list[int]:
    return [
        row.id
        for row in conn.execute(
            sa.select(transactions.c.id).where(transactions.c.connector_id == connector)
        )
    ]


class FrozenPostgresTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def test_start_answered_at_the_bound_and_resend_finds_the_late_row(self) -> Any:
        url, schema = postgres_schema(self)
        options = {"options": search_path_options(schema)}
        direct = Database.from_url(url, reactor=reactor, max_threads=1, connect_args=options)
        self.addCleanup(direct.stop)
        migrate.upgrade(direct.engine)
        direct.start()
        direct.run_sync(chargers.add_charge_point, "CP1", None, now=utcnow())
        direct.run_sync(tags.add_id_tag, "TAG1", now=utcnow())
        target = sa.make_url(url)
        proxy = yield start_proxy(self, target.host or "127.0.0.1", target.port or 5432)
        proxied = target.set(host="127.0.0.1", port=proxy.local_port)
        database = Database.from_url(
            proxied.render_as_string(hide_password=False),
            reactor=reactor,
            max_threads=2,
            connect_args=options,
        )
        self.addCleanup(database.stop)
        self.addCleanup(proxy.thaw)  # before the pool stops: its threads must get out
        database.start()
        handlers = CentralSystemHandlers(
            database=database,
            tags=IdTagCache(database, reactor, ttl=600),
            traffic=RecordingTraffic(),  # type: ignore[arg-type]
            clock=reactor,
            heartbeat_interval=300,
            answer_timeout=1.0,
        )
        charger = Charger("CP1")
        first = yield maybeDeferred(
            handlers.handle, charger, Call("s0", "StartTransaction", start(1))
        )

        proxy.freeze()
        stalled = maybeDeferred(handlers.handle, charger, Call("s1", "StartTransaction", start(2)))
        stalled.addTimeout(WAIT, reactor)  # without the bound: a TimeoutError, not a hang
        yield self.assertFailure(stalled, AnswerTimedOut)
        heartbeat = handlers.handle(charger, Call("h1", "Heartbeat", {}))
        self.assertIn("currentTime", heartbeat)  # a plain answer: nothing waited on the store

        proxy.thaw()
        # The abandoned allocation was running: it commits after the thaw.
        late = yield poll(lambda: direct.run(sessions_of, 2), until=bool, timeout=20)
        resent = yield maybeDeferred(
            handlers.handle, charger, Call("s2", "StartTransaction", start(2))
        )
        self.assertEqual(resent["transactionId"], late[0])
        self.assertNotEqual(resent["transactionId"], first["transactionId"])
        stored = yield direct.run(sessions_of, 2)
        self.assertEqual(stored, late, "the resend stored a second session")


class FrozenRabbitMQTests(TestCase):
    timeout = 60

    @inlineCallbacks
    def test_start_answered_at_the_bound_heartbeat_meanwhile_resend_stored_once(self) -> Any:
        overrides = amqp_overrides(self)
        proxy = yield start_proxy(self, "127.0.0.1", 5672)
        broker = f"bus.url=amqp://guest:guest@127.0.0.1:{proxy.local_port}/%2F"
        daemon = yield start_daemon(self, *overrides, broker, "ocpp.answer_timeout=1")
        self.addCleanup(proxy.thaw)  # before the daemon stops: the bus must drain
        daemon.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")
        daemon.ocppctl("tag", "add", "TAG1")
        client = yield connect(daemon.port, "CP1", KEY)
        self.addCleanup(client.close)

        def call(unique_id: str, action: str, payload: dict[str, Any]) -> Any:
            client.send(json.dumps([2, unique_id, action, payload]))
            return client.messages.get().addTimeout(WAIT, reactor).addCallback(json.loads)

        answer = yield call("s0", "StartTransaction", start(1))
        self.assertEqual(answer[0], 3, answer)

        proxy.freeze()
        answer = yield call("s1", "StartTransaction", start(2))
        self.assertEqual(answer[:3], [4, "s1", "InternalError"])
        answer = yield call("h1", "Heartbeat", {})
        self.assertEqual(answer[:2], [3, "h1"])

        proxy.thaw()
        answer = yield call("s2", "StartTransaction", start(2))
        self.assertEqual(answer[:2], [3, "s2"], answer)
        stored = yield daemon.query(sessions_of, 2)
        self.assertEqual(stored, [answer[2]["transactionId"]])
