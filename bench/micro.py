"""
Per-message cost of the OCPP layer's pure parts, without sockets.

    .venv/bin/python bench/micro.py [SOURCE]

``SOURCE`` is the directory holding the ``ocppd`` package to time (default: this
working tree), e.g. a copy with older files to compare before/after. Times are
process CPU (``time.process_time``), best of several repeats: on a shared machine
a neighbour then only adds noise through the caches, not its own run time.

"metrics on" is the same with ``[metrics] listen`` set: the connection
counts each CALL by action and outcome and times its answer (issue 19).

``text_received`` is the whole of the request path that ocppd's reactor runs for
one CALL between Autobahn's ``onMessage`` and ``sendMessage``: parsing, the
schema check, the handler, our answer's check and encoding, with a bus that
accepts at once and a transport that drops what is sent.
"""

from __future__ import annotations

import os
import sys
import time
import timeit
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [sys.argv[1] if len(sys.argv) > 1 else ROOT, os.path.join(ROOT, "bench"), ROOT]

from loadgen import meter_values_body  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from ocppd.metrics.ocpp import OcppMetrics  # noqa: E402
from ocppd.ocpp import frames  # noqa: E402
from ocppd.ocpp.connection import ChargerConnection  # noqa: E402
from ocppd.ocpp.handlers import CentralSystemHandlers  # noqa: E402
from ocppd.ocpp.schemas import SchemaRegistry  # noqa: E402
from tests.ocpp.fakes import RecordingTraffic  # noqa: E402


class Connection:
    charge_point_id = "CP"
    registration_status = "Accepted"


class DroppingTransport:
    def send_text(self, text: str) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass


class ForgettingTraffic(RecordingTraffic):
    """Accepts every publish at once and keeps nothing (a long run stays small)."""

    def inbound(self, *args: Any, **kwargs: Any) -> Any:
        answer = super().inbound(*args, **kwargs)
        self.events.clear()
        return answer


def main() -> None:
    meter_values = f'[2,"0000000001","MeterValues",{meter_values_body(5)}]'
    heartbeat = '[2,"0000000001","Heartbeat",{}]'
    clock = Clock()
    clock.rightNow = 1_800_000_000.0
    traffic = ForgettingTraffic()
    handlers = CentralSystemHandlers(
        database=None,  # type: ignore[arg-type]
        tags=None,  # type: ignore[arg-type]
        traffic=traffic,  # type: ignore[arg-type]
        clock=clock,
        heartbeat_interval=300,
    )
    schemas = SchemaRegistry.load()
    connection = Connection()
    charger = ChargerConnection(
        "CP",
        connection_id="c",
        registration_status="Accepted",
        transport=DroppingTransport(),
        handler=handlers,
        schemas=schemas,
        traffic=traffic,  # type: ignore[arg-type]
        clock=clock,
        call_timeout=30,
    )
    # With metrics on, the connection reads the reactor's clock twice a CALL:
    # the real reactor's seconds() is time.time.
    timed_clock = Clock()
    timed_clock.seconds = time.time  # type: ignore[method-assign]
    counted = ChargerConnection(
        "CP",
        connection_id="c",
        registration_status="Accepted",
        transport=DroppingTransport(),
        handler=handlers,
        schemas=schemas,
        traffic=traffic,  # type: ignore[arg-type]
        clock=timed_clock,
        call_timeout=30,
        metrics=OcppMetrics(),
    )
    calls = {
        "Heartbeat": frames.parse_frame(heartbeat),
        "MeterValues": frames.parse_frame(meter_values),
    }
    meter_payload = calls["MeterValues"].payload  # type: ignore[union-attr]
    heartbeat_answer = {"currentTime": "2027-01-01T00:00:00.000Z"}
    cases = {
        "parse_frame Heartbeat": lambda: frames.parse_frame(heartbeat),
        "parse_frame MeterValues": lambda: frames.parse_frame(meter_values),
        "validate_request Heartbeat": lambda: schemas.validate_request("Heartbeat", {}),
        "validate_request MeterValues": lambda: schemas.validate_request(
            "MeterValues", meter_payload
        ),
        "validate_response Heartbeat": lambda: schemas.validate_response(
            "Heartbeat", heartbeat_answer
        ),
        "handle Heartbeat": lambda: handlers.handle(connection, calls["Heartbeat"]),  # type: ignore[arg-type]
        "handle MeterValues": lambda: handlers.handle(connection, calls["MeterValues"]),  # type: ignore[arg-type]
        "text_received Heartbeat": lambda: charger.text_received(heartbeat),
        "text_received MeterValues": lambda: charger.text_received(meter_values),
        "text_received Heartbeat, metrics on": lambda: counted.text_received(heartbeat),
        "text_received MeterValues, metrics on": lambda: counted.text_received(meter_values),
    }
    n = 5000
    for name, case in cases.items():
        timer = timeit.Timer(case, timer=time.process_time)
        best = min(timer.repeat(number=n, repeat=7)) / n
        print(f"{name:38} {best * 1e6:6.1f} us")


if __name__ == "__main__":
    main()
