"""Invoice PDFs: the figures of the invoice rows, for the tenant only, through the API and the portal."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.test import Client

from billing.periods import Period
from billing.services import invoice_create_for_period
from reports.sla import sla_evaluate_period
from tenants.scope import tenant_scope
from tests.reports.conftest import NOW, pdf_attachment, pdf_pages, pdf_text, sha256

pytestmark = pytest.mark.django_db
NOV = Period.parse("2025-11")


@pytest.fixture
def breached_invoice(prices, old_tenant, make_variant, add_usage, make_terms):
    """November 2025: 10,000 standard predictions 10 % over an energy SLA -> a credit line."""
    tenant = old_tenant(name="Acme Analytics")
    variant = make_variant(family="family-a", name="a-base")
    make_terms(tenant, variant, target=1_000_000)
    add_usage(tenant, variant, datetime(2025, 11, 10, tzinfo=UTC), predictions=10_000, energy_uj=11_000_000,
              co2e_ug=2_345_678)
    invoice, _ = invoice_create_for_period(tenant=tenant, period=NOV)
    sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)
    return tenant, invoice


def test_the_api_returns_the_invoice_as_pdf(breached_invoice, api_client_for):
    tenant, invoice = breached_invoice
    response = api_client_for(tenant).get(f"/v1/invoices/{invoice.id}/pdf")
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "application/pdf"
    assert f'filename="greentier-invoice-2025-11-{tenant.slug}.pdf"' in response["Content-Disposition"]
    content = response.content
    assert content.startswith(b"%PDF-") and pdf_pages(content) == 1
    text = " ".join(pdf_text(content).split())
    with tenant_scope(tenant.id):
        lines = list(invoice.lines.order_by("position"))
    assert [line.kind for line in lines] == ["base_fee", "predictions", "sla_credit"]
    total = sum(line.amount_minor for line in lines)
    assert total == invoice.total_minor
    assert "Invoice November 2025" in text and "Acme Analytics" in text and f"Invoice {invoice.id}" in text
    assert f"EUR {total // 100}.{total % 100:02d}" in text  # the total, from the rows
    for line in lines:
        sign = "-" if line.amount_minor < 0 else ""
        assert f"EUR {sign}{abs(line.amount_minor) // 100}.{abs(line.amount_minor) % 100:02d}" in text
        assert " ".join(line.description.split()) in text
    assert "10,000" in text  # the predictions line's quantity
    inputs = pdf_attachment(content)
    assert sha256(inputs) == response["X-Report-Fingerprint"]
    assert json.loads(inputs)["invoice"]["total_minor"] == invoice.total_minor
    again = api_client_for(tenant).get(f"/v1/invoices/{invoice.id}/pdf")
    assert again.content == content  # drawn from the rows only: byte-identical


def test_another_tenants_invoice_is_a_404(breached_invoice, old_tenant, api_client_for):
    tenant, invoice = breached_invoice
    other = api_client_for(old_tenant())
    assert other.get(f"/v1/invoices/{invoice.id}/pdf").status_code == 404
    assert other.get(f"/v1/invoices/{invoice.id}/pdf").json()["code"] == "not_found"
    owner = api_client_for(tenant)
    assert owner.get(f"/v1/invoices/{invoice.id + 1000}/pdf").status_code == 404
    assert owner.get(f"/v1/invoices/{2**63}/pdf").status_code == 404
    assert api_client_for(tenant, scopes=["predict"]).get(f"/v1/invoices/{invoice.id}/pdf").status_code == 403


def test_the_portal_links_and_serves_the_pdf(breached_invoice, old_tenant):
    from django.contrib.auth import get_user_model

    from tenants.services import membership_set

    tenant, invoice = breached_invoice
    user = get_user_model().objects.create_user(username="finance", password="x" * 20)
    membership_set(tenant=tenant, user=user, role="viewer")  # viewers may download what they may read
    client = Client()
    client.force_login(user)
    page = client.get(f"/portal/t/{tenant.slug}/invoices/{invoice.id}/")
    pdf_url = f"/portal/t/{tenant.slug}/invoices/{invoice.id}.pdf"
    assert page.status_code == 200 and pdf_url in page.content.decode()
    response = client.get(pdf_url)
    assert response.status_code == 200 and response.content.startswith(b"%PDF-")
    other = old_tenant()
    membership_set(tenant=other, user=user, role="admin")
    assert client.get(f"/portal/t/{other.slug}/invoices/{invoice.id}.pdf").status_code == 404

