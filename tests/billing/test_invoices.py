"""Rating from the database into frozen invoices: one per tenant and period, exact lines."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from billing.credits import (
    CreditError,
    CreditLine,
    sla_credit_provider_register,
    sla_credit_provider_unregister,
)
from billing.models import (
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    InvoiceStatusChange,
    PriceVersion,
)
from billing.periods import Period, PeriodError
from billing.rating import invoice_lines_for_period
from billing.services import invoice_create_for_period, invoice_run_for_period
from inference.selectors import usage_total
from tenants.scope import tenant_scope
from tenants.services import tenant_change_tier

pytestmark = pytest.mark.django_db
NOV = Period.parse("2026-11")


def h(day, hour=0):
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def lines_of(invoice):
    with tenant_scope(invoice.tenant_id):
        return [(line.position, line.kind, line.mode, line.tier, line.quantity, line.amount_minor, line.energy_uj,
                 line.co2e_ug)
                for line in InvoiceLine.objects.filter(invoice=invoice).order_by("position")]


def test_lines_from_the_ledger_with_a_tier_change(prices, billing_tenant, variant, make_variant, add_usage):
    tenant = billing_tenant()
    small = make_variant(name="int8", technique="int8-quantised")
    add_usage(tenant, variant, h(2), predictions=6_000, energy_uj=1_000, co2e_ug=10, embodied_co2e_ug=1)
    add_usage(tenant, small, h(2), predictions=4_000, energy_uj=500, co2e_ug=5)  # same hour, other variant: summed
    add_usage(tenant, small, h(3), mode="efficiency", predictions=9_999, energy_uj=700, co2e_ug=7)
    add_usage(tenant, variant, h(20), mode="accurate", predictions=1_001, energy_uj=900, co2e_ug=9)
    add_usage(tenant, variant, h(21), mode="efficiency", source="batch", predictions=40_000, energy_uj=4_000,
              co2e_ug=40)
    add_usage(tenant, variant, datetime(2026, 12, 1, tzinfo=UTC), predictions=99_999)  # next period: not billed
    tenant_change_tier(tenant=tenant, tier="green", changed_by="test", at=h(16))

    lines = invoice_lines_for_period(tenant=tenant, period=NOV)

    assert [(line.kind, line.mode, line.tier, line.quantity, line.amount_minor, line.energy_uj, line.co2e_ug)
            for line in lines] == [
        ("base_fee", "", "standard", Decimal(1_296_000), 2450, 0, 0),
        ("predictions", "standard", "standard", Decimal(10_000), 500, 1_500, 16),  # co2e includes embodied
        ("predictions", "efficiency", "standard", Decimal(9_999), 300, 700, 7),  # 299.97 -> 300
        ("base_fee", "", "green", Decimal(1_296_000), 4950, 0, 0),
        ("predictions", "accurate", "green", Decimal(1_001), 81, 900, 9),
        ("batch_predictions", "", "green", Decimal(40_000), 800, 4_000, 40),
        ("green_premium", "", "green", Decimal(881), 176, 0, 0),  # 20% of 881 = 176.2
    ]
    with tenant_scope(tenant.id):
        ledger = usage_total(tenant=tenant, start=NOV.start, end=NOV.end)
    assert sum(line.energy_uj for line in lines) == ledger.energy_uj == 7_100
    assert sum(line.co2e_ug for line in lines) == ledger.co2e_ug + ledger.embodied_co2e_ug == 72


def test_one_invoice_per_tenant_and_period_and_issued_amounts_never_change(prices, billing_tenant, variant,
                                                                         add_usage):
    tenant = billing_tenant()
    add_usage(tenant, variant, h(5), predictions=2_000)
    invoice, created = invoice_create_for_period(tenant=tenant, period=NOV)
    assert created is True
    assert (invoice.status, invoice.currency, invoice.total_minor, invoice.energy_uj, invoice.co2e_ug) == (
        InvoiceStatus.DRAFT, "EUR", 4900 + 100, 3_600_000, 200_000)
    before = lines_of(invoice)

    # Staff change the price book afterwards (the admin forbids editing a used version; even so):
    PriceVersion.objects.filter(id=prices["EUR"].id).update(base_fee_standard_minor=1, standard_per_1k_minor=999)
    PriceVersion.objects.create(currency="EUR", effective_from=h(15), base_fee_standard_minor=7, base_fee_green_minor=7,
                                standard_per_1k_minor=7, efficiency_per_1k_minor=7, accurate_per_1k_minor=7,
                                batch_per_1k_minor=7)
    again, created = invoice_create_for_period(tenant=tenant, period=NOV)

    assert (created, again.id, again.total_minor) == (False, invoice.id, 5000)
    assert lines_of(again) == before == [(1, "base_fee", "", "standard", Decimal(2_592_000), 4900, 0, 0),
                                         (2, "predictions", "standard", "standard", Decimal(2000), 100,
                                          3_600_000, 200_000)]
    with tenant_scope(tenant.id):
        assert Invoice.objects.count() == 1
        assert list(InvoiceStatusChange.objects.values_list("from_status", "to_status", "source")) == [
            ("", "draft", "rating")]


def test_database_refuses_a_second_invoice_for_the_same_period(prices, billing_tenant):
    tenant = billing_tenant()
    invoice, _ = invoice_create_for_period(tenant=tenant, period=NOV)
    with tenant_scope(tenant.id), pytest.raises(IntegrityError, match="invoice_one_per_tenant_period"):
        with transaction.atomic():
            Invoice.objects.create(tenant=tenant, period_start=NOV.start, period_end=NOV.end, currency="EUR",
                                   total_minor=0)
    with tenant_scope(tenant.id):
        assert list(Invoice.objects.values_list("id", flat=True)) == [invoice.id]


def test_sla_credit_hook_adds_negative_lines(prices, billing_tenant):
    tenant = billing_tenant()

    def credits(*, tenant, period):
        return [CreditLine(description="SLA credit: p95 latency", amount_minor=-245, span_start=period.start,
                           span_end=period.end, reference=f"sla:{tenant.slug}")]

    sla_credit_provider_register(credits)
    try:
        invoice, _ = invoice_create_for_period(tenant=tenant, period=NOV)
    finally:
        sla_credit_provider_unregister(credits)
    assert invoice.total_minor == 4900 - 245
    assert lines_of(invoice)[-1] == (2, "sla_credit", "", "", Decimal(1), -245, 0, 0)


def test_a_positive_credit_stops_the_invoice(prices, billing_tenant):
    tenant = billing_tenant()

    def bad(*, tenant, period):
        return [CreditLine(description="oops", amount_minor=100, span_start=period.start, span_end=period.end)]

    sla_credit_provider_register(bad)
    try:
        with pytest.raises(CreditError, match="positive"):
            invoice_create_for_period(tenant=tenant, period=NOV)
    finally:
        sla_credit_provider_unregister(bad)
    with tenant_scope(tenant.id):
        assert Invoice.objects.count() == 0


def test_missing_price_is_reported_per_tenant_and_writes_nothing(billing_tenant):
    tenant = billing_tenant(currency="GBP")
    summary = invoice_run_for_period(period=NOV, tenant_slug=tenant.slug)
    assert summary.failed == [(tenant.slug, "no GBP price in effect at 2026-11-01 00:00Z; add a price version "
                                            "starting at or before it in the admin")]
    with tenant_scope(tenant.id):
        assert Invoice.objects.count() == 0


def test_dry_run_prints_totals_and_writes_nothing(prices, billing_tenant, variant, add_usage, capsys):
    a = billing_tenant()
    billing_tenant(currency="JPY")
    billing_tenant(created_at=datetime(2026, 12, 2, tzinfo=UTC))  # did not exist in November: not billed
    add_usage(a, variant, h(5), predictions=3_000)
    call_command("run_invoices", "--period", "2026-11", "--dry-run")
    out = capsys.readouterr().out.splitlines()
    assert out == ["dry run for 2026-11: 2 tenants; would create 2 invoices, 0 already exist; 0 cannot be rated; "
                   "nothing written",
                   "total EUR 50.50 over 1 invoice",
                   "total JPY 5000 over 1 invoice"]
    assert Invoice.all_tenants.count() == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--period", "2026-13"], "no such month: 2026-13"),
    (["--period", "nov"], "period 'nov' must look like 2026-11 (year-month)"),
    (["--period", "2026-12"],
     "period 2026-12 has not ended yet (it ends 2027-01-01 00:00Z); bill a month once it is over"),
    (["--period", "2026-11", "--tenant", "nobody"], "no tenant with slug 'nobody'"),
])
def test_command_errors_are_one_clear_line(args, message):
    with pytest.raises(CommandError) as excinfo:
        call_command("run_invoices", *args)
    assert str(excinfo.value) == message


def test_periods():
    assert (NOV.start, NOV.end, NOV.seconds) == (h(1), datetime(2026, 12, 1, tzinfo=UTC), 2_592_000)
    assert Period.parse("2026-12").end == datetime(2027, 1, 1, tzinfo=UTC)
    assert Period.previous(now=datetime(2027, 1, 1, 2, tzinfo=UTC)).label == "2026-12"
    assert Period.previous(now=datetime(2026, 12, 1, tzinfo=UTC)).label == "2026-11"
    with pytest.raises(PeriodError):
        NOV.ensure_ended(now=datetime(2026, 11, 30, 23, 59, tzinfo=UTC))
