"""Celery tasks of the inference app: each loads by id, calls one service, is idempotent."""

from __future__ import annotations

import logging

from celery import shared_task

from inference import batches

logger = logging.getLogger(__name__)


@shared_task(name="inference.batch_job_run", acks_late=True, reject_on_worker_lost=True, max_retries=3,
             # A million rows of the large MLP take about 2 min on one core; 30 min is a stuck job.
             soft_time_limit=1800, time_limit=1900)
def batch_job_run(job_id: int, tenant_id: int, plan_version: int) -> str:
    try:
        return batches.batch_job_run(job_id=job_id, tenant_id=tenant_id, plan_version=plan_version)
    except batches.BatchError as exc:  # the stored input no longer validates: permanent
        batches.batch_job_fail(job_id=job_id, tenant_id=tenant_id, error=exc.detail)
        return "failed"


@shared_task(name="inference.batch_jobs_replan")
def batch_jobs_replan() -> int:
    return batches.batch_jobs_replan()


@shared_task(name="inference.batch_jobs_dispatch_overdue")
def batch_jobs_dispatch_overdue() -> int:
    return batches.batch_jobs_dispatch_overdue()


@shared_task(name="inference.metering_recover")
def metering_recover() -> int:
    """Periodic: count the spools of dead web processes (also done by live web processes)."""
    from pathlib import Path

    from django.conf import settings

    from inference.metering import recover_orphans

    return recover_orphans(Path(settings.METERING_SPOOL_DIR))


@shared_task(name="inference.budgets_evaluate")
def budgets_evaluate() -> int:
    from inference.budgets import budgets_evaluate as evaluate

    return evaluate()


@shared_task(name="inference.retention_run", acks_late=True)
def retention_run() -> dict:
    from inference.retention import retention_run as run

    return run()
