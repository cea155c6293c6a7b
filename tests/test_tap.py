"""
``ocppd.tap.makeService``: what the service maker does to the process before
any part is built.
"""

from __future__ import annotations

import sys

from twisted.trial.unittest import SynchronousTestCase

from ocppd import service as service_module
from ocppd import tap
from ocppd.store.database import GIL_SWITCH_INTERVAL


class _Unbuildable:
    """An ``OcppdService`` whose construction fails, as with an unwritable data directory."""

    def __init__(self, *args: object) -> None:
        raise OSError("data directory not writable")


class MakeServiceTests(SynchronousTestCase):
    def make(self) -> list[float]:
        """Run ``makeService`` with default options; the GIL intervals it set."""
        intervals: list[float] = []
        self.patch(sys, "setswitchinterval", intervals.append)
        self.patch(service_module, "OcppdService", _Unbuildable)
        options = tap.Options()
        options.parseOptions([])
        with self.assertRaises(SystemExit) as raised:
            tap.makeService(options)
        self.assertEqual(str(raised.exception), "ocppd: data directory not writable")
        return intervals

    def test_gil_switch_interval_set_before_the_service_is_built(self) -> None:
        """
        The daemon sets CPython's GIL switch interval to ``GIL_SWITCH_INTERVAL``
        (0.5 ms, not the default 5 ms) so that the reactor does not wait behind
        the database thread's Python; it does so before anything is built.
        """
        self.assertEqual(self.make(), [GIL_SWITCH_INTERVAL])
        self.assertLess(GIL_SWITCH_INTERVAL, 0.005)
