"""
CPython's cyclic garbage collector, set for a daemon that answers chargers.

With CPython's defaults (thresholds 700, 10, 10) a busy node collected the
young generation every ~40 messages, and every few seconds the whole heap:
the ~140,000 objects of the modules and libraries loaded at start, 70-110 ms
of CPU on the reactor thread in one go, the p99 of every answer (issue 16;
``bench/RESULTS.md``). Two changes, once the node serves (``settle_heap``):

- ``gc.freeze()`` moves everything start-up built into the permanent
  generation, which no collection traverses again. Those objects live as long
  as the process anyway; a full collection then sees only what came since
  (connections, sessions, messages in flight).
- A young collection waits for ``YOUNG_THRESHOLD`` new objects (allocations
  net of frees) instead of 700. A message's objects mostly die by reference
  counting within the message; at 700 the messages in flight alone crossed
  the threshold, so their objects were traversed, promoted and traversed
  again. At 10,000 a young collection is rare under load (a few per 10,000
  Heartbeats), and takes a few ms of CPU when it comes.

Cycles are still collected: only later, and without re-reading start-up's heap.
"""

from __future__ import annotations

import gc

from ocppd.logs import Logger

#: Objects allocated (net of frees) before a young collection; CPython's default is 700.
YOUNG_THRESHOLD = 10_000

log = Logger()


def settle_heap() -> None:
    """
    Once the node serves: collect what start-up left, freeze the rest out of
    the collector's sight, and raise the young threshold. Process-wide: only
    ``twistd ocppd`` calls it, never a library user or a test's service.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    log.info(
        "Garbage collector: {frozen} start-up objects frozen, young threshold {threshold}",
        frozen=gc.get_freeze_count(),
        threshold=YOUNG_THRESHOLD,
    )
