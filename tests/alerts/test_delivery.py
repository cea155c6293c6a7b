"""
Delivering alerts: to a webhook receiver and an SMTP server on real local
sockets; retries with exponential back-off timed by a Clock.
"""

from __future__ import annotations

from collections.abc import Generator
from datetime import UTC, datetime
from email import message_from_bytes
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, inlineCallbacks, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from ocppd.alerts import rules
from ocppd.alerts.delivery import Deliveries, DeliveryFailed, EmailChannel, WebhookChannel
from ocppd.alerts.notices import RAISED, RESOLVED, Alert, Notice
from ocppd.alerts.setup import webhook_client
from tests.alerts.receivers import (
    SECRET,
    Waiters,
    at_level,
    listen_smtp,
    listen_webhook,
    logged_events,
)

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


class Recording:
    """A channel around another, recording each send's outcome as it settles."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.outcomes = Waiters()

    def send(self, notice: Notice) -> Deferred[None]:
        sending = self.inner.send(notice)

        def settled(result: Any) -> Any:
            self.outcomes.add("ok" if result is None else result.getErrorMessage())
            return result

        return sending.addBoth(settled)


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
    def test_retried_with_back_off_on_500(self) -> Generator[Deferred[Any], Any, None]:
        """Two 500s, then 200: tries after 5 and 10 more seconds, each freshly signed."""
        receiver, url = listen_webhook(self, [500, 500, 200])
        clock = Clock()
        clock.advance(START)
        channel = Recording(self.channel(url, clock))
        deliveries = Deliveries([channel], clock=clock, retry_delay=5, max_attempts=4)
        logged = logged_events(self)
        deliveries.deliver(Notice(RAISED, ALERT))
        yield channel.outcomes.when(1)
        self.assertEqual([c.getTime() - clock.seconds() for c in clock.getDelayedCalls()], [5])
        clock.advance(4.9)
        self.assertEqual(len(receiver.received), 1)
        clock.advance(0.1)
        yield channel.outcomes.when(2)
        self.assertEqual([c.getTime() - clock.seconds() for c in clock.getDelayedCalls()], [10])
        clock.advance(10)
        yield channel.outcomes.when(3)
        self.assertEqual(channel.outcomes.received, ["HTTP 500", "HTTP 500", "ok"])
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(deliveries.pending, 0)
        self.assertEqual(receiver.signed_ok, [True, True, True])
        self.assertEqual(len(set(receiver.timestamps)), 3)
        self.assertEqual(len(at_level(logged, "warn")), 2)

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
    name = "fake"

    def __init__(self, outcomes: list[bool]) -> None:
        self.outcomes = outcomes
        self.sent: list[Notice] = []

    def send(self, notice: Notice) -> Deferred[None]:
        self.sent.append(notice)
        ok = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        return succeed(None) if ok else fail(DeliveryFailed("HTTP 503"))


class BackOffTests(SynchronousTestCase):
    def test_delays_double_up_to_the_cap(self) -> None:
        deliveries = Deliveries([], clock=Clock(), retry_delay=5, max_attempts=20)
        self.assertEqual(
            [deliveries.delay(n) for n in (1, 2, 3, 4, 10, 30)], [5, 10, 20, 40, 2560, 3600]
        )

    def test_given_up_after_max_attempts(self) -> None:
        clock = Clock()
        channel = FakeChannel([False])
        deliveries = Deliveries([channel], clock=clock, retry_delay=1, max_attempts=3)
        logged = logged_events(self)
        deliveries.deliver(Notice(RAISED, ALERT))
        clock.pump([1, 2, 4, 8])
        self.assertEqual(len(channel.sent), 3)
        self.assertEqual(deliveries.pending, 0)
        errors = at_level(logged, "error")
        self.assertEqual(len(errors), 1)
        self.assertIn("NOT delivered", errors[0]["log_format"])

    def test_stop_gives_up_the_waiting_retries(self) -> None:
        clock = Clock()
        channel = FakeChannel([False])
        deliveries = Deliveries([channel], clock=clock, retry_delay=1, max_attempts=3)
        deliveries.deliver(Notice(RAISED, ALERT))
        self.successResultOf(deliveries.stop())
        clock.advance(100)
        self.assertEqual(len(channel.sent), 1)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_each_channel_is_tried(self) -> None:
        one, two = FakeChannel([True]), FakeChannel([False, True])
        clock = Clock()
        deliveries = Deliveries([one, two], clock=clock, retry_delay=1, max_attempts=3)
        deliveries.deliver(Notice(RAISED, ALERT))
        clock.advance(1)
        self.assertEqual((len(one.sent), len(two.sent)), (1, 2))
