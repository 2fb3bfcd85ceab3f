"""Energy and emissions conversions: the one place they are computed and rounded.

Stored quantities are integers: energy in microjoules (uJ), emissions in micrograms
CO2e (ug), CPU time in microseconds. Intensity is gCO2e/kWh as a Decimal.
Rounding is half-even to the nearest integer unit, everywhere.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

UJ_PER_KWH = 3_600_000_000_000  # 1 kWh = 3.6e6 J = 3.6e12 uJ
UJ_PER_J = 1_000_000
UG_PER_G = 1_000_000


def _to_int(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def cpu_energy_uj(*, cpu_us: int, watts_per_core: Decimal, pue: Decimal) -> int:
    """Energy of `cpu_us` busy CPU microseconds at `watts_per_core`, times PUE.

    1 us at 1 W is exactly 1 uJ, so this is cpu_us x W x PUE.
    """
    return _to_int(Decimal(cpu_us) * watts_per_core * pue)


def co2e_ug(*, energy_uj: int, g_per_kwh: Decimal) -> int:
    """Operational emissions of an energy at a grid intensity: E x I.

    ug = uJ / 3.6e12 (kWh) x g/kWh x 1e6 (ug/g) = uJ x g/kWh / 3.6e6.
    """
    return _to_int(Decimal(energy_uj) * Decimal(g_per_kwh) / Decimal(3_600_000))


def embodied_ug(*, cpu_us: int, ug_per_cpu_second: Decimal) -> int:
    """SCI's M term for the CPU time used: the hardware's embodied emissions share."""
    return _to_int(Decimal(cpu_us) * Decimal(ug_per_cpu_second) / Decimal(1_000_000))


def uj_to_kwh(energy_uj: int) -> Decimal:
    return Decimal(energy_uj) / Decimal(UJ_PER_KWH)


def uj_to_j(energy_uj: int) -> Decimal:
    return Decimal(energy_uj) / Decimal(UJ_PER_J)


def ug_to_g(mass_ug: int) -> Decimal:
    return Decimal(mass_ug) / Decimal(UG_PER_G)


def ug_to_mg(mass_ug: int) -> Decimal:
    return Decimal(mass_ug) / Decimal(1000)


def j_to_uj(energy_j: Decimal | float) -> int:
    return _to_int(Decimal(str(energy_j)) * UJ_PER_J)


def kwh_to_uj(energy_kwh: Decimal | float) -> int:
    return _to_int(Decimal(str(energy_kwh)) * UJ_PER_KWH)
