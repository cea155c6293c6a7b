"""Tests for the bus message format, ``ocppd.bus.envelope``."""

from __future__ import annotations

import json
import os
import threading
import uuid
from datetime import UTC, datetime

from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus import envelope as envelope_module
from ocppd.bus.envelope import Envelope, EnvelopeError, new_id


class EnvelopeTests(SynchronousTestCase):
    """Envelopes survive the bytes round trip; anything else is an EnvelopeError."""

    def test_round_trip(self) -> None:
        """``from_bytes(to_bytes())`` gives back an equal envelope."""
        envelope = Envelope.create(
            "session.started",
            {"n": 1, "text": "é", "nested": [None, True]},
            node="node-1",
            charge_point_id="CP-1",
            now=datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        )
        self.assertEqual(envelope.time, "2024-05-06T07:08:09.123Z")
        self.assertEqual(Envelope.from_bytes(envelope.to_bytes()), envelope)

    def test_fresh_ids(self) -> None:
        """Each created envelope has its own id."""
        ids = {Envelope.create("a.b", {}, node="n").id for _ in range(100)}
        self.assertEqual(len(ids), 100)

    def test_rejects(self) -> None:
        """Malformed bytes are refused with EnvelopeError, never another exception."""
        good = b'"id":"i","type":"t","time":"x","node":"n"'
        for data in (
            b"not json",
            b"[1]",
            b"{" + good + b"}",  # no payload
            b"{" + good + b',"payload":[]}',
            b"{" + good + b',"payload":{"v":NaN}}',
            b"{" + good + b',"chargePointId":5,"payload":{}}',
            b'{"id":1,"type":"t","time":"x","node":"n","payload":{}}',
            b"[" * 100_000,
        ):
            with self.assertRaises(EnvelopeError, msg=data[:60]):
                Envelope.from_bytes(data)

    def test_refuses_to_serialise_nan(self) -> None:
        """A NaN or infinity anywhere cannot be written (the bus turns this into BusError)."""
        for payload in (
            {"v": float("inf")},
            {"v": [1, {"w": float("nan")}]},
            {"v": float("-inf"), "w": None},
        ):
            with self.assertRaises(ValueError, msg=repr(payload)):
                Envelope.create("a.b", payload, node="n").to_bytes()
        with self.assertRaises(TypeError):
            Envelope.create("a.b", {"v": object()}, node="n").to_bytes()

    def test_encodes_as_the_strict_encoder_would(self) -> None:
        """Whichever encoder writes it, the JSON means the same (nulls, int keys, big ints)."""
        for payload in (
            {"a": None, "b": [None, 1.5]},
            {1: "int key", "s": "é\u2028"},
            {"big": 2**70},
            {"nested": {"x": [1, 2, {"y": "z"}]}, "t": True, "f": False},
        ):
            envelope = Envelope.create("a.b", payload, node="n")
            strict = json.dumps(envelope.to_dict(), separators=(",", ":"), allow_nan=False)
            self.assertEqual(json.loads(envelope.to_bytes()), json.loads(strict), payload)

    def test_ids_are_version_7_uuids(self) -> None:
        """Envelope ids are 32 hex digits of a time-ordered (version 7) UUID, all different."""
        ids = {Envelope.create("a.b", {}, node="n").id for _ in range(1000)}
        self.assertEqual(len(ids), 1000)
        for envelope_id in ids:
            parsed = uuid.UUID(hex=envelope_id)
            self.assertEqual(
                (parsed.version, parsed.variant, parsed.hex), (7, uuid.RFC_4122, envelope_id)
            )

    def test_ids_increase_with_time(self) -> None:
        """
        An id starts with its Unix time in milliseconds, so a later one sorts
        after: the store's indexes of them grow at their end, not on random pages.
        """
        now = [1_765_000_000_123_456_789]
        self.patch(envelope_module, "time_ns", lambda: now[0])
        first = new_id()
        now[0] += 1_000_000  # a millisecond later
        later = [new_id() for _ in range(100)]
        self.assertEqual(first[:12], f"{1_765_000_000_123:012x}")
        self.assertTrue(all(first < other for other in later))
        self.assertEqual(len(set(later)), 100)

    def test_ids_read_random_bytes_in_bulk(self) -> None:
        """
        One ``os.urandom`` call per ``IDS_PER_READ`` ids, not one per id: it
        releases the GIL, which the reactor thread then waits to get back.
        """
        reads: list[int] = []
        real = os.urandom

        def urandom(size: int) -> bytes:
            reads.append(size)
            return real(size)

        self.patch(os, "urandom", urandom)
        envelope_module._fresh_pool()
        self.addCleanup(envelope_module._fresh_pool)
        ids = {new_id() for _ in range(envelope_module.IDS_PER_READ * 2)}
        self.assertEqual(len(ids), envelope_module.IDS_PER_READ * 2)
        self.assertEqual(reads, [10 * envelope_module.IDS_PER_READ] * 2)

    def test_ids_are_the_time_and_the_random_bytes(self) -> None:
        """
        An id is its time in milliseconds (6 bytes), then 10 random bytes with
        the version (7) and the variant (binary 10) written into them, as
        bytes: whatever the random bytes, every other bit is theirs.
        """
        for fill in (0x00, 0xFF, 0x5A, 0xA5):
            data = bytes([fill]) * 10
            self.patch(os, "urandom", lambda size, data=data: data * (size // 10))
            self.patch(envelope_module, "time_ns", lambda: 1_765_000_000_123_456_789)
            envelope_module._fresh_pool()
            raw = bytearray((1_765_000_000_123).to_bytes(6, "big") + data)
            raw[6] = raw[6] & 0x0F | 0x70
            raw[8] = raw[8] & 0x3F | 0x80
            self.assertEqual(new_id(), raw.hex(), hex(fill))
        envelope_module._fresh_pool()

    def test_threads_draw_their_own_ids(self) -> None:
        """Threads draw from one pool without a lock: no id is handed out twice."""
        found: list[str] = []

        def draw() -> None:
            found.extend(new_id() for _ in range(1000))

        threads = [threading.Thread(target=draw) for _ in range(4)]
        for thread in threads:
            thread.start()
        draw()
        for thread in threads:
            thread.join()
        self.assertEqual(len(set(found)), 5000)

    def test_a_forked_child_draws_fresh_ids(self) -> None:
        """A child process does not hand out the ids its parent's pool still holds."""
        new_id()  # the parent's pool holds the next ids now
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            try:
                os.write(writer, new_id().encode())
            finally:
                os._exit(0)
        os.close(writer)
        try:
            child = os.read(reader, 64).decode()
        finally:
            os.close(reader)
            os.waitpid(pid, 0)
        self.assertEqual(len(child), 32)
        self.assertNotEqual(child, new_id())

    def test_numbers_decode_exactly(self) -> None:
        """Integers beyond 64 bits stay integers and floats stay floats (fast or strict path)."""
        payload = {
            "big": 2**70,
            "negative": -(2**63) - 1,
            "max": 2**63 - 1,
            "f": 0.1,
            "s": "1" * 30,
        }
        envelope = Envelope.create("a.b", payload, node="n")
        decoded = Envelope.from_bytes(envelope.to_bytes()).payload
        self.assertEqual(decoded, payload)
        self.assertEqual(
            {k: type(v) for k, v in decoded.items()}, {k: type(v) for k, v in payload.items()}
        )
