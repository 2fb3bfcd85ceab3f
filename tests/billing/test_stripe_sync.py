"""Pushing invoices to Stripe (localstripe): exactly once, resumable from any crash, outages."""

import socket
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing import stripe_gateway
from billing.models import BillingAccount, Invoice, InvoiceLine, InvoiceStatus
from billing.periods import Period
from billing.services import InvoiceSyncError, billing_account_sync, invoice_bill_tenant
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db
NOV = Period.parse("2026-11")


def h(day, hour=0):
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def state(tenant):
    with tenant_scope(tenant.id):
        invoice = Invoice.objects.get()
        lines = list(InvoiceLine.objects.filter(invoice=invoice).order_by("position"))
        account = BillingAccount.objects.get()
    return invoice, lines, account


def assert_one_stripe_invoice(localstripe, tenant, *, status="paid"):
    invoice, lines, account = state(tenant)
    remote = localstripe.our_invoices(account.stripe_customer_id, invoice.id)
    assert len(remote) == 1
    assert remote[0]["id"] == invoice.stripe_invoice_id
    assert (remote[0]["status"], remote[0]["subtotal"], remote[0]["currency"]) == (status, invoice.total_minor,
                                                                                  invoice.currency.lower())
    items = [line for line in remote[0]["lines"]["data"] if line["metadata"].get("greentier_invoice_id")]
    assert sorted((i["metadata"]["greentier_line_id"], i["amount"]) for i in items) == sorted(
        (str(line.id), line.amount_minor) for line in lines)
    assert all(line.stripe_invoice_item_id for line in lines)
    customers = [c for c in localstripe.list_all("/v1/customers")
                 if c["metadata"].get("greentier_tenant_id") == str(tenant.id)]
    assert len(customers) == 1
    return invoice, remote[0]


def test_run_pushes_pays_and_a_rerun_writes_nothing(prices, billing_tenant, variant, add_usage, ready_account,
                                                    localstripe, capsys):
    a, b = billing_tenant(), billing_tenant(currency="JPY")
    add_usage(a, variant, h(3), predictions=12_345)  # 617.25 -> 617
    add_usage(b, variant, h(4), mode="accurate", predictions=3_000)  # 4.5 yen -> 5
    ready_account(a)
    ready_account(b)
    localstripe.clear_writes()

    call_command("run_invoices", "--period", "2026-11")

    assert capsys.readouterr().out.splitlines() == [
        "period 2026-11: 2 tenants; 2 invoices created, 0 already existed, 0 failed",
        "status: paid 2",
        "total EUR 55.17 over 1 invoice",
        "total JPY 5005 over 1 invoice",
    ]
    invoice_a, remote_a = assert_one_stripe_invoice(localstripe, a)
    invoice_b, _ = assert_one_stripe_invoice(localstripe, b)
    assert (invoice_a.status, invoice_a.total_minor, invoice_a.stripe_error, invoice_a.stripe_attempts) == (
        InvoiceStatus.PAID, 5517, "", 1)
    assert invoice_a.paid_at is not None
    assert (invoice_b.status, invoice_b.total_minor) == (InvoiceStatus.PAID, 5005)
    writes = localstripe.writes()
    # Every write carried an idempotency key built from our ids.
    assert writes and all((w["idempotency_key"] or "").startswith("greentier:") for w in writes)
    assert sorted(w["idempotency_key"] for w in writes if w["path"] == "/v1/invoices") == [
        f"greentier:invoice:{invoice_a.id}:create", f"greentier:invoice:{invoice_b.id}:create"]

    localstripe.clear_writes()
    call_command("run_invoices", "--period", "2026-11")
    assert capsys.readouterr().out.splitlines()[0] == (
        "period 2026-11: 2 tenants; 0 invoices created, 2 already existed, 0 failed")
    assert localstripe.writes() == []
    assert_one_stripe_invoice(localstripe, a)
    assert_one_stripe_invoice(localstripe, b)


class Crash(BaseException):
    """The process dying right after Stripe answered (nothing after it runs, like SIGKILL)."""


WRITES = ["customer_create", "subscription_create", "invoice_item_create", "invoice_create", "invoice_pay"]


@pytest.mark.parametrize("crash_after", range(8))
def test_killed_after_any_stripe_write_then_rerun_gives_one_invoice(crash_after, prices, billing_tenant, variant,
                                                                    add_usage, stripe_settings, monkeypatch):
    """Crash after the n-th Stripe write of a fresh tenant's first push (customer,
    subscription, 4 items, invoice, pay), before our database records it; then run again."""
    localstripe = stripe_settings
    tenant = billing_tenant()
    for mode in ("standard", "efficiency", "accurate"):
        add_usage(tenant, variant, h(2), mode=mode, predictions=1_000)
    calls = []
    real = {name: getattr(stripe_gateway, name) for name in WRITES}

    def crashing(name):
        def call(**kwargs):
            result = real[name](**kwargs)
            calls.append(name)
            if name == "customer_create":  # the customer adds a card right away
                localstripe.add_card(result.id)
            if len(calls) == crash_after + 1:
                raise Crash(name)
            return result
        return call

    for name in WRITES:
        monkeypatch.setattr(stripe_gateway, name, crashing(name))
    with pytest.raises(Crash):
        invoice_bill_tenant(tenant=tenant, period=NOV)
    monkeypatch.undo()

    result = invoice_bill_tenant(tenant=tenant, period=NOV)

    assert calls[crash_after] == (WRITES[:2] + ["invoice_item_create"] * 4 + WRITES[3:])[crash_after]
    assert (result.status, result.total_minor, result.created) == (InvoiceStatus.PAID, 4900 + 50 + 30 + 81, False)
    assert_one_stripe_invoice(localstripe, tenant)


def test_stripe_unreachable_keeps_a_retryable_draft_then_rerun_succeeds(prices, billing_tenant, variant, add_usage,
                                                                        ready_account, settings, localstripe):
    tenant = billing_tenant()
    add_usage(tenant, variant, h(9), predictions=1_000)
    ready_account(tenant)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{closed}"

    with pytest.raises(CommandError, match="1 of 1 tenants failed; fix the cause and run the same command again"):
        call_command("run_invoices", "--period", "2026-11")

    invoice, lines, account = state(tenant)
    assert (invoice.status, invoice.total_minor, invoice.stripe_invoice_id, invoice.stripe_attempts) == (
        InvoiceStatus.DRAFT, 4950, None, 1)
    assert invoice.stripe_error == (f"listing invoice items of Stripe customer {account.stripe_customer_id}: Stripe "
                                    "unreachable: ConnectionError: [Errno 111] Connection refused (invoice kept as "
                                    "draft; the next run retries)")
    assert [line.stripe_invoice_item_id for line in lines] == [None, None]
    with pytest.raises(InvoiceSyncError) as excinfo:
        invoice_bill_tenant(tenant=tenant, period=NOV)
    assert excinfo.value.retryable is True

    settings.STRIPE_API_BASE = localstripe.url
    call_command("run_invoices", "--period", "2026-11")

    invoice, remote = assert_one_stripe_invoice(localstripe, tenant)
    assert (invoice.status, invoice.stripe_error, invoice.stripe_attempts, remote["subtotal"]) == (
        InvoiceStatus.PAID, "", 3, 4950)


def test_stripe_refusal_is_not_retryable_and_says_why(prices, billing_tenant, stripe_settings, settings):
    tenant = billing_tenant()
    settings.STRIPE_API_KEY = "not-a-secret-key"  # localstripe answers 401
    with pytest.raises(InvoiceSyncError) as excinfo:
        invoice_bill_tenant(tenant=tenant, period=NOV)
    assert excinfo.value.retryable is False
    assert str(excinfo.value) == (f"creating the Stripe customer of tenant {tenant.slug}: Stripe refused our API key: "
                                  "Unauthorized")
    invoice, _, account = state(tenant)
    assert (invoice.status, invoice.stripe_error, account.stripe_customer_id) == (
        InvoiceStatus.DRAFT, str(excinfo.value), None)


def test_customer_name_change_is_synced_once(prices, billing_tenant, stripe_settings):
    tenant = billing_tenant(name="Acme")
    account = billing_account_sync(tenant=tenant)
    tenant.name = "Acme Renamed"
    tenant.save(update_fields=["name"])
    billing_account_sync(tenant=tenant)
    stripe_settings.clear_writes()
    billing_account_sync(tenant=tenant)  # nothing left to do
    assert stripe_settings.writes() == []
    customer = stripe_settings.get(f"/v1/customers/{account.stripe_customer_id}")
    assert (customer["name"], customer["metadata"]) == ("Acme Renamed", {
        "greentier_tenant_id": str(tenant.id), "greentier_tenant_slug": tenant.slug})
