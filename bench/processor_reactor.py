"""
The reactor's share of the processor per MeterValues, without a database.

    .venv/bin/python bench/processor_reactor.py [--messages 20000] [--batch 500] [--profile]

On a ``Clock``, as ``twistd ocppd`` wires the embedded default: a ``MemoryBus``
(an ``InMemoryJournal``: the journal's writes fire at once), the notifier's
queue passed by (no browser), and the ``OcppProcessor`` with an
``EventPublisher``, whose transactions are replaced by one that returns at
once what a batch of MeterValues comes to on the store: each applied, with the
``session.updated`` of its session. So what is timed is what the reactor
thread does for the processor per message (deliveries, the batch's
follow-ups, acknowledgements, the journal's removals), which the store's
thread and the chargers' requests hide in a real run. It prints this
thread's CPU per message (``time.thread_time``), best of ``--rounds``;
``--profile`` prints cProfile's calls per message instead (deterministic);
``--callgrind LIB`` counts one round's instructions under
``valgrind --tool=callgrind --instr-atstart=no`` (``LIB``: see
``bench/request_path.py``): the total over ``--messages`` is per message.
``OCPPD_BENCH_SOURCE`` names another tree whose ``ocppd`` is measured.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import pstats
import sys
import time
from typing import Any

sys.path.insert(0, os.environ.get("OCPPD_BENCH_SOURCE", os.path.dirname(sys.path[0])))

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.memory import MemoryBus
from ocppd.bus.publisher import EventPublisher
from ocppd.consumers.base import FollowUp
from ocppd.consumers.notifier import Notifier, shown_inbound
from ocppd.consumers.processor import OcppProcessor
from ocppd.gcsettings import settle_heap

NODE = "bench"


class NobodyListening:
    def listening(self) -> bool:
        return False

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        raise AssertionError("nobody listens")


def session_updated(charge_point_id: str, n: int) -> FollowUp:
    """A ``session.updated`` as ``Sessions._live`` makes it (the same keys and kinds)."""
    session = {
        "id": n,
        "transactionId": n,
        "chargePointId": charge_point_id,
        "connectorId": 1,
        "idTag": "TAG1",
        "userId": None,
        "status": "active",
        "startedAt": "2026-12-07T20:00:00Z",
        "stoppedAt": None,
        "meterStartWh": 1000,
        "meterStopWh": None,
        "energyWh": 1000 + n,
        "cost": None,
        "currency": "EUR",
        "stopReason": None,
        "chargerStopReason": None,
        "idTagStatus": "Accepted",
        # None, as for every session never held for review (``review_json``).
        "review": None,
    }
    live = {
        "energyWh": 1000 + n,
        "powerW": 7400,
        "socPercent": None,
        "cost": 123,
        "currency": "EUR",
        "at": "2026-12-07T20:10:00Z",
    }
    return FollowUp("session.updated", {"session": session, "live": live}, charge_point_id)


class StorelessProcessor(OcppProcessor):
    """The processor, its batch's transaction answered at once (see the module docstring)."""

    #: Each envelope's follow-ups by its id, made before the measurement.
    follow_ups: dict[str, list[FollowUp]]

    def _run_batch(self, envelopes: list[Envelope], seqs: list[int | None]) -> Deferred[Any]:
        return succeed([(True, self.follow_ups[envelope.id]) for envelope in envelopes])


class FakeDatabase:
    dialect = "sqlite"


def envelope(i: int) -> Envelope:
    return Envelope.create(
        topology.ocpp_in("MeterValues"),
        {
            "uniqueId": f"{i:010d}",
            "action": "MeterValues",
            "request": {"connectorId": 1, "transactionId": 5, "meterValue": []},
            "response": {},
            "receivedAt": "2026-12-07T20:10:00Z",
        },
        node=NODE,
        charge_point_id=f"CP{i % 100:05d}",
    )


def one_round(messages: int, batch: int, profile: Any, callgrind: Any = None) -> float:
    clock = Clock()
    routes = topology.default_topology(
        node_id=NODE, notifier_inbound=shown_inbound(log_heartbeats=False)
    )
    bus = MemoryBus(routes, reactor=clock, max_queue_length=messages + 1, flow_limit=0)
    bus.startService()
    Notifier(bus, NobodyListening()).start(topology.notifier_queue(NODE))
    processor = StorelessProcessor(
        bus,
        FakeDatabase(),  # type: ignore[arg-type]
        events=EventPublisher(bus, node=NODE, clock=clock),
        clock=clock,
    )
    processor.concurrency = 2 * batch
    processor.max_batch = batch
    processor.batch_wait = 0.0
    key = topology.ocpp_in("MeterValues")
    envelopes = [envelope(i) for i in range(messages)]
    processor.follow_ups = {
        e.id: [session_updated(e.charge_point_id or "", i)] for i, e in enumerate(envelopes)
    }
    published = [bus.publish(key, e) for e in envelopes]
    clock.advance(0)  # the journal's group commit of the publishes
    assert all(d.called for d in published)
    # As the daemon: what start-up (here: the backlog) built is out of the collector's sight.
    settle_heap()
    started = time.thread_time()
    if profile is not None:
        profile.enable()
    if callgrind is not None:
        callgrind.cg_start()
    processor.start(topology.PROCESSOR_QUEUE)
    while clock.getDelayedCalls():
        clock.advance(0)
    if callgrind is not None:
        callgrind.cg_stop()
    if profile is not None:
        profile.disable()
    spent = time.thread_time() - started
    assert bus.queue_length(topology.PROCESSOR_QUEUE) == 0
    return spent / messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--callgrind", metavar="LIB", help="as bench/request_path.py's: one round counted"
    )
    args = parser.parse_args()
    if args.callgrind:
        one_round(args.messages, args.batch, None, ctypes.CDLL(args.callgrind))
        return 0
    if args.profile:
        # This folder's profile.py (py-spy) is not the standard library's, which cProfile imports.
        here = os.path.dirname(os.path.abspath(__file__))
        saved = sys.path[:]
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        import cProfile

        sys.path[:] = saved
        profile = cProfile.Profile()
        one_round(args.messages, args.batch, profile)
        stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        rows = sorted(
            (
                (calls / args.messages, f"{name} ({os.path.basename(path)}:{line})")
                for (path, line, name), (_, calls, *_rest) in stats.items()
            ),
            reverse=True,
        )
        for per, name in rows:
            if per >= 0.01:
                print(f"{per:7.3f} {name}")
        print(f"{sum(per for per, _ in rows):7.3f} calls per message in all")
        return 0
    best = min(one_round(args.messages, args.batch, None) for _ in range(args.rounds))
    print(f"reactor CPU per MeterValues: {1e6 * best:.2f} us (best of {args.rounds})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
