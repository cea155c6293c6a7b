"""
CPU per message of the WebSocket frame path alone: a client's masked text
frame into ``OcppServerProtocol.dataReceived``, its answer out through
``send_text``, with the frame fast path (docs/ocpp.md) and without it.

    .venv/bin/python bench/frame_path.py [--messages 20000] [--repeats 7]
    valgrind --tool=callgrind .venv/bin/python bench/frame_path.py \
        --path fast|autobahn --action Heartbeat|MeterValues --messages 0|N --repeats 1

``--path`` and ``--action`` time one of them alone; under callgrind, the
difference of the instruction totals of ``--messages N`` and ``--messages 0``
over N is the cost per message, which the machine's other load does not change.

The protocol is open on a transport that drops what is written; the
connection behind it answers each message with a fixed CALLRESULT at once, so
nothing of OCPP's own work is timed. Times are process CPU, best of the
repeats, fast and Autobahn's path interleaved.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, "bench")]

from loadgen import meter_values_body  # noqa: E402
from twisted.internet.address import IPv4Address  # noqa: E402
from twisted.internet.defer import succeed  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

from ocppd.ocpp.admission import Admitted  # noqa: E402
from ocppd.ocpp.protocol import OcppServerFactory, OcppServerProtocol  # noqa: E402
from ocppd.ocpp.registry import ConnectionRegistry  # noqa: E402

PEER = IPv4Address("TCP", "192.0.2.1", 40000)
HANDSHAKE = (
    b"GET /ocpp/CP1 HTTP/1.1\r\nHost: 127.0.0.1:9000\r\n"
    b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
)


class Admission:
    def admit(self, path: str, authorization: str | None, *, address: str) -> Any:
        return succeed(Admitted("CP1", "Accepted"))


class DroppingTransport(StringTransport):
    def write(self, data: bytes) -> None:
        pass

    def unregisterProducer(self) -> None:
        pass


def masked_frame(payload: bytes, mask: bytes) -> bytes:
    """A client's final text frame (2-octet length form at most)."""
    length = len(payload)
    head = (
        bytes((0x81, 0x80 | length)) if length < 126 else bytes((0x81, 0xFE)) + length.to_bytes(2)
    )
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Answering:
    """The connection: answers every text at once."""

    open = True

    def __init__(self, protocol: OcppServerProtocol, answer: str) -> None:
        self.protocol = protocol
        self.answer = answer

    def text_received(self, text: str) -> None:
        self.protocol.send_text(self.answer)


def opened(fast: bool, answer: str) -> OcppServerProtocol:
    factory = OcppServerFactory(
        admission=Admission(),  # type: ignore[arg-type]
        registry=ConnectionRegistry(),
        handler=None,  # type: ignore[arg-type]
        schemas=None,  # type: ignore[arg-type]  # no connection is made
        traffic=None,  # type: ignore[arg-type]
        clock=Clock(),
        call_timeout=30,
        max_message_size=65536,
        ping_interval=60,
        ping_timeout=30,
        open_handshake_timeout=10,
        max_handshake_size=4096,
    )
    factory.setProtocolOptions(openHandshakeTimeout=0, autoPingInterval=0)
    factory.connection_opened = lambda *args, **kwargs: None  # type: ignore[method-assign,assignment]
    protocol = factory.buildProtocol(PEER)
    assert isinstance(protocol, OcppServerProtocol)
    protocol.fast_frames = fast
    protocol.makeConnection(DroppingTransport(peerAddress=PEER))
    protocol.dataReceived(HANDSHAKE)
    assert protocol.state == protocol.STATE_OPEN
    protocol.connection = Answering(protocol, answer)
    return protocol


def per_message(protocol: OcppServerProtocol, data: bytes, messages: int) -> float:
    receive = protocol.dataReceived
    start = time.process_time()
    for _ in range(messages):
        receive(data)
    return (time.process_time() - start) / max(messages, 1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--path", choices=["fast", "autobahn"])
    parser.add_argument("--action", choices=["Heartbeat", "MeterValues"])
    args = parser.parse_args()
    cases = {
        "Heartbeat": (
            '[2,"0000000001","Heartbeat",{}]',
            '[3,"0000000001",{"currentTime":"2026-12-07T12:00:00.000Z"}]',
        ),
        "MeterValues": (
            f'[2,"0000000001","MeterValues",{meter_values_body(1)}]',
            '[3,"0000000001",{}]',
        ),
    }
    paths = {"fast": (True,), "autobahn": (False,), None: (False, True)}[args.path]
    for name, (call, answer) in cases.items():
        if args.action not in (None, name):
            continue
        data = masked_frame(call.encode(), b"\x37\xfa\x21\x3d")
        best = {True: float("inf"), False: float("inf")}
        for _ in range(args.repeats):
            for fast in paths:
                protocol = opened(fast, answer)
                best[fast] = min(best[fast], per_message(protocol, data, args.messages))
        if args.path is not None or not args.messages:
            continue
        slow, quick = best[False] * 1e6, best[True] * 1e6
        print(
            f"{name:12} ({len(call):4} B in)  Autobahn's path {slow:6.2f} us"
            f"  fast path {quick:6.2f} us  saved {slow - quick:5.2f} us ({1 - quick / slow:.0%})"
        )


if __name__ == "__main__":
    main()
