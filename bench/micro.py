"""
Per-message cost of the OCPP layer's pure parts, without sockets.

    .venv/bin/python bench/micro.py [SOURCE]

``SOURCE`` is the directory holding the ``ocppd`` package to time (default: this
working tree), e.g. a copy with older files to compare before/after.
"""

from __future__ import annotations

import os
import sys
import timeit

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [sys.argv[1] if len(sys.argv) > 1 else ROOT, os.path.join(ROOT, "bench"), ROOT]

from loadgen import meter_values_body  # noqa: E402
from twisted.internet.task import Clock  # noqa: E402

from ocppd.ocpp import frames  # noqa: E402
from ocppd.ocpp.handlers import CentralSystemHandlers  # noqa: E402
from tests.ocpp.fakes import RecordingTraffic  # noqa: E402


class Connection:
    charge_point_id = "CP"
    registration_status = "Accepted"


def main() -> None:
    meter_values = f'[2,"0000000001","MeterValues",{meter_values_body(5)}]'
    heartbeat = '[2,"0000000001","Heartbeat",{}]'
    handlers = CentralSystemHandlers(
        database=None,  # type: ignore[arg-type]
        tags=None,  # type: ignore[arg-type]
        traffic=RecordingTraffic(),  # type: ignore[arg-type]
        clock=Clock(),
        heartbeat_interval=300,
    )
    connection = Connection()
    calls = {
        "Heartbeat": frames.parse_frame(heartbeat),
        "MeterValues": frames.parse_frame(meter_values),
    }
    cases = {
        "parse_frame Heartbeat": lambda: frames.parse_frame(heartbeat),
        "parse_frame MeterValues": lambda: frames.parse_frame(meter_values),
        "handle Heartbeat": lambda: handlers.handle(connection, calls["Heartbeat"]),  # type: ignore[arg-type]
        "handle MeterValues": lambda: handlers.handle(connection, calls["MeterValues"]),  # type: ignore[arg-type]
    }
    n = 20000
    for name, case in cases.items():
        best = min(timeit.repeat(case, number=n, repeat=3)) / n
        print(f"{name:26} {best * 1e6:.1f} us")


if __name__ == "__main__":
    main()
