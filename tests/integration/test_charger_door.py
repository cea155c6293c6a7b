"""
The charger endpoint's door on a whole node over real 127.0.0.1 sockets: how
much a client may send before it is answered, how often a wrong key may be
tried, what a refusal logs, and how many strangers may wait as Pending.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from ocppd.ocpp.admission import KEY_FAILURES
from ocppd.store import chargers
from tests.integration.clients import basic_auth, connect, raw_handshake, raw_request
from tests.integration.daemon import start_daemon

KEY = "door-key-0123456789"
WRONG = "not-the-key-0123456789"


def status_line(response: bytes) -> str:
    return response.split(b"\r\n", 1)[0].decode()


def handshake(key: str | None = None, user: str = "CP1") -> dict[str, str]:
    """The headers of an OCPP handshake, with Basic auth if ``key`` is given."""
    headers = {"Sec-WebSocket-Protocol": "ocpp1.6"}
    if key is not None:
        headers["Authorization"] = basic_auth(user, key)
    return headers


class DoorTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def setUp(self) -> Any:
        self.daemon = yield start_daemon(self, "ocpp.max_handshake_size=4096")
        self.daemon.ocppctl("charger", "add", "CP1", stdin=KEY + "\n")

    @inlineCallbacks
    def test_endless_header_is_refused(self) -> Any:
        """A request whose headers never end gets 431 and is closed once past the limit."""
        request = b"GET /ocpp/CP1 HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 12_000
        response = yield raw_request(self.daemon.port, request)
        self.assertEqual(status_line(response), "HTTP/1.1 431 opening handshake too large")
        self.assertEqual(len(self.daemon.node.registry), 0)

    @inlineCallbacks
    def test_wrong_keys_are_slowed_down_and_logged_once(self) -> Any:
        """
        After the free wrong keys the next attempt gets 429 with Retry-After.
        Each refusal is one log event naming the charger and the address,
        and no event carries a key.
        """
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        port = self.daemon.port
        for _ in range(KEY_FAILURES.free):
            response = yield raw_handshake(port, "/ocpp/CP1", handshake(WRONG))
            self.assertIn(" 401 ", status_line(response))
        response = yield raw_handshake(port, "/ocpp/CP1", handshake(KEY))
        self.assertEqual(status_line(response), "HTTP/1.1 429 too many failed attempts")
        self.assertIn(b"\r\nRetry-After: 1\r\n", response)
        refusals = [e for e in events if "Refused OCPP handshake" in e.get("log_format", "")]
        self.assertEqual(
            [(e["charge_point_id"], e["address"], e["status"]) for e in refusals],
            [("CP1", "127.0.0.1", 401)] * KEY_FAILURES.free + [("CP1", "127.0.0.1", 429)],
        )
        # Autobahn's own lines about the same refusals are not written.
        self.assertEqual([e for e in events if e["log_namespace"].startswith("autobahn")], [])
        self.assertNotIn(WRONG, repr(events))
        self.assertNotIn(KEY, repr(events))


class PendingDoorTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def test_pending_registrations_capped(self) -> Any:
        """[ocpp] max_pending_chargers: beyond it an unknown charger is refused, not stored."""
        daemon = yield start_daemon(
            self, "ocpp.unknown_chargers=pending", "ocpp.max_pending_chargers=1"
        )
        client = yield connect(daemon.port, "NEW1", KEY)
        client.close()
        yield client.closed
        response = yield raw_handshake(daemon.port, "/ocpp/NEW2", handshake(KEY, "NEW2"))
        self.assertIn(" 404 ", status_line(response))
        self.assertIsNone((yield daemon.query(chargers.get_charge_point, "NEW2")))

    @inlineCallbacks
    def test_trailing_newline_in_the_id_is_refused(self) -> Any:
        """``/ocpp/NEW%0A`` is no charger id: 404, and no Pending charger "NEW\\n" is created."""
        # Short pings: an admitted raw client (the bug) is dropped within seconds.
        daemon = yield start_daemon(
            self, "ocpp.unknown_chargers=pending", "ocpp.ping_interval=1", "ocpp.ping_timeout=1"
        )
        response = yield raw_handshake(daemon.port, "/ocpp/NEW%0A", handshake(KEY, "NEW\n"))
        self.assertIn(" 404 ", status_line(response))
        self.assertIsNone((yield daemon.query(chargers.get_charge_point, "NEW\n")))
