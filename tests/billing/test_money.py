"""billing.money: one rounding rule (half away from zero), exact inputs, currency exponents."""

from decimal import Decimal
from fractions import Fraction

import pytest

from billing.money import (
    MoneyError,
    currency_exponent,
    format_major,
    line_amount_minor,
    major_to_minor,
    minor_to_major,
    round_minor,
)


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("0.5"), 1), (Decimal("1.5"), 2), (Decimal("2.5"), 3), (Decimal("0.4999999"), 0),
    (Decimal("-0.5"), -1), (Decimal("-1.5"), -2), (Decimal("-0.4999999"), 0),
    (Fraction(1, 3), 0), (Fraction(2, 3), 1), (Fraction(-2, 3), -1), (Fraction(5, 2), 3),
    (7, 7), (-7, -7), (Decimal("1234567890123.5"), 1234567890124),
])
def test_round_minor_is_half_away_from_zero(value, expected):
    assert round_minor(value) == expected


def test_round_minor_refuses_inexact_input():
    with pytest.raises(MoneyError, match="exact"):
        round_minor(0.5)
    with pytest.raises(MoneyError, match="not finite"):
        round_minor(Decimal("NaN"))
    with pytest.raises(MoneyError, match="exact"):
        round_minor(True)


@pytest.mark.parametrize(("quantity", "price", "divisor", "expected"), [
    (1000, Decimal("0.5"), 1000, 1),  # exactly half a minor unit rounds up
    (999, Decimal("0.5"), 1000, 0),  # 0.4995
    (3000, Decimal("0.5"), 1000, 2),  # 1.5
    (1001, Decimal("80.5"), 1000, 81),  # 80.5805
    (1, Decimal("80.5"), 1000, 0),  # 0.0805
    (1_296_000, 4900, 2_592_000, 2450),  # half a 30-day month of a 49.00 fee
    (1, 100, 3, 33), (2, 100, 3, 67),  # thirds: exact Fractions, rounded once
    (1234, Decimal("20"), 100, 247),  # 20% of 12.34 = 2.468
    (1, -150, 1, -150),
])
def test_line_amount_is_exact_then_rounded_once(quantity, price, divisor, expected):
    assert line_amount_minor(quantity=quantity, unit_price_minor=price, unit_divisor=divisor) == expected


def test_line_amount_rejects_bad_divisor():
    with pytest.raises(MoneyError, match="positive integer"):
        line_amount_minor(quantity=1, unit_price_minor=1, unit_divisor=0)


@pytest.mark.parametrize(("currency", "exponent"), [("EUR", 2), ("USD", 2), ("GBP", 2), ("JPY", 0), ("KRW", 0),
                                                    ("BHD", 3)])
def test_currency_exponents(currency, exponent):
    assert currency_exponent(currency) == exponent


def test_unknown_currency_is_a_clear_error():
    with pytest.raises(MoneyError, match="unknown currency 'XXX'"):
        currency_exponent("XXX")


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("12.345", "EUR", 1235), ("12.344", "EUR", 1234), ("-0.005", "EUR", -1), ("12.5", "JPY", 13),
    ("12.4", "JPY", 12), ("1234", "JPY", 1234), ("0.0005", "BHD", 1), ("1.2345", "BHD", 1235),
])
def test_major_to_minor_rounds_per_currency(amount, currency, minor):
    assert major_to_minor(amount, currency) == minor


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (1234, "EUR", "12.34"), (5, "EUR", "0.05"), (-5, "EUR", "-0.05"), (0, "EUR", "0.00"),
    (1234, "JPY", "1234"), (1234, "BHD", "1.234"),
])
def test_format_major(minor, currency, text):
    assert format_major(minor, currency) == text
    assert minor_to_major(minor, currency) == Decimal(text)
