"""
Push latency: a charger's MeterValues -> the EVENT on ``ocppd.admin.meter`` at
subscribed WAMP sessions, with the embedded bus and with RabbitMQ.

    .venv/bin/python bench/push_latency.py [--samples 300] [--fanout 1000]

For each backend one ``twistd ocppd`` (pinned to CPU 0) serves one charger and
WAMP sessions driven from this process (pinned to CPU 1). Closed loop: the
charger sends a MeterValues, the sample ends when every subscriber has the
EVENT, then the next one is sent. Measured:

- ``answer``: MeterValues sent -> CALLRESULT back at the charger;
- ``event``: MeterValues sent -> EVENT at the one subscriber (all network hops:
  charger -> ocppd -> bus -> notifier -> broker -> subscriber);
- with ``--fanout`` sessions subscribed: the EVENT at the first and at the last
  of them (the last includes this process reading the N WebSockets in turn);
- the reference, in the same run: a plain Autobahn WebSocket echo server (also
  pinned to CPU 0) and the round trip of a message of an EVENT's size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from servers import (  # bench/ is on sys.path: run as bench/<script>.py
    AMQP_URL,
    delete_topology,
    free_port,
    pinned,
    rss_kib,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from autobahn.twisted.websocket import (  # noqa: E402
    WebSocketClientFactory,
    WebSocketClientProtocol,
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from twisted.internet import defer, reactor  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint  # noqa: E402

BIN = os.path.dirname(sys.executable)
ADMIN = ("bench@example.com", "bench password 123")
TOPIC = "ocppd.admin.meter"


def wait_for_port(port: int, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not start on port {port}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * p))]


# --- the echo reference --------------------------------------------------------------


class Echo(WebSocketServerProtocol):
    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


def echo_server(port: int) -> None:
    factory = WebSocketServerFactory()
    factory.protocol = Echo
    factory.setProtocolOptions(maxFramePayloadSize=65536, maxMessagePayloadSize=65536)
    reactor.listenTCP(port, factory, interface="127.0.0.1")
    reactor.run()


# --- clients -----------------------------------------------------------------------------


class Client(WebSocketClientProtocol):
    """A WebSocket whose messages go to ``factory.on_message``."""

    def onOpen(self) -> None:
        self.factory.opened.callback(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.on_message(self, payload)


class ClientFactory(WebSocketClientFactory):
    protocol = Client

    def __init__(
        self, url: str, protocols: list[str], on_message: Callable[[Client, bytes], None]
    ) -> None:
        super().__init__(url, protocols=protocols)
        self.opened: defer.Deferred[Client] = defer.Deferred()
        self.on_message = on_message


def open_socket(
    url: str, protocols: list[str], on_message: Callable[[Client, bytes], None]
) -> defer.Deferred[Client]:
    port = int(url.split(":")[2].split("/")[0])
    factory = ClientFactory(url, protocols, on_message)
    # The server's frames need no UTF-8 check here: we measure the server.
    factory.setProtocolOptions(autoPingInterval=0, utf8validateIncoming=False)
    TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory).addErrback(
        factory.opened.errback
    )
    return factory.opened


class Subscribers:
    """N WAMP sessions (written by hand: the cost on this side stays tiny)."""

    def __init__(self, web_port: int, token: str) -> None:
        self.url = f"ws://127.0.0.1:{web_port}/push"
        self.token = token
        self.ready: dict[Client, defer.Deferred[None]] = {}
        self.expected: bytes | None = None
        self.arrivals: list[float] = []
        self.count = 0
        self.all_arrived: defer.Deferred[None] | None = None

    def on_message(self, client: Client, payload: bytes) -> None:
        if payload.startswith(b"[36,"):
            if self.expected is not None and self.expected in payload:
                self.arrivals.append(time.perf_counter())
                if len(self.arrivals) == self.count and self.all_arrived is not None:
                    d, self.all_arrived = self.all_arrived, None
                    d.callback(None)
            return
        message = json.loads(payload)
        if message[0] == 4:
            client.sendMessage(json.dumps([5, self.token, {}]).encode())
        elif message[0] == 2:
            client.sendMessage(json.dumps([32, 1, {}, TOPIC]).encode())
        elif message[0] == 33:
            self.ready.pop(client).callback(None)
        else:
            self.ready.pop(client).errback(RuntimeError(f"unexpected WAMP message {message}"))

    @defer.inlineCallbacks
    def add(self, count: int) -> Any:
        # In batches: the web listener's accept backlog is small.
        for start in range(0, count, 50):
            batch = []
            for _ in range(min(50, count - start)):
                batch.append(self._one())
            yield defer.gatherResults(batch, consumeErrors=True)
        self.count += count

    @defer.inlineCallbacks
    def _one(self) -> Any:
        client = yield open_socket(self.url, ["wamp.2.json"], self.on_message)
        subscribed: defer.Deferred[None] = defer.Deferred()
        self.ready[client] = subscribed
        hello = [1, "ocppd", {"roles": {"subscriber": {}}, "authmethods": ["ticket"]}]
        client.sendMessage(json.dumps(hello).encode())
        # Fail the run rather than hang on a session that never got SUBSCRIBED.
        subscribed.addTimeout(30, reactor)
        yield subscribed

    def expect(self, marker: bytes) -> defer.Deferred[None]:
        self.expected = marker
        self.arrivals = []
        self.all_arrived = defer.Deferred()
        return self.all_arrived


class Charger:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.waiting: dict[str, defer.Deferred[Any]] = {}

    def on_message(self, _: Client, payload: bytes) -> None:
        message = json.loads(payload)
        d = self.waiting.pop(message[1], None)
        if d is not None:
            d.callback(message)

    def call(self, action: str, body: dict[str, Any]) -> defer.Deferred[Any]:
        unique_id = uuid.uuid4().hex[:16]
        d: defer.Deferred[Any] = defer.Deferred()
        self.waiting[unique_id] = d
        self.client.sendMessage(json.dumps([2, unique_id, action, body]).encode())
        return d


@defer.inlineCallbacks
def connect_charger(port: int) -> Any:
    holder: list[Charger] = []
    client = yield open_socket(
        f"ws://127.0.0.1:{port}/ocpp/B0001", ["ocpp1.6"], lambda c, p: holder[0].on_message(c, p)
    )
    holder.append(Charger(client))
    return holder[0]


def meter_values(transaction_id: int, wh: int) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1_800_000_000 + wh))
    return {
        "connectorId": 1,
        "transactionId": transaction_id,
        "meterValue": [
            {
                "timestamp": f"{stamp}Z",
                "sampledValue": [
                    {"value": str(wh), "measurand": "Energy.Active.Import.Register"},
                    {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                ],
            }
        ],
    }


@defer.inlineCallbacks
def measure_events(
    charger: Charger, subscribers: Subscribers, transaction_id: int, samples: int, first_wh: int
) -> Any:
    answers, firsts, lasts = [], [], []
    for n in range(samples):
        wh = first_wh + n
        arrived = subscribers.expect(b'"energyWh":%d,' % wh)
        sent = time.perf_counter()
        answer = yield charger.call("MeterValues", meter_values(transaction_id, wh))
        answers.append(time.perf_counter() - sent)
        assert answer[0] == 3, answer
        arrived.addTimeout(30, reactor)
        yield arrived
        firsts.append(subscribers.arrivals[0] - sent)
        lasts.append(subscribers.arrivals[-1] - sent)
    return answers, firsts, lasts


@defer.inlineCallbacks
def measure_echo(port: int, samples: int, size: int) -> Any:
    waiting: list[defer.Deferred[None]] = []

    def on_message(_: Client, payload: bytes) -> None:
        waiting.pop().callback(None)

    client = yield open_socket(f"ws://127.0.0.1:{port}/", [], on_message)
    message = b"x" * size
    times = []
    for _ in range(samples):
        d: defer.Deferred[None] = defer.Deferred()
        waiting.append(d)
        sent = time.perf_counter()
        client.sendMessage(message)
        yield d
        times.append(time.perf_counter() - sent)
    client.sendClose(1000)
    return times


@defer.inlineCallbacks
def drive(ocpp_port: int, web_port: int, echo_port: int, token: str, args: Any, pid: int) -> Any:
    charger = yield connect_charger(ocpp_port)
    yield charger.call("BootNotification", {"chargePointVendor": "B", "chargePointModel": "M"})
    started = yield charger.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": "BENCH", "meterStart": 0, "timestamp": "2027-01-01T00:00:00Z"},
    )
    transaction_id = started[2]["transactionId"]
    subscribers = Subscribers(web_port, token)
    yield subscribers.add(1)
    # Warm-up (first bus round trips, code paths), not measured.
    yield measure_events(charger, subscribers, transaction_id, 20, 1_000_000)
    echo = yield measure_echo(echo_port, args.samples, 420)
    single = yield measure_events(charger, subscribers, transaction_id, args.samples, 2_000_000)
    rss_before = rss_kib(pid)
    connecting = time.perf_counter()
    yield subscribers.add(args.fanout - 1)
    connect_seconds = time.perf_counter() - connecting
    rss_after = rss_kib(pid)
    fanout = yield measure_events(
        charger, subscribers, transaction_id, args.fanout_samples, 3_000_000
    )
    return {
        "echo": echo,
        "single": single,
        "fanout": fanout,
        "rss_per_session_kib": (rss_after - rss_before) / max(1, args.fanout - 1),
        "connect_rate": (args.fanout - 1) / connect_seconds,
    }


def login(web_port: int) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{web_port}/api/auth/login",
        data=json.dumps({"email": ADMIN[0], "password": ADMIN[1]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["token"])


def run_backend(backend: str, args: Any) -> dict[str, Any]:
    workdir = tempfile.mkdtemp(prefix=f"ocppd-push-bench-{backend}-")
    ocpp_port, web_port, echo_port = free_port(), free_port(), free_port()
    settings = [
        f"ocppd.data_dir={workdir}",
        "ocppd.node_id=bench",
        f"ocpp.listen=tcp:{ocpp_port}:interface=127.0.0.1",
        f"web.listen=tcp:{web_port}:interface=127.0.0.1:backlog=1024",
    ]
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    if backend == "amqp":
        settings += ["bus.backend=amqp", f"bus.url={AMQP_URL}", f"bus.prefix={prefix}"]
    sets = [arg for setting in settings for arg in ("--set", setting)]
    ocppctl = [os.path.join(BIN, "python"), "-m", "ocppd.cli", *sets]
    env = {**os.environ, "PYTHONPATH": ROOT}
    for argv, stdin in (
        # Only `db upgrade` creates the database; the other commands refuse a missing one.
        (["db", "upgrade"], ""),
        (["user", "add", ADMIN[0], "--role", "admin"], ADMIN[1] + "\n"),
        (["charger", "add", "B0001", "--no-key"], ""),
        (["tag", "add", "BENCH"], ""),
    ):
        subprocess.run(
            [*ocppctl, *argv], input=stdin, text=True, env=env, check=True, capture_output=True
        )
    log = open(os.path.join(workdir, "ocppd.log"), "w")
    daemon = subprocess.Popen(
        pinned(0, [os.path.join(BIN, "twistd"), "-n", "--pidfile=", "ocppd", *sets]),
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    echo = subprocess.Popen(
        pinned(0, [sys.executable, os.path.abspath(__file__), "--echo-server", str(echo_port)])
    )
    try:
        wait_for_port(ocpp_port, f"ocppd ({backend})")
        wait_for_port(echo_port, "the echo server")
        time.sleep(0.5)
        token = login(web_port)
        result: dict[str, Any] = {}

        def done(outcome: Any) -> None:
            result["outcome"] = outcome
            reactor.stop()

        reactor.callWhenRunning(
            lambda: drive(ocpp_port, web_port, echo_port, token, args, daemon.pid).addBoth(done)
        )
        reactor.run(installSignalHandlers=False)  # type: ignore[call-arg]
        outcome = result["outcome"]
        if not isinstance(outcome, dict):
            outcome.raiseException()
        return {"backend": backend, **outcome}
    finally:
        echo.terminate()
        echo.wait(timeout=10)
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        log.close()
        if backend == "amqp":
            delete_topology(prefix)
        shutil.rmtree(workdir, ignore_errors=True)


def report(results: list[dict[str, Any]], args: Any) -> None:
    print(
        f"\n{args.samples} samples (1 subscriber), {args.fanout_samples} samples "
        f"({args.fanout} subscribers); milliseconds, p50 / p99"
    )
    header = (
        "| bus | echo RTT | MeterValues answer | EVENT, 1 subscriber | "
        f"EVENT, first of {args.fanout} | EVENT, last of {args.fanout} | RSS/session |"
    )
    print(header)
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        answers, single, _ = r["single"]
        _, firsts, lasts = r["fanout"]

        def cell(values: list[float]) -> str:
            return f"{percentile(values, 0.5):.2f} / {percentile(values, 0.99):.2f}"

        print(
            f"| {r['backend']} | {cell(r['echo'])} | {cell(answers)} | {cell(single)} | "
            f"{cell(firsts)} | {cell(lasts)} | {r['rss_per_session_kib']:.0f} KiB |"
        )
    for r in results:
        echo = percentile(r["echo"], 0.5)
        print(
            f"{r['backend']}: EVENT p50 = {percentile(r['single'][1], 0.5) / echo:.1f} x echo RTT; "
            f"last of {args.fanout} p50 = {percentile(r['fanout'][2], 0.5) / echo:.1f} x; "
            f"{r['connect_rate']:.0f} sessions joined/s"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--fanout", type=int, default=1000)
    parser.add_argument("--fanout-samples", type=int, default=50)
    parser.add_argument("--backends", default="memory,amqp")
    parser.add_argument("--echo-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        echo_server(args.echo_server)
        return 0
    os.sched_setaffinity(0, {1} if (os.cpu_count() or 1) > 1 else {0})
    results = []
    for backend in args.backends.split(","):
        # One reactor per process: each backend runs in a child of its own.
        if os.environ.get("PUSH_BENCH_CHILD") == backend:
            print(json.dumps(run_backend(backend, args)))
            return 0
        child = subprocess.run(
            [sys.executable, *sys.argv],
            env={**os.environ, "PUSH_BENCH_CHILD": backend},
            capture_output=True,
            text=True,
        )
        if child.returncode != 0:
            print(child.stdout, child.stderr, file=sys.stderr)
            return 1
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
