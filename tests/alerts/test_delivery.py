"""
Delivering alerts: to a webhook receiver and an SMTP server on real local
sockets; retries with exponential back-off timed by a Clock.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from typing import Any

import attrs
import sqlalchemy as sa
from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, gatherResults, inlineCallbacks, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from ocppd.alerts import queue, rules
from ocppd.alerts.delivery import Deliveries, DeliveryFailed, EmailChannel, WebhookChannel
from ocppd.alerts.notices import RAISED, RESOLVED, Alert, Notice
from ocppd.alerts.setup import webhook_client
from ocppd.store.database import Database
from ocppd.store.tables import alert_notices
from ocppd.timeutil import from_timestamp
from tests.alerts.receivers import (
    SECRET,
    at_level,
    listen_smtp,
    listen_webhook,
    logged_events,
)
from tests.store.fixtures import make_postgres_database, make_sqlite_database

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
START = NOW.timestamp()

ALERT = Alert(
    id="0123456789abcdef0123456789abcdef",
    key="charger_offline:CP-1",
    kind=rules.OFFLINE,
    subject="CP-1",
    summary="Charger CP-1 offline for 16 minutes",
    data={"chargePointId": "CP-1"},
    since=NOW,
    raised_at=NOW,
    node="n1",
)


class WebhookTests(TestCase):
    def channel(self, url: str, clock: Any) -> WebhookChannel:
        return WebhookChannel(
            url=url, secret=SECRET, timeout=10, clock=clock, http=webhook_client(reactor)
        )

    @inlineCallbacks
    def test_a_signed_json_post(self) -> Generator[Deferred[Any], Any, None]:
        """The receiver gets the notice as JSON and the signature checks out."""
        receiver, url = listen_webhook(self, [200])
        yield self.channel(url, reactor).send(Notice(RAISED, ALERT))
        self.assertEqual(receiver.signed_ok, [True])
        body = receiver.received[0]
        self.assertEqual(body["type"], "alert.raised")
        self.assertEqual(body["alert"]["key"], "charger_offline:CP-1")

    @inlineCallbacks
    def test_a_wrong_secret_does_not_verify(self) -> Generator[Deferred[Any], Any, None]:
        """The receiver's check is real: a notice signed with another key fails it."""
        receiver, url = listen_webhook(self, [200])
        other = WebhookChannel(
            url=url,
            secret="another-secret-00",
            timeout=10,
            clock=reactor,
            http=webhook_client(reactor),
        )
        yield other.send(Notice(RAISED, ALERT))
        self.assertEqual(receiver.signed_ok, [False])

    @inlineCallbacks
    def test_no_receiver(self) -> Generator[Deferred[Any], Any, None]:
        """A refused connection fails the send (and so is retried)."""
        _, url = listen_webhook(self, [200])
        closed = url.replace("/hook", "").rsplit(":", 1)[0] + ":1/hook"
        with self.assertRaises(ConnectionRefusedError):
            yield self.channel(closed, reactor).send(Notice(RAISED, ALERT))


class EmailTests(TestCase):
    @inlineCallbacks
    def test_mailed_through_smtp(self) -> Generator[Deferred[Any], Any, None]:
        box, port = listen_smtp(self)
        channel = EmailChannel(
            host="127.0.0.1",
            port=port,
            starttls=False,
            username="",
            password="",
            mail_from="ocppd@example.com",
            mail_to=("ops@example.com", "oncall@example.com"),
            timeout=10,
            reactor=reactor,
        )
        yield channel.send(Notice(RESOLVED, ALERT))
        self.assertEqual(
            sorted(r for r, _ in box.received), ["ops@example.com", "oncall@example.com"][::-1]
        )
        message = message_from_bytes(box.received[0][1])
        self.assertEqual(
            message["Subject"], "[ocppd] RESOLVED: Charger CP-1 offline for 16 minutes"
        )
        self.assertEqual(message["From"], "ocppd@example.com")
        self.assertIn(ALERT.id, message.get_payload())

    @inlineCallbacks
    def test_starttls_required_but_not_offered(self) -> Generator[Deferred[Any], Any, None]:
        """With smtp_starttls = yes nothing is sent in the clear."""
        box, port = listen_smtp(self)
        channel = EmailChannel(
            host="127.0.0.1",
            port=port,
            starttls=True,
            username="",
            password="",
            mail_from="ocppd@example.com",
            mail_to=("ops@example.com",),
            timeout=10,
            reactor=reactor,
        )
        with self.assertRaises(DeliveryFailed):
            yield channel.send(Notice(RAISED, ALERT))
        self.assertEqual(box.received, [])


class FakeChannel:
    def __init__(self, outcomes: list[bool], name: str = "fake") -> None:
        self.name = name
        self.outcomes = outcomes
        self.sent: list[Notice] = []

    def send(self, notice: Notice) -> Deferred[None]:
        self.sent.append(notice)
        ok = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        return succeed(None) if ok else fail(DeliveryFailed("HTTP 503"))


class DeliveriesTestsMixin:
    """The notices waiting in the store, sent with back-off; timed by a Clock."""

    def make_database(self) -> Database:
        raise NotImplementedError

    def setUp(self) -> None:
        self.database = self.make_database()
        self.clock = Clock()
        self.clock.advance(START)

    def deliveries(self, *channels: Any, max_attempts: int = 4) -> Deliveries:
        return Deliveries(
            list(channels),
            database=self.database,
            clock=self.clock,
            retry_delay=5,
            max_attempts=max_attempts,
            lease=60,
        )

    def stage(self, *notices: Notice, channels: tuple[str, ...] = ("fake",)) -> None:
        self.database.run_sync(queue.stage, notices, channels, from_timestamp(self.clock.seconds()))

    def rows(self) -> list[tuple[int, float]]:
        """(attempts, seconds until due) of each waiting notice."""
        rows = self.database.run_sync(
            lambda conn: conn.execute(
                sa.select(alert_notices.c.attempts, alert_notices.c.next_at).order_by(
                    alert_notices.c.id
                )
            ).all()
        )
        return [(a, round(at.timestamp() - self.clock.seconds(), 3)) for a, at in rows]

    def test_delays_double_up_to_the_cap(self) -> None:
        deliveries = Deliveries(
            [], database=self.database, clock=Clock(), retry_delay=5, max_attempts=20
        )
        self.assertEqual(
            [deliveries.delay(n) for n in (1, 2, 3, 4, 10, 30)], [5, 10, 20, 40, 2560, 3600]
        )

    @inlineCallbacks
    def test_retried_with_back_off_on_500(self) -> Generator[Deferred[Any], Any, None]:
        """A receiver answering 500 twice, then 200: due again after 5 s, then 10 s; signed anew."""
        receiver, url = listen_webhook(self, [500, 500, 200])
        webhook = WebhookChannel(
            url=url, secret=SECRET, timeout=10, clock=self.clock, http=webhook_client(reactor)
        )
        deliveries = self.deliveries(webhook)
        logged = logged_events(self)
        self.stage(Notice(RAISED, ALERT), channels=("webhook",))
        self.assertEqual((yield deliveries.send_due()), 0)
        self.assertEqual(self.rows(), [(1, 5.0)])
        self.clock.advance(4.9)
        self.assertEqual((yield deliveries.send_due()), 0)
        self.assertEqual(len(receiver.received), 1)
        self.clock.advance(0.1)
        self.assertEqual((yield deliveries.send_due()), 0)
        self.assertEqual(self.rows(), [(2, 10.0)])
        self.clock.advance(10)
        self.assertEqual((yield deliveries.send_due()), 1)
        self.assertEqual(self.rows(), [])
        self.assertEqual(receiver.signed_ok, [True, True, True])
        self.assertEqual(len(set(receiver.timestamps)), 3)
        self.assertEqual(len(at_level(logged, "warn")), 2)

    @inlineCallbacks
    def test_given_up_after_max_attempts(self) -> Generator[Deferred[Any], Any, None]:
        channel = FakeChannel([False])
        deliveries = self.deliveries(channel, max_attempts=3)
        logged = logged_events(self)
        self.stage(Notice(RAISED, ALERT))
        for delay in (0, 5, 10, 20, 40):
            self.clock.advance(delay)
            yield deliveries.send_due()
        self.assertEqual(len(channel.sent), 3)
        self.assertEqual(self.rows(), [])
        errors = at_level(logged, "error")
        self.assertEqual(len(errors), 1)
        self.assertIn("NOT delivered", errors[0]["log_format"])

    @inlineCallbacks
    def test_survives_a_restart(self) -> Generator[Deferred[Any], Any, None]:
        """A notice waiting for its retry is sent by the next process (another Deliveries)."""
        self.stage(Notice(RAISED, ALERT))
        first = FakeChannel([False])
        yield self.deliveries(first).send_due()
        yield self.deliveries(first).stop()
        after = FakeChannel([True])
        self.clock.advance(5)
        self.assertEqual((yield self.deliveries(after).send_due()), 1)
        self.assertEqual([n.alert for n in after.sent], [ALERT])
        self.assertEqual(self.rows(), [])

    @inlineCallbacks
    def test_a_claim_of_a_dead_node_runs_out(self) -> Generator[Deferred[Any], Any, None]:
        """Claimed by a node that never settled it: another sends it once the lease ran out."""
        self.stage(Notice(RAISED, ALERT))
        now = from_timestamp(self.clock.seconds())
        claimed = self.database.run_sync(queue.claim, now, now + timedelta(seconds=60), 10)
        self.assertEqual(len(claimed), 1)
        other = FakeChannel([True])
        self.assertEqual((yield self.deliveries(other).send_due()), 0)
        self.clock.advance(61)
        self.assertEqual((yield self.deliveries(other).send_due()), 1)

    @inlineCallbacks
    def test_a_notice_that_cannot_be_settled_is_sent_again(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        """Sent, but the database refused to record it: logged, and sent again after the lease."""
        self.stage(Notice(RAISED, ALERT))
        channel = FakeChannel([True])
        deliveries = self.deliveries(channel)

        def refused(conn: Any, notice_id: int) -> None:
            raise RuntimeError("the database went away")

        patched = self.patch(queue, "delivered", refused)
        self.assertEqual((yield deliveries.send_due()), 0)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        patched.restore()
        self.assertEqual((yield deliveries.send_due()), 0)  # still claimed
        self.clock.advance(61)
        self.assertEqual((yield deliveries.send_due()), 1)
        self.assertEqual(len(channel.sent), 2)
        self.assertEqual(self.rows(), [])

    @inlineCallbacks
    def test_in_order_per_alert_and_channel(self) -> Generator[Deferred[Any], Any, None]:
        """A resolve waits while its raise is retried; other alerts and channels do not."""
        other = attrs.evolve(ALERT, id="f" * 32, key="charger_offline:CP-2")
        self.stage(Notice(RAISED, ALERT), channels=("fake", "mail"))
        self.stage(Notice(RESOLVED, ALERT), Notice(RAISED, other), channels=("fake", "mail"))
        fake, mail = FakeChannel([False, True]), FakeChannel([True], name="mail")
        deliveries = self.deliveries(fake, mail)
        yield deliveries.send_due()
        self.assertEqual(
            [(n.event, n.alert.id) for n in fake.sent], [(RAISED, ALERT.id), (RAISED, other.id)]
        )
        self.assertEqual(
            [(n.alert.id, n.event) for n in mail.sent],
            [(ALERT.id, RAISED), (other.id, RAISED), (ALERT.id, RESOLVED)],
        )
        self.clock.advance(5)
        yield deliveries.send_due()
        self.assertEqual([n.event for n in fake.sent[2:]], [RAISED, RESOLVED])
        self.assertEqual(self.rows(), [])

    @inlineCallbacks
    def test_each_notice_once_among_nodes(self) -> Generator[Deferred[Any], Any, None]:
        """Three nodes' deliveries claiming at once: each notice sent once."""
        notices = [
            Notice(RAISED, attrs.evolve(ALERT, id=f"{n:032x}", key=f"k{n}")) for n in range(30)
        ]
        self.stage(*notices)
        channels = [FakeChannel([True]) for _ in range(3)]
        yield gatherResults([self.deliveries(c).send_due() for c in channels])
        sent = sorted(n.alert.id for c in channels for n in c.sent)
        self.assertEqual(sent, sorted(n.alert.id for n in notices))

    @inlineCallbacks
    def test_woken_and_polled(self) -> Generator[Deferred[Any], Any, None]:
        """Started, it looks every few seconds; a retry is sent once due."""
        channel = FakeChannel([False, True])
        deliveries = self.deliveries(channel)
        self.stage(Notice(RAISED, ALERT))
        deliveries.start()
        yield deliveries._pass
        self.assertEqual(len(channel.sent), 1)
        self.clock.advance(5)
        yield deliveries._pass
        self.assertEqual(len(channel.sent), 2)
        yield deliveries.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SQLiteDeliveriesTests(DeliveriesTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)


class PostgresDeliveriesTests(DeliveriesTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_postgres_database(self)
