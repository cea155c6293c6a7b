"""
RFC 6455 framing for the one case an OCPP-J connection spends its life in: a
client's complete, masked, unfragmented text frame in, the server's unmasked
text frame out. Pure functions over bytes; the protocol
(``ocppd.ocpp.protocol``) decides when they apply and leaves everything else
to Autobahn (docs/ocpp.md, "The frame fast path").
"""

from __future__ import annotations

import struct

from autobahn.websocket.xormasker import create_xor_masker

#: First octet of a final, uncompressed (RSV 0) text frame.
FIN_TEXT = 0x81
#: The second octet's mask bit.
MASKED = 0x80
#: Largest payload RFC 6455 allows (the 8-octet length's top bit is 0).
MAX_PAYLOAD = 0x7FFFFFFFFFFFFFFF
#: Up to this many octets, XOR on Python integers unmasks faster than a
#: masker object of Autobahn's (whose setup costs some 4 us through cffi);
#: above it, Autobahn's SIMD loop is faster (bench/RESULTS.md, issue 16).
BIG_INT_UNMASK_MAX = 1024

_LENGTH_16 = struct.Struct("!BBH")
_LENGTH_64 = struct.Struct("!BBQ")


def masked_text_frame(data: bytes, start: int, limit: int) -> tuple[int, int, bytes] | None:
    """
    ``(payload start, payload end, mask)`` of the frame at ``data[start:]``
    if it is complete and a final, masked text frame with RSV 0, in the
    minimal length encoding RFC 6455 requires, of at most ``limit`` payload
    octets; None for anything else (incomplete, control, continuation,
    binary, unmasked, reserved bits, oversized, malformed length).
    """
    available = len(data) - start
    if available < 6 or data[start] != FIN_TEXT:
        return None
    second = data[start + 1]
    if not second & MASKED:
        return None
    length = second & 0x7F
    if length < 126:
        mask_start = start + 2
    elif length == 126:
        if available < 8:
            return None
        length = (data[start + 2] << 8) | data[start + 3]
        if length < 126:
            return None
        mask_start = start + 4
    else:
        if available < 14:
            return None
        length = int.from_bytes(data[start + 2 : start + 10], "big")
        if length < 0x10000 or length > MAX_PAYLOAD:
            return None
        mask_start = start + 10
    if length > limit:
        return None
    payload_start = mask_start + 4
    payload_end = payload_start + length
    if payload_end > len(data):
        return None
    return payload_start, payload_end, data[mask_start:payload_start]


def unmask(payload: bytes, mask: bytes) -> bytes:
    """``payload`` XOR the 4-octet ``mask`` repeated (RFC 6455 5.3)."""
    length = len(payload)
    if length > BIG_INT_UNMASK_MAX:
        return bytes(create_xor_masker(mask, length).process(payload))
    key = (mask * ((length >> 2) + 1))[:length]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(length, "big")


def text_frame_header(length: int) -> bytes:
    """The header of a server's (unmasked) final text frame of ``length`` payload octets."""
    if length < 126:
        return bytes((FIN_TEXT, length))
    if length < 0x10000:
        return _LENGTH_16.pack(FIN_TEXT, 126, length)
    if length > MAX_PAYLOAD:
        raise ValueError(f"a frame's payload is at most {MAX_PAYLOAD} octets, not {length}")
    return _LENGTH_64.pack(FIN_TEXT, 127, length)


def payload_limit(max_frame: int, max_message: int) -> int:
    """
    The largest single-frame message Autobahn delivers under its
    ``maxFramePayloadSize`` and ``maxMessagePayloadSize`` (0 or less: no limit).
    """
    limit = MAX_PAYLOAD
    if max_frame > 0:
        limit = min(limit, max_frame)
    if max_message > 0:
        limit = min(limit, max_message)
    return limit
