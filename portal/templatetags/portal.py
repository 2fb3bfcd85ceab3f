"""Figures as people read them on the portal, every one with its unit.

Presentation only: values arrive as integers in their stored units (uJ, ug, minor
units) and are converted here through carbon.units, billing.money and reports.formatting,
the one place each conversion lives.
"""

from __future__ import annotations

from decimal import Decimal

from django import template

from carbon import units
from reports import formatting as fmt

register = template.Library()


@register.filter
def grouped(value) -> str:
    """12345678 -> '12,345,678'."""
    if value is None:
        return "–"
    return fmt.grouped(value)


@register.filter
def kwh(energy_uj: int | None) -> str:
    """Energy in kWh with 4 significant digits: '4.794 kWh', '0.0001234 kWh'."""
    if energy_uj is None:
        return "–"
    return f"{fmt.significant(units.uj_to_kwh(energy_uj), 4)} kWh"


@register.filter
def energy(energy_uj: int | None) -> str:
    """Energy in the unit that suits it: '4.794 kWh', '412.0 Wh'."""
    if energy_uj is None:
        return "–"
    return fmt.energy_auto(energy_uj)


@register.filter
def mass(mass_ug: int | None) -> str:
    """CO2e mass in the unit that suits it: '12.34 kg', '512.00 g', '3.20 mg'."""
    if mass_ug is None:
        return "–"
    if mass_ug == 0:
        return "0 g"
    return fmt.mass_auto(mass_ug)


@register.filter
def mass_g(mass_ug: int | None) -> str:
    """Exact grams, for tooltips: '1234.567891 g'."""
    if mass_ug is None:
        return "–"
    return f"{units.ug_to_g(mass_ug):f} g"


@register.filter
def kwh_exact(energy_uj: int | None) -> str:
    if energy_uj is None:
        return "–"
    return f"{units.uj_to_kwh(energy_uj).normalize():f} kWh"


@register.filter
def sci(ug_per_prediction: Decimal | None) -> str:
    """SCI per prediction: micrograms below 1 mg, milligrams above, 3 significant digits."""
    if ug_per_prediction is None:
        return "–"
    if ug_per_prediction >= 1000:
        return f"{fmt.significant(ug_per_prediction / 1000, 3)} mg"
    return f"{fmt.significant(ug_per_prediction, 3)} µg"


@register.filter
def intensity(g_per_kwh) -> str:
    if g_per_kwh is None or g_per_kwh == "":
        return "–"
    return f"{fmt.grouped(Decimal(str(g_per_kwh)), 0)} g/kWh"


@register.simple_tag
def money(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return "–"
    return fmt.money(amount_minor, currency)


@register.simple_tag
def price_per_1k(amount_minor: Decimal, currency: str) -> str:
    """A price per 1,000 predictions in major units with up to 4 decimals: 'EUR 0.425'."""
    from billing.money import currency_exponent

    major = Decimal(amount_minor).scaleb(-currency_exponent(currency))
    text = f"{major.quantize(Decimal('0.0001')):f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    decimals = decimals.ljust(currency_exponent(currency), "0")
    return f"{currency} {whole}{'.' + decimals if decimals else ''}"


@register.filter
def percent_drop(pair) -> str:
    """'42.0% lower' for (planned, run_now) intensities; '' when nothing is measurable."""
    planned, run_now = pair
    if not run_now or planned is None or planned >= run_now:
        return ""
    return f"{(Decimal(run_now) - Decimal(planned)) / Decimal(run_now) * 100:.1f}% lower"


@register.filter
def pair(first, second):
    return (first, second)


@register.filter
def absolute(value):
    return abs(value) if value is not None else value


@register.filter
def words(value) -> str:
    """'payment_failed' -> 'payment failed'."""
    return str(value).replace("_", " ")
