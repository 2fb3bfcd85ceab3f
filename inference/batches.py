"""Batch jobs: validated, content-addressed uploads; green-tier planning into the
lowest-carbon window before the deadline; idempotent runs metered into the ledger.

Savings are measured, not claimed: the plan stores the run-now intensity (the
counterfactual) from the same forecast as the planned window, and after the run the
job stores its measured energy, the intensity of the hour it actually ran in, and the
CO2e of that energy at the run-now intensity.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from carbon import units
from carbon.exceptions import PlanningError
from carbon.selectors import best_window, intensity_at
from inference import runtime
from inference.emissions import request_emissions
from inference.energy import power_model, thread_cpu_us
from inference.metering import UsageRecord, hour_of, usage_add
from inference.models import BatchInput, BatchJob, Mode, ModelFamily, Source
from inference.routing import routes_for
from tenants.models import Tenant, Tier
from tenants.scope import tenant_scope

ID_COLUMN = "id"


class BatchError(ValueError):
    """Bad batch input or deadline; the message says what to fix (a 400)."""

    def __init__(self, detail: str, *, code: str = "invalid_batch"):
        super().__init__(detail)
        self.detail = detail
        self.code = code


def feature_columns(n_features: int) -> list[str]:
    return [f"x{i}" for i in range(n_features)]


logger = logging.getLogger(__name__)


# --- reading and validating uploads ------------------------------------------------------


def _detect_format(content: bytes, filename: str) -> str:
    if content[:4] == b"PAR1" or filename.lower().endswith(".parquet"):
        return BatchInput.Format.PARQUET
    return BatchInput.Format.CSV


def batch_frame_read(*, content: bytes, filename: str = "", n_features: int) -> tuple[pd.DataFrame, str]:
    """The validated frame and its format. Raises BatchError naming what is wrong."""
    if not content:
        raise BatchError("The uploaded file is empty.", code="empty_file")
    if len(content) > settings.BATCH_MAX_BYTES:
        raise BatchError(f"The file is {len(content)} bytes; the limit is {settings.BATCH_MAX_BYTES}.",
                         code="file_too_large")
    fmt = _detect_format(content, filename)
    try:
        if fmt == BatchInput.Format.PARQUET:
            frame = pd.read_parquet(io.BytesIO(content))
        else:
            frame = pd.read_csv(io.BytesIO(content))
    except Exception as exc:  # pyarrow / pandas parser errors of many types
        kind = "Parquet" if fmt == BatchInput.Format.PARQUET else "CSV"
        raise BatchError(f"Cannot read the file as {kind}: {str(exc).splitlines()[0][:200]}",
                         code="unreadable_file") from None
    expected = feature_columns(n_features)
    columns = [str(c) for c in frame.columns]
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected and c != ID_COLUMN]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}")
        if extra:
            parts.append(f"unexpected column(s) {', '.join(extra[:5])}")
        raise BatchError(f"Columns must be {expected[0]}..{expected[-1]} (and optionally '{ID_COLUMN}'): "
                         + "; ".join(parts) + ".", code="wrong_columns")
    if len(frame) == 0:
        raise BatchError("The file has a header but no rows.", code="empty_file")
    if len(frame) > settings.BATCH_MAX_ROWS:
        raise BatchError(f"The file has {len(frame)} rows; the limit is {settings.BATCH_MAX_ROWS}.",
                         code="too_many_rows")
    for column in expected:
        if not pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column]):
            bad = next((v for v in frame[column] if not isinstance(v, (int, float, np.number))), None)
            raise BatchError(f"Column {column} must be numeric; found {bad!r}.", code="wrong_types")
    values = frame[expected].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all() or (np.abs(values) > np.finfo(np.float32).max).any():
        row, col = np.argwhere(~np.isfinite(values) | (np.abs(values) > np.finfo(np.float32).max))[0]
        raise BatchError(f"Row {row + 1}, column {expected[col]} is empty or not a finite number.",
                         code="wrong_types")
    return frame, fmt


# --- planning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    start: datetime
    end: datetime
    run_now_g_per_kwh: Decimal
    planned_g_per_kwh: Decimal
    provider: str
    method: str
    measurable: bool
    explanation: str


def estimated_seconds(*, rows: int, rows_per_second: int) -> int:
    """Conservative run time: measured throughput halved, plus start-up."""
    rate = rows_per_second or 10_000
    return int(math.ceil(2 * rows / rate)) + settings.BATCH_STARTUP_SECONDS


def batch_plan(*, tier: str, zone: str, now: datetime, deadline: datetime, seconds: int) -> Plan:
    """Green tier: the best window before the deadline; standard: at once.

    Raises BatchError when the deadline is past, too close to finish, or too far ahead."""
    duration = timedelta(seconds=seconds)
    if deadline <= now:
        raise BatchError("deadline is in the past.", code="invalid_deadline")
    if deadline - now < duration + timedelta(seconds=settings.BATCH_DEADLINE_MARGIN_SECONDS):
        raise BatchError(f"deadline is too close: the job needs about {seconds} s plus a "
                         f"{settings.BATCH_DEADLINE_MARGIN_SECONDS} s margin.", code="invalid_deadline")
    if deadline - now > timedelta(days=settings.BATCH_MAX_HORIZON_DAYS):
        raise BatchError(f"deadline is more than {settings.BATCH_MAX_HORIZON_DAYS} days ahead.",
                         code="invalid_deadline")
    if tier != Tier.GREEN:
        point = intensity_at(zone=zone, at=now)
        return Plan(start=now, end=now + duration, run_now_g_per_kwh=point.g_per_kwh,
                    planned_g_per_kwh=point.g_per_kwh, provider=point.source, method="run-now",
                    measurable=False, explanation="Standard tier: runs at once (green-tier jobs are shifted "
                                                  "into the lowest-carbon window before their deadline).")
    latest_end = deadline - timedelta(seconds=settings.BATCH_DEADLINE_MARGIN_SECONDS)
    try:
        window = best_window(zone=zone, start=now, end=latest_end, duration=duration)
    except PlanningError as exc:
        raise BatchError(f"Cannot plan before the deadline: {exc}", code="invalid_deadline") from None
    return Plan(start=window.window_start, end=window.window_end, run_now_g_per_kwh=window.run_now_g_per_kwh,
                planned_g_per_kwh=window.mean_g_per_kwh, provider=window.provider, method=window.forecast_method,
                measurable=window.is_measurable, explanation=window.explanation)


def _apply_plan(job: BatchJob, plan: Plan, now: datetime) -> None:
    job.planned_start, job.planned_end = plan.start, plan.end
    job.run_now_g_per_kwh, job.planned_g_per_kwh = plan.run_now_g_per_kwh, plan.planned_g_per_kwh
    job.plan_provider, job.plan_method = plan.provider[:100], plan.method[:32]
    job.plan_measurable, job.plan_explanation = plan.measurable, plan.explanation
    job.last_planned_at = now


# --- submission -----------------------------------------------------------------------------


def _store_bytes(relative: str, content: bytes) -> None:
    target = Path(settings.MEDIA_ROOT) / relative
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    os.replace(tmp, target)


def batch_job_submit(*, tenant: Tenant, family_name: str, mode: str, deadline: datetime, content: bytes,
                     filename: str = "") -> BatchJob:
    """Validate, store (deduplicated per tenant), plan and queue a batch job.

    Raises BatchError (bad file, columns, types, deadline) or UnknownFamily; in both
    cases nothing is stored. The run is queued after the transaction commits."""
    if mode not in Mode.values:
        raise BatchError(f"mode must be one of {', '.join(Mode.values)}.", code="invalid_mode")
    route = routes_for(family_name=family_name)[mode]
    frame, fmt = batch_frame_read(content=content, filename=filename, n_features=route.n_features)
    from inference.models import ModelVariant

    variant = ModelVariant.objects.get(id=route.variant_id)
    now = timezone.now()
    seconds = estimated_seconds(rows=len(frame), rows_per_second=variant.rows_per_second)
    plan = batch_plan(tier=tenant.tier, zone=tenant.grid_zone, now=now, deadline=deadline, seconds=seconds)

    sha256 = hashlib.sha256(content).hexdigest()
    relative = f"batches/{tenant.id}/inputs/{sha256}.{fmt}"
    with tenant_scope(tenant.id):
        _store_bytes(relative, content)
        batch_input, _ = BatchInput.objects.get_or_create(
            tenant=tenant, sha256=sha256,
            defaults={"format": fmt, "size_bytes": len(content), "rows": len(frame), "path": relative})
        job = BatchJob(tenant=tenant, input=batch_input, family=ModelFamily.objects.get(name=family_name),
                       variant=variant, mode=mode, tier=tenant.tier, deadline=deadline,
                       status=BatchJob.Status.PLANNED if tenant.tier == Tier.GREEN else BatchJob.Status.QUEUED,
                       estimated_seconds=seconds)
        _apply_plan(job, plan, now)
        job.save()
        transaction.on_commit(lambda: _enqueue(job))
    return job


def _enqueue(job: BatchJob) -> None:
    """Queue the run. If the broker is down, the job stays saved as planned/queued and
    batch_jobs_dispatch_overdue queues it once the broker is back: never an error for
    a request whose job was already stored."""
    from inference.tasks import batch_job_run

    eta = job.planned_start if job.planned_start > timezone.now() else None
    try:
        batch_job_run.apply_async(args=[job.id, job.tenant_id, job.plan_version], eta=eta, retry=False)
    except Exception:
        logger.warning("could not queue batch job %s (broker down?); the overdue dispatcher will", job.id,
                       exc_info=True)


# --- re-planning and dispatch -------------------------------------------------------------------


def batch_jobs_replan(*, now: datetime | None = None) -> int:
    """Re-plan green jobs not yet started with the freshest forecast; re-queue those whose
    best window moved. Returns how many moved. Cross-tenant: run by Celery beat."""
    from tenants.scope import all_tenants_scope

    now = now or timezone.now()
    lead = timedelta(seconds=settings.BATCH_REPLAN_LEAD_SECONDS)
    with all_tenants_scope():
        ids = list(BatchJob.all_tenants.filter(status=BatchJob.Status.PLANNED, planned_start__gt=now + lead)
                   .values_list("id", "tenant_id"))
    moved = 0
    for job_id, tenant_id in ids:
        with tenant_scope(tenant_id):
            job = BatchJob.objects.select_for_update().select_related("tenant").get(id=job_id)
            if job.status != BatchJob.Status.PLANNED:
                continue
            try:
                plan = batch_plan(tier=job.tier, zone=job.tenant.grid_zone, now=now, deadline=job.deadline,
                                  seconds=job.estimated_seconds)
            except BatchError:
                continue  # too late to move: keep the current plan
            # Keep the original counterfactual: savings stay measured against running at submission.
            run_now = job.run_now_g_per_kwh
            job.last_planned_at = now
            if plan.start != job.planned_start:
                _apply_plan(job, plan, now)
                job.run_now_g_per_kwh = run_now
                job.plan_version += 1
                moved += 1
                transaction.on_commit(lambda job=job: _enqueue(job))
            job.save()
    return moved


def batch_jobs_dispatch_overdue(*, now: datetime | None = None) -> int:
    """Safety net for lost broker messages: re-queue jobs due for a while but not
    started, and running jobs whose worker went silent. Runs are idempotent."""
    from tenants.scope import all_tenants_scope

    now = now or timezone.now()
    stale = timedelta(seconds=settings.BATCH_STALE_SECONDS)
    with all_tenants_scope():
        due = list(BatchJob.all_tenants.filter(
            status__in=[BatchJob.Status.PLANNED, BatchJob.Status.QUEUED], planned_start__lt=now - stale))
        silent = list(BatchJob.all_tenants.filter(status=BatchJob.Status.RUNNING, started_at__lt=now - 4 * stale))
    for job in due + silent:
        _enqueue(job)
    return len(due) + len(silent)


# --- running --------------------------------------------------------------------------------------


def _result_relative(job: BatchJob) -> str:
    return f"batches/{job.tenant_id}/results/{job.id}.parquet"


def batch_job_run(*, job_id: int, tenant_id: int, plan_version: int) -> str:
    """Run a job once, however often it is delivered. Returns what happened.

    Idempotent: a delivery for an old plan, or for a job already finished, does nothing;
    two deliveries racing both compute, but only the first to finish writes the result
    and the usage (the status check and the ledger write share one transaction)."""
    with tenant_scope(tenant_id):
        job = BatchJob.objects.select_for_update().select_related("input", "tenant").get(id=job_id)
        if job.status in (BatchJob.Status.SUCCEEDED, BatchJob.Status.FAILED):
            return "already-finished"
        if job.plan_version != plan_version:
            return "superseded"
        job.status = BatchJob.Status.RUNNING
        job.attempts += 1
        job.started_at = timezone.now()
        job.rows_done = 0
        job.save(update_fields=["status", "attempts", "started_at", "rows_done"])
        BatchInput.objects.filter(id=job.input_id).update(read_count=job.input.read_count + 1)
    route = routes_for(family_name=job.family.name)[job.mode]
    model = runtime.cached(route.path, sha256=route.sha256)

    cpu_start = thread_cpu_us()
    frame, _ = batch_frame_read(content=(Path(settings.MEDIA_ROOT) / job.input.path).read_bytes(),
                                filename=job.input.path, n_features=route.n_features)
    features = frame[feature_columns(route.n_features)].to_numpy(dtype=np.float32)
    predictions = np.empty(len(frame), dtype=np.int64)
    chunk = settings.BATCH_CHUNK_ROWS
    for offset in range(0, len(frame), chunk):
        predictions[offset:offset + chunk] = model.predict(features[offset:offset + chunk])
        with tenant_scope(tenant_id):
            BatchJob.objects.filter(id=job_id, status=BatchJob.Status.RUNNING).update(
                rows_done=min(offset + chunk, len(frame)))
    ids = frame[ID_COLUMN] if ID_COLUMN in frame.columns else pd.Series(np.arange(1, len(frame) + 1), name="row")
    result = pd.DataFrame({ids.name: ids.to_numpy(), "prediction": predictions})
    buffer = io.BytesIO()
    result.to_parquet(buffer, index=False)
    cpu_us = thread_cpu_us() - cpu_start
    content = buffer.getvalue()

    relative = _result_relative(job)
    target = Path(settings.MEDIA_ROOT) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
    with tenant_scope(tenant_id):
        job = BatchJob.objects.select_for_update().select_related("tenant").get(id=job_id)
        if job.status == BatchJob.Status.SUCCEEDED:
            os.unlink(tmp)
            return "lost-race"
        os.replace(tmp, target)
        finished = timezone.now()
        energy_uj = power_model().energy_uj(cpu_us)
        point = intensity_at(zone=job.tenant.grid_zone, at=job.started_at)
        co2e, embodied = request_emissions(energy_uj=energy_uj, cpu_us=cpu_us, g_per_kwh=point.g_per_kwh)
        usage_add([UsageRecord(
            tenant_id=tenant_id, hour=hour_of(job.started_at.timestamp()), variant_id=job.variant_id,
            mode=job.mode, source=Source.BATCH, predictions=len(frame), requests=1, cpu_us=cpu_us,
            inference_cpu_us=cpu_us, energy_uj=energy_uj, co2e_ug=co2e, embodied_co2e_ug=embodied,
            intensity_g_per_kwh=str(point.g_per_kwh), intensity_source=point.source[:100],
        )], energy_method=power_model().method)
        job.status = BatchJob.Status.SUCCEEDED
        job.finished_at = finished
        job.rows_done = len(frame)
        job.result_path = relative
        job.result_sha256 = hashlib.sha256(content).hexdigest()
        job.cpu_us, job.energy_uj = cpu_us, energy_uj
        job.actual_g_per_kwh = point.g_per_kwh
        job.co2e_ug = co2e
        job.run_now_co2e_ug = units.co2e_ug(energy_uj=energy_uj, g_per_kwh=job.run_now_g_per_kwh)
        job.error = ""
        job.save()
    return "succeeded"


def batch_job_fail(*, job_id: int, tenant_id: int, error: str) -> None:
    with tenant_scope(tenant_id):
        BatchJob.objects.filter(id=job_id).exclude(status=BatchJob.Status.SUCCEEDED).update(
            status=BatchJob.Status.FAILED, error=error[:2000], finished_at=timezone.now())


def batch_result_frame(*, job: BatchJob) -> pd.DataFrame:
    """The result of a finished job; counts the read for the retention report."""
    BatchJob.objects.filter(id=job.id).update(result_read_count=job.result_read_count + 1)
    return pd.read_parquet(Path(settings.MEDIA_ROOT) / job.result_path)

