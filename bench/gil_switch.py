"""
What the GIL's switch interval does to the reactor's latency while a database
thread runs Python work, the way ocppd's processor does under load.

    .venv/bin/python bench/gil_switch.py [--seconds 5] [--rounds 2] [--work-ms 20]

A server process (pinned to CPU 0, as ``bench/run`` pins ocppd) runs a Twisted
echo server on its reactor and a second thread that alternates ``--work-ms`` of
pure-Python work (a processor batch: building rows, converting values) with a
short wait (the database's answer, GIL released). A client process (CPU 1)
sends a small message, waits for the echo, and sends the next, closed loop;
it reports the round trip's p50 and p99. Each round runs the server with
CPython's default switch interval (5 ms) and with ocppd's
(``ocppd.store.database.GIL_SWITCH_INTERVAL``), one after the other, and
prints the ratios measured in the same round.

Why it matters: the reactor drops the GIL at every system call (epoll, recv,
send); when it wants it back while the other thread computes, it waits for
the switch interval to run out. A request costs several system calls, so with
5 ms each the reactor crawls while a batch is in Python.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path[:0] = [BENCH, ROOT]

from servers import free_port, pinned  # noqa: E402

SERVER = """
import sys, threading, time
sys.setswitchinterval(float(sys.argv[2]))
from twisted.internet import protocol, reactor

class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)

def database_thread(work_seconds):
    while True:
        end = time.perf_counter() + work_seconds
        rows = []
        while time.perf_counter() < end:
            rows.append({"value": str(len(rows)), "unit": "Wh"})
            if len(rows) > 1000:
                rows.clear()
        time.sleep(0.002)  # the database's answer: the GIL is free meanwhile

factory = protocol.Factory.forProtocol(Echo)
reactor.listenTCP(int(sys.argv[1]), factory, interface="127.0.0.1")
threading.Thread(target=database_thread, args=(float(sys.argv[3]),), daemon=True).start()
reactor.run()
"""


def client(port: int, seconds: float) -> list[float]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        times = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            sock.sendall(b"x" * 64)
            got = 0
            while got < 64:
                got += len(sock.recv(64 - got))
            times.append(time.perf_counter() - sent)
    return sorted(times)


def measure(interval: float, seconds: float, work: float) -> tuple[int, float, float]:
    port = free_port()
    argv = [sys.executable, "-c", SERVER, str(port), str(interval), str(work)]
    server = subprocess.Popen(pinned(0, argv))
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        times = client(port, seconds)
    finally:
        server.kill()
        server.wait()
    return len(times), 1000 * times[len(times) // 2], 1000 * times[int(len(times) * 0.99)]


def main() -> int:
    from ocppd.store.database import GIL_SWITCH_INTERVAL

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--work-ms", type=float, default=20.0)
    args = parser.parse_args()
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    print(
        f"echo round trips while a thread runs {args.work_ms:.0f} ms of Python between "
        f"2 ms waits; server on CPU 0, {args.seconds:.0f} s per run"
    )
    print()
    print("| round | switch interval | round trips | p50 ms | p99 ms |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for round_ in range(1, args.rounds + 1):
        results = {}
        for interval in (0.005, GIL_SWITCH_INTERVAL):
            count, p50, p99 = measure(interval, args.seconds, args.work_ms / 1000)
            results[interval] = (count, p50, p99)
            print(f"| {round_} | {interval * 1000:g} ms | {count} | {p50:.2f} | {p99:.2f} |")
        (c0, a0, b0), (c1, a1, b1) = results[0.005], results[GIL_SWITCH_INTERVAL]
        print(
            f"|  | ratio | {c1 / c0:.2f} | {a1 / a0:.2f} | {b1 / b0:.2f} |",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
