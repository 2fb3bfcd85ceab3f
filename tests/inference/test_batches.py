"""Batch jobs: bad-upload matrix, dedupe, green planning, idempotent runs, real worker."""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.utils import timezone

from carbon.models import GridIntensity
from carbon.selectors import intensity_cache_clear, intensity_forecast
from inference import batches
from inference.metering import usage_flush
from inference.models import BatchInput, BatchJob, UsageHour
from tenants.scope import all_tenants_scope, tenant_scope

pytestmark = pytest.mark.django_db


def csv_bytes(rows: np.ndarray, with_id: bool = True) -> bytes:
    frame = pd.DataFrame(rows, columns=[f"x{i}" for i in range(rows.shape[1])])
    if with_id:
        frame.insert(0, "id", [f"r{i}" for i in range(len(rows))])
    return frame.to_csv(index=False).encode()


def upload(client, content: bytes, *, name="in.csv", model="digits-classifier", mode="standard", deadline=None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    deadline = deadline or (timezone.now() + timedelta(hours=12)).isoformat()
    return client.post("/v1/batches", {"file": SimpleUploadedFile(name, content), "model": model, "mode": mode,
                                       "deadline": deadline}, format="multipart")


def nothing_stored(tenant):
    with tenant_scope(tenant.id):
        assert BatchInput.objects.count() == 0
        assert BatchJob.objects.count() == 0
    folder = Path(settings.MEDIA_ROOT) / "batches" / str(tenant.id)
    assert not folder.exists() or not any(folder.rglob("*.*"))


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _bad_uploads(X):
    good = pd.DataFrame(X[:3], columns=[f"x{i}" for i in range(64)])
    soon = (timezone.now() + timedelta(seconds=60)).isoformat()
    return [
        ("wrong columns", dict(content=good.drop(columns=["x63"]).to_csv(index=False).encode()), "wrong_columns"),
        ("extra column", dict(content=good.assign(colour="red").to_csv(index=False).encode()), "wrong_columns"),
        ("wrong types", dict(content=good.astype(object).assign(x5="five").to_csv(index=False).encode()),
         "wrong_types"),
        ("empty value", dict(content=good.to_csv(index=False).replace(",", ",,", 1).encode()), None),
        ("nan", dict(content=good.assign(x1=np.nan).to_csv(index=False).encode()), "wrong_types"),
        ("empty file", dict(content=b""), "empty_file"),
        ("header only", dict(content=",".join(f"x{i}" for i in range(64)).encode() + b"\n"), "empty_file"),
        ("unreadable parquet", dict(content=b"PAR1 this is not parquet", name="in.parquet"), "unreadable_file"),
        ("parquet wrong columns", dict(content=parquet_bytes(good.rename(columns={"x0": "a"})), name="in.parquet"),
         "wrong_columns"),
        ("past deadline", dict(content=csv_bytes(X[:3]), deadline="2020-01-01T00:00:00Z"), "invalid_deadline"),
        ("deadline too close", dict(content=csv_bytes(X[:3]), deadline=soon), "invalid_deadline"),
        ("deadline too far", dict(content=csv_bytes(X[:3]), deadline="2099-01-01T00:00:00Z"), "invalid_deadline"),
        ("naive deadline", dict(content=csv_bytes(X[:3]), deadline="2030-01-01T00:00:00"), "invalid_deadline"),
        ("garbage deadline", dict(content=csv_bytes(X[:3]), deadline="tomorrow"), "invalid_request"),
        ("unknown model", dict(content=csv_bytes(X[:3]), model="nope"), "unknown_model"),
        ("bad mode", dict(content=csv_bytes(X[:3]), mode="turbo"), "invalid_request"),
    ]


@pytest.mark.parametrize("case", range(16))
def test_bad_uploads_are_400_and_store_nothing(case, digits_family, digits_models, make_tenant, api_client_for):
    X, _, _ = digits_models
    label, kwargs, code = _bad_uploads(X)[case]
    tenant = make_tenant()
    response = upload(api_client_for(tenant, scopes=["batches"]), **kwargs)
    assert response.status_code == 400, (label, response.content)
    if code:
        assert response.json()["code"] == code, label
    assert response.json()["detail"]
    nothing_stored(tenant)


def test_oversize_upload_is_rejected(digits_family, digits_models, make_tenant, api_client_for, settings):
    X, _, _ = digits_models
    settings.BATCH_MAX_BYTES = 1000
    tenant = make_tenant()
    response = upload(api_client_for(tenant), csv_bytes(X[:50]))
    assert response.status_code == 400
    assert response.json()["code"] == "file_too_large"
    nothing_stored(tenant)


def test_batches_need_multipart_and_scope(digits_family, make_tenant, api_client_for):
    tenant = make_tenant()
    assert api_client_for(tenant).post("/v1/batches", {"model": "x"}, format="json").status_code == 415
    assert upload(api_client_for(tenant, scopes=["predict"]), b"x0\n1\n").status_code == 403


def test_standard_tier_runs_now_and_meters_once(digits_family, digits_models, make_tenant, api_client_for,
                                                 django_capture_on_commit_callbacks):
    family, baseline, _ = digits_family
    X, _, _ = digits_models
    tenant = make_tenant(tier="standard")
    client = api_client_for(tenant)
    with django_capture_on_commit_callbacks(execute=True):  # eager Celery: runs inline on commit
        response = upload(client, csv_bytes(X[:40]))
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    body = client.get(f"/v1/batches/{job_id}").json()
    assert body["status"] == "succeeded"
    assert body["plan"]["forecast"] == "run-now"
    assert body["progress"] == {"rows_done": 40, "rows": 40, "fraction": 1.0}
    assert body["savings"]["saved_co2e_ug"] == 0
    result = client.get(f"/v1/batches/{job_id}/results")
    frame = pd.read_csv(io.BytesIO(result.content))
    from inference import runtime
    from inference.registry import artifact_path

    expected = runtime.load(artifact_path(baseline.artifact)).predict(X[:40].astype(np.float32))
    assert frame["id"].tolist() == [f"r{i}" for i in range(40)]
    assert frame["prediction"].tolist() == expected.tolist()
    parquet = pd.read_parquet(io.BytesIO(client.get(f"/v1/batches/{job_id}/results?format=parquet").content))
    assert parquet["prediction"].tolist() == expected.tolist()

    usage_flush()
    with tenant_scope(tenant.id):
        [row] = UsageHour.objects.all()
        job = BatchJob.objects.get(id=job_id)
    assert (row.source, row.predictions, row.requests, row.energy_uj) == ("batch", 40, 1, job.energy_uj)
    # a second delivery of the same task changes nothing
    assert batches.batch_job_run(job_id=job_id, tenant_id=tenant.id, plan_version=job.plan_version) == \
        "already-finished"
    with tenant_scope(tenant.id):
        assert UsageHour.objects.get().predictions == 40
        assert BatchJob.objects.get(id=job_id).attempts == 1


def test_uploads_are_deduplicated_per_tenant(digits_family, digits_models, make_tenant, api_client_for):
    X, _, _ = digits_models
    a, b = make_tenant(), make_tenant()
    content = csv_bytes(X[:5])
    for client in (api_client_for(a), api_client_for(a), api_client_for(b)):
        assert upload(client, content).status_code == 201
    with tenant_scope(a.id):
        assert BatchInput.objects.count() == 1
        assert BatchJob.objects.count() == 2
    with tenant_scope(b.id):
        assert BatchInput.objects.count() == 1


def _seed_daily_pattern(zone: str, days: int = 15, low_hour: int = 3) -> None:
    """Stored history: 400 g/kWh every hour except 100 g/kWh at `low_hour` UTC."""
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=days)
    GridIntensity.objects.bulk_create([
        GridIntensity(zone=zone, start=start + timedelta(hours=h), end=start + timedelta(hours=h + 1),
                      intensity_g_per_kwh=Decimal(100 if (start + timedelta(hours=h)).hour == low_hour else 400),
                      kind="lifecycle", source="test-pattern")
        for h in range(days * 24)])
    intensity_cache_clear()


def test_green_tier_is_planned_into_the_lowest_window(digits_family, digits_models, make_tenant, api_client_for):
    X, _, _ = digits_models
    _seed_daily_pattern("DE")
    tenant = make_tenant(tier="green", grid_zone="DE")
    client = api_client_for(tenant)
    now = timezone.now()
    deadline = now + timedelta(hours=30)
    response = upload(client, csv_bytes(X[:10]), deadline=deadline.isoformat())
    assert response.status_code == 201, response.content
    plan = response.json()["plan"]
    assert response.json()["status"] == "planned"
    start = datetime.fromisoformat(plan["window_start"])
    assert start.astimezone(UTC).hour == 3  # inside the clean hour (slots run from submission time)
    assert now < start < deadline
    assert plan["planned_g_per_kwh"] == "100.000"
    assert plan["forecast"] == "seasonal-naive"
    assert plan["measurable"] is True
    # the counterfactual is the same forecast's value for running at once
    forecast = intensity_forecast(zone="DE", start=now, end=now + timedelta(hours=1))
    assert Decimal(plan["run_now_g_per_kwh"]) == forecast.points[0].g_per_kwh


def test_green_plan_with_only_the_annual_average_says_nothing_is_saved(digits_family, digits_models, make_tenant,
                                                                     api_client_for):
    X, _, _ = digits_models
    tenant = make_tenant(tier="green", grid_zone="FR")
    response = upload(api_client_for(tenant), csv_bytes(X[:3]))
    plan = response.json()["plan"]
    assert plan["forecast"] == "annual-average"
    assert plan["measurable"] is False
    assert plan["planned_g_per_kwh"] == plan["run_now_g_per_kwh"]
    assert "nothing measurable" in plan["explanation"] or "saves nothing" in plan["explanation"]


def test_other_tenants_batches_are_404(digits_family, digits_models, make_tenant, api_client_for,
                                       django_capture_on_commit_callbacks):
    X, _, _ = digits_models
    a, b = make_tenant(), make_tenant()
    with django_capture_on_commit_callbacks(execute=True):
        job_id = upload(api_client_for(a), csv_bytes(X[:3])).json()["id"]
    client_b = api_client_for(b)
    for path in (f"/v1/batches/{job_id}", f"/v1/batches/{job_id}/results"):
        response = client_b.get(path)
        assert response.status_code == 404
        assert response.json() == client_b.get(path.replace(str(job_id), "987654321")).json()
    assert client_b.get("/v1/batches").json() == []
    with tenant_scope(a.id):
        assert BatchJob.objects.get(id=job_id).result_read_count == 0


def test_results_before_success_are_409(digits_family, digits_models, make_tenant, api_client_for):
    X, _, _ = digits_models
    tenant = make_tenant(tier="green", grid_zone="FR")
    client = api_client_for(tenant)
    job_id = upload(client, csv_bytes(X[:3])).json()["id"]  # on_commit never fires here: stays planned
    response = client.get(f"/v1/batches/{job_id}/results")
    assert response.status_code == 409
    assert response.json()["code"] == "not_ready"


# --- through a real Celery worker on Redis ------------------------------------------------------


def _wait(predicate, timeout=60, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting")


def _job(tenant, job_id) -> BatchJob:
    with tenant_scope(tenant.id):
        return BatchJob.objects.get(id=job_id)


def test_green_job_lifecycle_on_a_real_worker(celery_worker, digits_family, digits_models, make_tenant,
                                              api_client_for):
    from config.celery import app

    X, _, _ = digits_models
    _seed_daily_pattern("DE")
    tenant = make_tenant(tier="green", grid_zone="DE")
    client = api_client_for(tenant)
    response = upload(client, csv_bytes(X[:25]), deadline=(timezone.now() + timedelta(hours=30)).isoformat())
    job_id = response.json()["id"]
    planned = datetime.fromisoformat(response.json()["plan"]["window_start"])

    # The worker holds the task until the planned window: its eta is the plan's start.
    def scheduled():
        found = app.control.inspect(destination=[f"test-{celery_worker.queue}@{__import__('socket').gethostname()}"],
                                    timeout=2).scheduled() or {}
        return [s for tasks in found.values() for s in tasks if s["request"]["args"][0] == job_id]

    [held] = _wait(scheduled)
    assert datetime.fromisoformat(held["eta"]) == planned
    assert _job(tenant, job_id).status == "planned"

    # A fresher forecast makes "now" the cleanest hour: re-planning moves the window,
    # queues a new run, and the held task (for the old plan) becomes a no-op.
    GridIntensity.objects.filter(zone="DE").delete()
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    week_ago = hour - timedelta(days=7)
    GridIntensity.objects.bulk_create([
        GridIntensity(zone="DE", start=week_ago + timedelta(hours=h), end=week_ago + timedelta(hours=h + 1),
                      intensity_g_per_kwh=Decimal(50 if h == 0 else 500), kind="lifecycle", source="test-pattern")
        for h in range(48)])
    intensity_cache_clear()
    with all_tenants_scope():  # keep the old plan comfortably in the future for the re-planner
        BatchJob.all_tenants.filter(id=job_id).update(planned_start=timezone.now() + timedelta(hours=2))
    assert batches.batch_jobs_replan() == 1
    job = _wait(lambda: (j := _job(tenant, job_id)).status == "succeeded" and j)
    assert job.plan_version == 2
    assert job.attempts == 1
    usage_flush()
    with tenant_scope(tenant.id):
        assert [(u.source, u.predictions) for u in UsageHour.objects.all()] == [("batch", 25)]


def test_worker_killed_mid_job_gives_one_result_and_one_metering(celery_worker, digits_family, digits_models,
                                                                  make_tenant, api_client_for, settings,
                                                                  monkeypatch):
    X, _, _ = digits_models
    tenant = make_tenant(tier="standard")
    client = api_client_for(tenant)
    rows = np.tile(X, (8, 1))[:3000]
    # Tiny chunks make the job slow enough (a DB write per row) to kill it mid-run.
    celery_worker.stop()
    celery_worker.extra_env = {"BATCH_CHUNK_ROWS": "1"}
    celery_worker.start()
    response = upload(client, csv_bytes(rows, with_id=False))
    job_id = response.json()["id"]
    _wait(lambda: _job(tenant, job_id).rows_done > 50, timeout=120, interval=0.05)
    celery_worker.kill()
    killed = _job(tenant, job_id)
    assert killed.status == "running" and 0 < killed.rows_done < 3000
    celery_worker.extra_env = {}
    celery_worker.start()
    # Our safety net re-queues the job whose worker went silent (the broker's own
    # redelivery, if it comes, is a harmless duplicate).
    assert batches.batch_jobs_dispatch_overdue(now=timezone.now() + timedelta(hours=1)) == 1
    job = _wait(lambda: (j := _job(tenant, job_id)).status == "succeeded" and j, timeout=120)
    assert job.attempts == 2
    frame = pd.read_csv(io.BytesIO(client.get(f"/v1/batches/{job_id}/results").content))
    assert len(frame) == 3000 and frame["row"].tolist() == list(range(1, 3001))
    # a late duplicate delivery does nothing
    assert batches.batch_job_run(job_id=job_id, tenant_id=tenant.id, plan_version=1) == "already-finished"
    usage_flush()
    with tenant_scope(tenant.id):
        assert [(u.source, u.predictions, u.requests) for u in UsageHour.objects.all()] == [("batch", 3000, 1)]
    results = list((Path(settings.MEDIA_ROOT) / "batches" / str(tenant.id) / "results").iterdir())
    assert [p.name for p in results] == [f"{job_id}.parquet"]
