"""
The frame fast path of ``OcppServerProtocol`` (docs/ocpp.md, "The frame fast
path") against Autobahn's own frame processing: random streams of valid and
invalid frames, split at random byte boundaries, are fed to one protocol with
the fast path and one without; the messages delivered, the bytes written back,
the close codes, the state and Autobahn's traffic counters must be the same.
Plus exact bytes of the outbound header forms, and ``ocppd.wsframes`` alone.
"""

from __future__ import annotations

import itertools
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd import wsframes
from ocppd.ocpp.admission import Admitted
from ocppd.ocpp.protocol import OcppServerFactory, OcppServerProtocol
from ocppd.ocpp.registry import ConnectionRegistry
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.wsframes import masked_text_frame, payload_limit, text_frame_header, unmask
from tests.fuzz.profile import fuzz_settings
from tests.ocpp.fakes import RecordingTraffic
from tests.ocpp.test_protocol import HANDSHAKE, PEER, PendingAdmission, SocketLikeTransport

#: The protocols' max_message_size: small, so that oversized frames are cheap.
LIMIT = 300
SCHEMAS = SchemaRegistry.load()
_ids = itertools.count()


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bytes | None = b"\x37\xfa\x21\x3d",
    long_form: int = 0,
) -> bytes:
    """
    A frame as a client sends it, encoded here independently of the code
    under test; ``long_form`` 2 or 8 forces that (possibly non-minimal) length.
    """
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask is not None else 0
    if long_form == 8 or length > 0xFFFF:
        head = bytes((first, mask_bit | 127)) + struct.pack("!Q", length)
    elif long_form == 2 or length > 125:
        head = bytes((first, mask_bit | 126)) + struct.pack("!H", length)
    else:
        head = bytes((first, mask_bit | length))
    if mask is None:
        return head + payload
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


@dataclass
class Recorder:
    """Stands in for the ChargerConnection: records texts, and acts on a few."""

    protocol: OcppServerProtocol
    open: bool = True
    texts: list[tuple[str, int]] = field(default_factory=list)

    def text_received(self, text: str) -> None:
        self.texts.append((text, self.protocol.state))
        if text == "close":
            self.protocol.close(1000, "bye")
        elif text == "protocol-close":
            self.protocol.close(1002, "no")
        elif text == "reply:ab":
            self.protocol.send_text("ab" * 100)  # the 2-octet length form
        elif text == "reply:ok":
            self.protocol.send_text("ok")
        elif text == "stop":
            self.open = False


class Endpoint:
    """One OCPP server protocol on a StringTransport, opened, with a Recorder."""

    def __init__(self, factory: OcppServerFactory, admission: PendingAdmission, fast: bool):
        protocol = factory.buildProtocol(PEER)
        assert isinstance(protocol, OcppServerProtocol)
        protocol.fast_frames = fast
        self.protocol = protocol
        self.transport = SocketLikeTransport(peerAddress=PEER)
        protocol.makeConnection(self.transport)
        protocol.dataReceived(HANDSHAKE)
        admission.decisions.pop().callback(Admitted(f"CP{next(_ids)}", "Accepted"))
        assert protocol.state == protocol.STATE_OPEN, self.transport.value()
        self.recorder = Recorder(protocol)
        protocol.connection = self.recorder  # type: ignore[assignment]
        self.transport.clear()

    def feed(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.protocol.dataReceived(chunk)

    def outcome(self) -> dict[str, Any]:
        p = self.protocol
        return {
            "texts": self.recorder.texts,
            "written": self.transport.value(),
            "state": p.state,
            "disconnecting": self.transport.disconnecting,
            "close": (p.localCloseCode, p.localCloseReason, p.remoteCloseCode, p.closedByMe),
            "failed": (p.failedByMe, p.wasClean),
            "buffered": (p.data, p.inside_message, p.current_frame is not None),
            "stats": vars(p.trafficStats),
        }


def make_factory(max_message_size: int = LIMIT) -> tuple[OcppServerFactory, PendingAdmission]:
    admission = PendingAdmission()
    factory = OcppServerFactory(
        admission=admission,  # type: ignore[arg-type]
        registry=ConnectionRegistry(),
        handler=None,  # type: ignore[arg-type]
        schemas=SCHEMAS,
        traffic=RecordingTraffic(),  # type: ignore[arg-type]
        clock=Clock(),
        call_timeout=30,
        max_message_size=max_message_size,
        ping_interval=60,
        ping_timeout=30,
        open_handshake_timeout=10,
        max_handshake_size=4096,
    )
    # No Autobahn timers on the global reactor: these tests use no time.
    factory.setProtocolOptions(
        openHandshakeTimeout=0,
        autoPingInterval=0,
        closeHandshakeTimeout=0,
    )
    return factory, admission


TEXTS = st.one_of(
    st.sampled_from(
        ['[2,"1","Heartbeat",{}]', "close", "protocol-close", "reply:ab", "reply:ok", "stop", ""]
    ),
    st.text(max_size=120),
    st.text(min_size=100, max_size=160),  # the 2-octet length form
)
INVALID_UTF8 = st.sampled_from(
    [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b'["\xe2\x82', b"\xf4\x90\x80\x80", b"ok\x80"]
)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            ["text"] * 8
            + ["invalid", "binary", "ping", "pong", "close", "fragments", "continuation"]
            + ["reserved", "oversize", "odd"]
        )
    )
    mask = draw(st.binary(min_size=4, max_size=4))
    if kind == "text":
        return frame(1, draw(TEXTS).encode(), mask=mask)
    if kind == "invalid":
        payload = draw(st.text(max_size=20)).encode() + draw(INVALID_UTF8)
        return frame(1, payload, mask=mask)
    if kind == "binary":
        return frame(2, draw(st.binary(max_size=40)), mask=mask)
    if kind == "ping":
        return frame(9, draw(st.binary(max_size=30)), mask=mask)
    if kind == "pong":
        return frame(10, draw(st.binary(max_size=30)), mask=mask)
    if kind == "close":
        code = draw(st.sampled_from([1000, 1001, 1002, 3000, 4000, 999, 1005, 5000]))
        return frame(8, struct.pack("!H", code) + draw(st.text(max_size=10)).encode(), mask=mask)
    if kind in ("fragments", "continuation"):
        first, second = draw(TEXTS).encode(), draw(TEXTS).encode()
        cont = frame(0, second, mask=mask)
        if kind == "continuation":
            return cont
        # A control frame may come between a message's fragments.
        middle = frame(9, b"p", mask=mask) if draw(st.booleans()) else b""
        return frame(1, first, fin=False, mask=mask) + middle + cont
    if kind == "reserved":
        opcode = draw(st.sampled_from([1, 3, 11]))
        return frame(opcode, b"x", rsv=draw(st.integers(1, 7)) if opcode == 1 else 0, mask=mask)
    if kind == "oversize":
        size = draw(st.sampled_from([LIMIT + 1, 70000]))
        return frame(1, b"a" * size, mask=mask)
    # odd: unmasked, non-minimal lengths, a fragmented text start without end
    variant = draw(st.sampled_from(["unmasked", "long2", "long8", "unfinished"]))
    text = draw(TEXTS).encode()
    if variant == "unmasked":
        return frame(1, text, mask=None)
    if variant == "long2":
        return frame(1, text, mask=mask, long_form=2)
    if variant == "long8":
        return frame(1, text, mask=mask, long_form=8)
    return frame(1, text, fin=False, mask=mask)


@st.composite
def streams(draw: st.DrawFn) -> list[bytes]:
    """Frames concatenated, and cut into reads at random boundaries (several frames in one too)."""
    data = b"".join(draw(st.lists(frames(), min_size=1, max_size=8)))
    cuts = sorted(set(draw(st.lists(st.integers(0, len(data)), max_size=6))))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


class EquivalenceTests(SynchronousTestCase):
    """The fast path changes nothing a client, ocppd or Autobahn's counters see."""

    def setUp(self) -> None:
        self.factory, self.admission = make_factory()

    def outcomes(self, chunks: list[bytes]) -> tuple[dict[str, Any], dict[str, Any]]:
        fast = Endpoint(self.factory, self.admission, fast=True)
        slow = Endpoint(self.factory, self.admission, fast=False)
        fast.feed(chunks)
        slow.feed(chunks)
        return fast.outcome(), slow.outcome()

    @given(streams())
    @fuzz_settings(400)
    def test_random_streams(self, chunks: list[bytes]) -> None:
        fast, slow = self.outcomes(chunks)
        self.assertEqual(fast, slow)

    def test_streams_reach_the_fast_path(self) -> None:
        """
        The common case does take the fast path (else the property above
        compares Autobahn with itself): Autobahn's frame parsing is not called.
        """
        data = frame(1, b'[2,"1","Heartbeat",{}]') + frame(1, b"reply:ab")
        endpoint = Endpoint(self.factory, self.admission, fast=True)
        self.patch(endpoint.protocol, "processData", self.fail)
        self.patch(endpoint.protocol, "sendMessage", self.fail)
        endpoint.feed([data])
        self.assertEqual(
            [text for text, _ in endpoint.recorder.texts],
            ['[2,"1","Heartbeat",{}]', "reply:ab"],
        )
        self.assertEqual(endpoint.transport.value(), b"\x81\x7e\x00\xc8" + b"ab" * 100)

    def test_several_frames_in_one_read_and_the_rest_split(self) -> None:
        """Whole frames of a read are delivered at once; a partial one waits for its rest."""
        data = b"".join(frame(1, f"m{i}".encode()) for i in range(3)) + frame(1, b"last" * 40)
        for cut in range(len(data) + 1):
            fast, slow = self.outcomes([data[:cut], data[cut:]])
            self.assertEqual(fast, slow)
            self.assertEqual(len(fast["texts"]), 4)

    def test_message_that_closes_stops_the_fast_path(self) -> None:
        """
        Once a message closed the connection, Autobahn gets the rest (a text
        frame delivered while closing, a ping not answered).
        """
        data = frame(1, b"close") + frame(1, b"after") + frame(9, b"ping") + frame(8, b"\x03\xe8")
        fast, slow = self.outcomes([data])
        self.assertEqual(fast, slow)
        self.assertEqual([t for t, _ in fast["texts"]], ["close", "after"])
        self.assertEqual(fast["texts"][1][1], OcppServerProtocol.STATE_CLOSING)

    def test_invalid_utf8_fails_as_autobahn_does(self) -> None:
        data = frame(1, b"ok") + frame(1, b"\xed\xa0\x80") + frame(1, b"never")
        fast, slow = self.outcomes([data])
        self.assertEqual(fast, slow)
        self.assertEqual(fast["close"][0], 1007)
        self.assertEqual([t for t, _ in fast["texts"]], ["ok"])

    def test_non_minimal_lengths_fail_as_autobahn_does(self) -> None:
        for data in (frame(1, b"a" * 125, long_form=2), frame(1, b"a" * 200, long_form=8)):
            fast, slow = self.outcomes([frame(1, b"ok") + data])
            self.assertEqual(fast, slow)
            self.assertEqual(fast["close"][0], 1002)

    def test_text_frame_stands_for_the_awaited_pong(self) -> None:
        """A data frame cancels the auto ping's timeout, as in Autobahn's onFrameEnd."""
        clock = Clock()
        endpoints = [Endpoint(self.factory, self.admission, fast=fast) for fast in (True, False)]
        for endpoint in endpoints:
            endpoint.protocol.autoPingTimeoutCall = clock.callLater(30, self.fail)
            endpoint.protocol.autoPingPending = b"ping"
            endpoint.feed([frame(1, b"hello")])
            self.assertIsNone(endpoint.protocol.autoPingTimeoutCall)
            self.assertIsNone(endpoint.protocol.autoPingPending)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(endpoints[0].outcome(), endpoints[1].outcome())

    def test_wrong_unmasking_is_caught(self) -> None:
        """A broken fast path (here: a wrong mask) makes the property fail."""
        self.patch(
            wsframes,
            "unmask",
            lambda payload, mask: unmask(payload, bytes(reversed(mask))),
        )
        import ocppd.ocpp.protocol as protocol_module

        self.patch(protocol_module, "unmask", wsframes.unmask)
        fast, slow = self.outcomes([frame(1, b"abcdefgh", mask=b"\x01\x02\x03\x04")])
        self.assertNotEqual(fast, slow)

    def test_large_messages_in_the_eight_octet_form(self) -> None:
        """Above 64 KiB (a larger max_message_size): unmasked by Autobahn's masker, the same."""
        self.factory, self.admission = make_factory(max_message_size=200_000)
        text = os.urandom(40_000).hex().encode()
        fast, slow = self.outcomes([frame(1, text, mask=b"\x9a\x01\xff\x10") + frame(1, b"x")])
        self.assertEqual(fast, slow)
        self.assertEqual([t for t, _ in fast["texts"]], [text.decode(), "x"])


class OutboundTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.factory, self.admission = make_factory(max_message_size=100_000)

    def sent(self, text: str, fast: bool = True) -> bytes:
        endpoint = Endpoint(self.factory, self.admission, fast=fast)
        if fast:
            self.patch(endpoint.protocol, "sendMessage", self.fail)
        endpoint.protocol.send_text(text)
        return endpoint.transport.value()

    def test_header_forms(self) -> None:
        """Exact headers at each length form's edges, and equal to Autobahn's frames."""
        for length, header in [
            (0, b"\x81\x00"),
            (125, b"\x81\x7d"),
            (126, b"\x81\x7e\x00\x7e"),
            (65535, b"\x81\x7e\xff\xff"),
            (65536, b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
        ]:
            text = "a" * length
            self.assertEqual(self.sent(text), header + text.encode())
            self.assertEqual(self.sent(text), self.sent(text, fast=False))

    def test_counters_as_autobahns(self) -> None:
        fast = Endpoint(self.factory, self.admission, fast=True)
        slow = Endpoint(self.factory, self.admission, fast=False)
        for endpoint in (fast, slow):
            endpoint.protocol.send_text("é" * 200)
        self.assertEqual(fast.outcome(), slow.outcome())

    def test_oversized_answer_is_autobahns_error(self) -> None:
        """Above maxMessagePayloadSize Autobahn refuses to send: still so."""
        from autobahn.exception import PayloadExceededError

        endpoint = Endpoint(self.factory, self.admission, fast=True)
        self.assertRaises(PayloadExceededError, endpoint.protocol.send_text, "a" * 100_001)


class FrameFunctionTests(SynchronousTestCase):
    def test_header_lengths(self) -> None:
        self.assertEqual(text_frame_header(125), b"\x81\x7d")
        self.assertEqual(text_frame_header(126), b"\x81\x7e\x00\x7e")
        self.assertEqual(text_frame_header(65535), b"\x81\x7e\xff\xff")
        self.assertEqual(text_frame_header(65536), b"\x81\x7f" + (65536).to_bytes(8, "big"))
        self.assertRaises(ValueError, text_frame_header, 2**63)

    @given(st.binary(max_size=3000), st.binary(min_size=4, max_size=4))
    @fuzz_settings(200)
    def test_unmask_is_xor(self, payload: bytes, mask: bytes) -> None:
        expected = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.assertEqual(unmask(payload, mask), expected)

    def test_frame_bounds(self) -> None:
        data = b"xx" + frame(1, b"abc", mask=b"1234") + b"tail"
        self.assertEqual(masked_text_frame(data, 2, 10), (8, 11, b"1234"))
        self.assertIsNone(masked_text_frame(data, 2, 2))  # over the limit
        self.assertIsNone(masked_text_frame(data[:10], 2, 10))  # incomplete
        # Lengths not in their minimal form (RFC 6455 5.2): Autobahn's protocol error.
        for length in (0, 3, 125):
            self.assertIsNone(masked_text_frame(frame(1, b"a" * length, long_form=2), 0, 10**6))
        for length in (0, 200, 65535):
            self.assertIsNone(masked_text_frame(frame(1, b"a" * length, long_form=8), 0, 10**6))
        self.assertIsNotNone(masked_text_frame(frame(1, b"a" * 126, long_form=2), 0, 10**6))
        self.assertIsNotNone(masked_text_frame(frame(1, b"a" * 65536, long_form=8), 0, 10**6))
        self.assertIsNone(masked_text_frame(frame(1, b"abc", mask=None) + b"....", 0, 10))

    def test_limit(self) -> None:
        self.assertEqual(payload_limit(0, 0), wsframes.MAX_PAYLOAD)
        self.assertEqual(payload_limit(100, 0), 100)
        self.assertEqual(payload_limit(0, 50), 50)
        self.assertEqual(payload_limit(100, 50), 50)
