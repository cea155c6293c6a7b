"""The garbage collector's settings of a serving node (``ocppd.gcsettings``)."""

from __future__ import annotations

import gc

from twisted.trial.unittest import TestCase

from ocppd import gcsettings


class SettleHeapTests(TestCase):
    def setUp(self) -> None:
        # Process-wide: this test's process gets its collector back as it was.
        threshold = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *threshold)
        self.addCleanup(gc.unfreeze)
        self.assertEqual(gc.get_freeze_count(), 0)

    def test_start_up_objects_frozen_and_young_threshold_raised(self) -> None:
        _, middle, old = gc.get_threshold()
        gcsettings.settle_heap()
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertEqual(gc.get_threshold(), (gcsettings.YOUNG_THRESHOLD, middle, old))
        # What existed (this test case) is no collection's business any more; what comes next is.
        after: list[object] = []
        tracked = {id(obj) for obj in gc.get_objects()}
        self.assertNotIn(id(self), tracked)
        self.assertIn(id(after), tracked)

    def test_cycles_made_later_are_still_collected(self) -> None:
        gcsettings.settle_heap()
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        self.assertGreaterEqual(gc.collect(), 1)
