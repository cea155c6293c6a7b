"""``[alerts]`` read and checked, and the evaluator a node builds from it."""

from __future__ import annotations

from datetime import UTC, datetime

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.alerts.delivery import EmailChannel, WebhookChannel
from ocppd.alerts.evaluator import consumer_lags
from ocppd.alerts.rules import QueueState
from ocppd.alerts.setup import make_alerts, make_channels
from ocppd.config import ConfigError, load_config

WEBHOOK = ["alerts.webhook_url=https://hooks.example.com/x", "alerts.webhook_secret=" + "s" * 16]
MAIL = ["alerts.smtp_host=mail.example.com", "alerts.mail_to=a@example.com, b@example.com"]


class ConfigTests(SynchronousTestCase):
    def refused(self, *overrides: str) -> str:
        with self.assertRaises(ConfigError) as caught:
            load_config(None, list(overrides))
        return str(caught.exception)

    def test_a_webhook_needs_a_secret(self) -> None:
        self.assertIn("webhook_secret", self.refused("alerts.webhook_url=https://h.example/x"))
        self.assertIn(
            "webhook_secret",
            self.refused("alerts.webhook_url=https://h.example/x", "alerts.webhook_secret=short"),
        )

    def test_only_http_urls(self) -> None:
        self.assertIn("alerts.webhook_url", self.refused("alerts.webhook_url=file:///etc/passwd"))

    def test_mail_needs_recipients_that_are_addresses(self) -> None:
        self.assertIn("mail_to", self.refused("alerts.smtp_host=mail.example.com"))
        self.assertIn("alerts.mail_to", self.refused("alerts.mail_to=nobody"))
        self.assertIn("alerts.mail_to", self.refused("alerts.mail_to=a@b.example\r\nBcc: c@d"))
        self.assertIn("alerts.mail_from", self.refused("alerts.mail_from=a@b.example, c@d.example"))

    def test_bounds(self) -> None:
        self.assertIn("alerts.interval", self.refused("alerts.interval=1"))
        self.assertIn("alerts.max_attempts", self.refused("alerts.max_attempts=0"))


class SetupTests(SynchronousTestCase):
    def test_no_channel_by_default(self) -> None:
        """Alerts are still evaluated and shown on the CMS; nothing is sent."""
        self.assertEqual(make_channels(load_config(None, []), Clock()), [])

    def test_channels_from_the_configuration(self) -> None:
        config = load_config(None, [*WEBHOOK, *MAIL, "alerts.smtp_starttls=yes"])
        webhook, email = make_channels(config, Clock())
        assert isinstance(webhook, WebhookChannel) and isinstance(email, EmailChannel)
        self.assertEqual(webhook.url, "https://hooks.example.com/x")
        self.assertEqual(email.mail_to, ("a@example.com", "b@example.com"))

    def test_consumer_lags(self) -> None:
        """The age of what each consumer holds; none held is no lag, unreadable is unknown."""

        class Bus:
            def oldest_unprocessed(self) -> dict[str, str | None]:
                return {
                    "processor": "2026-12-07T08:00:00.000Z",
                    "audit": None,
                    "funds_stop": "garbage",
                }

        clock = Clock()
        clock.advance(datetime(2026, 12, 7, 8, 5, tzinfo=UTC).timestamp())
        self.assertEqual(
            consumer_lags(Bus(), clock)(),
            [QueueState("audit", None, 0.0), QueueState("processor", None, 300.0)],
        )

    def test_rabbitmq_queues_read_from_the_broker(self) -> None:
        """On RabbitMQ the journal is not read (there is none) and the broker is."""
        config = load_config(None, ["bus.backend=amqp", "alerts.interval=30"])
        evaluator = make_alerts(config, Clock(), database=None, outbox=None)  # type: ignore[arg-type]
        self.assertEqual(evaluator.interval, 30)
        self.assertFalse(evaluator._journal)
        self.assertIsNotNone(evaluator._broker_queues)
        self.assertIsNone(evaluator._local_queues)  # no bus given
        with_bus = make_alerts(config, Clock(), database=None, outbox=None, bus=object())  # type: ignore[arg-type]
        self.assertIsNotNone(with_bus._local_queues)
        embedded = make_alerts(load_config(None, []), Clock(), database=None, outbox=None)  # type: ignore[arg-type]
        self.assertTrue(embedded._journal)
        self.assertIsNone(embedded._broker_queues)
