"""Efficiency-mode savings: the PostgreSQL sum and the row-by-row reference agree, and
both equal the rule computed here with exact fractions."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest
from django.db import connection

from inference.models import ModelFamily
from inference.selectors import _efficiency_savings_python, _efficiency_savings_sql, savings_for_period
from tenants.scope import tenant_scope


def _round_half_even(value: Fraction) -> int:
    floor = value.numerator // value.denominator
    rest = value - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2):
        return floor + 1
    return floor


@pytest.mark.django_db
def test_sql_and_python_savings_equal_the_rule_on_edge_cases(make_tenant, make_variant, add_usage):
    if connection.vendor != "postgresql":
        pytest.skip("the SQL form is PostgreSQL's")
    tenant = make_tenant()
    default = make_variant(name="base", energy_per_1k_uj=9_000_000, make_default=True)
    cheap = make_variant(name="cheap", energy_per_1k_uj=2_000_001)
    costly = make_variant(name="costly", energy_per_1k_uj=9_500_003)  # more than the default: a negative delta
    orphan = make_variant(family="no-default", name="solo", energy_per_1k_uj=1_000)
    ModelFamily.objects.filter(name="no-default").update(default_variant=None)
    # Exact halves: 1,000 J-per-1k apart x 1,000 predictions = 1e6 uJ; at 1.8 g/kWh that is 0.5 ug
    # (rounds to 0, even), 3,000 predictions give 1.5 ug (rounds to 2), 5,000 give 2.5 (2).
    make_variant(family="halves", name="h-base", energy_per_1k_uj=1_000_000, make_default=True)
    half_cheap = make_variant(family="halves", name="h-cheap", energy_per_1k_uj=0)
    hour = datetime(2026, 11, 1, tzinfo=UTC)
    efficiency_rows = [(cheap, 1_234_567, "187.125"), (cheap, 1, "0.001"), (costly, 777, "333.333"),
                       (default, 5_000, "250"), (orphan, 99, "100"), (cheap, 3, "199.999")]
    efficiency_rows += [(half_cheap, n, "1.800") for n in (1_000, 3_000, 5_000, 7_000)]
    for i, (variant, predictions, intensity) in enumerate(efficiency_rows):
        add_usage(tenant, variant, hour.replace(day=1 + i // 24, hour=i % 24), mode="efficiency",
                  predictions=predictions, intensity=intensity)
    add_usage(tenant, cheap, hour.replace(hour=20), mode="standard", predictions=10_000)  # not efficiency mode
    other = make_tenant()
    add_usage(other, cheap, hour, mode="efficiency", predictions=50_000)  # another tenant's
    end = datetime(2026, 12, 1, tzinfo=UTC)

    defaults = {cheap.id: 9_000_000, costly.id: 9_000_000, half_cheap.id: 1_000_000}
    expected = [0, 0, 0]
    for variant, predictions, intensity in efficiency_rows:
        if variant.id not in defaults:  # the default itself, or a family without one
            continue
        delta_uj = (defaults[variant.id] - variant.energy_per_1k_uj) * predictions // 1000
        expected[0] += predictions
        expected[1] += delta_uj
        expected[2] += _round_half_even(Fraction(delta_uj) * Fraction(intensity) / 3_600_000)
    with tenant_scope(tenant.id):
        sql = _efficiency_savings_sql(tenant=tenant, start=hour, end=end)
        python = _efficiency_savings_python(tenant=tenant, start=hour, end=end)
        savings = savings_for_period(tenant=tenant, start=hour, end=end)
    assert sql == python == tuple(expected)
    assert (savings.efficiency_predictions, savings.efficiency_mode_energy_uj,
            savings.efficiency_mode_co2e_ug) == tuple(expected)
    assert expected[1] < 0 or expected[2] > 0  # the rows above do save something


@pytest.mark.django_db
def test_no_efficiency_usage_saves_nothing(make_tenant, make_variant):
    tenant = make_tenant()
    make_variant(name="base", make_default=True)
    with tenant_scope(tenant.id):
        savings = savings_for_period(tenant=tenant, start=datetime(2026, 1, 1, tzinfo=UTC),
                                     end=datetime(2027, 1, 1, tzinfo=UTC))
    assert (savings.efficiency_predictions, savings.efficiency_mode_energy_uj, savings.efficiency_mode_co2e_ug,
            savings.green_jobs, savings.green_scheduling_co2e_ug) == (0, 0, 0, 0, 0)
