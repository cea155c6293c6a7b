"""
Diagnostics only (``bench/thread_cpu.py --gc``, imported by this folder's
``sitecustomize`` when ``OCPPD_BENCH_GC_OUT`` is set): the CPU each garbage collection
of a server takes, by generation, from a ``gc.callbacks`` hook timing it with
``time.thread_time()`` (CPU, so a loaded machine does not lengthen it).

SIGUSR1 starts the count afresh; SIGUSR2 writes it as JSON to
``$OCPPD_BENCH_GC_OUT``: ``{"0": [[cpu_seconds, collected], ...], "1": ..., "2": ...}``.
"""

import gc
import json
import os
import signal
import time

_collections: dict[int, list[tuple[float, int]]] = {0: [], 1: [], 2: []}
_started = [0.0]


def _timed(phase: str, info: dict) -> None:
    if phase == "start":
        _started[0] = time.thread_time()
    else:
        _collections[info["generation"]].append(
            (time.thread_time() - _started[0], info["collected"])
        )


def _restart(*_: object) -> None:
    for collections in _collections.values():
        collections.clear()


def _write(*_: object) -> None:
    with open(os.environ["OCPPD_BENCH_GC_OUT"], "w") as f:
        json.dump({str(g): c for g, c in _collections.items()}, f)


gc.callbacks.append(_timed)
signal.signal(signal.SIGUSR1, _restart)
signal.signal(signal.SIGUSR2, _write)
