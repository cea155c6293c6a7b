"""Tests for ocppd.timeutil: the one time format ocppd writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.timeutil import IsoNow, format_iso, from_timestamp, parse_iso


class FormatIsoTests(SynchronousTestCase):
    def test_milliseconds_utc_z(self) -> None:
        """Milliseconds truncated, in UTC (naive taken as UTC); parse_iso reads it back."""
        cases = {
            datetime(2026, 11, 29, 12, 0, 5, 678999, tzinfo=UTC): "2026-11-29T12:00:05.678Z",
            datetime(
                2026, 11, 29, 1, 0, tzinfo=timezone(timedelta(hours=2))
            ): "2026-11-28T23:00:00.000Z",
            datetime(2026, 1, 2, 3, 4, 5): "2026-01-02T03:04:05.000Z",
            datetime(1, 1, 1, tzinfo=UTC): "0001-01-01T00:00:00.000Z",
        }
        for value, text in cases.items():
            self.assertEqual(format_iso(value), text)
            self.assertEqual(format_iso(parse_iso(text)), text)

    @given(
        st.datetimes(
            timezones=st.one_of(
                st.none(),
                st.just(UTC),
                st.builds(timezone, st.timedeltas(timedelta(hours=-23), timedelta(hours=23))),
            )
        )
    )
    def test_as_isoformat_says(self, value: datetime) -> None:
        """Any time, naive or in any zone: ``isoformat``'s UTC milliseconds, and a Z."""
        if value.tzinfo is not None:
            try:
                utc = value.astimezone(UTC)
            except OverflowError:
                return  # beyond year 1..9999 in UTC: format_iso raises as astimezone does
        else:
            utc = value
        expected = utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
        self.assertEqual(format_iso(value), expected)


class IsoNowTests(SynchronousTestCase):
    def test_same_as_format_iso(self) -> None:
        """
        Within a second and across seconds, at the millisecond and microsecond
        rounding edges, it says ``format_iso(from_timestamp(now))``.
        """
        clock = Clock()
        now_iso = IsoNow(clock)
        base = 1_800_000_000.0
        for offset in (0.0, 0.123, 0.0005, 0.9994, 0.9999996, 1.0, 1.001, 59.999, 3600.25, 0.5):
            clock.rightNow = base + offset
            self.assertEqual(now_iso(), format_iso(from_timestamp(base + offset)), offset)
