"""
Tests for ocppd.proxies and its use by the web listener: the client's address
from X-Forwarded-For only through trusted proxies, spoofed headers ignored.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource

from ocppd.config import ConfigError, load_config
from ocppd.proxies import MAX_HOPS, TrustedProxies, parse_networks
from ocppd.web import WebSite

PROXIES = TrustedProxies(parse_networks(["10.0.0.0/8", "::1", "192.0.2.7"]))


class ClientAddressTests(SynchronousTestCase):
    def test_untrusted_peer_header_ignored(self) -> None:
        """A client that connects directly cannot name another address."""
        self.assertEqual(PROXIES.client_address("203.0.113.9", ["198.51.100.1"]), "203.0.113.9")

    def test_trusted_peer_names_the_client(self) -> None:
        self.assertEqual(PROXIES.client_address("10.1.2.3", ["198.51.100.1"]), "198.51.100.1")

    def test_rightmost_untrusted_hop(self) -> None:
        """A spoofed entry left of what the proxies appended is never reached."""
        header = "6.6.6.6, 198.51.100.1, 10.0.0.5"
        self.assertEqual(PROXIES.client_address("192.0.2.7", [header]), "198.51.100.1")

    def test_several_header_lines_are_one_list(self) -> None:
        self.assertEqual(
            PROXIES.client_address("10.0.0.1", ["6.6.6.6", "198.51.100.1, 10.0.0.2"]),
            "198.51.100.1",
        )

    def test_no_header_or_no_proxies(self) -> None:
        self.assertEqual(PROXIES.client_address("10.0.0.1", None), "10.0.0.1")
        self.assertEqual(TrustedProxies().client_address("10.0.0.1", ["1.2.3.4"]), "10.0.0.1")

    def test_garbage_entry_stops_at_the_proxy(self) -> None:
        """An entry that is not an address was not written by a proxy of ours."""
        for garbage in ("unknown", "1.2.3.4\r\nX: y", "a" * 10_000, ""):
            self.assertEqual(PROXIES.client_address("10.0.0.1", [garbage]), "10.0.0.1")

    def test_all_trusted_gives_the_leftmost(self) -> None:
        self.assertEqual(PROXIES.client_address("10.0.0.1", ["10.0.0.9, 10.0.0.8"]), "10.0.0.9")

    def test_forms(self) -> None:
        """IPv6 in brackets with a port, IPv4-mapped peers."""
        self.assertEqual(PROXIES.client_address("::1", ["[2001:db8::1]:4711"]), "2001:db8::1")
        self.assertEqual(
            PROXIES.client_address("::ffff:10.0.0.1", ["198.51.100.2"]), "198.51.100.2"
        )

    def test_long_header_is_bounded(self) -> None:
        """Only MAX_HOPS entries are looked at, however long the header."""
        header = ", ".join(["198.51.100.1"] + ["10.0.0.1"] * 100_000)
        self.assertEqual(PROXIES.client_address("10.0.0.1", [header]), "10.0.0.1")
        header = ", ".join(["198.51.100.1"] + ["10.0.0.1"] * (MAX_HOPS - 1))
        self.assertEqual(PROXIES.client_address("10.0.0.1", [header]), "198.51.100.1")


class ConfigTests(SynchronousTestCase):
    def test_option(self) -> None:
        config = load_config(None, ["web.trusted_proxies=127.0.0.1, 10.0.0.0/8"])
        self.assertEqual(config.web.trusted_proxies, ("127.0.0.1", "10.0.0.0/8"))
        self.assertEqual(load_config(None, []).web.trusted_proxies, ())

    def test_bad_entry_named(self) -> None:
        with self.assertRaises(ConfigError) as caught:
            load_config(None, ["web.trusted_proxies=10.0.0.0/8, nginx"])
        self.assertIn("web.trusted_proxies: 'nginx'", str(caught.exception))


class Echo(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return str(request.getClientAddress().host).encode()


class WebListenerTests(SynchronousTestCase):
    """The web listener's getClientAddress (sign-in limits and logs use it)."""

    def client_of(self, peer: str, *headers: bytes) -> bytes:
        site = WebSite(Echo(), max_body_size=100, reactor=Clock(), trusted_proxies=PROXIES)
        address = IPv4Address("TCP", peer, 40000)
        channel = site.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        channel.makeConnection(transport)
        extra = b"".join(header + b"\r\n" for header in headers)
        channel.dataReceived(b"GET / HTTP/1.1\r\nHost: ocppd.test\r\n%s\r\n" % extra)
        channel.connectionLost(Exception("test over"))
        return transport.value().rpartition(b"\r\n\r\n")[2]

    def test_through_a_trusted_proxy(self) -> None:
        body = self.client_of("10.0.0.1", b"X-Forwarded-For: 6.6.6.6, 198.51.100.1")
        self.assertEqual(body, b"198.51.100.1")

    def test_spoofed_header_from_an_untrusted_peer(self) -> None:
        body = self.client_of("203.0.113.9", b"X-Forwarded-For: 198.51.100.1")
        self.assertEqual(body, b"203.0.113.9")

    def test_no_header(self) -> None:
        self.assertEqual(self.client_of("10.0.0.1"), b"10.0.0.1")
