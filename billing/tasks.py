"""Celery tasks: the monthly run (beat, 1st of the month), retries, webhook processing.

Every task takes ids or labels, calls one service and is safe to run twice (acks_late:
a task killed with its worker is delivered again).
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from billing.periods import Period
from billing.selectors import tenant_ids_with_drafts, tenants_billable_for_period
from billing.services import InvoiceSyncError, invoice_bill_tenant, invoice_push_drafts
from billing.webhooks import stripe_event_process
from tenants.models import Tenant

# Backoff for Stripe outages: 1, 2, 4 ... 60 minutes, 8 tries (about 4 hours); after
# that the hourly billing.invoice_retry_drafts keeps trying.
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 3600


def _same_queue(task) -> str | None:
    """Fan out to the queue this task came from (beat's default queue in production)."""
    return (task.request.delivery_info or {}).get("routing_key") or None


@shared_task(name="billing.invoice_run_monthly", bind=True)
def invoice_run_monthly(self, period: str | None = None) -> dict:
    """Bill the month that just ended (or `period`, "2026-11"): one task per tenant."""
    month = Period.parse(period) if period else Period.previous(now=timezone.now())
    month.ensure_ended(now=timezone.now())
    tenant_ids = [tenant.id for tenant in tenants_billable_for_period(period=month)]
    queue = _same_queue(self)
    for tenant_id in tenant_ids:
        invoice_bill_tenant_task.apply_async(kwargs={"tenant_id": tenant_id, "period": month.label}, queue=queue)
    return {"period": month.label, "tenants": len(tenant_ids)}


@shared_task(name="billing.invoice_bill_tenant", bind=True, max_retries=8)
def invoice_bill_tenant_task(self, tenant_id: int, period: str) -> dict:
    tenant = Tenant.objects.get(id=tenant_id)
    try:
        return invoice_bill_tenant(tenant=tenant, period=Period.parse(period)).as_dict()
    except InvoiceSyncError as exc:
        if not exc.retryable:
            raise
        countdown = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** self.request.retries)
        raise self.retry(exc=exc, countdown=countdown, queue=_same_queue(self)) from None


@shared_task(name="billing.invoice_retry_drafts", bind=True)
def invoice_retry_drafts(self) -> dict:
    """Hourly: push invoices left as draft by a Stripe outage or a killed run."""
    tenant_ids = tenant_ids_with_drafts()
    for tenant_id in tenant_ids:
        invoice_push_drafts_task.apply_async(kwargs={"tenant_id": tenant_id}, queue=_same_queue(self))
    return {"tenants": len(tenant_ids)}


@shared_task(name="billing.invoice_push_drafts")
def invoice_push_drafts_task(tenant_id: int) -> list[int]:
    tenant = Tenant.objects.get(id=tenant_id)
    return [invoice.id for invoice in invoice_push_drafts(tenant=tenant)]


@shared_task(name="billing.stripe_event_process")
def stripe_event_process_task(stripe_event_id: int) -> str:
    return stripe_event_process(stripe_event_id=stripe_event_id)
