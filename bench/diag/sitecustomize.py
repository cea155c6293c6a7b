"""
Diagnostics only, put on a benchmark server's ``PYTHONPATH`` by ``bench/servers.py``
(``ocppd-noproc``) and ``bench/thread_cpu.py --gc``; each part by its variable:

- ``OCPPD_BENCH_NOPROC``: the processor never consumes (``noproc.py``);
- ``OCPPD_BENCH_GC_OUT``: every garbage collection timed (``gc_timing.py``).
"""

import os

if os.environ.get("OCPPD_BENCH_GC_OUT"):
    import gc_timing  # noqa: F401
if os.environ.get("OCPPD_BENCH_NOPROC"):
    import noproc  # noqa: F401
