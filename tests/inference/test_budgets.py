"""Energy budgets: 80%/100% events, 429 enforcement until a recorded sign-off."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from inference.budgets import budgets_evaluate
from inference.metering import usage_flush
from inference.models import BudgetEvent, BudgetSignOff, EnergyBudget
from tenants.models import AuditEvent
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db
ROW = [float(i % 17) for i in range(64)]
KWH = 3_600_000_000_000  # uJ


def this_hour():
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def events(tenant):
    with tenant_scope(tenant.id):
        return sorted(BudgetEvent.objects.values_list("threshold_pct", "usage_uj"))


def test_thresholds_raise_one_event_each(make_tenant, make_variant, add_usage, api_client_for):
    tenant = make_tenant()
    variant = make_variant()
    client = api_client_for(tenant)
    response = client.post("/v1/budgets", {"monthly_limit_kwh": "0.001"}, format="json")  # 3.6e9 uJ
    assert response.status_code == 200, response.content
    add_usage(tenant, variant, this_hour(), energy_uj=2_000_000_000)  # 55%
    assert budgets_evaluate(tenant_ids=[tenant.id]) == 0
    add_usage(tenant, variant, this_hour().replace(year=2020), energy_uj=9 * KWH)  # another month: ignored
    add_usage(tenant, variant, this_hour(), mode="efficiency",
              energy_uj=1_000_000_000)  # 83%
    assert budgets_evaluate(tenant_ids=[tenant.id]) == 1
    assert events(tenant) == [(80, 3_000_000_000)]
    assert budgets_evaluate(tenant_ids=[tenant.id]) == 0  # once per threshold
    add_usage(tenant, variant, this_hour(), mode="accurate", energy_uj=600_000_000)  # 100%
    assert budgets_evaluate(tenant_ids=[tenant.id]) == 1
    assert events(tenant) == [(80, 3_000_000_000), (100, 3_600_000_000)]
    body = client.get("/v1/budgets").json()[0]
    assert (body["used_kwh"], body["exceeded"], body["used_fraction"]) == ("0.001000000", True, 1.0)
    assert [e["threshold_pct"] for e in body["events"]] == [100, 80]


def test_enforced_budget_blocks_predictions_until_sign_off(digits_family, make_tenant, api_client_for):
    tenant = make_tenant()
    client = api_client_for(tenant)
    budget = client.post("/v1/budgets", {"monthly_limit_kwh": "0.000000001", "enforce": True},  # 3.6 mJ
                         format="json").json()
    predict = lambda: client.generic("POST", "/v1/models/digits-classifier/predict",  # noqa: E731
                                     json.dumps({"inputs": [ROW]}), content_type="application/json")
    assert predict().status_code == 200  # under the limit: served and metered
    usage_flush()  # the flush evaluates budgets: one request uses far more than 3.6 mJ
    assert events(tenant)[-1][0] == 100
    blocked = predict()
    assert blocked.status_code == 429
    assert blocked.json()["code"] == "energy_budget_exceeded"
    assert "sign off" in blocked.json()["detail"]

    too_low = client.post(f"/v1/budgets/{budget['id']}/sign-off", {"reason": "launch week", "new_limit_kwh": "0.000000001"},
                          format="json")
    assert too_low.status_code == 400
    no_reason = client.post(f"/v1/budgets/{budget['id']}/sign-off", {"reason": " ", "new_limit_kwh": "1"},
                            format="json")
    assert no_reason.status_code == 400
    signed = client.post(f"/v1/budgets/{budget['id']}/sign-off", {"reason": "launch week", "new_limit_kwh": "1"},
                         format="json")
    assert signed.status_code == 200, signed.content
    assert signed.json()["exceeded"] is False
    assert predict().status_code == 200
    with tenant_scope(tenant.id):
        [sign_off] = BudgetSignOff.objects.all()
        assert (sign_off.reason, sign_off.new_limit_uj) == ("launch week", 1 * KWH)
        assert sign_off.signed_by == f"api:{client.api_key.prefix}"
        assert AuditEvent.objects.filter(action="budget.sign_off").count() == 1


def test_budget_routes_are_tenant_isolated(make_tenant, api_client_for):
    a, b = make_tenant(), make_tenant()
    budget = api_client_for(a).post("/v1/budgets", {"monthly_limit_kwh": "1"}, format="json").json()
    client_b = api_client_for(b)
    assert client_b.get("/v1/budgets").json() == []
    response = client_b.post(f"/v1/budgets/{budget['id']}/sign-off", {"reason": "x", "new_limit_kwh": "5"},
                             format="json")
    assert response.status_code == 404
    with tenant_scope(a.id):
        assert EnergyBudget.objects.get().monthly_limit_uj == KWH
        assert BudgetSignOff.objects.count() == 0


def test_bad_budget_input(make_tenant, api_client_for):
    client = api_client_for(make_tenant())
    assert client.post("/v1/budgets", {"monthly_limit_kwh": "0"}, format="json").status_code == 400
    unknown = client.post("/v1/budgets", {"monthly_limit_kwh": "1", "family": "nope"}, format="json")
    assert unknown.status_code == 400 and unknown.json()["code"] == "unknown_model"
    assert api_client_for(make_tenant(), scopes=["predict"]).get("/v1/budgets").status_code == 403


def test_month_boundary(make_tenant, make_variant, add_usage, api_client_for):
    tenant = make_tenant()
    variant = make_variant()
    api_client_for(tenant).post("/v1/budgets", {"monthly_limit_kwh": "0.001"}, format="json")
    add_usage(tenant, variant, datetime(2026, 10, 31, 23, tzinfo=UTC), energy_uj=3_600_000_000)
    assert budgets_evaluate(tenant_ids=[tenant.id], now=datetime(2026, 11, 1, 0, 30, tzinfo=UTC)) == 0
    assert budgets_evaluate(tenant_ids=[tenant.id], now=datetime(2026, 10, 31, 23, 30, tzinfo=UTC)) == 2
