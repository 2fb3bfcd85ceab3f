"""Numbers as people read them in reports: thousands separators, units, significant digits.

Only presentation: every figure stays an integer in its stored unit until here, and
conversions go through carbon.units and billing.money.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from billing.money import minor_to_major
from carbon import units

UJ_PER_WH = units.UJ_PER_KWH // 1000  # 3.6e9 uJ


def grouped(value: int | Decimal, places: int = 0) -> str:
    """12345678 -> '12,345,678'; Decimal('1234.5'), 2 -> '1,234.50'."""
    quantum = Decimal(1).scaleb(-places)
    return f"{Decimal(value).quantize(quantum, rounding=ROUND_HALF_EVEN):,}"


def significant(value: Decimal, digits: int = 3) -> str:
    """A small quantity with `digits` significant digits, without exponent: 0.0416667 -> '0.0417'."""
    if value == 0:
        return "0"
    exponent = value.copy_abs().adjusted()
    places = max(digits - 1 - exponent, 0)
    text = grouped(value, places)
    return text


def uj_to_wh(energy_uj: int) -> Decimal:
    return Decimal(energy_uj) / Decimal(UJ_PER_WH)


def wh_per_1k(energy_per_1k_uj: int | None) -> str:
    """Energy per 1,000 predictions in Wh with 4 significant digits ('0.04167')."""
    if energy_per_1k_uj is None:
        return "–"
    return significant(uj_to_wh(energy_per_1k_uj), 4)


def j_per_1k(energy_per_1k_uj: int | None) -> str:
    if energy_per_1k_uj is None:
        return "–"
    return significant(units.uj_to_j(energy_per_1k_uj), 4)


def kwh(energy_uj: int, places: int = 3) -> str:
    return grouped(units.uj_to_kwh(energy_uj), places)


# CO2e: one unit per table, chosen from the largest value shown, so columns line up.
MASS_UNITS = (("t", 10**12), ("kg", 10**9), ("g", 10**6), ("mg", 10**3), ("µg", 1))


def mass_unit(largest_ug: int) -> tuple[str, int]:
    """('kg', 1e9) when the largest value is at least 1 kg, and so on down to µg (also for 0)."""
    for name, size in MASS_UNITS:
        if abs(largest_ug) >= size:
            return name, size
    return "µg", 1


def mass(value_ug: int, unit: tuple[str, int], places: int = 2) -> str:
    return grouped(Decimal(value_ug) / Decimal(unit[1]), places)


def mass_auto(value_ug: int, places: int = 2) -> str:
    unit = mass_unit(value_ug)
    return f"{mass(value_ug, unit, places)} {unit[0]}"


ENERGY_UNITS = (("MWh", units.UJ_PER_KWH * 1000), ("kWh", units.UJ_PER_KWH), ("Wh", UJ_PER_WH))


def energy_unit(largest_uj: int) -> tuple[str, int]:
    for name, size in ENERGY_UNITS:
        if abs(largest_uj) >= size:
            return name, size
    return "Wh", UJ_PER_WH


def energy(value_uj: int, unit: tuple[str, int], places: int = 3) -> str:
    return grouped(Decimal(value_uj) / Decimal(unit[1]), places)


def energy_auto(value_uj: int, digits: int = 4) -> str:
    """'4.794 kWh', '412.0 Wh': the unit that suits the value, `digits` significant digits."""
    unit = energy_unit(value_uj)
    return f"{significant(Decimal(value_uj) / Decimal(unit[1]), digits)} {unit[0]}"


def money(amount_minor: int, currency: str) -> str:
    """'EUR 1,234.50'; credits keep their sign: 'EUR -12.00'."""
    major = minor_to_major(amount_minor, currency)
    places = max(-major.as_tuple().exponent, 0)
    return f"{currency} {grouped(major, places)}"


def percent(value: Decimal | None, places: int = 1, signed: bool = False) -> str:
    if value is None:
        return "–"
    text = grouped(value, places)
    if signed and value > 0:
        text = "+" + text
    return f"{text}%"


def latency_ms(value_us: int | None) -> str:
    if value_us is None:
        return "–"
    return f"{significant(Decimal(value_us) / 1000, 3)} ms"
