"""
Hypothesis settings shared by the property and fuzz tests.

CI runs must be reproducible and short: examples are derived from each test's
name (``derandomize``), nothing is written to an example database, and each
test's example count is fixed. ``OCPPD_FUZZ_SCALE=N`` multiplies the counts
and draws fresh random examples, for a longer hunt on a workstation:

    OCPPD_FUZZ_SCALE=50 python -m twisted.trial tests.fuzz tests.test_measurands

The deadline is a hang guard only (the bounds themselves are proven by the
properties): an example that takes seconds is a bug, whatever the machine.
"""

from __future__ import annotations

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings

__all__ = ["EXTREME_INTEGERS", "FUZZ", "NUMERIC_LOOKING", "fuzz_settings"]

#: How many times the fixed example counts to run; above 1, examples are random.
SCALE = max(1, int(os.environ.get("OCPPD_FUZZ_SCALE", "1") or "1"))

#: Integers at and around every boundary that matters: 32 and 64 bits (columns,
#: WAMP ids), the largest integer a page shows exactly, and far beyond any column.
EXTREME_INTEGERS = (
    0,
    1,
    -1,
    2**31 - 1,
    2**31,
    -(2**31),
    -(2**31) - 1,
    2**53 - 1,
    2**53,
    2**53 + 1,
    -(2**53),
    2**63 - 1,
    2**63,
    -(2**63),
    -(2**63) - 1,
    2**64,
    10**30,
    -(10**30),
)

#: Texts that look like numbers to someone: Decimal, float or int read some
#: of them, sometimes at great cost (issue 13, items 1 and 5).
NUMERIC_LOOKING = (
    "1e999999999",
    "1e999999",
    "1e50000",
    "-1e999999",
    "1E+400",
    "1e-999999",
    "-0",
    "+.5",
    "0x10",
    "1_000",
    "١٢٣",
    "\u0663.\u0665",
    "\uff11\uff12",
    "NaN",
    "-Infinity",
    "sNaN",
    " 7 ",
    "9" * 40,
    "9007199254740993",
    "0.00000000000000000001",
)


def fuzz_settings(max_examples: int) -> settings:
    """Settings for a property test of ``max_examples`` examples (times the scale)."""
    return settings(
        max_examples=max_examples * SCALE,
        deadline=timedelta(seconds=10),
        database=None,
        derandomize=SCALE == 1,
        print_blob=True,
        # differing_executors: a test body may run in classes of two engines
        # (as tests/store's mixin does); no example database is kept, so no
        # example of one replays in the other.
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.differing_executors,
        ],
    )


#: The default for cheap, pure properties.
FUZZ = fuzz_settings(300)
