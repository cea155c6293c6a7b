"""
``ocppd-sim``: run N simulated chargers against a central system.

    ocppd-sim --url ws://127.0.0.1:9000/ocpp/ --count 10 --id-prefix SIM- --key KEY

``--sessions`` starts one session per charger (connector 1, the first
``--id-tag``) once it has booted and keeps it running; ``--demo`` makes a
small site charge on a timer. Runs until SIGINT/SIGTERM, then closes every
connection and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from twisted.internet.defer import Deferred
from twisted.internet.task import react
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    globalLogBeginner,
    jsonFileLogObserver,
    textFileLogObserver,
)

from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.sim.charger import ChargerSettings, SimulatedCharger
from ocppd.sim.client import Fleet, charger_service
from ocppd.sim.demo import DemoDriver


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocppd-sim", description="Simulated OCPP 1.6J chargers in one process."
    )
    parser.add_argument("--url", default="ws://127.0.0.1:9000/ocpp/", help="charger base URL")
    parser.add_argument("--count", type=int, default=1, help="number of chargers")
    parser.add_argument("--id-prefix", default="SIM-", help="charge point ids: PREFIX1..PREFIXN")
    parser.add_argument("--key", default=None, help="authorization key (HTTP Basic password)")
    parser.add_argument("--connectors", type=int, default=2)
    parser.add_argument("--meter-interval", type=float, default=10.0, help="seconds")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="simulated battery seconds per real second (60 shows a whole curve in minutes)",
    )
    parser.add_argument(
        "--id-tag", action="append", dest="id_tags", default=None, help="repeatable"
    )
    parser.add_argument("--sessions", action="store_true", help="one session per charger")
    parser.add_argument("--demo", action="store_true", help="a small site charging on a timer")
    parser.add_argument("--seed", type=int, default=None, help="for reproducible runs")
    parser.add_argument("--log-json", action="store_true", help="JSON log lines on stderr")
    parser.add_argument("--verbose", action="store_true", help="log every charger event")
    return parser


def _start_logging(options: argparse.Namespace, stream: TextIO) -> None:
    observer = jsonFileLogObserver(stream) if options.log_json else textFileLogObserver(stream)
    level = LogLevel.debug if options.verbose else LogLevel.warn
    predicate = LogLevelFilterPredicate(defaultLogLevel=level)
    predicate.setLogLevelForNamespace("ocppd.sim.demo", LogLevel.info)
    predicate.setLogLevelForNamespace("ocppd.sim.cli", LogLevel.info)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(observer, [predicate])], redirectStandardIO=False
    )


def http_upload(url: str, body: bytes) -> Deferred[Any]:
    """PUT a diagnostics file where GetDiagnostics said; fails unless answered 2xx."""
    import treq
    from twisted.internet import reactor
    from twisted.web.client import HTTPConnectionPool

    def checked(response: Any) -> Any:
        if not 200 <= response.code < 300:
            raise RuntimeError(f"{url} answered {response.code}")
        return response.content()

    headers: dict[bytes | str, bytes | str] = {"Content-Type": "text/plain"}
    # A connection of its own, closed after: uploads are rare, nothing to keep open.
    pool = HTTPConnectionPool(reactor, persistent=False)
    d: Deferred[Any] = treq.put(url, data=body, headers=headers, pool=pool)
    return d.addCallback(checked)


def _run(reactor: Any, options: argparse.Namespace) -> Deferred[None]:
    rng = random.Random(options.seed)
    schemas = SchemaRegistry.load()
    id_tags = options.id_tags or ["SIMTAG1"]
    chargers = [
        SimulatedCharger(
            ChargerSettings(
                f"{options.id_prefix}{n}",
                connectors=options.connectors,
                meter_interval=options.meter_interval,
                time_scale=options.time_scale,
            ),
            schemas=schemas,
            clock=reactor,
            rng=random.Random(rng.random()),
            upload=http_upload,
        )
        for n in range(1, options.count + 1)
    ]
    fleet = Fleet(
        chargers,
        lambda charger: charger_service(
            charger, base_url=options.url, key=options.key, reactor=reactor, rng=rng
        ),
    )
    demo = DemoDriver(chargers, id_tags, clock=reactor, rng=rng) if options.demo else None
    if options.sessions:
        for charger in chargers:
            _keep_session(reactor, charger, id_tags[0])

    def shutdown() -> Any:
        if demo is not None:
            demo.stop()
        return fleet.stopService()

    fleet.startService()
    if demo is not None:
        demo.start()
    reactor.addSystemEventTrigger("before", "shutdown", shutdown)
    reactor.addSystemEventTrigger("after", "shutdown", _summary, chargers)
    # Runs until a signal stops the reactor (react's default SIGINT/SIGTERM handling).
    return Deferred()


def _keep_session(reactor: Any, charger: SimulatedCharger, id_tag: str) -> None:
    """Start a session on connector 1 as soon as the charger is booted."""

    def check() -> None:
        if charger.accepted and charger.connectors[1].session is None:
            charger.start_session(1, id_tag)
        reactor.callLater(1.0, check)

    reactor.callLater(0.5, check)


def _summary(chargers: Sequence[SimulatedCharger]) -> None:
    boots = sum(c.stats.boots for c in chargers)
    started = sum(c.stats.sessions_started for c in chargers)
    stopped = sum(c.stats.sessions_stopped for c in chargers)
    sent = sum(c.outbox.sent for c in chargers)
    commands = sum(c.stats.commands for c in chargers)
    print(
        f"ocppd-sim: {len(chargers)} chargers, {boots} boots, {sent} calls sent, "
        f"{commands} commands answered, {started} sessions started, {stopped} stopped",
        file=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The ``ocppd-sim`` console script; returns the exit status."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.count < 1 or options.connectors < 1 or options.meter_interval < 0:
        parser.error("--count and --connectors must be at least 1, --meter-interval >= 0")
    _start_logging(options, sys.stderr)
    try:
        react(_run, (options,))
    except SystemExit as e:
        return int(e.code or 0)
    return 0
