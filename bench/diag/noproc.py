"""
Diagnostics only (``bench/profile.py --server ocppd-noproc``, imported by this
folder's ``sitecustomize`` when ``OCPPD_BENCH_NOPROC`` is set): an ocppd whose
processor never consumes, to measure the request path without the store's
writes competing for the CPU and the GIL. Messages pile up in the embedded
bus (bounded at 100,000), so keep such a run short.
"""

from typing import cast

from twisted.internet.defer import Deferred, succeed

from ocppd.bus.interface import IConsumer
from ocppd.consumers.base import BusConsumer
from ocppd.consumers.processor import OcppProcessor


def _start_without_consuming(self: BusConsumer, queue: str) -> Deferred[IConsumer]:
    # No consumer: stop() then has nothing to stop.
    return succeed(cast(IConsumer, None))


OcppProcessor.start = _start_without_consuming  # type: ignore[method-assign]
