"""The monthly run on a real Celery worker killed mid-run, and real webhook delivery from
localstripe to the live server."""

import time
from datetime import UTC, datetime

import pytest

from billing.models import (
    BillingAccount,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    StripeEvent,
)
from billing.money import line_amount_minor
from billing.periods import Period
from billing.services import invoice_bill_tenant
from billing.tasks import invoice_run_monthly
from tenants.scope import all_tenants_scope, tenant_scope

NOV = Period.parse("2026-11")
TENANTS = 50  # the 50-tenant run; about 0.1 s of Stripe calls each: the kill lands a few tenants in


def wait_for(condition, *, timeout: float, what: str, interval: float = 0.05, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    tail = "" if log is None else "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{tail}")


def billed() -> dict[int, str]:
    with all_tenants_scope():
        return dict(Invoice.all_tenants.filter(period_start=NOV.start).values_list("tenant_id", "status"))


@pytest.mark.slow
def test_worker_sigkilled_mid_run_then_rerun_bills_every_tenant_exactly_once(
        localstripe, celery_worker, prices, billing_tenant, variant, add_usage, ready_account):
    tenants = [billing_tenant(currency="JPY" if n % 4 == 0 else "EUR") for n in range(TENANTS)]
    for n, tenant in enumerate(tenants):
        add_usage(tenant, variant, datetime(2026, 11, 1 + n % 30, n // 30, tzinfo=UTC), predictions=1_000 * (n + 1))
        ready_account(tenant)

    invoice_run_monthly.apply_async(kwargs={"period": NOV.label}, queue=celery_worker.queue)
    wait_for(lambda: sum(s != InvoiceStatus.DRAFT for s in billed().values()) >= 3, timeout=120,
             what="the first invoices to reach Stripe", log=celery_worker.log_path)
    celery_worker.kill()
    at_kill = billed()
    assert 3 <= sum(s != InvoiceStatus.DRAFT for s in at_kill.values()) < TENANTS, at_kill

    celery_worker.start()
    invoice_run_monthly.apply_async(kwargs={"period": NOV.label}, queue=celery_worker.queue)
    wait_for(lambda: len(billed()) == TENANTS and InvoiceStatus.DRAFT not in billed().values(), timeout=240,
             what="every tenant's invoice to be paid", interval=0.2, log=celery_worker.log_path)

    assert sorted(billed()) == sorted(t.id for t in tenants)
    for n, tenant in enumerate(tenants):
        with tenant_scope(tenant.id):
            invoice = Invoice.objects.get()
            items = list(InvoiceLine.objects.filter(invoice=invoice).values_list("stripe_invoice_item_id", flat=True))
            customer_id = BillingAccount.objects.get().stripe_customer_id
        price = prices[tenant.currency]
        expected = price.base_fee_standard_minor + line_amount_minor(
            quantity=1_000 * (n + 1), unit_price_minor=price.standard_per_1k_minor, unit_divisor=1000)
        assert (invoice.status, invoice.total_minor) == (InvoiceStatus.PAID, expected)
        remote = localstripe.our_invoices(customer_id, invoice.id)
        assert [(r["id"], r["status"], r["subtotal"]) for r in remote] == [
            (invoice.stripe_invoice_id, "paid", expected)]
        assert len(items) == len(set(items)) == 2 and all(items)


@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_signed_events_to_the_live_server(live_server, localstripe, prices, billing_tenant,
                                                               ready_account):
    localstripe.webhooks_to(f"{live_server.url}/v1/stripe/webhook")
    try:
        tenant = billing_tenant()
        account = ready_account(tenant)  # adding the card updates the customer: customer.updated
        assert account.has_payment_method is False
        result = invoice_bill_tenant(tenant=tenant, period=NOV)  # pays: invoice.payment_succeeded
        with tenant_scope(tenant.id):
            stripe_invoice_id = Invoice.objects.get().stripe_invoice_id

        def delivered():
            events = {e.type: e for e in StripeEvent.objects.filter(processed_at__isnull=False)
                      if e.payload["data"]["object"].get("id") in (account.stripe_customer_id, stripe_invoice_id)}
            return events if {"customer.updated", "invoice.payment_succeeded"} <= set(events) else None

        events = wait_for(delivered, timeout=20, what="localstripe's webhooks", interval=0.2)
    finally:
        localstripe.webhooks_to(None)
    assert result.status == InvoiceStatus.PAID
    assert events["customer.updated"].outcome == f"billing account {account.id}: customer data updated"
    assert events["invoice.payment_succeeded"].outcome == (
        f"invoice {result.invoice_id}: stays paid (paid from an older or final-state event is ignored)")
    with tenant_scope(tenant.id):
        assert BillingAccount.objects.get().has_payment_method is True
    assert StripeEvent.objects.values("event_id").distinct().count() == StripeEvent.objects.count()
