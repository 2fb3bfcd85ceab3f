"""GET /v1/invoices and /v1/invoices/{id}: the tenant's own invoices only."""

from datetime import UTC, datetime

import pytest

from billing.models import Invoice
from billing.periods import Period
from billing.services import invoice_create_for_period
from tenants.scope import tenant_scope
from tenants.services import tenant_change_tier

pytestmark = pytest.mark.django_db
NOV = Period.parse("2026-11")


@pytest.fixture
def invoice(prices, billing_tenant, variant, add_usage):
    tenant = billing_tenant()
    add_usage(tenant, variant, datetime(2026, 11, 20, tzinfo=UTC), mode="accurate", predictions=1_001,
              energy_uj=7_200_000_000_000, co2e_ug=1_500_000, embodied_co2e_ug=250_000)
    tenant_change_tier(tenant=tenant, tier="green", changed_by="test", at=datetime(2026, 11, 16, tzinfo=UTC))
    invoice, _ = invoice_create_for_period(tenant=tenant, period=NOV)
    return invoice


def test_detail_shows_lines_totals_status_energy_and_co2e(invoice, api_client_for):
    client = api_client_for(invoice.tenant, scopes=["usage"])
    response = client.get(f"/v1/invoices/{invoice.id}")
    assert response.status_code == 200
    body = response.json()
    lines = body.pop("lines")
    assert body == {
        "id": invoice.id, "period": "2026-11", "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2026-12-01T00:00:00Z", "currency": "EUR", "status": "draft",
        "total_minor": 2450 + 4950 + 81 + 16, "total": "74.97",
        "energy_uj": 7_200_000_000_000, "energy_kwh": "2", "co2e_ug": 1_750_000, "co2e_g": "1.75",
        "stripe_invoice_id": None, "created_at": body["created_at"], "paid_at": None,
    }
    fields = ("position", "kind", "mode", "tier", "quantity", "unit_price_minor", "unit_divisor", "amount_minor",
              "amount", "energy_uj", "co2e_ug", "span_start", "span_end")
    assert [tuple(line[f] for f in fields)
            for line in lines] == [
        (1, "base_fee", "", "standard", "1296000", "4900", 2592000, 2450, "24.50", 0, 0,
         "2026-11-01T00:00:00Z", "2026-11-16T00:00:00Z"),
        (2, "base_fee", "", "green", "1296000", "9900", 2592000, 4950, "49.50", 0, 0,
         "2026-11-16T00:00:00Z", "2026-12-01T00:00:00Z"),
        (3, "predictions", "accurate", "green", "1001", "80.5", 1000, 81, "0.81", 7_200_000_000_000, 1_750_000,
         "2026-11-16T00:00:00Z", "2026-12-01T00:00:00Z"),
        (4, "green_premium", "", "green", "81", "20", 100, 16, "0.16", 0, 0,
         "2026-11-16T00:00:00Z", "2026-12-01T00:00:00Z"),
    ]
    assert lines[2]["description"] == "Accurate-mode predictions (per 1,000)"


def test_list_shows_only_the_tenants_invoices(invoice, prices, billing_tenant, api_client_for):
    other = billing_tenant()
    invoice_create_for_period(tenant=other, period=NOV)
    response = api_client_for(invoice.tenant, scopes=["usage"]).get("/v1/invoices")
    assert response.status_code == 200
    assert [(i["id"], i["total_minor"], i["status"]) for i in response.json()] == [(invoice.id, 7497, "draft")]
    assert "lines" not in response.json()[0]


def test_another_tenants_invoice_is_404_like_a_missing_one_and_nothing_changes(invoice, billing_tenant,
                                                                             api_client_for):
    intruder = api_client_for(billing_tenant(), scopes=["usage"])
    foreign = intruder.get(f"/v1/invoices/{invoice.id}")
    missing = intruder.get("/v1/invoices/987654321")
    huge = intruder.get(f"/v1/invoices/{2**70}")
    assert foreign.status_code == missing.status_code == huge.status_code == 404
    assert foreign.json() == missing.json() == huge.json() == {"code": "not_found", "detail": "No such invoice."}
    assert intruder.delete(f"/v1/invoices/{invoice.id}").status_code == 405
    with tenant_scope(invoice.tenant_id):
        fresh = Invoice.objects.get(id=invoice.id)
    assert (fresh.status, fresh.total_minor, fresh.updated_at) == (invoice.status, invoice.total_minor,
                                                                   invoice.updated_at)


def test_invoices_need_the_usage_scope_and_a_key(invoice, api_client_for):
    from rest_framework.test import APIClient

    response = api_client_for(invoice.tenant, scopes=["predict"]).get("/v1/invoices")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    response = APIClient().get(f"/v1/invoices/{invoice.id}")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
