"""SLA compliance statements (PDF) and the finance reports of sla_report (CSV and PDF)."""

from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.periods import Period
from billing.services import invoice_create_for_period
from reports.models import Report, SlaEvaluation
from reports.services import report_file_path, report_generate
from tenants.scope import all_tenants_scope, tenant_scope
from tests.reports.conftest import NOW, pdf_pages, pdf_text

pytestmark = pytest.mark.django_db
NOV = Period.parse("2025-11")


def h(day, hour=0):
    return datetime(2025, 11, day, hour, tzinfo=UTC)


@pytest.fixture
def world(prices, old_tenant, make_variant, add_usage, make_terms):
    """alpha breaches its standard-mode target by 10 % and is invoiced; beta meets its
    efficiency target and is not invoiced yet; gamma has no terms and no usage."""
    variant = make_variant(family="family-a", name="a-base")
    alpha = old_tenant(slug="alpha", name="Alpha Ltd")
    beta = old_tenant(slug="beta", name="Beta GmbH")
    gamma = old_tenant(slug="gamma", name="Gamma plc")
    make_terms(alpha, variant, target=1_000_000, target_latency_p95_us=200)
    make_terms(beta, variant, mode="efficiency", target=1_000_000, start=datetime(2025, 11, 1, tzinfo=UTC))
    add_usage(alpha, variant, h(10), predictions=10_000, energy_uj=11_000_000, co2e_ug=200_000)
    add_usage(beta, variant, h(11), mode="efficiency", predictions=2_000, energy_uj=1_800_000, co2e_ug=50_000,
              embodied_co2e_ug=1_000)
    invoice, _ = invoice_create_for_period(tenant=alpha, period=NOV)
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "invoice": invoice, "variant": variant}


def test_monthly_statement(world):
    alpha, invoice = world["alpha"], world["invoice"]
    report, _ = report_generate(tenant=alpha, kind="sla_statement", period="2025-11", now=NOW)
    content = report_file_path(report).read_bytes()
    text = pdf_text(content)
    with tenant_scope(alpha.id):
        evaluation = SlaEvaluation.objects.get()

    assert content.startswith(b"%PDF-") and report.pages == pdf_pages(content) == 1
    for expected in [
        "SLA compliance statement November 2025", "Alpha Ltd",
        "TARGETS EVALUATED 1", "MET 0", "BREACHED 1", "CREDITS ISSUED EUR 0.50",
        # target 1,000,000 uJ = 0.0002778 Wh; measured 1,100,000 uJ = 0.0003056 Wh per 1,000
        "Nov 2025 family-a Standard 10,000 0.0002778 0.0003056 +10.00% Breached (minor)",
        "0.200 ms / 0.150 ms met",
        "EUR 0.50 10% of EUR 5.00", f"invoice #{invoice.id}, line 3",
        "up to 20% over: 10% credit; beyond: 25%",
    ]:
        assert expected in text, expected
    assert f"sla-evaluation:{evaluation.id}" == "sla-evaluation:" + str(evaluation.id)


def test_yearly_statement_lists_every_month_with_terms(world):
    beta = world["beta"]
    report, _ = report_generate(tenant=beta, kind="sla_statement", period="2025", now=NOW)
    text = pdf_text(report_file_path(report).read_bytes())

    assert report.pages == 1
    assert "Nov 2025 family-a Efficiency 2,000 0.0002778 0.0002500 -10.00% Met" in text
    assert "Dec 2025 family-a Efficiency 0 0.0002778 – – No usage" in text
    assert "Months of the period without SLA terms: Jan 2025, Feb 2025" in text
    assert "CREDITS ISSUED EUR 0.00" in text
    with tenant_scope(beta.id):
        assert SlaEvaluation.objects.count() == 2  # November and December, stored once


def test_statement_without_terms(world):
    report, _ = report_generate(tenant=world["gamma"], kind="sla_statement", period="2025-11", now=NOW)
    content = report_file_path(report).read_bytes()
    assert report.pages == 1 and "No SLA terms were in force for this account in November 2025." in pdf_text(content)


def test_sla_report_writes_the_finance_files(world, tmp_path, capsys):
    alpha, invoice = world["alpha"], world["invoice"]
    call_command("sla_report", "--period", "2025-11", "--output-dir", str(tmp_path), "--statements")
    out = capsys.readouterr().out.splitlines()
    with all_tenants_scope():
        alpha_eval = SlaEvaluation.all_tenants.get(tenant=alpha)
        beta_eval = SlaEvaluation.all_tenants.get(tenant=world["beta"])
        statements = sorted(Report.all_tenants.filter(kind="sla_statement").values_list("tenant__slug", "period"))

    assert out[0] == ("SLA 2025-11: 2 tenants with terms, 2 evaluations, 1 breached; credits EUR -0.50; 2 statements; "
                      "0 failed")
    assert statements == [("alpha", "2025-11"), ("beta", "2025-11")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "finance-sla-2025-11.csv", "finance-sla-2025-11.pdf", "revenue-summary-2025-11.csv",
        "revenue-summary-2025-11.pdf"]
    assert (tmp_path / "finance-sla-2025-11.csv").read_text().splitlines() == [
        "period,tenant,family,mode,span_start,span_end,target_energy_per_1k_uj,target_wh_per_1k,predictions,energy_uj,"
        "measured_energy_per_1k_uj,measured_wh_per_1k,margin_percent,outcome,breach_band,target_latency_p95_us,"
        "profiled_latency_p95_us,latency_outcome,currency,charges_minor,credit_percent,credit_minor,invoice_id,"
        "invoice_status,credit_line_position,evaluation_id",
        f"2025-11,alpha,family-a,standard,2025-11-01T00:00:00Z,2025-12-01T00:00:00Z,1000000,0.000277778,10000,11000000,"
        f"1100000,0.000305556,10.00,breached,minor,200,150,met,EUR,500,10.00,-50,{invoice.id},draft,3,{alpha_eval.id}",
        f"2025-11,beta,family-a,efficiency,2025-11-01T00:00:00Z,2025-12-01T00:00:00Z,1000000,0.000277778,2000,1800000,"
        f"900000,0.000250000,-10.00,met,,,150,not_set,EUR,0,0.00,0,,,,{beta_eval.id}",
    ]
    assert (tmp_path / "revenue-summary-2025-11.csv").read_text().splitlines() == [
        "period,tenant,tier,currency,invoice_id,invoice_status,revenue_minor,sla_credits_minor,predictions,energy_uj,"
        "energy_kwh,co2e_ug,co2e_kg,revenue_per_1k_predictions_minor",
        # 4,900 base fee + 500 predictions - 50 credit = 5,350; x 1,000 / 10,000 predictions = 535
        f"2025-11,alpha,standard,EUR,{invoice.id},draft,5350,-50,10000,11000000,0.000003055556,200000,0.000200000,"
        "535.0000",
        "2025-11,beta,standard,EUR,,not invoiced,0,0,2000,1800000,0.000000500000,51000,0.000051000,",
        "2025-11,gamma,standard,EUR,,not invoiced,0,0,0,0,0.000000000000,0,0.000000000,",
    ]
    finance = (tmp_path / "finance-sla-2025-11.pdf").read_bytes()
    revenue = (tmp_path / "revenue-summary-2025-11.pdf").read_bytes()
    assert finance.startswith(b"%PDF-") and revenue.startswith(b"%PDF-")
    assert pdf_pages(finance) == pdf_pages(revenue) == 1
    finance_text, revenue_text = pdf_text(finance), pdf_text(revenue)
    for expected in ["Monthly SLA report – November 2025", "TENANTS WITH SLAS 2", "CREDITS EUR 0.50",
                     "alpha Alpha Ltd family-a Standard 10,000 0.0002778 0.0003056 +10.00% Breached (minor) EUR 5.00 "
                     f"EUR 0.50 10% invoice #{invoice.id}, line 3",
                     "beta Beta GmbH family-a Efficiency 2,000 0.0002778 0.0002500 -10.00% Met"]:
        assert expected in finance_text, expected
    for expected in ["Revenue and energy summary – November 2025",
                     "EUR EUR 53.50 EUR 0.50 2 / 3 (1) EUR 26.75 EUR 4.46",  # 5,350 / 2 active; x 1,000 / 12,000
                     f"alpha Alpha Ltd standard #{invoice.id} draft EUR 53.50 EUR 0.50 10,000",
                     "gamma Gamma plc standard not invoiced – – 0"]:
        assert expected in revenue_text, expected

    call_command("sla_report", "--period", "2025-11", "--output-dir", str(tmp_path))  # again: same evaluations
    with all_tenants_scope():
        assert SlaEvaluation.all_tenants.count() == 2


@pytest.mark.parametrize(("period", "message"), [
    ("2025/11", "period '2025/11' must look like 2026-11"),
    ("2999-01", "period 2999-01 has not ended yet"),
])
def test_sla_report_bad_input(db, period, message, tmp_path):
    with pytest.raises(CommandError, match=message):
        call_command("sla_report", "--period", period, "--output-dir", str(tmp_path))
    assert list(tmp_path.iterdir()) == []
