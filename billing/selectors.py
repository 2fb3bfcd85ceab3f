"""Reads for the price book, invoices and billing accounts."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Prefetch, QuerySet

from billing.models import (
    BillingAccount,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    PriceVersion,
)
from billing.periods import Period
from tenants.models import Tenant
from tenants.scope import all_tenants_scope, tenant_scope


def price_versions_for_window(*, currency: str, start: datetime, end: datetime) -> list[PriceVersion]:
    """The version in effect at `start` (if any) and every version starting in (start, end)."""
    versions = list(PriceVersion.objects.filter(currency=currency, effective_from__lt=end).order_by("effective_from"))
    in_effect = [v for v in versions if v.effective_from <= start]
    return in_effect[-1:] + [v for v in versions if v.effective_from > start]


def tenants_billable_for_period(*, period: Period, slug: str | None = None) -> list[Tenant]:
    """Tenants that existed during the period (created before its end), by id."""
    tenants = Tenant.objects.filter(created_at__lt=period.end).order_by("id")
    if slug is not None:
        tenants = tenants.filter(slug=slug)
    return list(tenants)


def invoice_list(*, tenant: Tenant) -> QuerySet[Invoice]:
    """The tenant's invoices, newest period first. Call inside tenant_scope(tenant.id)."""
    return Invoice.objects.filter(tenant=tenant).order_by("-period_start", "-id")


def invoice_get(*, tenant: Tenant, invoice_id: int) -> Invoice:
    """The tenant's invoice with its lines. Raises Invoice.DoesNotExist for a missing id
    and, identically, for another tenant's. Call inside tenant_scope(tenant.id)."""
    if not 0 < invoice_id < 2**63:  # beyond bigint: PostgreSQL would raise, not "missing"
        raise Invoice.DoesNotExist(f"no invoice {invoice_id}")
    lines = Prefetch("lines", queryset=InvoiceLine.objects.filter(tenant=tenant).order_by("position"))
    return Invoice.objects.filter(tenant=tenant).prefetch_related(lines).get(id=invoice_id)


def invoice_for_period(*, tenant: Tenant, period: Period) -> Invoice | None:
    """The tenant's invoice for a period, or None (for reports and the portal)."""
    with tenant_scope(tenant.id):
        return Invoice.objects.filter(tenant=tenant, period_start=period.start).first()


def invoice_drafts(*, tenant: Tenant) -> list[Invoice]:
    """The tenant's invoices not yet (fully) in Stripe, oldest period first."""
    with tenant_scope(tenant.id):
        return list(Invoice.objects.filter(tenant=tenant, status=InvoiceStatus.DRAFT).order_by("period_start"))


def tenant_ids_with_drafts() -> list[int]:
    """Tenants with an invoice still waiting for Stripe (cross-tenant, for the retry job)."""
    with all_tenants_scope():
        return sorted(set(Invoice.all_tenants.filter(status=InvoiceStatus.DRAFT).values_list("tenant_id", flat=True)))


def billing_account_get(*, tenant: Tenant) -> BillingAccount | None:
    with tenant_scope(tenant.id):
        return BillingAccount.objects.filter(tenant=tenant).first()
