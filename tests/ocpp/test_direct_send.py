"""
The direct send of ``OcppServerProtocol`` (docs/ocpp.md, "The frame fast
path"): on a real loopback TCP connection of Twisted's, an answer goes out at
once (before the reactor turns), byte for byte the frame Twisted's buffered
write sends; what the socket does not take is left to Twisted's buffer, in
order; a peer's reset ends the connection as it did through Twisted's write;
anything that is not a plain TCP connection (TLS) gets ``transport.write``.
"""

from __future__ import annotations

import select
import socket
import struct
from collections.abc import Generator
from typing import Any

from twisted.internet import reactor as global_reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionLost
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.internet.protocol import Protocol
from twisted.internet.task import deferLater
from twisted.internet.tcp import Server as TcpServer
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from ocppd.ocpp.admission import Admitted
from ocppd.ocpp.protocol import OcppServerProtocol
from tests.ocpp.test_frame_fast_path import make_factory
from tests.ocpp.test_protocol import HANDSHAKE

reactor: Any = global_reactor
assert IReactorTCP.providedBy(reactor) and IReactorTime.providedBy(reactor)

#: Larger than what a socket with the smallest buffers takes at once.
BIG = 150_000


def answer_frame(text: str) -> bytes:
    """The unmasked text frame a server sends, encoded here independently."""
    payload = text.encode()
    length = len(payload)
    if length < 126:
        head = bytes((0x81, length))
    elif length < 0x10000:
        head = bytes((0x81, 126)) + struct.pack("!H", length)
    else:
        head = bytes((0x81, 127)) + struct.pack("!Q", length)
    return head + payload


class Connected:
    """A raw client socket and the open server protocol of its connection."""

    def __init__(self, client: socket.socket, protocol: OcppServerProtocol, lost: list[Failure]):
        self.client = client
        self.protocol = protocol
        self.lost = lost

    @property
    def transport(self) -> TcpServer:
        transport = self.protocol.transport
        assert isinstance(transport, TcpServer)
        return transport

    def readable_now(self, size: int, wait: float = 0.5) -> bytes:
        """What the client can read without the reactor running (up to ``size``)."""
        received = b""
        while len(received) < size and select.select([self.client], [], [], wait)[0]:
            chunk = self.client.recv(size - len(received))
            if not chunk:
                break
            received += chunk
        return received


class DirectSendTests(TestCase):
    def setUp(self) -> None:
        self.factory, self.admission = make_factory(max_message_size=1_000_000)
        self.protocols: list[OcppServerProtocol] = []
        build = self.factory.buildProtocol

        def recording_build(addr: Any) -> Any:
            protocol = build(addr)
            self.protocols.append(protocol)
            return protocol

        self.factory.buildProtocol = recording_build  # type: ignore[method-assign]
        self.port = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)

    @inlineCallbacks
    def connect(self, direct: bool = True) -> Generator[Deferred[Any], Any, Connected]:
        client = socket.create_connection(("127.0.0.1", self.port.getHost().port))
        self.addCleanup(client.close)
        client.sendall(HANDSHAKE)
        while not self.admission.decisions:
            yield deferLater(reactor, 0.005)
        self.admission.decisions.pop().callback(Admitted("CP1", "Accepted"))
        (protocol,) = self.protocols
        self.assertEqual(protocol.state, protocol.STATE_OPEN)
        protocol.direct_send = direct
        protocol.connection = None  # nothing handles what the client says
        lost: list[Failure] = []
        autobahn_lost = protocol._connectionLost
        protocol._connectionLost = lambda reason: (  # type: ignore[method-assign]
            lost.append(reason),
            autobahn_lost(reason),
        )[1]
        self.addCleanup(protocol.dropConnection, abort=True)
        connected = Connected(client, protocol, lost)
        # The 101 response, through Twisted's write: once the reactor has sent it.
        response = b""
        while b"\r\n\r\n" not in response:
            yield deferLater(reactor, 0.005)
            if select.select([client], [], [], 0)[0]:
                response += client.recv(4096)
        self.assertTrue(response.startswith(b"HTTP/1.1 101"), response)
        self.assertEqual(response.split(b"\r\n\r\n", 1)[1], b"")
        return connected

    @inlineCallbacks
    def test_answers_sent_at_once_byte_identical(self) -> Generator[Deferred[Any], Any, None]:
        """
        Without the reactor turning, each answer (the three length forms) is
        on the client's socket, exactly the frame, and Twisted holds nothing;
        the traffic counters are those of Twisted's write.
        """
        connected = yield self.connect()
        for text in ['[3,"1",{"currentTime":"2026-12-07T14:00:00Z"}]', "é" * 100, "x" * 70_000]:
            octets_before = connected.protocol.trafficStats.outgoingOctetsWireLevel
            connected.protocol.send_text(text)
            expected = answer_frame(text)
            self.assertEqual(connected.transport.dataBuffer, b"")
            self.assertEqual(connected.transport._tempDataBuffer, [])
            self.assertEqual(connected.readable_now(len(expected) + 1), expected)
            self.assertEqual(
                connected.protocol.trafficStats.outgoingOctetsWireLevel - octets_before,
                len(expected),
            )

    @inlineCallbacks
    def test_switched_off_answers_wait_for_the_reactor(self) -> Generator[Deferred[Any], Any, None]:
        """``direct_send = False``: Twisted's write, sent on the reactor's next turn."""
        connected = yield self.connect(direct=False)
        connected.protocol.send_text("ok")
        self.assertEqual(connected.transport._tempDataBuffer, [answer_frame("ok")])
        self.assertEqual(connected.readable_now(10), b"")
        yield deferLater(reactor, 0.01)
        self.assertEqual(connected.readable_now(10), answer_frame("ok"))

    @inlineCallbacks
    def test_partial_send_buffers_the_rest_in_order(self) -> Generator[Deferred[Any], Any, None]:
        """
        A client that does not read and small socket buffers: the socket takes
        part of a large answer, Twisted buffers the rest, later answers queue
        behind it, and the client finally reads every frame whole and in order.
        """
        connected = yield self.connect()
        connected.client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        connected.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        texts = ["a" * BIG, "b", "c" * 300, "d" * BIG]
        for text in texts:
            connected.protocol.send_text(text)
        expected = b"".join(answer_frame(text) for text in texts)
        buffered = b"".join(connected.transport._tempDataBuffer)
        # Sent directly: some of the first answer, not all of it.
        sent = len(expected) - len(buffered)
        self.assertGreater(sent, 0)
        self.assertLess(sent, len(answer_frame(texts[0])))
        self.assertEqual(buffered, expected[len(expected) - len(buffered) :])
        connected.protocol.send_text("e")
        expected += answer_frame("e")
        received = b""
        while len(received) < len(expected):
            yield deferLater(reactor, 0)
            received += connected.readable_now(len(expected) - len(received), wait=0)
        self.assertEqual(received, expected)
        # Drained: the next answer is direct again.
        while connected.transport.dataBuffer or connected.transport._tempDataBuffer:
            yield deferLater(reactor, 0.005)
        connected.protocol.send_text("f")
        self.assertEqual(connected.readable_now(10), answer_frame("f"))

    @inlineCallbacks
    def reset_then_answer(self, direct: bool) -> Generator[Deferred[Any], Any, BaseException]:
        """The exception the connection ended with (a Failure would fail the Deferred)."""
        connected = yield self.connect(direct)
        connected.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connected.client.close()  # a reset, before the server has read anything of it
        connected.protocol.send_text("too late")
        while not connected.lost:
            yield deferLater(reactor, 0.005)
        (reason,) = connected.lost
        self.assertFalse(connected.protocol.wasClean)
        return reason.value

    @inlineCallbacks
    def test_reset_peer_same_connection_lost(self) -> Generator[Deferred[Any], Any, None]:
        """
        An answer to a client that reset the connection: ConnectionLost, as
        through Twisted's write, although the send took the socket's error and
        the read after it sees only the end of the stream.
        """
        through_write = yield self.reset_then_answer(direct=False)
        self.protocols.clear()
        direct = yield self.reset_then_answer(direct=True)
        self.assertIsInstance(through_write, ConnectionLost)
        self.assertIs(type(direct), type(through_write))

    def test_tls_uses_transport_write(self) -> None:
        """A TLS connection (TLSMemoryBIOProtocol, or startTLS's flag): ``write``."""
        protocol = OcppServerProtocol()
        written: list[bytes] = []
        tls = TLSMemoryBIOProtocol(None, Protocol())  # type: ignore[arg-type]
        tls.write = written.append  # type: ignore[method-assign]
        protocol._write_answer(tls, b"frame")
        self.assertEqual(written, [b"frame"])

        # A TCP connection after startTLS: the same class, its TLS flag set.
        started_tls = TcpServer.__new__(TcpServer)
        started_tls.TLS = True
        started_tls.connected = 1
        started_tls.producer = None
        started_tls._tempDataBuffer = []

        def not_sent(data: bytes) -> int:
            raise AssertionError("sent past TLS")

        started_tls.writeSomeData = not_sent  # type: ignore[method-assign]
        started_tls.write = written.append  # type: ignore[method-assign]
        protocol._write_answer(started_tls, b"other")
        self.assertEqual(written, [b"frame", b"other"])
