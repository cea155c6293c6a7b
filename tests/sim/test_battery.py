"""The EV battery model: constant power, then a taper, integrated exactly."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.sim.battery import Battery


class BatteryTests(SynchronousTestCase):
    def test_constant_power_below_the_knee(self) -> None:
        """Below the knee the vehicle takes the charger's full power: 11 kW for 1 h is 11 kWh."""
        battery = Battery(capacity_wh=60_000, soc=0.2, max_power_w=11_000)
        after, energy = battery.charge(3600)
        self.assertAlmostEqual(energy, 11_000, places=6)
        self.assertEqual(after.power_w, 11_000)
        self.assertAlmostEqual(after.soc, 0.2 + 11 / 60)

    def test_power_tapers_above_the_knee(self) -> None:
        """Past the knee the power falls as the battery fills, and never reaches past 100 %."""
        battery = Battery(capacity_wh=60_000, soc=0.75, max_power_w=11_000)
        powers = []
        for _ in range(12):
            battery, _ = battery.charge(900)
            powers.append(battery.power_w)
        self.assertEqual(powers[0], 11_000)  # still constant just after the start
        tail = powers[2:]
        self.assertEqual(tail, sorted(tail, reverse=True))
        self.assertLess(powers[-1], 0.2 * 11_000)
        self.assertLess(battery.soc, 1.0)

    def test_step_size_does_not_change_the_curve(self) -> None:
        """Many small steps and one big step deliver the same energy (closed form)."""
        one, big = Battery(soc=0.5).charge(4 * 3600)
        many, small = Battery(soc=0.5), 0.0
        for _ in range(4 * 60):
            many, energy = many.charge(60)
            small += energy
        self.assertAlmostEqual(big, small, places=6)
        self.assertAlmostEqual(one.soc, many.soc, places=9)

    def test_energy_matches_the_state_of_charge(self) -> None:
        """The energy delivered is exactly the capacity times the SoC gained."""
        battery = Battery(capacity_wh=40_000, soc=0.1)
        after, energy = battery.charge(5 * 3600)
        self.assertAlmostEqual(energy, (after.soc - 0.1) * 40_000)

    def test_invalid_state_refused(self) -> None:
        """A state of charge outside 0..1 is a bug in the caller."""
        self.assertRaises(ValueError, Battery, soc=1.5)
