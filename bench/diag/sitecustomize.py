"""
Diagnostics only (``bench/profile.py --server ocppd-noproc``): an ocppd whose
processor never consumes, to measure the request path without the store's
writes competing for the CPU and the GIL. Messages pile up in the embedded
bus (bounded at 100,000), so keep such a run short.
"""

from twisted.internet.defer import succeed

from ocppd.consumers.processor import OcppProcessor

OcppProcessor.start = lambda self, queue: succeed(None)  # type: ignore[method-assign,assignment]
