"""GET/POST /v1/reports, GET /v1/reports/{id} and /download: tenant isolation, errors, Celery."""

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings

from reports.models import Report
from reports.services import report_file_path, report_generate
from tenants.scope import all_tenants_scope, tenant_scope
from tests.reports.conftest import NOW, pdf_text, sha256

pytestmark = pytest.mark.django_db


def stored_report(tenant, content: bytes = b"%PDF-1.7 stand-in") -> Report:
    """A ready report row and its file, without rendering (for access tests)."""
    fingerprint = sha256(content + str(tenant.id).encode())
    path = Path(settings.MEDIA_ROOT) / f"reports/{tenant.id}/carbon_report-2025-{fingerprint}.pdf"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    with tenant_scope(tenant.id):
        return Report.objects.create(
            tenant=tenant, kind="carbon_report", period="2025", period_start=datetime(2025, 1, 1, tzinfo=UTC),
            period_end=datetime(2026, 1, 1, tzinfo=UTC), status="ready", fingerprint=fingerprint,
            sha256=sha256(content), size_bytes=len(content), pages=1,
            path=str(path.relative_to(settings.MEDIA_ROOT)))


@pytest.fixture
def two(old_tenant):
    mine, theirs = old_tenant(name="Mine Ltd"), old_tenant(name="Theirs Ltd")
    return {"mine": mine, "theirs": theirs, "report": stored_report(mine), "other": stored_report(theirs)}


def test_list_detail_and_download_of_own_reports(old_tenant, make_variant, add_usage, api_client_for):
    mine, theirs = old_tenant(name="Mine Ltd"), old_tenant(name="Theirs Ltd")
    add_usage(mine, make_variant(), datetime(2025, 4, 1, tzinfo=UTC), predictions=4_321)
    report, _ = report_generate(tenant=mine, kind="carbon_report", period="2025", now=NOW)
    stored_report(theirs)
    client = api_client_for(mine, scopes=["usage"])

    listed = client.get("/v1/reports")
    detail = client.get(f"/v1/reports/{report.id}")
    download = client.get(f"/v1/reports/{report.id}/download")
    content = b"".join(download.streaming_content)

    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [report.id]
    assert detail.json() == {
        "id": report.id, "kind": "carbon_report", "period": "2025", "period_start": "2025-01-01T00:00:00Z",
        "period_end": "2026-01-01T00:00:00Z", "status": "ready", "fingerprint": report.fingerprint,
        "sha256": report.sha256, "size_bytes": report.size_bytes, "pages": 5, "error": "",
        "created_at": detail.json()["created_at"], "finished_at": detail.json()["finished_at"],
        "download_url": f"/v1/reports/{report.id}/download",
    }
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert download["Content-Disposition"] == (
        f'attachment; filename="greentier-carbon-report-2025-{mine.slug}.pdf"')
    assert download["X-Report-Fingerprint"] == report.fingerprint
    assert content.startswith(b"%PDF-") and sha256(content) == report.sha256
    assert "PREDICTIONS SERVED 4,321" in pdf_text(content)


def test_another_tenants_report_is_a_404_like_a_missing_one(two, api_client_for):
    client = api_client_for(two["mine"], scopes=["usage"])
    other = two["other"]
    missing = other.id + 1000

    for path in (f"/v1/reports/{other.id}", f"/v1/reports/{other.id}/download"):
        theirs, absent = client.get(path), client.get(path.replace(str(other.id), str(missing)))
        assert (theirs.status_code, theirs.json()) == (absent.status_code, absent.json()) == (
            404, {"code": "not_found", "detail": "No such report."})
    assert client.get("/v1/reports/99999999999999999999").status_code == 404  # beyond bigint: still 404
    assert other.id not in [r["id"] for r in client.get("/v1/reports").json()]


def test_request_a_report_is_built_after_commit(old_tenant, api_client_for, django_capture_on_commit_callbacks):
    tenant = old_tenant()
    client = api_client_for(tenant, scopes=["usage"])

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post("/v1/reports", {"kind": "sla_statement", "period": "2025-11"}, format="json")

    assert response.status_code == 202 and response.json()["status"] == "pending"
    assert response.json()["download_url"] is None and len(callbacks) == 1
    with tenant_scope(tenant.id):
        report = Report.objects.get()
    assert (report.status, report.kind, report.period, report.pages, report.requested_by) == (
        "ready", "sla_statement", "2025-11", 1, f"api:{client.api_key.prefix}")
    assert report_file_path(report).read_bytes().startswith(b"%PDF-")


@pytest.mark.parametrize(("body", "code", "detail"), [
    ({"kind": "carbon_report", "period": "2025-11"}, "invalid_period",
     "a carbon report covers a calendar year, e.g. 2025"),
    ({"kind": "carbon_report", "period": "next year"}, "invalid_request",
     "period: Ensure this field has no more than 7 characters."),
    ({"kind": "carbon_report", "period": "2999"}, "invalid_period",
     "the year 2999 has no complete month yet; reports cover finished months only"),
    ({"kind": "invoice", "period": "2025"}, "invalid_request", 'kind: "invoice" is not a valid choice.'),
    ({"period": "2025"}, "invalid_request", "kind: This field is required."),
])
def test_bad_requests_say_what_to_fix_and_change_nothing(old_tenant, api_client_for, body, code, detail):
    tenant = old_tenant()
    response = api_client_for(tenant, scopes=["usage"]).post("/v1/reports", body, format="json")
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["detail"]) == (code, detail)
    with all_tenants_scope():
        assert Report.all_tenants.count() == 0


def test_the_usage_scope_is_required(two, api_client_for):
    client = api_client_for(two["mine"], scopes=["predict"])
    response = client.get(f"/v1/reports/{two['report'].id}/download")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    assert client.post("/v1/reports", {"kind": "carbon_report", "period": "2025"}, format="json").status_code == 403
    with all_tenants_scope():
        assert Report.all_tenants.count() == 2


def test_pending_and_failed_reports_cannot_be_downloaded(old_tenant, api_client_for):
    tenant = old_tenant()
    client = api_client_for(tenant, scopes=["usage"])
    with tenant_scope(tenant.id):
        pending = Report.objects.create(tenant=tenant, kind="carbon_report", period="2025", period_start=NOW,
                                        period_end=NOW)
        failed = Report.objects.create(tenant=tenant, kind="carbon_report", period="2025", period_start=NOW,
                                       period_end=NOW, status="failed", error="no price in effect")
    assert client.get(f"/v1/reports/{pending.id}/download").json() == {
        "code": "not_ready", "detail": "The report is still being generated; try again shortly."}
    response = client.get(f"/v1/reports/{failed.id}/download")
    assert (response.status_code, response.json()) == (409, {
        "code": "report_failed", "detail": "The report could not be generated: no price in effect"})


@pytest.mark.slow
def test_requested_report_is_built_by_a_real_worker(old_tenant, api_client_for, celery_worker):
    tenant = old_tenant()
    client = api_client_for(tenant, scopes=["usage"])
    response = client.post("/v1/reports", {"kind": "carbon_report", "period": "2025"}, format="json")
    report_id = response.json()["id"]

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = client.get(f"/v1/reports/{report_id}").json()
        if body["status"] != "pending":
            break
        time.sleep(0.2)
    assert (body["status"], body["pages"]) == ("ready", 2)  # no usage: the two-page report that says so
    download = client.get(body["download_url"])
    assert b"".join(download.streaming_content).startswith(b"%PDF-")


def test_a_report_that_cannot_be_built_is_marked_failed(old_tenant, make_variant, add_usage, make_terms,
                                                        api_client_for, django_capture_on_commit_callbacks):
    tenant = old_tenant()  # no price book: a breach cannot be valued
    variant = make_variant()
    make_terms(tenant, variant, target=1_000_000)
    add_usage(tenant, variant, datetime(2025, 11, 3, tzinfo=UTC), predictions=1_000, energy_uj=2_000_000)
    client = api_client_for(tenant, scopes=["usage"])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/v1/reports", {"kind": "sla_statement", "period": "2025-11"}, format="json")
    report_id = response.json()["id"]

    body = client.get(f"/v1/reports/{report_id}").json()
    assert (body["status"], body["download_url"]) == ("failed", None)
    assert body["error"].startswith(f"cannot price the SLA credit for tenant {tenant.slug} in 2025-11: no EUR price")
