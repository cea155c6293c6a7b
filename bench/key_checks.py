"""
CPU per charger key check, alone and through the whole admission (store
lookup included), for a right and a wrong key; and the CPU a burst of
simultaneous wrong keys costs (issue 13, item 7).

    .venv/bin/python bench/key_checks.py [SOURCE]

``SOURCE`` is the directory holding the ``ocppd`` package to measure (default:
this working tree), e.g. the code before the change:

    git archive 91487b1 ocppd | tar -x -C /tmp/ocppd-before
    .venv/bin/python bench/key_checks.py /tmp/ocppd-before

CPU is process time (every thread: the key checks of the old code ran in the
thread pool), on an SQLite store in a temporary directory.
"""

from __future__ import annotations

import base64
import inspect
import os
import sys
import tempfile
import time
from collections.abc import Callable, Generator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [sys.argv[1] if len(sys.argv) > 1 else ROOT]

from twisted.internet import defer, task  # noqa: E402

from ocppd import credentials  # noqa: E402
from ocppd.credentials import hash_charger_key, verify_charger_key  # noqa: E402
from ocppd.ocpp.admission import ChargerAdmission  # noqa: E402
from ocppd.ocpp.handshake import HandshakeError  # noqa: E402
from ocppd.store import chargers, migrate  # noqa: E402
from ocppd.store.database import Database  # noqa: E402
from ocppd.timeutil import utcnow  # noqa: E402

#: The former scheme's hasher, in the code that has one (after this change).
legacy_key_hash: Callable[[str], str] | None = getattr(credentials, "legacy_key_hash", None)
KEY = "bench-key-0123456789"
WRONG = "wrong-key-0123456789"
BURST = 200


def cpu_per_call(f: Callable[[], Any], n: int) -> float:
    """Microseconds of process CPU per call of ``f``, best of 3 runs of ``n``."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(n):
            f()
        best = min(best, time.process_time() - started)
    return best / n * 1e6


def verification_rows() -> list[tuple[str, float]]:
    key_hash = hash_charger_key(KEY)
    n = 20 if key_hash.startswith("pbkdf2") else 20_000
    return [
        ("verify, right key", cpu_per_call(lambda: verify_charger_key(KEY, key_hash), n)),
        ("verify, wrong key", cpu_per_call(lambda: verify_charger_key(WRONG, key_hash), n)),
    ]


def basic_auth(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Admissions:
    """One admission on a fresh store with ``count`` keyed chargers CP0, CP1, ..."""

    def __init__(self, reactor: Any, count: int, key_hash: str | None = None) -> None:
        directory = tempfile.mkdtemp(prefix="ocppd-bench-keys-")
        url = f"sqlite:///{directory}/ocppd.sqlite3"
        migrate.upgrade(url)
        self.database = Database.from_url(url, reactor=reactor, max_threads=1)
        key_hash = key_hash or hash_charger_key(KEY)
        now = utcnow()

        def add_all(conn: Any) -> None:
            for i in range(count):
                chargers.add_charge_point(conn, f"CP{i}", key_hash, now=now)

        self.database.run_sync(add_all)
        self.database.start()
        self.reactor = reactor
        self.admission = ChargerAdmission(self.database, reactor)
        # The code before this change took no address.
        self.takes_address = "address" in inspect.signature(self.admission.admit).parameters

    @defer.inlineCallbacks
    def admit(self, cp: str, key: str, address: str) -> Generator[defer.Deferred[Any], Any, str]:
        """ "admitted", or the refusal's HTTP status."""
        kwargs = {"address": address} if self.takes_address else {}
        try:
            yield self.admission.admit(f"/ocpp/{cp}", basic_auth(cp, key), **kwargs)
        except HandshakeError as e:
            return str(e.status)
        return "admitted"


@defer.inlineCallbacks
def timed(
    run: Callable[[], defer.Deferred[Any]],
) -> Generator[defer.Deferred[Any], Any, tuple[float, Any]]:
    started = time.process_time()
    result = yield run()
    return time.process_time() - started, result


@defer.inlineCallbacks
def admission_rows(reactor: Any) -> Generator[defer.Deferred[Any], Any, list[tuple[str, float]]]:
    rows: list[tuple[str, float]] = []
    n = 200
    # Each from its own address and for its own charger, as a fleet reconnecting.
    fleet = Admissions(reactor, n)

    def each(fleet: Admissions, key: str) -> Callable[[], defer.Deferred[Any]]:
        @defer.inlineCallbacks
        def run() -> Generator[defer.Deferred[Any], Any, list[str]]:
            outcomes = []
            for i in range(n):
                address = f"10.0.{i // 250}.{i % 250}"
                outcomes.append((yield fleet.admit(f"CP{i}", key, address)))
            return outcomes

        return run

    cpu, outcomes = yield timed(each(fleet, KEY))
    rows.append((f"admission, right key, first login ({set(outcomes)})", cpu / n * 1e6))
    cpu, outcomes = yield timed(each(fleet, KEY))
    rows.append((f"admission, right key, next login ({set(outcomes)})", cpu / n * 1e6))
    cpu, outcomes = yield timed(each(fleet, WRONG))
    rows.append((f"admission, wrong key ({set(outcomes)})", cpu / n * 1e6))
    if legacy_key_hash is not None:
        # Stored before this change: verified once more, then upgraded.
        upgraded = Admissions(reactor, n, legacy_key_hash(KEY))
        cpu, outcomes = yield timed(each(upgraded, KEY))
        rows.append((f"admission, PBKDF2 hash, first login ({set(outcomes)})", cpu / n * 1e6))
        cpu, outcomes = yield timed(each(upgraded, KEY))
        rows.append((f"admission, PBKDF2 hash, next login ({set(outcomes)})", cpu / n * 1e6))

    # The assessment's attack: BURST simultaneous wrong keys for one charger.
    for label, address in [
        ("one address", lambda i: "192.0.2.1"),
        ("an address each", lambda i: f"198.51.{i // 250}.{i % 250}"),
    ]:
        burst = Admissions(reactor, 1)

        def attack(address: Callable[[int], str] = address, burst: Admissions = burst) -> Any:
            return defer.gatherResults(
                [burst.admit("CP0", f"{WRONG}{i}", address(i)) for i in range(BURST)]
            )

        cpu, outcomes = yield timed(attack)
        counts = {o: outcomes.count(o) for o in sorted(set(outcomes))}
        rows.append((f"{BURST} parallel wrong keys, {label}, whole burst {counts}", cpu * 1e6))
    return rows


@defer.inlineCallbacks
def main(reactor: Any) -> Generator[defer.Deferred[Any], Any, None]:
    source = sys.argv[1] if len(sys.argv) > 1 else "this tree"
    print(f"ocppd from {source}; key hash scheme {hash_charger_key(KEY).split('$')[0]}\n")
    print("| measure | CPU us |")
    print("| --- | ---: |")
    for name, us in verification_rows():
        print(f"| {name} | {us:.1f} |")
    for name, us in (yield admission_rows(reactor)):
        print(f"| {name} | {us:.0f} |")


if __name__ == "__main__":
    task.react(main)
