"""The pages' figures and actions through Django's test client: dashboard figures equal
the ledger's, cost comes from invoices or rating, tier switches are recorded, keys are
shown once, uploads and report requests report their errors inline."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.test import Client
from django.utils import timezone

from billing.models import PriceVersion
from billing.periods import Period
from billing.rating import invoice_lines_for_period
from billing.services import invoice_create_for_period
from inference.models import BatchInput, BatchJob
from inference.selectors import savings_for_period, usage_total
from reports.models import Report
from tenants.models import ApiKey, Tenant, TierChange
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(make_account, make_user, member):
    """(client signed in as an admin, Account) for an account with a month and a bit of usage."""
    account = make_account(green_jobs=4)
    user = make_user("ada")
    member(account.tenant, user, "admin")
    client = Client()
    client.force_login(user)
    return client, account


def ledger(tenant, start, end):
    with tenant_scope(tenant.id):
        return usage_total(tenant=tenant, start=start, end=end), savings_for_period(tenant=tenant, start=start, end=end)


@pytest.mark.parametrize("query", ["", "p={last}", "p={quarter}", "p={year}", "from={first_day}&to={last_day}"])
def test_dashboard_figures_equal_the_ledger(admin, query):
    client, account = admin
    now = timezone.now()
    last = Period.previous(now=now)
    quarter = f"{last.start.year}-Q{(last.start.month - 1) // 3 + 1}"
    url = "/portal/t/{}/?".format(account.tenant.slug) + query.format(
        last=last.label, quarter=quarter, year=last.start.year, first_day=(last.start + timedelta(days=9)).date(),
        last_day=(now - timedelta(days=1)).date())
    response = client.get(url)
    assert response.status_code == 200
    period = response.context["period"]
    summary = response.context["summary"]
    usage, savings = ledger(account.tenant, period.start, period.end)
    assert usage.predictions > 0
    assert (summary.predictions, summary.requests, summary.energy_uj, summary.co2e_ug, summary.embodied_co2e_ug) == (
        usage.predictions, usage.requests, usage.energy_uj, usage.co2e_ug, usage.embodied_co2e_ug)
    assert summary.savings == savings
    assert summary.sci_ug_per_prediction == (Decimal(usage.co2e_ug + usage.embodied_co2e_ug) / usage.predictions
                                             ).quantize(Decimal("0.001"))
    page = response.content.decode()
    assert f'data-testid="figure-predictions" data-raw="{usage.predictions}"' in page
    assert f'data-testid="figure-co2e" data-raw="{usage.co2e_ug + usage.embodied_co2e_ug}"' in page
    # the charts add up to the same totals (kWh and CO2e in the chart's unit, rounded per bucket)
    chart = response.context["usage_chart"]
    unit = {"g": 10**6, "mg": 10**3, "kg": 10**9, "t": 10**12}[chart["co2e_unit"]]
    charted = sum(sum(d["co2e"]) for d in chart["datasets"]) * unit
    assert charted == pytest.approx(usage.co2e_ug + usage.embodied_co2e_ug, rel=1e-4)
    assert {(d["variant"], d["mode"]) for d in chart["datasets"]} == {("baseline", "standard"),
                                                                       ("student", "efficiency")}


def test_dashboard_cost_uses_the_invoice_and_previews_the_open_month(admin):
    client, account = admin
    tenant, now = account.tenant, timezone.now()
    last, current = Period.previous(now=now), Period.containing(now)
    invoice, _ = invoice_create_for_period(tenant=tenant, period=last)
    summary = client.get(f"/portal/t/{tenant.slug}/?p={last.start.year}").context["summary"]
    parts = {p.start: p for p in summary.cost.parts}
    assert parts[last.start].source == "invoice" and parts[last.start].amount_minor == invoice.total_minor
    # Without SLA terms, the open month's preview is exactly what rating would charge now.
    if current.start.year == last.start.year:
        expected = sum(line.amount_minor for line in invoice_lines_for_period(tenant=tenant, period=current))
        assert parts[current.start].source == "preview" and parts[current.start].amount_minor == expected
        assert "month to date" in parts[current.start].note
    assert summary.cost.total_minor == sum(p.amount_minor for p in summary.cost.parts)
    # months before the tenant existed are not billed
    assert min(parts) >= datetime(tenant.created_at.year, tenant.created_at.month, 1, tzinfo=UTC)


def test_dashboard_without_prices_says_so(admin):
    client, account = admin
    PriceVersion.objects.all().delete()
    response = client.get(f"/portal/t/{account.tenant.slug}/")
    assert response.status_code == 200
    [part] = response.context["summary"].cost.parts
    assert part.amount_minor is None and "no EUR price in effect" in part.note


def test_a_bad_period_is_explained_and_this_month_shown(admin):
    client, account = admin
    for query, message in [("p=2026-13", "no such month"), ("p=soon", "must be a month"),
                           ("from=2026-02-10&to=2026-01-01", "ends before it starts"),
                           ("from=2024-01-01&to=2026-01-01", "at most 366 days"), ("from=2026-01-01", "both")]:
        response = client.get(f"/portal/t/{account.tenant.slug}/?{query}")
        assert response.status_code == 400, query
        assert message in response.content.decode(), query
        assert response.context["period"].kind == "month"


def test_empty_dashboard_says_what_to_do_next(make_account, make_user, member):
    account = make_account(with_usage=False)
    user = make_user()
    member(account.tenant, user, "admin")
    client = Client()
    client.force_login(user)
    page = client.get(f"/portal/t/{account.tenant.slug}/").content.decode()
    assert "No predictions in" in page and "Create an API key" in page


def test_intensity_chart_marks_batch_windows(admin, grid_history):
    client, account = admin
    last = Period.previous(now=timezone.now())
    chart = client.get(f"/portal/t/{account.tenant.slug}/?p={last.label}").context["intensity_chart"]
    assert chart["bucket"] == "hour" and chart["source"] == "test-pattern"
    drawn = chart["js"]
    assert len(drawn["values"]) == len(drawn["windows"]) == (last.end - last.start).days * 24
    assert None not in drawn["values"]  # the grid history covers the month
    # the seeded green jobs ran 03:00-03:30 every third day from the 2nd
    marked = [drawn["labels"][i] for i, w in enumerate(drawn["windows"]) if w]
    assert marked == [f"{d} {last.start:%b} 03:00" for d in (2, 5, 8, 11)]


def test_tier_preview_and_switch(admin):
    client, account = admin
    tenant = account.tenant
    last = Period.previous(now=timezone.now())
    preview = client.get(f"/portal/t/{tenant.slug}/tier/").context["preview"]
    standard_now = sum(line.amount_minor for line in invoice_lines_for_period(tenant=tenant, period=last))
    assert preview.current == "standard" and preview.reference_label == f"{last.start:%B %Y}"
    assert preview.options["standard"].reference_total_minor == standard_now
    assert preview.difference_minor > 0  # green: higher base fee and a premium on usage
    assert preview.batch_energy_uj > 0 and preview.typical_shift_g_per_kwh is None  # no grid data stored
    response = client.post(f"/portal/t/{tenant.slug}/tier/", {"tier": "green"}, follow=True)
    assert "Switched to the green tier" in response.content.decode()
    assert Tenant.objects.get(id=tenant.id).tier == "green"
    with tenant_scope(tenant.id):
        [change] = TierChange.objects.all()
    assert (change.from_tier, change.to_tier, change.changed_by) == ("standard", "green", "ada")
    # the same tier again changes nothing; a made-up tier neither
    client.post(f"/portal/t/{tenant.slug}/tier/", {"tier": "green"})
    client.post(f"/portal/t/{tenant.slug}/tier/", {"tier": "platinum"})
    with tenant_scope(tenant.id):
        assert TierChange.objects.count() == 1


def test_tier_preview_estimates_savings_from_grid_history(admin, grid_history):
    client, account = admin
    preview = client.get(f"/portal/t/{account.tenant.slug}/tier/").context["preview"]
    # conftest's pattern: 220 - 100 cos(...) -> daily mean 220, cleanest hour 120
    assert preview.typical_shift_g_per_kwh == Decimal("100.0") and preview.mean_g_per_kwh == Decimal("220.0")
    from carbon import units

    assert preview.expected_saving_co2e_ug == units.co2e_ug(energy_uj=preview.batch_energy_uj, g_per_kwh=Decimal("100.0"))


def test_new_key_is_shown_once_and_works(admin):
    client, account = admin
    from tenants.selectors import api_key_authenticate

    response = client.post(f"/portal/t/{account.tenant.slug}/keys/", {"name": "ci", "scopes": ["usage"]})
    assert response.status_code == 200
    raw = response.context["created"].raw_key
    assert raw in response.content.decode()
    assert response["Cache-Control"] == "private, no-store"
    key = api_key_authenticate(raw_key=raw)
    assert (key.name, key.scopes, key.created_by) == ("ci", ["usage"], "ada")
    assert raw not in client.get(f"/portal/t/{account.tenant.slug}/keys/").content.decode()
    response = client.post(f"/portal/t/{account.tenant.slug}/keys/{key.id}/revoke/", follow=True)
    assert "is revoked" in response.content.decode()
    with tenant_scope(account.tenant.id):
        assert ApiKey.objects.get(id=key.id).revoked_at is not None
    bad = client.post(f"/portal/t/{account.tenant.slug}/keys/", {"scopes": ["root"]})
    assert bad.status_code == 400 and "root is not one of the available choices" in bad.content.decode()


def _csv(X) -> bytes:
    return pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])]).to_csv(index=False).encode()


def test_batch_upload_errors_are_inline_and_store_nothing(admin, digits_models):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client, account = admin
    X, _, _ = digits_models
    with tenant_scope(account.tenant.id):
        before = (BatchInput.objects.count(), BatchJob.objects.count())
    deadline = (timezone.now() + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M")
    cases = [
        (dict(file=SimpleUploadedFile("a.csv", _csv(X[:3, :10]))), "missing column"),
        (dict(file=SimpleUploadedFile("a.csv", b"")), "The uploaded file is empty."),
        (dict(file=SimpleUploadedFile("a.csv", _csv(X[:3])), deadline="2020-01-01T00:00"), "deadline is in the past"),
        (dict(file=SimpleUploadedFile("a.csv", _csv(X[:3])), model="no-such-model"), "Select a valid choice"),
        (dict(file=SimpleUploadedFile("a.csv", _csv(X[:3])), deadline="tomorrow"), "Enter a valid date/time"),
    ]
    for overrides, message in cases:
        data = {"model": "digits-classifier", "mode": "standard", "deadline": deadline, **overrides}
        response = client.post(f"/portal/t/{account.tenant.slug}/batches/", data)
        assert response.status_code == 400, message
        assert message in response.content.decode(), message
    with tenant_scope(account.tenant.id):
        assert (BatchInput.objects.count(), BatchJob.objects.count()) == before


def test_batch_runs_and_results_download(admin, digits_models, django_capture_on_commit_callbacks):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client, account = admin
    X, _, _ = digits_models
    deadline = (timezone.now() + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M")
    with django_capture_on_commit_callbacks(execute=True):  # eager Celery: the standard-tier run happens inline
        response = client.post(f"/portal/t/{account.tenant.slug}/batches/", {
            "file": SimpleUploadedFile("rows.csv", _csv(X[:12])), "model": "digits-classifier", "mode": "efficiency",
            "deadline": deadline})
    assert response.status_code == 302
    with tenant_scope(account.tenant.id):
        job = BatchJob.objects.order_by("-id").first()
    assert (job.status, job.mode, job.variant.name, job.deadline.minute) == ("succeeded", "efficiency", "student",
                                                                            int(deadline[-2:]))
    csv = client.get(f"/portal/t/{account.tenant.slug}/batches/{job.id}/results.csv")
    assert csv["Content-Disposition"] == f'attachment; filename="batch-{job.id}-results.csv"'
    frame = pd.read_csv(io.BytesIO(csv.content))
    parquet = pd.read_parquet(io.BytesIO(client.get(
        f"/portal/t/{account.tenant.slug}/batches/{job.id}/results.parquet").content))
    assert frame["prediction"].tolist() == parquet["prediction"].tolist() and len(frame) == 12
    assert np.isin(frame["prediction"], range(10)).all()


def test_report_requests(admin, django_capture_on_commit_callbacks):
    client, account = admin
    url = f"/portal/t/{account.tenant.slug}/reports/"
    bad = client.post(url, {"kind": "carbon_report", "period": "2026-11"})
    assert bad.status_code == 400 and "a carbon report covers a calendar year" in bad.content.decode()
    future = client.post(url, {"kind": "sla_statement", "period": f"{timezone.now():%Y-%m}"})
    assert future.status_code == 400 and "has no complete month yet" in future.content.decode()
    with tenant_scope(account.tenant.id):
        assert Report.objects.count() == 0
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(url, {"kind": "sla_statement", "period": Period.previous(now=timezone.now()).label})
    assert response.status_code == 302 and len(queued) == 1
    with tenant_scope(account.tenant.id):
        report = Report.objects.get()
    assert (report.status, report.requested_by) == ("pending", "portal:ada")
    page = client.get(url).content.decode()
    assert "pending" in page and f"/reports/{report.id}/download/" not in page


def test_sla_months_show_stored_evaluations(admin):
    from reports.sla import sla_terms_create

    client, account = admin
    now = timezone.now()
    last = Period.previous(now=now)
    before = Period.previous(now=last.start)
    sla_terms_create(tenant=account.tenant, family=account.family, mode="efficiency", effective_from=before.start,
                     target_energy_per_1k_uj=1_800_000)
    invoice_create_for_period(tenant=account.tenant, period=last)  # evaluates last month (breached: 2.0 > 1.8)
    months = client.get(f"/portal/t/{account.tenant.slug}/reports/").context["sla_months"]
    assert [(m.label, m.status) for m in months[:3]] == [
        (f"{last.start:%B %Y}", "breached"), (f"{before.start:%B %Y}", "pending"),
        (f"{Period.previous(now=before.start).start:%B %Y}", "none")]
    assert months[0].evaluations[0].credit_minor < 0


def test_batch_jobs_are_paged(make_account, make_user, member):
    account = make_account(with_usage=False, green_jobs=30)
    user = make_user()
    member(account.tenant, user, "viewer")
    client = Client()
    client.force_login(user)
    first = client.get(f"/portal/t/{account.tenant.slug}/batches/")
    assert len(first.context["jobs"].object_list) == 25 and "Jobs 1–25 of 30" in first.content.decode()
    second = client.get(f"/portal/t/{account.tenant.slug}/batches/?page=2")
    assert len(second.context["jobs"].object_list) == 5
    assert client.get(f"/portal/t/{account.tenant.slug}/batches/?page=x").context["jobs"].number == 1


@pytest.mark.parametrize("off_midnight", [timedelta(hours=7, minutes=41), timedelta(0)])
def test_cost_preview_of_a_month_with_a_price_and_a_tier_change_equals_rating(admin, off_midnight):
    """An ended month not invoiced yet is previewed exactly as the monthly run will bill it,
    including a price version and a tier switch that both start mid-month (inside an hour,
    or at midnight, where the preview sums the dashboard's daily rows instead)."""
    from tenants.services import tenant_change_tier

    client, account = admin
    tenant = account.tenant
    last = Period.previous(now=timezone.now())
    PriceVersion.objects.create(
        currency="EUR", effective_from=last.start + timedelta(days=9) + off_midnight, base_fee_standard_minor=5900,
        base_fee_green_minor=7900, standard_per_1k_minor=Decimal("40.125"), efficiency_per_1k_minor=Decimal("27.5"),
        accurate_per_1k_minor=Decimal("61"), batch_per_1k_minor=Decimal("18.5"), green_premium_percent=Decimal("25"))
    tenant_change_tier(tenant=tenant, tier="green", changed_by="ada", at=last.start + timedelta(days=17) + off_midnight)
    expected = sum(line.amount_minor for line in invoice_lines_for_period(tenant=tenant, period=last))
    summary = client.get(f"/portal/t/{tenant.slug}/?p={last.label}").context["summary"]
    [part] = summary.cost.parts
    assert (part.source, part.amount_minor) == ("preview", expected)


@pytest.mark.parametrize("query", ["p=2030-01", "p=2000", "p=2031-Q2", "from=2001-12-30&to=2002-01-02"])
def test_periods_without_data_render(admin, query):
    client, account = admin
    response = client.get(f"/portal/t/{account.tenant.slug}/?{query}")
    assert response.status_code == 200
    summary = response.context["summary"]
    assert (summary.predictions, summary.cost.parts) == (0, ())


def test_switcher_refuses_malformed_slugs(admin):
    client, _ = admin
    assert client.get("/portal/switch/?tenant=a%20b/../x").status_code == 404
