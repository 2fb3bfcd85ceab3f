from __future__ import annotations

import csv
import io
from decimal import Decimal
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.django_db

H = timedelta(hours=1)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def usage(make_tenant, make_variant, add_usage):
    tenant, other = make_tenant(), make_tenant()
    base = make_variant(name="baseline")
    small = make_variant(name="small", technique="distilled")
    add_usage(tenant, base, NOV, predictions=1000, energy_uj=3_600_000, co2e_ug=200_000, embodied_co2e_ug=10_000)
    add_usage(tenant, small, NOV + H, mode="efficiency", predictions=500, energy_uj=900_000, co2e_ug=50_000,
              embodied_co2e_ug=5_000)
    add_usage(tenant, base, NOV + 30 * 24 * H, predictions=7, energy_uj=70, co2e_ug=7)  # December: outside
    add_usage(other, base, NOV, predictions=999_999, energy_uj=1, co2e_ug=1)
    return tenant, other


def test_usage_totals_and_sci(usage, api_client_for):
    tenant, _ = usage
    client = api_client_for(tenant, scopes=["usage"])
    body = client.get("/v1/usage", {"start": "2026-11-01", "end": "2026-12-01", "granularity": "month"}).json()
    totals = body["totals"]
    assert totals["predictions"] == 1500
    assert totals["energy_uj"] == 4_500_000
    assert totals["energy_kwh"] == "0.000001250000"  # 4.5e6 uJ / 3.6e12 uJ per kWh
    assert totals["co2e_ug"] == 250_000
    assert totals["co2e_g"] == "0.265000"
    # SCI = (250,000 + 15,000) ug / 1,500 predictions
    assert totals["sci_ug_per_prediction"] == "176.667"
    assert [r["period"] for r in body["rows"]] == ["2026-11-01T00:00:00Z"]


def test_usage_grouped_by_model_and_mode_per_hour(usage, api_client_for):
    tenant, _ = usage
    client = api_client_for(tenant)
    body = client.get("/v1/usage", {"start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z",
                                    "granularity": "hour", "group_by": "model,mode"}).json()
    assert [(r["period"], r["variant"], r["mode"], r["predictions"]) for r in body["rows"]] == [
        ("2026-11-01T00:00:00Z", "baseline", "standard", 1000),
        ("2026-11-01T01:00:00Z", "small", "efficiency", 500),
    ]


def test_usage_as_csv(usage, api_client_for):
    tenant, _ = usage
    client = api_client_for(tenant)
    response = client.get("/v1/usage?start=2026-11-01&end=2026-12-01&granularity=day&group_by=mode",
                          HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["period"], r["mode"], r["predictions"]) for r in rows] == [
        ("2026-11-01T00:00:00Z", "efficiency", "500"), ("2026-11-01T00:00:00Z", "standard", "1000")]


def test_other_tenants_usage_is_invisible(usage, api_client_for):
    _, other = usage
    client = api_client_for(other)
    body = client.get("/v1/usage", {"start": "2026-11-01", "end": "2026-12-01"}).json()
    assert body["totals"]["predictions"] == 999_999


@pytest.mark.parametrize("params, message", [
    ({"start": "yesterday"}, "start must be an ISO 8601"),
    ({"end": "2026-13-45"}, "end must be an ISO 8601"),
    ({"start": "2026-11-02", "end": "2026-11-01"}, "start must be before end"),
    ({"granularity": "week"}, "granularity"),
    ({"group_by": "colour"}, "group_by"),
    ({"start": "2026-01-01", "end": "2026-12-01", "granularity": "hour"}, "93 days"),
    ({"start": "2026-11-01T00:00:00"}, "time zone"),
])
def test_bad_usage_queries_are_400(usage, api_client_for, params, message):
    tenant, _ = usage
    response = api_client_for(tenant).get("/v1/usage", params)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_query"
    assert message in response.json()["detail"]


def test_usage_needs_usage_scope(usage, api_client_for):
    tenant, _ = usage
    assert api_client_for(tenant, scopes=["predict"]).get("/v1/usage").status_code == 403


def test_efficiency_savings_against_the_family_default(make_tenant, make_variant, add_usage):
    from carbon import units
    from inference.selectors import savings_for_period
    from tenants.scope import tenant_scope

    tenant = make_tenant()
    default = make_variant(family="fam", name="big", energy_per_1k_uj=5_000_000)
    small = make_variant(family="fam", name="small", technique="distilled", energy_per_1k_uj=1_234_567)
    add_usage(tenant, small, NOV, mode="efficiency", predictions=777, intensity="123.456")
    add_usage(tenant, default, NOV + H, mode="efficiency", predictions=5)  # default served: nothing avoided
    add_usage(tenant, small, NOV + 2 * H, mode="standard", predictions=1000)  # not efficiency mode
    with tenant_scope(tenant.id):
        savings = savings_for_period(tenant=tenant, start=NOV, end=NOV + 30 * 24 * H)
    delta_uj = (5_000_000 - 1_234_567) * 777 // 1000
    assert default.version.family.default_variant_id == default.id
    assert (savings.efficiency_predictions, savings.efficiency_mode_energy_uj) == (777, delta_uj)
    assert savings.efficiency_mode_co2e_ug == units.co2e_ug(energy_uj=delta_uj, g_per_kwh=Decimal("123.456"))
    assert (savings.green_scheduling_co2e_ug, savings.green_jobs) == (0, 0)
