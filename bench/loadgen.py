"""
The benchmark load generator: simulated chargers as raw asyncio WebSocket clients.

Pre-encoded OCPP-J frames, no JSON on the hot path and no WebSocket library:
a charger costs the generator a ``data_received`` and a ``write`` per call, so
that the server, not this process, is what the numbers measure. It reports
its own CPU use; ``bench/run`` starts several of these processes if needed.

Driven by ``bench/run`` over stdin/stdout, one JSON object per line:

- ``closed`` mode: connect ``--connections`` chargers, boot them (and start a
  transaction for MeterValues), print ``{"ready": ...}``, wait for a line on
  stdin, then run a closed loop (one outstanding call per charger) for
  ``--warmup`` + ``--seconds`` and print the measurement.
- ``idle`` mode: each stdin line ``N`` connects and boots N more chargers and
  prints how many are connected; an empty line or EOF closes them all.
- ``storm`` mode (``storm.py``): a stdin line ``N P`` connects and boots N
  chargers with at most P handshakes in flight (0: all at once) and prints
  when each phase ended, the refusals by HTTP status and the failures; the
  chargers stay connected until the next line or EOF.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import calendar
import json
import os
import resource
import struct
import sys
import time
from typing import Any

# Pre-encoded frames are masked with a zero key: RFC 6455 requires a client to
# mask, not the key to be random against a server we run ourselves, and the
# server unmasks at the same cost whatever the key.
_ZERO_MASK = b"\x00\x00\x00\x00"


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked, final frame (by default a text frame) carrying ``payload``."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        header = struct.pack("!BB", first, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, n)
    return header + _ZERO_MASK + payload


#: The energy register at a benchmark session's start, in Wh; each MeterValues
#: of the session reads one Wh more, so that every message moves the meter.
METER_START_WH = 1_000_000
#: When a benchmark charger's readings start; each reads one second later.
_READINGS_FROM = calendar.timegm((2027, 1, 1, 1, 0, 0))


def meter_reading(n: int) -> tuple[str, int]:
    """
    The ``n``-th reading of a session: its timestamp (ISO-8601 UTC, always 24
    characters) and energy register (Wh, seven digits below ten million readings).

    Every reading is new, as a charging charger's are: a later time and more
    energy. A body sent again unchanged would be a duplicate the processor
    drops before storing anything (its samples' unique key), and the meter
    would not move: cheaper than what a real charger costs.
    """
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(_READINGS_FROM + n))
    return f"{stamp}.000Z", METER_START_WH + n


def meter_values_body(transaction_id: int, n: int = 0) -> str:
    """The ``n``-th MeterValues of a session: four sampled values, as a charging charger sends."""
    stamp, energy_wh = meter_reading(n)
    return json.dumps(
        {
            "connectorId": 1,
            "transactionId": transaction_id,
            "meterValue": [
                {
                    "timestamp": stamp,
                    "sampledValue": [
                        {"value": str(energy_wh), "measurand": "Energy.Active.Import.Register"},
                        {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                        {"value": "16", "measurand": "Current.Import", "unit": "A"},
                        {"value": "230", "measurand": "Voltage", "unit": "V"},
                    ],
                }
            ],
        },
        separators=(",", ":"),
    )


class Templates:
    """
    The frame of a call with a fixed-width unique id, split around the id so
    that a fresh frame is two concatenations.
    """

    ID_WIDTH = 10

    def __init__(self, action: str, body: str) -> None:
        payload_before = b'[2,"'
        payload_after = f'","{action}",{body}]'.encode()
        length = len(payload_before) + self.ID_WIDTH + len(payload_after)
        frame = client_frame(b"x" * length)
        self.head = frame[: len(frame) - length] + payload_before
        self.tail = payload_after

    def frame(self, n: int) -> bytes:
        return self.head + b"%010d" % n + self.tail


class MeterValuesTemplates:
    """
    One charger's MeterValues frames: each its own reading (``meter_reading``)
    of the charger's own session. The reading's fields have a fixed width, so
    the frame's header is made once.
    """

    def __init__(self, transaction_id: int) -> None:
        body = meter_values_body(transaction_id)
        stamp, energy_wh = meter_reading(0)
        text = f'[2,"{"0" * Templates.ID_WIDTH}","MeterValues",{body}]'
        length = len(text.encode())
        frame = client_frame(b"x" * length)
        self.head = frame[: len(frame) - length]
        # The frame as a %-format: the unique id, the timestamp, the energy.
        self.format = (
            text.replace("%", "%%")
            .replace(f'"{"0" * Templates.ID_WIDTH}"', '"%010d"', 1)
            .replace(stamp, "%s", 1)
            .replace(f'"{energy_wh}"', '"%d"', 1)
            .encode()
        )
        self.reading = 0

    def frame(self, n: int) -> bytes:
        self.reading += 1
        stamp, energy_wh = meter_reading(self.reading)
        return self.head + self.format % (n, stamp.encode(), energy_wh)


class Charger(asyncio.Protocol):
    """One WebSocket connection speaking pre-encoded OCPP-J."""

    def __init__(self, run: Run, charge_point_id: str) -> None:
        self.run = run
        self.charge_point_id = charge_point_id
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiter: asyncio.Future[bytes] | None = None
        self.looping = False
        self.sent_at = 0.0
        self.counter = 0
        self.closed = False
        #: The frames of this charger's closed loop (``Run.closed_loop`` sets them).
        self.templates: Templates | MeterValuesTemplates | None = None

    # -- asyncio.Protocol -------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [
            f"GET {self.run.path}{self.charge_point_id} HTTP/1.1",
            f"Host: {self.run.host}:{self.run.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: ocpp1.6",
        ]
        if self.run.key is not None:
            token = base64.b64encode(f"{self.charge_point_id}:{self.run.key}".encode()).decode()
            headers.append(f"Authorization: Basic {token}")
        transport.write(("\r\n".join(headers) + "\r\n\r\n").encode())

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[: buffer.find(b"\r\n")])
            del buffer[: end + 4]
            if b" 101 " not in status:
                self._fail(f"handshake refused: {status.decode(errors='replace')}")
                return
            self.upgraded = True
            if not self.opened.done():
                self.opened.set_result(None)
        while len(buffer) >= 2:
            b0 = buffer[0]
            n = buffer[1] & 0x7F
            start = 2
            if n == 126:
                if len(buffer) < 4:
                    return
                n = (buffer[2] << 8) | buffer[3]
                start = 4
            elif n == 127:
                if len(buffer) < 10:
                    return
                n = int.from_bytes(buffer[2:10], "big")
                start = 10
            end = start + n
            if len(buffer) < end:
                return
            opcode = b0 & 0x0F
            payload = bytes(buffer[start:end])
            del buffer[:end]
            if opcode == 0x1:
                self._message(payload)
            elif opcode == 0x9:  # ping: the server's keep-alive, answer it
                self.transport.write(client_frame(payload, 0xA))  # type: ignore[union-attr]
            elif opcode == 0x8:
                self.closed = True
                self.transport.close()  # type: ignore[union-attr]
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.looping:
            self.run.lost += 1
        self._fail("connection lost")

    # -- calls ------------------------------------------------------------
    def _fail(self, reason: str) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(reason))
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(reason))

    def _message(self, payload: bytes) -> None:
        if self.looping:
            now = time.perf_counter()
            run = self.run
            if payload.startswith(b"[3,"):
                if run.recording:
                    run.latencies.append(now - self.sent_at)
            else:
                run.errors += 1
                if run.first_error is None:
                    run.first_error = payload[:200].decode(errors="replace")
            if run.sending:
                self.counter += 1
                self.sent_at = now
                self.transport.write(self.templates.frame(self.counter))  # type: ignore[union-attr]
            else:
                self.looping = False
                run.idle_one()
            return
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(payload)

    async def call(self, action: str, body: dict[str, Any]) -> Any:
        self.counter += 1
        text = json.dumps([2, f"{self.counter:010d}", action, body], separators=(",", ":"))
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(client_frame(text.encode()))  # type: ignore[union-attr]
        answer = json.loads(await self.waiter)
        if answer[0] != 3:
            raise RuntimeError(f"{action} answered with {answer!r}")
        return answer[2]

    def start_loop(self) -> None:
        self.looping = True
        self.counter += 1
        self.sent_at = time.perf_counter()
        self.transport.write(self.templates.frame(self.counter))  # type: ignore[union-attr]

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(client_frame(b"\x03\xe8", 0x8))
            self.transport.close()


class Run:
    """The chargers of one load-generator process and what they measured."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.host = args.host
        self.port = args.port
        self.path = args.path
        self.key = args.key
        self.prefix = args.id_prefix
        self.next_index = args.first
        self.chargers: list[Charger] = []
        self.latencies: list[float] = []
        self.errors = 0
        self.lost = 0
        self.first_error: str | None = None
        self.recording = False
        self.sending = False
        self.outstanding = 0
        self.drained: asyncio.Future[None] | None = None

    async def connect_one(self, action: str | None) -> Charger:
        loop = asyncio.get_running_loop()
        charge_point_id = f"{self.prefix}{self.next_index:05d}"
        self.next_index += 1
        _, charger = await loop.create_connection(
            lambda: Charger(self, charge_point_id), self.host, self.port
        )
        await charger.opened
        await charger.call(
            "BootNotification", {"chargePointVendor": "Bench", "chargePointModel": "Load"}
        )
        if action == "MeterValues":
            answer = await charger.call(
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": "BENCH",
                    "meterStart": METER_START_WH,
                    "timestamp": f"2027-01-01T00:00:{self.next_index % 60:02d}.000Z",
                },
            )
            charger.transaction_id = answer.get("transactionId", 1)  # type: ignore[attr-defined]
        self.chargers.append(charger)
        return charger

    async def storm(self, count: int, parallel: int, timeout: float) -> dict[str, Any]:
        """
        Connect and boot ``count`` chargers, ``parallel`` in flight (0: all at
        once), each given ``timeout`` seconds; the seconds at which each booted,
        the refusals by status line and the other failures.
        """
        started = time.perf_counter()
        booted: list[float] = []
        refusals: dict[str, int] = {}
        failures: dict[str, int] = {}
        gate = asyncio.Semaphore(parallel or count)

        async def one() -> None:
            async with gate:
                try:
                    await asyncio.wait_for(self.connect_one(None), timeout)
                except (OSError, RuntimeError, ConnectionError, TimeoutError) as e:
                    reason = str(e) or type(e).__name__
                    if reason.startswith("handshake refused: "):
                        status = reason.removeprefix("handshake refused: ")
                        refusals[status] = refusals.get(status, 0) + 1
                    else:
                        failures[reason[:80]] = failures.get(reason[:80], 0) + 1
                    return
            booted.append(time.perf_counter() - started)

        cpu_start = _cpu()
        await asyncio.gather(*(one() for _ in range(count)))
        return {
            "booted_at": booted,
            "refusals": refusals,
            "failures": failures,
            "seconds": time.perf_counter() - started,
            "cpu": _cpu() - cpu_start,
        }

    async def connect(self, count: int, action: str | None, parallel: int = 64) -> int:
        """Connect ``count`` more chargers, ``parallel`` handshakes at a time; the failures."""
        failures = 0
        remaining = count

        async def worker() -> None:
            nonlocal failures, remaining
            while remaining > 0:
                remaining -= 1
                try:
                    await self.connect_one(action)
                except (OSError, RuntimeError, ConnectionError):
                    failures += 1

        await asyncio.gather(*(worker() for _ in range(min(parallel, count))))
        return failures

    def idle_one(self) -> None:
        self.outstanding -= 1
        if self.outstanding == 0 and self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    async def closed_loop(self, action: str, warmup: float, seconds: float) -> dict[str, Any]:
        if action == "MeterValues":
            # Each charger in its own session, each message a new reading.
            for charger in self.chargers:
                transaction_id = getattr(charger, "transaction_id", 1)
                charger.templates = MeterValuesTemplates(transaction_id)
        else:
            templates = Templates(action, "{}")
            for charger in self.chargers:
                charger.templates = templates
        self.sending = True
        self.outstanding = len(self.chargers)
        for charger in self.chargers:
            charger.start_loop()
        await asyncio.sleep(warmup)
        self.recording = True
        cpu_start = _cpu()
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        self.recording = False
        elapsed = time.perf_counter() - started
        cpu = _cpu() - cpu_start
        self.sending = False
        self.drained = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self.drained, 10)
        except TimeoutError:
            pass
        return {
            "answered": len(self.latencies),
            "elapsed": elapsed,
            "cpu": cpu,
            "errors": self.errors,
            "lost": self.lost,
            "first_error": self.first_error,
            "latencies_us": [round(x * 1e6) for x in self.latencies],
        }

    def close_all(self) -> None:
        for charger in self.chargers:
            charger.close()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _readline() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def main_async(args: argparse.Namespace) -> None:
    run = Run(args)
    if args.mode == "closed":
        failures = await run.connect(args.connections, args.action)
        _emit({"ready": len(run.chargers), "failed": failures})
        await _readline()
        result = await run.closed_loop(args.action, args.warmup, args.seconds)
        _emit(result)
        run.close_all()
        await asyncio.sleep(0.2)
        return
    if args.mode == "storm":
        count, parallel = (int(x) for x in (await _readline()).split())
        _emit(await run.storm(count, parallel, args.timeout))
        await _readline()
        run.close_all()
        await asyncio.sleep(0.5)
        return
    while True:
        line = (await _readline()).strip()
        if not line:
            break
        started = time.perf_counter()
        failures = await run.connect(int(line), None)
        connected = sum(1 for c in run.chargers if not c.closed)
        _emit(
            {
                "connected": connected,
                "failed": failures,
                "seconds": time.perf_counter() - started,
            }
        )
    run.close_all()
    await asyncio.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description="bench load generator (driven by bench/run)")
    parser.add_argument("mode", choices=["closed", "idle", "storm"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/ocpp/")
    parser.add_argument("--key", default=None, help="Basic auth password of every charger")
    parser.add_argument("--id-prefix", default="BENCH")
    parser.add_argument("--first", type=int, default=0, help="index of the first charger id")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--action", choices=["Heartbeat", "MeterValues"], default="Heartbeat")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="storm: seconds each charger may take"
    )
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
