"""Retention: keep only the data that has value.

Per tenant (RetentionPolicy; defaults when none is set):
- usage detail: every calendar month that ended more than `usage_detail_days` ago is
  archived as one compressed Parquet file in cold storage
  (COLD_STORAGE_DIR/<tenant>/usage/<YYYY-MM>.parquet), then its hourly rows are replaced
  by monthly aggregate rows (same ledger table, `monthly_aggregate=True`, hour = the
  month's first hour), in one transaction. Invoices and reports keep working on the
  aggregates; hourly detail is in the archive.
- batch outputs past `batch_outputs_days` are deleted (the job keeps its figures).
- batch inputs past `batch_inputs_days` are deleted once no job still needs them
  (content-addressed uploads may be shared by several jobs).

Idempotent: a month already compacted is skipped; the archive is written under a
temporary name and renamed, and rewriting it gives the same rows; a second run finds
nothing to do. The retention report counts stored volume by kind, age and reads.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from inference.metering import SUM_FIELDS
from inference.models import BatchInput, BatchJob, RetentionPolicy, UsageHour
from tenants.models import Tenant
from tenants.scope import all_tenants_scope, tenant_scope
from tenants.services import audit_record

# Hourly detail must outlive the invoice run of its month (run on the 1st, re-runnable):
# two months is the shortest policy accepted.
MIN_USAGE_DETAIL_DAYS = 62
ACTIVE_JOB_STATUSES = (BatchJob.Status.PLANNED, BatchJob.Status.QUEUED, BatchJob.Status.RUNNING)


class RetentionError(ValueError):
    pass


def retention_policy_get(*, tenant: Tenant) -> RetentionPolicy:
    """The tenant's policy, or an unsaved one with the defaults."""
    return RetentionPolicy.objects.filter(tenant=tenant).first() or RetentionPolicy(tenant=tenant)


def _policy_json(policy: RetentionPolicy) -> dict:
    return {"batch_inputs_days": policy.batch_inputs_days, "batch_outputs_days": policy.batch_outputs_days,
            "usage_detail_days": policy.usage_detail_days}


def retention_policy_set(*, tenant: Tenant, batch_inputs_days: int, batch_outputs_days: int,
                         usage_detail_days: int, actor: str) -> RetentionPolicy:
    """Raises RetentionError for a usage-detail period shorter than two months."""
    if usage_detail_days < MIN_USAGE_DETAIL_DAYS:
        raise RetentionError(f"usage_detail_days must be at least {MIN_USAGE_DETAIL_DAYS} (a month must be "
                             "invoiced before its hourly detail is archived).")
    if min(batch_inputs_days, batch_outputs_days) < 1:
        raise RetentionError("batch_inputs_days and batch_outputs_days must be at least 1.")
    with tenant_scope(tenant.id):
        policy = RetentionPolicy.objects.select_for_update().filter(tenant=tenant).first()
        before = _policy_json(policy) if policy else None
        policy = policy or RetentionPolicy(tenant=tenant)
        policy.batch_inputs_days, policy.batch_outputs_days = batch_inputs_days, batch_outputs_days
        policy.usage_detail_days = usage_detail_days
        policy.save()
        audit_record(actor=actor, action="retention.set", target_type="retention_policy", target_id=tenant.slug,
                     tenant=tenant, before=before, after=_policy_json(policy))
    return policy


def _month_end(start: datetime) -> datetime:
    return datetime(start.year + (start.month == 12), start.month % 12 + 1, 1, tzinfo=UTC)


def _archive_path(tenant_id: int, month: datetime) -> Path:
    return Path(settings.COLD_STORAGE_DIR) / str(tenant_id) / "usage" / f"{month:%Y-%m}.parquet"


USAGE_COLUMNS = ["hour", "variant_id", "mode", "source", "energy_method", *SUM_FIELDS, "intensity_g_per_kwh",
                 "intensity_source"]


def _archive_usage_month(tenant_id: int, month: datetime) -> int:
    """Archive and compact one month of one tenant's detail. Returns rows archived."""
    end = _month_end(month)
    with tenant_scope(tenant_id):
        rows = UsageHour.objects.select_for_update().filter(tenant_id=tenant_id, hour__gte=month, hour__lt=end,
                                                             monthly_aggregate=False)
        detail = list(rows.order_by("hour", "id").values(*USAGE_COLUMNS))
        if not detail:
            return 0
        frame = pd.DataFrame(detail)
        frame["hour"] = pd.to_datetime(frame["hour"], utc=True)
        frame["intensity_g_per_kwh"] = frame["intensity_g_per_kwh"].astype(str)
        target = _archive_path(tenant_id, month)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # an earlier run archived part of it and died before compacting
            earlier = pd.read_parquet(target)
            frame = pd.concat([earlier, frame]).drop_duplicates().reset_index(drop=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        os.close(fd)
        frame.to_parquet(tmp, index=False, compression="zstd")
        os.replace(tmp, target)

        groups = {}
        for row in detail:
            key = (row["variant_id"], row["mode"], row["source"], row["energy_method"])
            group = groups.setdefault(key, {name: 0 for name in SUM_FIELDS} | {
                "intensity_g_per_kwh": row["intensity_g_per_kwh"], "intensity_source": row["intensity_source"]})
            for name in SUM_FIELDS:
                group[name] += row[name]
        rows.delete()
        for (variant_id, mode, source, method), sums in groups.items():
            existing = UsageHour.objects.filter(tenant_id=tenant_id, hour=month, variant_id=variant_id, mode=mode,
                                                source=source, energy_method=method).first()
            if existing is not None:  # a later straggler for an already compacted month
                for name in SUM_FIELDS:
                    setattr(existing, name, getattr(existing, name) + sums[name])
                existing.monthly_aggregate = True
                existing.save()
            else:
                UsageHour.objects.create(tenant_id=tenant_id, hour=month, variant_id=variant_id, mode=mode,
                                         source=source, energy_method=method, monthly_aggregate=True, **sums)
    return len(detail)


def _delete_file(relative: str) -> int:
    path = Path(settings.MEDIA_ROOT) / relative
    try:
        size = path.stat().st_size
        path.unlink()
        return size
    except FileNotFoundError:
        return 0


@dataclass
class RetentionSummary:
    usage_rows_archived: int = 0
    usage_months_archived: int = 0
    batch_outputs_deleted: int = 0
    batch_inputs_deleted: int = 0
    bytes_freed: int = 0


def retention_run_for_tenant(*, tenant: Tenant, now: datetime) -> RetentionSummary:
    summary = RetentionSummary()
    with tenant_scope(tenant.id):
        policy = retention_policy_get(tenant=tenant)
        cutoff = now - timedelta(days=policy.usage_detail_days)
        oldest = UsageHour.objects.filter(tenant=tenant, monthly_aggregate=False).aggregate(first=Min("hour"))["first"]
    if oldest is not None:
        month = datetime(oldest.year, oldest.month, 1, tzinfo=UTC)
        while _month_end(month) <= cutoff:
            with transaction.atomic():
                archived = _archive_usage_month(tenant.id, month)
            if archived:
                summary.usage_rows_archived += archived
                summary.usage_months_archived += 1
            month = _month_end(month)

    with tenant_scope(tenant.id):
        outputs = BatchJob.objects.filter(tenant=tenant, finished_at__lt=now - timedelta(days=policy.batch_outputs_days),
                                          result_purged_at__isnull=True).exclude(result_path="")
        for job in outputs:
            summary.bytes_freed += _delete_file(job.result_path)
            BatchJob.objects.filter(id=job.id).update(result_purged_at=now)
            summary.batch_outputs_deleted += 1
        inputs = (BatchInput.objects.filter(tenant=tenant, created_at__lt=now - timedelta(days=policy.batch_inputs_days),
                                            purged_at__isnull=True)
                  .exclude(jobs__status__in=ACTIVE_JOB_STATUSES))
        for batch_input in inputs.distinct():
            # re-check under lock: a job submitted meanwhile may reference it again
            locked = BatchInput.objects.select_for_update().get(id=batch_input.id)
            if BatchJob.objects.filter(input=locked, status__in=ACTIVE_JOB_STATUSES).exists():
                continue
            summary.bytes_freed += _delete_file(locked.path)
            BatchInput.objects.filter(id=locked.id).update(purged_at=now)
            summary.batch_inputs_deleted += 1
    return summary


def retention_run(*, now: datetime | None = None) -> dict:
    """The daily run over every tenant. Returns totals."""
    now = now or timezone.now()
    with all_tenants_scope():
        tenants = list(Tenant.objects.order_by("id"))
    total = RetentionSummary()
    for tenant in tenants:
        result = retention_run_for_tenant(tenant=tenant, now=now)
        for field in total.__dataclass_fields__:
            setattr(total, field, getattr(total, field) + getattr(result, field))
    return total.__dict__


def retention_report(*, tenant: Tenant, now: datetime | None = None) -> dict:
    """Stored volume by kind, age and how often each kind was read (inside tenant scope)."""
    now = now or timezone.now()

    def age_days(oldest):
        return None if oldest is None else (now - oldest).days

    inputs = BatchInput.objects.filter(tenant=tenant, purged_at__isnull=True).aggregate(
        count=Count("id"), bytes=Sum("size_bytes"), oldest=Min("created_at"), reads=Sum("read_count"))
    output_jobs = BatchJob.objects.filter(tenant=tenant, result_purged_at__isnull=True).exclude(result_path="")
    output_bytes = 0
    for relative in output_jobs.values_list("result_path", flat=True):
        path = Path(settings.MEDIA_ROOT) / relative
        output_bytes += path.stat().st_size if path.exists() else 0
    outputs = output_jobs.aggregate(count=Count("id"), oldest=Min("finished_at"), reads=Sum("result_read_count"))
    usage = UsageHour.objects.filter(tenant=tenant).aggregate(
        detail_rows=Count("id", filter=~_aggregate_q()), monthly_rows=Count("id", filter=_aggregate_q()),
        oldest=Min("hour"), newest=Max("hour"))
    archive_dir = Path(settings.COLD_STORAGE_DIR) / str(tenant.id) / "usage"
    archives = sorted(archive_dir.glob("*.parquet")) if archive_dir.exists() else []
    policy = retention_policy_get(tenant=tenant)
    return {
        "policy": _policy_json(policy),
        "batch_inputs": {"files": inputs["count"], "bytes": inputs["bytes"] or 0,
                         "oldest_age_days": age_days(inputs["oldest"]), "reads": inputs["reads"] or 0},
        "batch_outputs": {"files": outputs["count"], "bytes": output_bytes,
                          "oldest_age_days": age_days(outputs["oldest"]), "reads": outputs["reads"] or 0},
        "usage_detail": {"hourly_rows": usage["detail_rows"], "monthly_rows": usage["monthly_rows"],
                         "oldest_age_days": age_days(usage["oldest"]),
                         "archived_months": [p.stem for p in archives],
                         "archive_bytes": sum(p.stat().st_size for p in archives)},
    }


def _aggregate_q():
    from django.db.models import Q

    return Q(monthly_aggregate=True)
