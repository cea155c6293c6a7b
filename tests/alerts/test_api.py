"""``GET /api/cms/alerts`` on a whole node: the open alerts, for admins only, announced live."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks, succeed

from ocppd.alerts import queue
from ocppd.api.openapi import document
from ocppd.store import chargers
from ocppd.timeutil import from_timestamp
from tests.alerts.receivers import SECRET, listen_smtp, listen_webhook
from tests.api.test_api import ADMIN, CUSTOMER, ApiTestCase
from tests.integration.daemon import poll


class AlertsRouteTests(ApiTestCase):
    @inlineCallbacks
    def offline_for_an_hour(self, cp: str) -> Any:
        now = from_timestamp(reactor.seconds())
        yield self.daemon.query(
            chargers.set_connected, cp, connection_id="c1", node="n", at=now - timedelta(hours=2)
        )
        yield self.daemon.query(
            chargers.set_disconnected, cp, connection_id="c1", at=now - timedelta(hours=1)
        )

    @inlineCallbacks
    def test_customers_are_refused(self) -> Any:
        token = yield self.login(CUSTOMER)
        self.assertError(
            (yield self.request("GET", "/api/cms/alerts", token=token)), 403, "forbidden"
        )
        self.assertError((yield self.request("GET", "/api/cms/alerts")), 401, "unauthorized")

    @inlineCallbacks
    def test_open_alerts_listed_and_announced(self) -> Any:
        """An evaluation raises the offline alert: listed, and cms.alert.raised published."""
        published: list[tuple[str, dict[str, Any]]] = []
        bus = self.daemon.node.bus
        publish = bus.publish

        def recording(key: str, envelope: Any) -> Any:
            published.append((key, envelope.payload))
            return publish(key, envelope)

        self.patch(bus, "publish", recording)
        token = yield self.login(ADMIN)
        code, body, _ = yield self.request("GET", "/api/cms/alerts", token=token)
        self.assertEqual((code, body), (200, {"alerts": []}))

        yield self.offline_for_an_hour("CP1")
        raised = yield self.daemon.node.alerts.evaluate()
        self.assertEqual([n.alert.key for n in raised], ["charger_offline:CP1"])
        code, body, _ = yield self.request("GET", "/api/cms/alerts", token=token)
        self.assertEqual(code, 200)
        [alert] = body["alerts"]
        self.assertEqual(
            (alert["kind"], alert["subject"], alert["resolvedAt"]), ("charger_offline", "CP1", None)
        )
        schema = document()["components"]["schemas"]["Alert"]
        self.assertEqual(sorted(alert), sorted(schema["properties"]))
        yield poll(
            lambda: succeed([key for key, _ in published]),
            until=lambda keys: "cms.alert.raised" in keys,
        )
        payload = next(p for key, p in published if key == "cms.alert.raised")
        self.assertEqual(
            (payload["kind"], payload["verb"], payload["id"]), ("alert", "raised", alert["id"])
        )


class ConfiguredDeliveryTests(ApiTestCase):
    """A node configured with a webhook and a mailbox sends what its evaluation raised."""

    def daemon_overrides(self) -> list[str]:
        self.receiver, url = listen_webhook(self, [200])
        self.box, port = listen_smtp(self)
        return [
            f"alerts.webhook_url={url}",
            f"alerts.webhook_secret={SECRET}",
            "alerts.smtp_host=127.0.0.1",
            f"alerts.smtp_port={port}",
            "alerts.mail_to=ops@example.com",
        ]

    @inlineCallbacks
    def test_raised_alert_is_posted_and_mailed(self) -> Any:
        now = from_timestamp(reactor.seconds())
        yield self.daemon.query(
            chargers.set_connected, "CP1", connection_id="c1", node="n", at=now - timedelta(hours=2)
        )
        yield self.daemon.query(
            chargers.set_disconnected, "CP1", connection_id="c1", at=now - timedelta(hours=1)
        )
        yield self.daemon.node.alerts.evaluate()
        yield self.receiver.when(1)
        yield self.box.when(1)
        self.assertEqual(self.receiver.signed_ok, [True])
        self.assertEqual(self.receiver.received[0]["alert"]["key"], "charger_offline:CP1")
        self.assertEqual(self.box.received[0][0], "ops@example.com")
        yield poll(lambda: self.daemon.query(queue.waiting), until=lambda count: count == 0)
