"""
Tests for ocppd.measurands: a charger's sampled values read as bounded
integers, with one rounding rule, and the newest reading among samples.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ocppd import measurands
from ocppd.measurands import (
    MAX_NUMBER_LENGTH,
    MAX_READING,
    MeterSample,
    energy_wh,
    newest,
    power_w,
    read_integer,
    samples_from,
)
from tests.fuzz.profile import FUZZ, NUMERIC_LOOKING

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)

#: Text in read_integer's grammar, with exponents and lengths around its limits.
grammar_numbers = st.builds(
    lambda sign, whole, point, fraction, exponent: (
        f"{sign}{whole}{'.' if point else ''}{fraction if point else ''}{exponent}"
    ),
    st.sampled_from(["", "+", "-"]),
    st.text("0123456789", min_size=1, max_size=20),
    st.booleans(),
    st.text("0123456789", max_size=16),
    st.sampled_from([""]) | st.builds("e{}".format, st.integers(-99, 99)),
)


@contextmanager
def recorded_int() -> Iterator[list[str]]:
    """
    Record the text of every ``int()`` call ``ocppd.measurands`` makes: a
    module global named ``int`` shadows the builtin for the module's code.
    """
    seen: list[str] = []

    def recording_int(value: Any, *args: Any) -> int:
        seen.append(str(value))
        return builtins.int(value, *args)

    measurands.int = recording_int  # type: ignore[attr-defined]
    try:
        yield seen
    finally:
        del measurands.int  # type: ignore[attr-defined]


def exact(text: str, scale: int) -> Decimal:
    """An independent oracle: Decimal with ample precision, rounded half up."""
    context = Context(prec=400, Emax=10**6, Emin=-(10**6))
    value = context.create_decimal(text.strip()).scaleb(scale, context)
    return value.quantize(Decimal(1), rounding=ROUND_HALF_UP, context=context)


class ReadIntegerTests(SynchronousTestCase):
    def test_numbers(self) -> None:
        """Decimal text is read exactly and rounded half up, away from zero on ties."""
        cases = [
            ("1000", 0, 1000),
            ("1.0005", 3, 1001),  # a float would give 1000.4999... and round down
            ("2.5", 0, 3),
            ("-2.5", 0, -3),
            ("2.4999", 0, 2),
            ("-0", 0, 0),
            ("+7", 0, 7),
            (".5", 0, 1),
            ("5.", 0, 5),
            ("7.4", 3, 7400),
            ("1.5E3", 0, 1500),
            ("15e-1", 0, 2),
            ("1e-99", 3, 0),
            (" 12\t", 0, 12),
            ("0000000000000000000000000000042", 0, 42),
            (str(MAX_READING), 0, MAX_READING),
            (f"-{MAX_READING}", 0, -MAX_READING),
            ("9007199254740.991", 3, MAX_READING),
        ]
        for text, scale, expected in cases:
            self.assertEqual(read_integer(text, scale=scale), expected, text)

    def test_not_numbers(self) -> None:
        """Anything outside the ASCII decimal grammar, or beyond the bounds, is None."""
        for text in [
            "1e999999999",
            "1E+400",
            "0x10",
            "١٢٣",
            "\u0663.\u0665",  # Arabic-Indic 3.5
            "sNaN",
            "",
            " ",
            ".",
            "+",
            "e5",
            "1e",
            "1.2.3",
            "1,5",
            "1_000",
            "NaN",
            "-Infinity",
            "inf",
            "0b1",
            "\uff11\uff12",  # full-width 12
            "12\x00",
            str(MAX_READING + 1),
            "1e16",
            "1" * (MAX_NUMBER_LENGTH + 1),
            "1" + " " * MAX_NUMBER_LENGTH,
        ]:
            self.assertIsNone(read_integer(text), repr(text))
            self.assertIsNone(read_integer(text, scale=3), repr(text))
        # Rounds to MAX_READING + 1 Wh.
        self.assertIsNone(read_integer("9007199254740.9915", scale=3))

    def test_unbounded_exponent_refused_before_arithmetic(self) -> None:
        """
        The frame of issue 13 item 1: ``1e999999999`` (minutes of CPU in
        ``int(Decimal(...))``) is refused by its grammar, before any number
        is built: no ``int()`` call happens at all.
        """
        with recorded_int() as calls:
            for text in ["1e999999999", "1E+400", "9" * 10_000, "1e50000"]:
                self.assertIsNone(read_integer(text, scale=3))
        self.assertEqual(calls, [])

    @FUZZ
    @given(grammar_numbers, st.sampled_from([0, 3]))
    @example("4503599627370495.5", 0)
    @example("-9007199254740.9915", 3)
    def test_same_as_decimal(self, text: str, scale: int) -> None:
        """Every text of the grammar within the length bound reads as exact Decimal
        arithmetic rounded half up, or None exactly when that is beyond MAX_READING."""
        if len(text) > MAX_NUMBER_LENGTH:
            self.assertIsNone(read_integer(text, scale=scale))
            return
        value = exact(text, scale)
        expected = int(value) if abs(value) <= MAX_READING else None
        self.assertEqual(read_integer(text, scale=scale), expected)

    @FUZZ
    @given(
        st.text(max_size=64)
        | st.sampled_from(NUMERIC_LOOKING)
        | st.text("0123456789.eE+- ", max_size=200)
        | st.integers(1, 10**6).map(lambda n: "1" * n)
    )
    def test_bounded(self, text: str) -> None:
        """
        Whatever the text, and however long: the result is None or within
        MAX_READING, and no int() ever sees more than MAX_NUMBER_LENGTH
        characters, so the work is bounded by the grammar, not the input.
        """
        with recorded_int() as calls:
            for scale in (0, 3):
                result = read_integer(text, scale=scale)
                self.assertTrue(result is None or abs(result) <= MAX_READING, result)
        self.assertLessEqual(max(map(len, calls), default=0), MAX_NUMBER_LENGTH)


class ConversionTests(SynchronousTestCase):
    def test_energy_in_wh_and_kwh(self) -> None:
        """Energy measurands in Wh (also when no unit is given) or kWh, rounded half up in
        decimal (never via float); other units and measurands, and non-numbers, give None."""
        register = "Energy.Active.Import.Register"
        self.assertEqual(energy_wh(register, "Wh", "1234"), 1234)
        self.assertEqual(energy_wh(register, None, "1234"), 1234)  # OCPP's default unit
        self.assertEqual(energy_wh(register, "kWh", "1.5"), 1500)
        self.assertEqual(energy_wh(register, "kWh", "1.0005"), 1001)
        self.assertEqual(energy_wh(register, "kWh", "1.0004999"), 1000)
        self.assertEqual(energy_wh(register, "kWh", "0.0025"), 3)  # float: 2.4999...
        self.assertEqual(energy_wh(register, "Wh", " 12.5 "), 13)
        self.assertEqual(energy_wh(register, "kWh", "1e3"), 1_000_000)
        self.assertEqual(energy_wh("Energy.Active.Export.Interval", "kWh", "2"), 2000)
        self.assertIsNone(energy_wh("Voltage", "V", "230"))
        for value in ("", "abc", "NaN", "Infinity", "-inf", "1e400", "0x10"):
            self.assertIsNone(energy_wh(register, "Wh", value), value)
        self.assertIsNone(energy_wh(register, "W", "12"))
        self.assertIsNone(energy_wh("Energy.Reactive.Import.Register", "kvarh", "1"))
        self.assertIsNone(energy_wh("Power.Active.Import", "Wh", "12"))
        self.assertIsNone(energy_wh(register, "kWh", "1e999999"))

    def test_power_in_w_and_kw(self) -> None:
        """Power measurands in W or kW; a power without a unit (OCPP's default is Wh) has none."""
        self.assertEqual(power_w("Power.Active.Import", "kW", "7.4"), 7400)
        self.assertEqual(power_w("Power.Offered", "W", "11000.5"), 11001)
        self.assertIsNone(power_w("Power.Active.Import", None, "7"))
        self.assertIsNone(power_w("Power.Factor", "W", "1"))
        self.assertIsNone(power_w("Current.Import", "A", "16"))

    def test_sample_reads_its_value_once(self) -> None:
        """A MeterSample carries its reading, recomputed when a field changes."""
        import attrs

        sample = MeterSample(timestamp=T0, value="1.5", unit="kWh")
        self.assertEqual((sample.value_wh, sample.value_w), (1500, None))
        power = attrs.evolve(sample, measurand="Power.Active.Import", unit="kW")
        self.assertEqual((power.value_wh, power.value_w), (None, 1500))

    def test_samples_from(self) -> None:
        """MeterValue objects flatten into samples with OCPP's defaults."""
        [sample] = samples_from(
            [{"timestamp": "2026-11-29T12:00:00Z", "sampledValue": [{"value": "5"}]}]
        )
        self.assertEqual(
            (sample.timestamp, sample.measurand, sample.unit, sample.context, sample.location),
            (T0, "Energy.Active.Import.Register", "Wh", "Sample.Periodic", "Outlet"),
        )
        self.assertEqual(sample.value_wh, 5)


#: sampledValues of every kind the processor meets: defaults, units, phases, nulls, non-numbers.
VARIED_METER_VALUES: list[dict[str, Any]] = [
    {
        "timestamp": "2026-11-29T12:00:00Z",
        "sampledValue": [
            {"value": "5"},
            {"value": "1.0005", "unit": "kWh", "measurand": "Energy.Active.Import.Register"},
            {"value": "7.4", "unit": "kW", "measurand": "Power.Active.Import"},
            {"value": "230", "unit": "W", "measurand": "Power.Offered", "phase": "L1"},
            {"value": "16", "unit": "A", "measurand": "Current.Import", "phase": "L2-N"},
            {"value": "48", "unit": "Percent", "measurand": "SoC", "location": "EV"},
            {"value": "NaN", "unit": "Wh", "context": "Transaction.End", "format": "Raw"},
            {"value": "0x10", "measurand": "Energy.Active.Export.Interval"},
            {"value": "12", "unit": None, "measurand": "Power.Active.Import"},
            {"value": "3", "unit": None, "format": "SignedData", "context": None},
        ],
    },
    {
        "timestamp": "2026-11-29T13:00:00.123+01:00",
        "sampledValue": [
            {"value": "99", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": "2", "unit": "kW", "measurand": "Power.Active.Import", "phase": None},
        ],
    },
]


class ReadSamplesTests(SynchronousTestCase):
    def test_as_samples_read_them(self) -> None:
        """
        ``read_samples`` reads each sampledValue as ``MeterSample`` does
        (its fields, its readings: one rule) and ``newest_of`` of them is
        ``newest`` of the samples.
        """
        fields = measurands.read_samples(VARIED_METER_VALUES)
        samples = samples_from(VARIED_METER_VALUES)
        self.assertEqual(fields, [measurands.fields_of(sample) for sample in samples])
        self.assertEqual([MeterSample(*each[:8]) for each in fields], samples)
        self.assertEqual(measurands.newest_of(fields), newest(samples))
        self.assertEqual(
            measurands.newest_of(fields),
            measurands.Newest(
                (datetime(2026, 11, 29, 12, 0, 0, 123000, tzinfo=UTC), 99),
                (datetime(2026, 11, 29, 12, 0, 0, 123000, tzinfo=UTC), 2000),
                (T0, 48),
            ),
        )
        # What each reads: energy (Wh, kWh, no unit), power (W, kW), neither.
        self.assertEqual(
            [(each[8], each[9]) for each in fields],
            [
                (5, None),
                (1001, None),
                (None, 7400),
                (None, 230),
                (None, None),
                (None, None),
                (None, None),
                (None, None),
                (None, None),
                (3, None),
                (99, None),
                (None, 2000),
            ],
        )

    @given(
        st.sampled_from(
            [
                *sorted(measurands.ENERGY_MEASURANDS | measurands.POWER_MEASURANDS),
                measurands.SOC,
                "Voltage",
                "Power.Factor",
                "",
            ]
        )
        | st.none(),
        st.sampled_from(["Wh", "kWh", "W", "kW", "A", "Percent", ""]) | st.none(),
        grammar_numbers | st.text(max_size=8),
    )
    @example("Energy.Active.Import.Register", None, "12")
    @example("Power.Active.Import", "", "7")
    def test_readings_are_energy_wh_and_power_w(
        self, measurand: str | None, unit: str | None, value: str
    ) -> None:
        """
        The readings ``read_samples`` makes itself are ``energy_wh``'s and
        ``power_w``'s of the sample's measurand, unit and value (its
        defaults when one is missing).
        """
        sampled: dict[str, Any] = {"value": value}
        if measurand is not None:
            sampled["measurand"] = measurand
        if unit is not None:
            sampled["unit"] = unit
        (fields,) = measurands.read_samples(
            [{"timestamp": "2026-11-29T12:00:00Z", "sampledValue": [sampled]}]
        )
        read_measurand = measurands.ENERGY_REGISTER if measurand is None else measurand
        read_unit = "Wh" if unit is None else unit
        self.assertEqual(
            fields[8:],
            (
                energy_wh(read_measurand, read_unit, value),
                power_w(read_measurand, read_unit, value),
            ),
        )


class NewestTests(SynchronousTestCase):
    def sample(
        self,
        value: str,
        unit: str = "Wh",
        *,
        measurand: str = "Energy.Active.Import.Register",
        phase: str | None = None,
        second: int = 0,
    ) -> MeterSample:
        return MeterSample(
            timestamp=T0 + timedelta(seconds=second),
            value=value,
            measurand=measurand,
            phase=phase,
            unit=unit,
        )

    def test_newest_totals(self) -> None:
        """The newest phase-less register and import power; non-numbers and phases skipped."""
        power = "Power.Active.Import"
        readings = newest(
            [
                self.sample("100", second=1),
                self.sample("200"),
                self.sample("7.4", "kW", measurand=power),
                self.sample("5", "W", measurand=power, phase="L1", second=9),
                self.sample("NaN", "W", measurand=power, second=9),
                self.sample("1e999999999", second=9),
                self.sample("999", phase="L2", second=9),
            ]
        )
        self.assertEqual((readings.energy_wh, readings.power_w), (100, 7400))
        self.assertEqual(readings.energy, (T0 + timedelta(seconds=1), 100))
        self.assertEqual(newest([]), measurands.Newest(None, None))

    def test_first_of_equal_times(self) -> None:
        """Of two readings with one timestamp the first counts, as across messages."""
        readings = newest([self.sample("1"), self.sample("2")])
        self.assertEqual(readings.energy_wh, 1)

    def test_state_of_charge(self) -> None:
        """SoC in Percent (or no unit), 0 to 100 and a number; the newest counts."""
        soc = measurands.SOC
        self.assertEqual(measurands.soc_percent(soc, "Percent", "47.5"), 48)
        self.assertEqual(measurands.soc_percent(soc, None, "100"), 100)
        for unit, value in (("Percent", "101"), ("Percent", "-1"), ("Wh", "50"), ("Percent", "x")):
            self.assertIsNone(measurands.soc_percent(soc, unit, value), (unit, value))
        self.assertIsNone(measurands.soc_percent("Power.Offered", "Percent", "50"))
        readings = newest(
            [
                self.sample("41", "Percent", measurand=soc, second=1),
                self.sample("48", "Percent", measurand=soc, second=2),
                self.sample("99", "Percent", measurand=soc, phase="L1", second=3),
                self.sample("200", "Percent", measurand=soc, second=4),
            ]
        )
        self.assertEqual(readings.soc, (T0 + timedelta(seconds=2), 48))
        self.assertEqual(readings.soc_percent, 48)
