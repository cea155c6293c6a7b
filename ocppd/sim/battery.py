"""
The electric vehicle's side of a session: how much power it draws, and when.

Real AC and DC sessions follow a CC-CV profile: the vehicle takes the
charger's full power (constant current) until the battery is nearly full,
then the current tapers off as the cell voltage approaches its limit. We
model the taper as power proportional to the missing charge, which makes the
state of charge approach 100 % exponentially, and integrate it in closed
form, so a sample every second or every ten minutes gives the same curve and
the meter never depends on how often it is read.
"""

from __future__ import annotations

import math

import attrs

#: Nominal AC line voltage used to turn power into a per-phase current.
LINE_VOLTAGE = 230.0


@attrs.frozen
class Battery:
    """
    An EV battery being charged at up to ``max_power_w``.

    ``soc`` is the state of charge, 0 to 1; ``knee`` is where the constant
    power phase ends and the taper begins (around 80 % for most EVs).
    """

    capacity_wh: float = 60_000.0
    soc: float = 0.3
    max_power_w: float = 11_000.0
    knee: float = 0.8
    phases: int = 3

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.soc <= 1.0:
            raise ValueError(f"state of charge {self.soc} is not between 0 and 1")
        if not 0.0 < self.knee < 1.0:
            raise ValueError(f"knee {self.knee} is not strictly between 0 and 1")
        if self.capacity_wh <= 0 or self.max_power_w < 0:
            raise ValueError("capacity must be positive and power not negative")

    @property
    def power_w(self) -> float:
        """The power the vehicle draws now."""
        if self.soc < self.knee:
            return self.max_power_w
        return self.max_power_w * (1.0 - self.soc) / (1.0 - self.knee)

    @property
    def current_a(self) -> float:
        """The current per phase that carries :attr:`power_w`."""
        return self.power_w / (LINE_VOLTAGE * self.phases)

    def charge(self, seconds: float) -> tuple[Battery, float]:
        """
        The battery after charging for ``seconds``, and the energy (Wh) it took.

        Exact for any step: linear up to the knee, then the solution of
        ``d(1 - soc)/dt = -k (1 - soc)``.
        """
        if seconds <= 0 or self.max_power_w == 0:
            return self, 0.0
        soc, remaining = self.soc, seconds
        rate = self.max_power_w / 3600.0 / self.capacity_wh  # SoC per second at full power
        if soc < self.knee:
            to_knee = (self.knee - soc) / rate
            if remaining <= to_knee:
                soc += rate * remaining
                remaining = 0.0
            else:
                soc = self.knee
                remaining -= to_knee
        if remaining > 0:
            k = rate / (1.0 - self.knee)
            soc = 1.0 - (1.0 - soc) * math.exp(-k * remaining)
        soc = min(soc, 1.0)
        return attrs.evolve(self, soc=soc), (soc - self.soc) * self.capacity_wh
