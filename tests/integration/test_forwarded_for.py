"""
The charger endpoint behind a proxy, over real sockets: the address admission
limits and logs use comes from X-Forwarded-For only when the peer is a
trusted proxy (``[web] trusted_proxies``); a spoofed header is ignored.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from tests.integration.clients import raw_handshake
from tests.integration.daemon import start_daemon

HEADERS = {"Sec-WebSocket-Protocol": "ocpp1.6", "X-Forwarded-For": "6.6.6.6, 198.51.100.1"}


class ForwardedForTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def refused_from(self, *overrides: str) -> Any:
        """
        The addresses the refusals of an unknown charger's handshake and of a
        push handshake from a foreign page log.
        """
        daemon = yield start_daemon(self, *overrides)
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        response = yield raw_handshake(daemon.port, "/ocpp/NOBODY", HEADERS)
        self.assertIn(b" 404 ", response.split(b"\r\n")[0])
        push = {**HEADERS, "Sec-WebSocket-Protocol": "wamp.2.json", "Origin": "https://evil.test"}
        response = yield raw_handshake(daemon.web_port, "/push", push)
        self.assertIn(b" 403 ", response.split(b"\r\n")[0])
        [charger] = [e for e in events if "Refused OCPP handshake" in e.get("log_format", "")]
        [browser] = [e for e in events if "Refused push handshake" in e.get("log_format", "")]
        return charger["address"], browser["peer"]

    @inlineCallbacks
    def test_trusted_proxy(self) -> Any:
        addresses = yield self.refused_from("web.trusted_proxies=127.0.0.0/8")
        self.assertEqual(addresses, ("198.51.100.1", "198.51.100.1"))

    @inlineCallbacks
    def test_spoofed_from_untrusted_peer(self) -> Any:
        addresses = yield self.refused_from("web.trusted_proxies=10.0.0.0/8")
        self.assertEqual(addresses, ("127.0.0.1", "127.0.0.1"))
