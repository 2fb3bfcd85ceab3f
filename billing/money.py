"""Money: integer minor units plus an ISO 4217 currency, and the one rounding function.

Every stored amount is an integer number of the currency's minor unit (`_minor`):
cents for EUR/USD/GBP, yen for JPY (a zero-decimal currency), fils for BHD (three
decimals). Stripe takes amounts in the same unit, so nothing is converted on the way.

Rounding happens only in `round_minor`: half away from zero ("commercial" rounding,
Python's ROUND_HALF_UP). 0.5 -> 1, 1.5 -> 2, 2.5 -> 3 and, symmetrically for credits,
-0.5 -> -1. It takes exact values (int, Decimal or Fraction), so a caller computes a
whole line exactly first and rounds once (see billing/rating.py).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

# Minor-unit exponent per currency (ISO 4217; Stripe's zero- and three-decimal lists).
# A currency missing here cannot be priced: add it with its exponent.
CURRENCY_EXPONENTS: dict[str, int] = {
    "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2, "NZD": 2, "SEK": 2, "NOK": 2, "DKK": 2,
    "PLN": 2, "CZK": 2, "INR": 2, "SGD": 2, "HKD": 2, "BRL": 2, "MXN": 2, "ZAR": 2,
    # zero-decimal: the minor unit is the major unit
    "JPY": 0, "KRW": 0, "CLP": 0, "VND": 0, "ISK": 0, "PYG": 0, "XOF": 0, "XAF": 0,
    # three-decimal
    "BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3,
}

Exact = int | Decimal | Fraction


class MoneyError(ValueError):
    """An unknown currency or an amount that cannot be represented."""


def currency_exponent(currency: str) -> int:
    """Digits after the decimal point of the currency's major unit (EUR 2, JPY 0, BHD 3)."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}; known: {', '.join(sorted(CURRENCY_EXPONENTS))}") from None


def _exact(value: Exact) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, Fraction)):
        raise MoneyError(f"money needs an exact int, Decimal or Fraction, got {type(value).__name__}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise MoneyError(f"amount {value} is not finite")
    return Fraction(value)


def round_minor(value: Exact) -> int:
    """THE rounding function: an exact amount in minor units to an integer, half away from zero."""
    exact = _exact(value)
    sign = -1 if exact < 0 else 1
    whole, remainder = divmod(abs(exact.numerator), exact.denominator)
    if 2 * remainder >= exact.denominator:
        whole += 1
    return sign * whole


def line_amount_minor(*, quantity: Exact, unit_price_minor: Exact, unit_divisor: int) -> int:
    """quantity x unit price / divisor, computed exactly and rounded once.

    The divisor carries the price's unit: 1,000 for a price per 1,000 predictions, the
    seconds of the month for a prorated monthly fee, 100 for a percentage.
    """
    if not isinstance(unit_divisor, int) or unit_divisor <= 0:
        raise MoneyError(f"unit_divisor must be a positive integer, got {unit_divisor!r}")
    return round_minor(_exact(quantity) * _exact(unit_price_minor) / unit_divisor)


def major_to_minor(amount: Decimal | str | int, currency: str) -> int:
    """A major-unit amount ("12.345" EUR) to minor units (1235), rounded by round_minor."""
    try:
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except ArithmeticError:
        raise MoneyError(f"{amount!r} is not a number") from None
    return round_minor(_exact(value) * 10 ** currency_exponent(currency))


def minor_to_major(amount_minor: int, currency: str) -> Decimal:
    """Exact major-unit Decimal with the currency's digits: (1234, EUR) -> Decimal('12.34')."""
    exponent = currency_exponent(currency)
    return Decimal(amount_minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_major(amount_minor: int, currency: str) -> str:
    """'12.34' for (1234, EUR), '1234' for (1234, JPY), '-0.05' for (-5, EUR)."""
    return str(minor_to_major(amount_minor, currency))
