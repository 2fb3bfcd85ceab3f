"""The annual carbon report: figures from the ledger in the PDF, the empty tenant, the
fingerprint, storage, and the carbon_report command."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from inference.models import BatchInput, BatchJob
from reports.documents import carbon_report_document, inputs_fingerprint
from reports.models import Report
from reports.periods import report_period_parse
from reports.selectors import carbon_report_inputs
from reports.services import report_file_path, report_generate
from tenants.scope import all_tenants_scope, tenant_scope
from tests.reports.conftest import NOW, pdf_attachment, pdf_metadata, pdf_pages, pdf_text, sha256

pytestmark = pytest.mark.django_db
YEAR = report_period_parse("2025")


def finished_job(tenant, variant, *, finished_at, run_now_co2e_ug, co2e_ug, tier="green"):
    with tenant_scope(tenant.id):
        batch_input = BatchInput.objects.create(tenant=tenant, sha256=f"{finished_at:%m%d%H}".ljust(64, "0"),
                                                format="csv", size_bytes=10, rows=100, path="batches/x.csv")
        return BatchJob.objects.create(
            tenant=tenant, input=batch_input, family=variant.version.family, variant=variant, mode="efficiency",
            tier=tier, deadline=finished_at, status=BatchJob.Status.SUCCEEDED, estimated_seconds=3600,
            planned_start=finished_at.replace(hour=2), planned_end=finished_at, run_now_g_per_kwh=Decimal("240"),
            planned_g_per_kwh=Decimal("160"), plan_provider="history", plan_method="history", plan_measurable=True,
            plan_explanation="test", last_planned_at=finished_at, started_at=finished_at.replace(hour=2),
            finished_at=finished_at, energy_uj=1_000_000, actual_g_per_kwh=Decimal("160"), co2e_ug=co2e_ug,
            run_now_co2e_ug=run_now_co2e_ug)


@pytest.fixture
def acme(old_tenant, make_variant, add_usage):
    """A year with usage in March (standard) and July (efficiency), and one green batch job."""
    tenant = old_tenant(name="Acme Robotics", tier="green")
    baseline = make_variant(name="baseline", energy_per_1k_uj=1_000_000, accuracy="0.980000")
    int8 = make_variant(name="int8", technique="int8-quantised", energy_per_1k_uj=400_000, accuracy="0.970000")
    add_usage(tenant, baseline, datetime(2025, 3, 10, 10, tzinfo=UTC), predictions=12_000,
              energy_uj=7_200_000_000, co2e_ug=400_000, embodied_co2e_ug=100_000, intensity="200")
    add_usage(tenant, int8, datetime(2025, 7, 1, 9, tzinfo=UTC), mode="efficiency", predictions=8_000,
              energy_uj=3_600_000_000, co2e_ug=150_000, embodied_co2e_ug=50_000, intensity="150")
    add_usage(tenant, baseline, datetime(2026, 1, 1, tzinfo=UTC), predictions=99_999)  # next year: not counted
    finished_job(tenant, int8, finished_at=datetime(2025, 7, 2, 5, tzinfo=UTC), run_now_co2e_ug=90_000, co2e_ug=60_000)
    finished_job(tenant, int8, finished_at=datetime(2026, 1, 2, 5, tzinfo=UTC), run_now_co2e_ug=9, co2e_ug=1)
    return tenant


def test_the_pdf_carries_the_ledger_figures(acme):
    report, created = report_generate(tenant=acme, kind="carbon_report", period="2025", now=NOW)
    content = report_file_path(report).read_bytes()
    text = pdf_text(content)

    assert created and content.startswith(b"%PDF-")
    assert (report.status, report.pages, report.period_start, report.period_end) == (
        "ready", 5, YEAR.start, YEAR.end)
    assert pdf_pages(content) == 5
    assert report.path == f"reports/{acme.id}/carbon_report-2025-{report.fingerprint}.pdf"
    assert report.sha256 == sha256(content) and report.size_bytes == len(content)
    for expected in [
        "Annual carbon report 2025", "Acme Robotics",
        "PREDICTIONS SERVED 20,000",  # 12,000 + 8,000
        "ENERGY USED 3.00 Wh",  # 10,800,000,000 uJ
        "TOTAL EMISSIONS 700.00 mg CO₂e",  # 550,000 operational + 150,000 embodied
        "SCI PER PREDICTION 35.0 µg CO₂e",  # 700,000 / 20,000
        "550.00 mg operational (78.6%)", "150.00 mg embodied (21.4%)",
        "Mar 2025 12,000 2.000 400.00 100.00 500.00 200 41.7 µg",  # intensity 400,000 ug / 0.002 kWh
        "Jul 2025 8,000 1.000 150.00 50.00 200.00 150 25.0 µg",
        "Apr 2025 0 0.000 0.00 0.00 0.00 – –",
        "2025 20,000 3.000 550.00 150.00 700.00 183 35.0 µg",
        # savings: the green job (90,000 - 60,000) and efficiency mode ((1,000,000 - 400,000) x 8 J at 150 g/kWh)
        "30.00 mg CO₂e", "200.00 µg CO₂e", "30.20 mg",
        "baseline default", "int8", "3,528,000", "0.0002778",  # accuracy per kWh; Wh per 1,000 predictions
        "cpu-model: test", report.fingerprint,
    ]:
        assert expected in text, expected
    assert "99,999" not in text
    assert pdf_metadata(content)["/greentierfingerprint"] == report.fingerprint
    attached = pdf_attachment(content)
    assert sha256(attached) == report.fingerprint
    inputs = json.loads(attached)
    assert inputs["totals"]["predictions"] == 20_000 and len(inputs["batch_jobs"]) == 1


def test_a_tenant_without_usage_gets_a_valid_report_that_says_so(old_tenant):
    tenant = old_tenant(name="Quiet Labs")
    report, _ = report_generate(tenant=tenant, kind="carbon_report", period="2025", now=NOW)
    content = report_file_path(report).read_bytes()
    text = pdf_text(content)

    assert content.startswith(b"%PDF-") and report.pages == pdf_pages(content) == 2
    assert "No usage was recorded for Quiet Labs in 2025." in text
    assert "energy 0 kWh, emissions 0 g CO₂e" in text
    assert "Methodology and data provenance" in text and "0 hourly records" in text


def test_same_inputs_same_file_and_new_usage_a_new_report(acme, add_usage, make_variant):
    first, created = report_generate(tenant=acme, kind="carbon_report", period="2025", now=NOW)
    again, created_again = report_generate(tenant=acme, kind="carbon_report", period="2025", now=NOW)
    rendered = carbon_report_document(carbon_report_inputs(tenant=acme, period=YEAR))

    assert (created, created_again, again.id) == (True, False, first.id)
    assert rendered.fingerprint == first.fingerprint == inputs_fingerprint(rendered.inputs)
    assert rendered.pdf.content == report_file_path(first).read_bytes()  # byte for byte

    add_usage(acme, make_variant(name="late"), datetime(2025, 12, 31, 23, tzinfo=UTC), predictions=1)
    changed, created_changed = report_generate(tenant=acme, kind="carbon_report", period="2025", now=NOW)

    assert created_changed and changed.fingerprint != first.fingerprint
    assert report_file_path(first).exists() and report_file_path(changed).exists()
    with tenant_scope(acme.id):
        assert Report.objects.count() == 2


def test_the_current_year_covers_complete_months_only(acme):
    report, _ = report_generate(tenant=acme, kind="carbon_report", period="2025",
                                now=datetime(2025, 7, 20, tzinfo=UTC))
    text = pdf_text(report_file_path(report).read_bytes())

    assert (report.period_start, report.period_end) == (YEAR.start, datetime(2025, 7, 1, tzinfo=UTC))
    assert "1 January – 30 June 2025 (year to date)" in text
    assert "PREDICTIONS SERVED 12,000" in text and "Jul 2025" not in text


def test_carbon_report_command(acme, tmp_path, capsys):
    output = tmp_path / "out" / "acme-2025.pdf"
    call_command("carbon_report", "--tenant", acme.slug, "--year", "2025", "--output", str(output))
    out = capsys.readouterr().out
    with tenant_scope(acme.id):
        report = Report.objects.get()
    assert out.startswith(f"created report {report.id}: {acme.slug} 2025 (2025-01-01 to 2026-01-01), 5 pages, "
                          f"fingerprint {report.fingerprint}")
    assert output.read_bytes() == report_file_path(report).read_bytes()

    call_command("carbon_report", "--tenant", acme.slug, "--year", "2025", "--fingerprint-only")
    assert capsys.readouterr().out.strip() == report.fingerprint
    call_command("carbon_report", "--tenant", acme.slug, "--year", "2025", "--verify", str(output))
    assert capsys.readouterr().out.startswith(f"OK: report {report.id} (carbon_report 2025) matches the ledger")


def test_verify_notices_changed_data_and_unknown_files(acme, add_usage, make_variant, tmp_path):
    report, _ = report_generate(tenant=acme, kind="carbon_report", period="2025", now=NOW)
    add_usage(acme, make_variant(name="late"), datetime(2025, 6, 1, tzinfo=UTC), predictions=1)
    with pytest.raises(CommandError, match=f"was made from inputs {report.fingerprint}; the ledger now gives"):
        call_command("carbon_report", "--tenant", acme.slug, "--year", "2025", "--verify",
                     str(report_file_path(report)))
    stranger = tmp_path / "x.pdf"
    stranger.write_bytes(b"%PDF-1.7 not ours")
    with pytest.raises(CommandError, match="no report of .* has SHA-256"):
        call_command("carbon_report", "--tenant", acme.slug, "--year", "2025", "--verify", str(stranger))


@pytest.mark.parametrize(("args", "message"), [
    (["--tenant", "nobody", "--year", "2025"], "no tenant with slug 'nobody'"),
    (["--tenant", "x", "--year", "25"], "--year must be a calendar year like 2026, not '25'"),
    (["--year", "2025"], "give either --tenant SLUG or --all-tenants"),
    (["--tenant", "{slug}", "--year", "2999"], "the year 2999 has no complete month yet"),
])
def test_carbon_report_command_bad_input(acme, args, message):
    args = [a.replace("{slug}", acme.slug) for a in args]
    with pytest.raises(CommandError, match=message):
        call_command("carbon_report", *args)
    with all_tenants_scope():
        assert Report.all_tenants.count() == 0


def test_all_tenants_with_progress(acme, old_tenant, tmp_path, capsys):
    quiet = old_tenant()
    call_command("carbon_report", "--all-tenants", "--year", "2025", "--output", str(tmp_path))
    captured = capsys.readouterr()
    assert captured.out.strip() == "carbon reports 2025: 2 tenants, 2 new, 0 unchanged, 0 failed"
    assert "carbon reports 2025" in captured.err  # tqdm's progress bar
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"carbon-report-2025-{acme.slug}.pdf", f"carbon-report-2025-{quiet.slug}.pdf"])
    assert all(Path(settings.MEDIA_ROOT, "reports").exists() for _ in [0])
