"""
Meter readings from what a charger sends: one bounded parse, one rounding.

An OCPP 1.6 ``sampledValue.value`` is free text to the schema. ``Decimal`` and
``int`` read numbers of any size (``int(Decimal("1e999999999"))`` runs for
minutes and allocates hundreds of MB), so a charger's text is never given to
them. :func:`read_integer` accepts a strict grammar and bounds everything
before it computes:

- ASCII only: ``[+-]digits[.digits][e[+-]d[d]]``, surrounding JSON whitespace
  allowed; no ``NaN``/``Infinity``, no ``0x10``, no ``1_000``, no ``١٢٣``;
- at most :data:`MAX_NUMBER_LENGTH` characters and a two-digit exponent,
  so every power of ten it computes is below ``10**140``;
- a result of at most :data:`MAX_READING` in magnitude, decided from the
  digit count before the value is built.

Energy is integer Wh, power integer W, each rounded once, half up (ties away
from zero, as ``decimal.ROUND_HALF_UP``): ``"1.0005"`` kWh is 1001 Wh. A
sample that is not such a number, or not energy in Wh/kWh or power in W/kW,
has no reading (``None``): it is stored as sent, non-numeric.

:func:`newest` is the one rule for "the charger's current reading", used by
the processor (session energy, live power) and the notifier (admin meter).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

import attrs

from ocppd.bounds import JS_SAFE_MAX
from ocppd.timeutil import parse_iso

__all__ = [
    "ENERGY_MEASURANDS",
    "ENERGY_REGISTER",
    "MAX_NUMBER_LENGTH",
    "MAX_READING",
    "POWER_IMPORT",
    "POWER_MEASURANDS",
    "SOC",
    "MeterSample",
    "Newest",
    "SampleFields",
    "energy_wh",
    "fields_of",
    "newest",
    "newest_of",
    "power_w",
    "read_integer",
    "read_samples",
    "samples_from",
    "soc_percent",
]

#: The session's meter: the total (phase-less) one is its running energy.
ENERGY_REGISTER = "Energy.Active.Import.Register"
#: The live power shown with a session and on the admin meter.
POWER_IMPORT = "Power.Active.Import"
#: The vehicle's state of charge, in percent, when the charger relays it.
SOC = "SoC"

#: OCPP 1.6 measurands read as energy (when their unit is Wh or kWh).
ENERGY_MEASURANDS = frozenset(
    {
        "Energy.Active.Export.Register",
        "Energy.Active.Import.Register",
        "Energy.Reactive.Export.Register",
        "Energy.Reactive.Import.Register",
        "Energy.Active.Export.Interval",
        "Energy.Active.Import.Interval",
        "Energy.Reactive.Export.Interval",
        "Energy.Reactive.Import.Interval",
    }
)
#: OCPP 1.6 measurands read as power (when their unit is W or kW); not Power.Factor.
POWER_MEASURANDS = frozenset(
    {
        "Power.Active.Export",
        "Power.Active.Import",
        "Power.Offered",
        "Power.Reactive.Export",
        "Power.Reactive.Import",
    }
)
# Powers of ten from each unit to Wh and W.
_WH_SCALE: Mapping[str, int] = {"Wh": 0, "kWh": 3}
_W_SCALE: Mapping[str, int] = {"W": 0, "kW": 3}

#: Longest text read as a number: 16 integer and 15 fraction digits and a
#: point, far more than any meter has; longer text is not a reading.
MAX_NUMBER_LENGTH = 32
#: Largest reading (|Wh| or |W|): JavaScript's ``Number.MAX_SAFE_INTEGER``,
#: so pages show it exactly; a BIGINT holds it, and the difference of two.
MAX_READING = JS_SAFE_MAX
_MAX_READING_DIGITS = len(str(MAX_READING))

_WHITESPACE = " \t\r\n"
#: Largest ``scale`` the digits-only short cut of ``read_integer`` takes (kWh, kW: 3).
_FAST_SCALE = 3
# Exactly what read_integer accepts (ASCII digits: [0-9], never \d).
_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]{1,2}))?")


def read_integer(text: str, *, scale: int = 0) -> int | None:
    """
    ``text`` as a decimal number times ``10**scale``, rounded half up to an
    integer; ``None`` if it is not a number of the grammar (module
    docstring) or its result exceeds :data:`MAX_READING` in magnitude.

    Bounded work for any input: the length is checked first, and the value
    is built only once its digit count is known to be in range.
    """
    if len(text) > MAX_NUMBER_LENGTH:
        return None
    if text.isascii() and text.isdigit() and 0 <= scale <= _FAST_SCALE:
        # What meters send nearly always: plain digits, nothing to round.
        # Bounded like the rest: at most MAX_NUMBER_LENGTH digits (checked
        # above) times a small power of ten.
        magnitude = int(text) * 10**scale
        return magnitude if magnitude <= MAX_READING else None
    match = _NUMBER.fullmatch(text.strip(_WHITESPACE))
    if match is None:
        return None
    sign, whole, fraction, exponent = match.groups()
    fraction = fraction or ""
    if not whole and not fraction:
        return None  # "", "+", ".", "e5"
    significant = (whole + fraction).lstrip("0")
    if not significant:
        return 0
    # value = int(significant) * 10**shift, with |shift| < 140.
    shift = int(exponent or 0) + scale - len(fraction)
    if len(significant) + shift > _MAX_READING_DIGITS:
        return None  # at least 10**_MAX_READING_DIGITS, beyond MAX_READING
    if shift >= 0:
        magnitude = int(significant) * 10**shift
    else:
        divisor = 10**-shift
        magnitude, remainder = divmod(int(significant), divisor)
        if 2 * remainder >= divisor:
            magnitude += 1
    if magnitude > MAX_READING:
        return None
    return -magnitude if sign == "-" else magnitude


def energy_wh(measurand: str, unit: str | None, value: str) -> int | None:
    """An energy sample in integer Wh; None unless energy in Wh/kWh (no unit: Wh) and a number."""
    scale = _WH_SCALE.get(unit or "Wh")
    if scale is None or measurand not in ENERGY_MEASURANDS:
        return None
    return read_integer(value, scale=scale)


def power_w(measurand: str, unit: str | None, value: str) -> int | None:
    """A power sample in integer W; None unless power in W/kW and a number."""
    scale = _W_SCALE.get(unit or "")
    if scale is None or measurand not in POWER_MEASURANDS:
        return None
    return read_integer(value, scale=scale)


def soc_percent(measurand: str, unit: str | None, value: str) -> int | None:
    """
    A state of charge in whole percent; None unless the SoC measurand in
    Percent (no unit: Percent) and a number from 0 to 100.
    """
    if measurand != SOC or (unit or "Percent") != "Percent":
        return None
    percent = read_integer(value)
    return percent if percent is not None and 0 <= percent <= 100 else None


def _energy_of(sample: MeterSample) -> int | None:
    return energy_wh(sample.measurand, sample.unit, sample.value)


def _power_of(sample: MeterSample) -> int | None:
    return power_w(sample.measurand, sample.unit, sample.value)


@attrs.frozen
class MeterSample:
    """
    One OCPP sampledValue, with the timestamp of its MeterValue, and its
    reading, read once when the sample is built: ``value_wh`` for energy,
    ``value_w`` for power (at most one of them is not None).
    """

    timestamp: datetime
    value: str  # exactly as sent
    measurand: str = ENERGY_REGISTER
    phase: str | None = None
    unit: str | None = "Wh"
    context: str | None = None
    location: str | None = None
    format: str | None = None
    value_wh: int | None = attrs.field(init=False, default=attrs.Factory(_energy_of, True))
    value_w: int | None = attrs.field(init=False, default=attrs.Factory(_power_of, True))


#: One sampledValue as :func:`read_samples` reads it: the fields of
#: :class:`MeterSample` in their order, its readings last.
SampleFields = tuple[
    datetime,
    str,
    str,
    str | None,
    str | None,
    str | None,
    str | None,
    str | None,
    int | None,
    int | None,
]


def read_samples(meter_values: list[dict[str, Any]]) -> list[SampleFields]:
    """
    OCPP 1.6 MeterValue objects flattened into one :data:`SampleFields` per
    sampledValue: the one parse of what a charger sent, its readings by
    :func:`energy_wh` and :func:`power_w`. Plain tuples, which the
    processor turns into rows without a :class:`MeterSample` each (a
    MeterValues' four samples were a tenth of its Python).
    """
    samples: list[SampleFields] = []
    append = samples.append
    for meter_value in meter_values:
        timestamp = parse_iso(meter_value["timestamp"])
        for sampled in meter_value["sampledValue"]:
            get = sampled.get
            value = sampled["value"]
            measurand = get("measurand", ENERGY_REGISTER)
            unit = get("unit", "Wh")
            # energy_wh and power_w, inlined (two calls per sample were a
            # fifth of this parse): the same checks in the same order.
            value_wh = value_w = None
            scale = _WH_SCALE.get(unit or "Wh")
            if scale is not None and measurand in ENERGY_MEASURANDS:
                value_wh = read_integer(value, scale=scale)
            scale = _W_SCALE.get(unit or "")
            if scale is not None and measurand in POWER_MEASURANDS:
                value_w = read_integer(value, scale=scale)
            append(
                (
                    timestamp,
                    value,
                    measurand,
                    get("phase"),
                    unit,
                    get("context", "Sample.Periodic"),
                    get("location", "Outlet"),
                    get("format", "Raw"),
                    value_wh,
                    value_w,
                )
            )
    return samples


def samples_from(meter_values: list[dict[str, Any]]) -> list[MeterSample]:
    """OCPP 1.6 MeterValue objects flattened into one sample per sampledValue."""
    # Positional, in the fields' order: matching eight keywords was a third
    # of building a sample. The readings are the sample's own (the same rule).
    return [MeterSample(*fields[:8]) for fields in read_samples(meter_values)]


def fields_of(sample: MeterSample) -> SampleFields:
    """A sample as :func:`read_samples` reads it."""
    return (
        sample.timestamp,
        sample.value,
        sample.measurand,
        sample.phase,
        sample.unit,
        sample.context,
        sample.location,
        sample.format,
        sample.value_wh,
        sample.value_w,
    )


class Newest(NamedTuple):
    """
    The newest total energy register, active import power and state of
    charge, each with its time. A named tuple, not an attrs class: one is
    made per MeterValues, and a tuple's ``__new__`` is a fraction of a
    frozen class's ``__init__`` (bench/RESULTS.md).
    """

    energy: tuple[datetime, int] | None = None  # (timestamp, Wh)
    power: tuple[datetime, int] | None = None  # (timestamp, W)
    soc: tuple[datetime, int] | None = None  # (timestamp, %)

    @property
    def energy_wh(self) -> int | None:
        return None if self.energy is None else self.energy[1]

    @property
    def power_w(self) -> int | None:
        return None if self.power is None else self.power[1]

    @property
    def soc_percent(self) -> int | None:
        return None if self.soc is None else self.soc[1]


def newest(samples: Iterable[MeterSample]) -> Newest:
    """:func:`newest_of` of :class:`MeterSample` objects."""
    return newest_of([fields_of(sample) for sample in samples])


def newest_of(samples: Iterable[SampleFields]) -> Newest:
    """
    The newest phase-less :data:`ENERGY_REGISTER`, :data:`POWER_IMPORT` and
    :data:`SOC` readings among ``samples`` (:func:`read_samples`'). Per-phase
    values are not summed into totals: a charger sends totals without
    ``phase`` when it has them, and a guess would be worse than none. Of
    readings with the same timestamp, the first counts, as a later message
    with the same timestamp changes no session.
    """
    energy: tuple[datetime, int] | None = None
    power: tuple[datetime, int] | None = None
    soc: tuple[datetime, int] | None = None
    for timestamp, value, measurand, phase, unit, _, _, _, value_wh, value_w in samples:
        if phase:
            continue
        if value_wh is not None and measurand == ENERGY_REGISTER:
            if energy is None or timestamp > energy[0]:
                energy = (timestamp, value_wh)
        elif value_w is not None and measurand == POWER_IMPORT:
            if power is None or timestamp > power[0]:
                power = (timestamp, value_w)
        elif measurand == SOC and (soc is None or timestamp > soc[0]):
            percent = soc_percent(measurand, unit, value)
            if percent is not None:
                soc = (timestamp, percent)
    return Newest(energy, power, soc)
