"""Staff edit the price book in the admin; versions already used on invoices stay as they were."""

from decimal import Decimal

import pytest

from billing.models import PriceVersion
from billing.periods import Period
from billing.services import invoice_create_for_period

pytestmark = pytest.mark.django_db
NOV = Period.parse("2026-11")
FORM = {"currency": "EUR", "effective_from_0": "2026-12-01", "effective_from_1": "00:00:00", "note": "winter",
        "base_fee_standard_minor": "5900", "base_fee_green_minor": "10900", "standard_per_1k_minor": "55",
        "efficiency_per_1k_minor": "33", "accurate_per_1k_minor": "88.25", "batch_per_1k_minor": "22",
        "green_premium_percent": "20"}


def test_staff_add_a_price_version_and_cannot_edit_one_used_on_invoices(admin_client, prices, billing_tenant):
    invoice, _ = invoice_create_for_period(tenant=billing_tenant(), period=NOV)
    for page in ("priceversion", "invoice", "billingaccount", "stripeevent"):
        assert admin_client.get(f"/admin/billing/{page}/").status_code == 200
    page = admin_client.get(f"/admin/billing/invoice/{invoice.id}/change/")
    assert page.status_code == 200
    assert b"Base fee, standard tier (30 of 30 days)" in page.content

    response = admin_client.post("/admin/billing/priceversion/add/", FORM)
    assert response.status_code == 302
    added = PriceVersion.objects.get(note="winter")
    assert (added.base_fee_standard_minor, added.accurate_per_1k_minor) == (5900, Decimal("88.25"))

    used = prices["EUR"]
    response = admin_client.post(f"/admin/billing/priceversion/{used.id}/change/",
                                 FORM | {"base_fee_standard_minor": "1"})
    assert response.status_code == 403
    used.refresh_from_db()
    assert used.base_fee_standard_minor == 4900

    response = admin_client.post(f"/admin/billing/priceversion/{added.id}/change/",
                                 FORM | {"base_fee_standard_minor": "6100"})
    assert response.status_code == 302
    added.refresh_from_db()
    assert added.base_fee_standard_minor == 6100


def test_unknown_currency_is_refused_in_the_admin(admin_client):
    response = admin_client.post("/admin/billing/priceversion/add/", FORM | {"currency": "XYZ"})
    assert response.status_code == 200
    assert b"unknown currency" in response.content
    assert PriceVersion.objects.count() == 0


def test_billing_openapi_schema_is_valid_and_warning_free():
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.validation import validate_schema

    GENERATOR_STATS.reset()
    schema = SchemaGenerator(patterns=[path("v1/", include("billing.urls"))]).get_schema(request=None, public=True)
    validate_schema(schema)
    assert dict(GENERATOR_STATS._warn_cache) == {} and dict(GENERATOR_STATS._error_cache) == {}
    assert sorted(schema["paths"]) == ["/v1/invoices", "/v1/invoices/{invoice_id}"]  # the webhook is Stripe's, not ours
