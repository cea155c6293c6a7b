"""A node's alert evaluator, from ``[alerts]``: its rules, channels and queue readers."""

from __future__ import annotations

from typing import Any

from ocppd.alerts.delivery import Channel, Deliveries, EmailChannel, WebhookChannel
from ocppd.alerts.evaluator import AlertEvaluator, broker_queues, consumer_lags
from ocppd.alerts.rules import Rules
from ocppd.bus.outbox import Outbox
from ocppd.config import Config
from ocppd.store.database import Database


def webhook_client(reactor: Any) -> Any:
    """treq's client on a pool of its own: no connection kept between notices."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool

    return HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))


def make_channels(config: Config, reactor: Any) -> list[Channel]:
    alerts = config.alerts
    channels: list[Channel] = []
    if alerts.webhook_url:
        channels.append(
            WebhookChannel(
                url=alerts.webhook_url,
                secret=alerts.webhook_secret,
                timeout=alerts.webhook_timeout,
                clock=reactor,
                http=webhook_client(reactor),
            )
        )
    if alerts.smtp_host:
        channels.append(
            EmailChannel(
                host=alerts.smtp_host,
                port=alerts.smtp_port,
                starttls=alerts.smtp_starttls,
                username=alerts.smtp_username,
                password=alerts.smtp_password,
                mail_from=alerts.mail_from,
                mail_to=alerts.mail_to,
                timeout=alerts.webhook_timeout,
                reactor=reactor,
            )
        )
    return channels


def make_alerts(
    config: Config,
    reactor: Any,
    database: Database,
    outbox: Outbox | None,
    bus: Any = None,
    journal_database: Database | None = None,
) -> AlertEvaluator:
    alerts = config.alerts
    amqp = config.bus.backend == "amqp"
    return AlertEvaluator(
        database=database,
        clock=reactor,
        node_id=config.ocppd.node_id,
        rules=Rules.from_config(alerts),
        interval=alerts.interval,
        deliveries=Deliveries(
            make_channels(config, reactor),
            database=database,
            clock=reactor,
            retry_delay=alerts.retry_delay,
            max_attempts=alerts.max_attempts,
            # Beyond any one send (each is bounded by the timeout): a claim
            # runs out only when its node died or hangs.
            lease=2 * alerts.webhook_timeout + 60,
        ),
        outbox=outbox,
        journal=not amqp,
        journal_database=journal_database,
        broker_queues=broker_queues(config, reactor) if amqp else None,
        local_queues=consumer_lags(bus, reactor) if amqp and bus is not None else None,
    )
