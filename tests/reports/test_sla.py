"""Energy SLAs: the met/breached rule at its boundaries, evaluation from the ledger, and
credits reaching the right invoice exactly once."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from billing.models import Invoice, InvoiceLine
from billing.periods import Period
from billing.rating import invoice_lines_for_period
from billing.services import invoice_create_for_period, invoice_run_for_period
from reports.models import SlaEvaluation, SlaTerms
from reports.sla import (
    SlaError,
    sla_credit_minor,
    sla_energy_outcome,
    sla_evaluate_period,
    sla_terms_create,
)
from tenants.scope import all_tenants_scope, tenant_scope
from tenants.services import tenant_change_tier
from tests.reports.conftest import NOW

pytestmark = pytest.mark.django_db
OCT, NOV = Period.parse("2025-10"), Period.parse("2025-11")


def h(day, hour=0, month=11):
    return datetime(2025, month, day, hour, tzinfo=UTC)


@pytest.mark.parametrize(("energy_uj", "predictions", "outcome", "band", "credit", "margin"), [
    (999, 1000, "met", "", "0", "-0.10"),
    (1000, 1000, "met", "", "0", "0.00"),  # exactly at the target is met
    (1001, 1000, "breached", "minor", "10", "0.10"),
    (1200, 1000, "breached", "minor", "10", "20.00"),  # exactly 20 % over is still the minor band
    (1201, 1000, "breached", "major", "25", "20.10"),
    # 1,200.0001 uJ per 1,000: displayed as 1,200 but exactly above the limit, so major
    (12_000_001, 10_000_000, "breached", "major", "25", "20.00"),
    (0, 0, "no_usage", "", "0", None),
])
def test_energy_outcome_boundaries(energy_uj, predictions, outcome, band, credit, margin):
    result = sla_energy_outcome(target_energy_per_1k_uj=1000, energy_uj=energy_uj, predictions=predictions,
                                minor_breach_limit_percent=Decimal("20"), minor_credit_percent=Decimal("10"),
                                major_credit_percent=Decimal("25"))
    assert (result.outcome, result.band, result.credit_percent) == (outcome, band, Decimal(credit))
    assert result.margin_percent == (None if margin is None else Decimal(margin))


def test_credit_is_rounded_once_half_away_from_zero():
    assert sla_credit_minor(charges_minor=12345, credit_percent=Decimal("10")) == -1235  # 1,234.5 -> 1,235
    assert sla_credit_minor(charges_minor=300, credit_percent=Decimal("25")) == -75
    assert sla_credit_minor(charges_minor=0, credit_percent=Decimal("25")) == 0


@pytest.fixture
def families(make_variant):
    return {
        "a": make_variant(family="family-a", name="a-base"),
        "b": make_variant(family="family-b", name="b-base"),
        "c": make_variant(family="family-c", name="c-base"),
    }


def test_evaluation_from_the_ledger_on_the_boundaries(prices, old_tenant, families, add_usage, make_terms):
    tenant = old_tenant()
    other = old_tenant()
    for key, mode in (("a", "standard"), ("b", "efficiency"), ("c", "accurate")):
        make_terms(tenant, families[key], mode=mode, target=1_000_000)
    # a: exactly the target; b: exactly 20 % over; c: one microjoule over 20 %.
    add_usage(tenant, families["a"], h(3), mode="standard", predictions=6_000, energy_uj=6_000_000)
    add_usage(tenant, families["a"], h(4), mode="standard", predictions=4_000, energy_uj=4_000_000)
    add_usage(tenant, families["b"], h(5), mode="efficiency", predictions=10_000, energy_uj=12_000_000)
    add_usage(tenant, families["c"], h(6), mode="accurate", predictions=10_000, energy_uj=12_000_001)
    # Not covered: batch predictions, another mode of the family, another tenant, another month.
    add_usage(tenant, families["a"], h(7), mode="standard", source="batch", predictions=1_000, energy_uj=99_000_000)
    add_usage(tenant, families["a"], h(8), mode="efficiency", predictions=1_000, energy_uj=99_000_000)
    add_usage(other, families["a"], h(3), mode="standard", predictions=1_000, energy_uj=99_000_000)
    add_usage(tenant, families["a"], datetime(2025, 12, 1, tzinfo=UTC), predictions=1_000, energy_uj=99_000_000)

    evaluations = sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)

    assert [(e.family_name, e.mode, e.predictions, e.energy_uj, e.measured_energy_per_1k_uj, e.margin_percent,
             e.outcome, e.breach_band, e.charges_minor, e.credit_percent, e.credit_minor) for e in evaluations] == [
        ("family-a", "standard", 10_000, 10_000_000, 1_000_000, Decimal("0.00"), "met", "", 0, Decimal(0), 0),
        # efficiency: 10,000 x 30 / 1,000 = 300 minor charged; 10 % credit
        ("family-b", "efficiency", 10_000, 12_000_000, 1_200_000, Decimal("20.00"), "breached", "minor", 300,
         Decimal("10"), -30),
        # accurate: 10,000 x 80 / 1,000 = 800; 25 % credit
        ("family-c", "accurate", 10_000, 12_000_001, 1_200_000, Decimal("20.00"), "breached", "major", 800,
         Decimal("25"), -200),
    ]
    assert {(e.span_start, e.span_end) for e in evaluations} == {(NOV.start, NOV.end)}
    assert sla_evaluate_period(tenant=other, period=NOV, now=NOW) == []  # no terms: nothing stored
    with all_tenants_scope():
        assert SlaEvaluation.all_tenants.count() == 3


def test_green_tier_charges_include_the_premium(prices, old_tenant, families, add_usage, make_terms):
    tenant = old_tenant(tier="green")
    make_terms(tenant, families["b"], mode="efficiency", target=1_000_000)
    add_usage(tenant, families["b"], h(5), mode="efficiency", predictions=10_000, energy_uj=11_000_000)

    [evaluation] = sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)

    assert (evaluation.charges_minor, evaluation.credit_minor) == (360, -36)  # 300 + 20 % premium; 10 %


def test_a_terms_change_inside_a_month_splits_it(prices, old_tenant, families, add_usage, make_terms):
    tenant = old_tenant()
    make_terms(tenant, families["a"], target=1_000_000)
    make_terms(tenant, families["a"], target=2_000_000, start=h(16))
    add_usage(tenant, families["a"], h(10), predictions=1_000, energy_uj=1_100_000)  # 10 % over the first target
    add_usage(tenant, families["a"], h(20), predictions=1_000, energy_uj=1_900_000)  # under the second

    first, second = sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)

    assert (first.span_start, first.span_end, first.target_energy_per_1k_uj, first.outcome, first.credit_minor) == (
        NOV.start, h(16), 1_000_000, "breached", -5)  # 10 % of 50
    assert (second.span_start, second.span_end, second.target_energy_per_1k_uj, second.outcome) == (
        h(16), NOV.end, 2_000_000, "met")


def test_an_evaluation_is_stored_once_and_then_only_read(prices, old_tenant, families, add_usage, make_terms):
    tenant = old_tenant()
    make_terms(tenant, families["a"], target=1_000_000)
    add_usage(tenant, families["a"], h(10), predictions=1_000, energy_uj=1_500_000)
    [first] = sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)

    add_usage(tenant, families["a"], h(11), predictions=9_000, energy_uj=1_000)  # late rows change nothing now
    with tenant_scope(tenant.id):  # nor terms added behind the services' back (the services refuse: next test)
        SlaTerms.objects.create(tenant=tenant, family=families["b"].version.family, mode="standard",
                                effective_from=NOV.start, target_energy_per_1k_uj=1)
    [again] = sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)

    assert (again.id, again.predictions, again.energy_uj, again.credit_minor) == (first.id, 1_000, 1_500_000, -13)
    with all_tenants_scope():
        assert SlaEvaluation.all_tenants.count() == 1


def test_terms_cannot_start_inside_an_evaluated_or_invoiced_month(prices, old_tenant, families, add_usage,
                                                                   make_terms):
    tenant = old_tenant()
    make_terms(tenant, families["a"], target=1_000_000)
    sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)
    with pytest.raises(SlaError, match="2025-11 is already evaluated; new terms must start on or after 2025-12-01"):
        make_terms(tenant, families["a"], target=5, start=h(20))
    make_terms(tenant, families["a"], target=5, start=datetime(2025, 12, 1, tzinfo=UTC))  # the next month is fine

    invoiced = old_tenant()
    invoice_create_for_period(tenant=invoiced, period=OCT)
    with pytest.raises(SlaError, match="2025-10 is already invoiced"):
        make_terms(invoiced, families["a"], start=h(1, month=10))
    with tenant_scope(tenant.id):
        assert SlaTerms.objects.count() == 2


def test_a_month_not_over_cannot_be_evaluated(prices, old_tenant, families, make_terms):
    tenant = old_tenant()
    make_terms(tenant, families["a"])
    with pytest.raises(SlaError, match="has not ended yet"):
        sla_evaluate_period(tenant=tenant, period=NOV, now=h(30, 23))
    current = Period.containing(datetime.now(UTC))
    lines = invoice_lines_for_period(tenant=tenant, period=current)  # a preview of the month in progress
    assert [line for line in lines if line.amount_minor < 0] == []  # no credits until the month is judged
    with all_tenants_scope():
        assert SlaEvaluation.all_tenants.count() == 0


def test_latency_is_reported_not_credited(prices, old_tenant, families, add_usage, make_terms):
    tenant = old_tenant()
    make_terms(tenant, families["a"], target=1_000_000, target_latency_p95_us=100)  # profiled p95 is 150 us
    add_usage(tenant, families["a"], h(10), predictions=1_000, energy_uj=900_000)

    [evaluation] = sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)

    assert (evaluation.profiled_latency_p95_us, evaluation.latency_outcome, evaluation.outcome,
            evaluation.credit_minor) == (150, "missed", "met", 0)
    assert evaluation.latency_basis == "registry-profiled p95 per batch of 32 rows, worst of 1 variant (a-base)"


def lines_of(invoice):
    with tenant_scope(invoice.tenant_id):
        return [(line.kind, line.mode, line.amount_minor, line.reference)
                for line in InvoiceLine.objects.filter(invoice=invoice).order_by("position")]


def test_the_credit_lands_on_the_right_invoice_exactly_once(prices, old_tenant, families, add_usage, make_terms):
    tenant = old_tenant()
    make_terms(tenant, families["a"], target=1_000_000)
    add_usage(tenant, families["a"], h(10, month=10), predictions=10_000, energy_uj=9_000_000)  # October: met
    add_usage(tenant, families["a"], h(10), predictions=10_000, energy_uj=11_000_000)  # November: 10 % over

    october, _ = invoice_create_for_period(tenant=tenant, period=OCT)
    november, created = invoice_create_for_period(tenant=tenant, period=NOV)
    [evaluation] = sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)

    assert created
    assert [line for line in lines_of(october) if line[0] == "sla_credit"] == []
    assert lines_of(november) == [
        ("base_fee", "", 4900, ""),
        ("predictions", "standard", 500, ""),
        ("sla_credit", "", -50, f"sla-evaluation:{evaluation.id}"),  # 10 % of the 500 charged
    ]
    assert november.total_minor == 4900 + 500 - 50

    # Re-running: the invoice is returned as it is, the provider gives the same single line.
    again, created_again = invoice_create_for_period(tenant=tenant, period=NOV)
    summary = invoice_run_for_period(period=NOV, tenant_slug=tenant.slug, dry_run=True, now=NOW)
    assert (again.id, created_again, summary.existing, summary.created) == (november.id, False, 1, 0)
    assert [d.reference for d in invoice_lines_for_period(tenant=tenant, period=NOV) if d.kind == "sla_credit"] == [
        f"sla-evaluation:{evaluation.id}"]
    assert lines_of(november)[-1] == ("sla_credit", "", -50, f"sla-evaluation:{evaluation.id}")
    with all_tenants_scope():
        assert Invoice.all_tenants.filter(tenant=tenant).count() == 2
        assert InvoiceLine.all_tenants.filter(tenant=tenant, kind="sla_credit").count() == 1
        assert SlaEvaluation.all_tenants.filter(tenant=tenant).count() == 2  # October (met) and November


def test_a_tier_change_prorates_the_charges_of_the_credit(prices, old_tenant, families, add_usage, make_terms):
    tenant = old_tenant()
    make_terms(tenant, families["a"], target=1_000_000)
    tenant_change_tier(tenant=tenant, tier="green", changed_by="test", at=h(16))
    add_usage(tenant, families["a"], h(10), predictions=10_000, energy_uj=11_000_000)  # standard tier: 500
    add_usage(tenant, families["a"], h(20), predictions=10_000, energy_uj=11_000_000)  # green: 500 + 20 %

    [evaluation] = sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)

    assert (evaluation.charges_minor, evaluation.credit_minor) == (1100, -110)


def test_admin_form_stores_wh_as_microjoules_and_refuses_backdating(prices, old_tenant, families, make_terms):
    from reports.admin import SlaTermsForm

    tenant = old_tenant()
    family = families["a"].version.family
    data = {"tenant": tenant.id, "family": family.id, "mode": "efficiency", "effective_from": "2025-12-01 00:00:00",
            "target_wh_per_1k": "0.0185", "target_latency_p95_ms": "2.5", "minor_breach_limit_percent": "20",
            "minor_credit_percent": "10", "major_credit_percent": "25", "note": ""}
    with all_tenants_scope():
        form = SlaTermsForm(data=data)
        assert form.is_valid(), form.errors
        terms = form.save()
    assert (terms.target_energy_per_1k_uj, terms.target_latency_p95_us) == (66_600_000, 2_500)

    make_terms(tenant, families["a"], target=1_000_000)
    sla_evaluate_period(tenant=tenant, period=NOV, now=NOW)
    with all_tenants_scope():
        form = SlaTermsForm(data={**data, "effective_from": "2025-11-20 00:00:00"})
        assert not form.is_valid()
    assert form.errors["effective_from"] == [
        "the SLA for 2025-11 is already evaluated; new terms must start on or after 2025-12-01 00:00 UTC"]


def test_terms_validation_errors(prices, old_tenant, families):
    tenant = old_tenant()
    family = families["a"].version.family
    with pytest.raises(SlaError, match="mode must be one of standard, efficiency, accurate"):
        sla_terms_create(tenant=tenant, family=family, mode="fast", effective_from=h(1), target_energy_per_1k_uj=1)
    with pytest.raises(SlaError, match="positive number of microjoules"):
        sla_terms_create(tenant=tenant, family=family, mode="standard", effective_from=h(1), target_energy_per_1k_uj=0)
    with pytest.raises(SlaError, match="timezone-aware"):
        sla_terms_create(tenant=tenant, family=family, mode="standard", effective_from=datetime(2025, 1, 1),
                         target_energy_per_1k_uj=1)
