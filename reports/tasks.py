"""Celery tasks: requested reports, the annual carbon reports and the monthly SLA run.

Each task takes ids or labels, calls one service and is safe to run twice (acks_late: a
task killed with its worker is delivered again): report_build skips a report that is no
longer pending, report_generate returns the stored report when its inputs are unchanged,
and SLA evaluations are stored once per tenant, terms and month.
"""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from billing.periods import Period
from reports.models import ReportKind
from reports.services import finance_reports_generate, report_build, report_generate
from tenants.models import Tenant

# An annual report takes ~2 s (bench/reports.py); 5 minutes means something is stuck.
REPORT_SOFT_LIMIT_SECONDS = 300


def _same_queue(task) -> str | None:
    """Fan out to the queue this task came from (beat's default queue in production)."""
    return (task.request.delivery_info or {}).get("routing_key") or None


@shared_task(name="reports.report_build", acks_late=True, soft_time_limit=REPORT_SOFT_LIMIT_SECONDS,
             time_limit=REPORT_SOFT_LIMIT_SECONDS + 60)
def report_build_task(report_id: int, tenant_id: int) -> str:
    """A report requested through POST /v1/reports."""
    return report_build(report_id=report_id, tenant_id=tenant_id).status


@shared_task(name="reports.report_generate", acks_late=True, soft_time_limit=REPORT_SOFT_LIMIT_SECONDS,
             time_limit=REPORT_SOFT_LIMIT_SECONDS + 60)
def report_generate_task(tenant_id: int, kind: str, period: str) -> int:
    tenant = Tenant.objects.get(id=tenant_id)
    report, _ = report_generate(tenant=tenant, kind=kind, period=period, requested_by="beat")
    return report.id


@shared_task(name="reports.carbon_reports_annual", bind=True)
def carbon_reports_annual(self, year: int | None = None) -> dict:
    """Beat, early January: last year's carbon report for every tenant that existed in it."""
    year = year or timezone.now().year - 1
    end = Period.month(year, 12).end
    tenant_ids = list(Tenant.objects.filter(created_at__lt=end).order_by("id").values_list("id", flat=True))
    for tenant_id in tenant_ids:
        report_generate_task.apply_async(kwargs={"tenant_id": tenant_id, "kind": ReportKind.CARBON_REPORT,
                                                 "period": str(year)}, queue=_same_queue(self))
    return {"year": year, "tenants": len(tenant_ids)}


@shared_task(name="reports.sla_run_monthly", acks_late=True, soft_time_limit=3600, time_limit=3700)
def sla_run_monthly(period: str | None = None) -> dict:
    """Beat, 1st of the month: evaluate last month's SLAs for every tenant, store each one's
    SLA statement, and write the finance SLA report and revenue summary (MEDIA_ROOT/reports/finance/).
    Run after billing.invoice_run_monthly so the statements can name the credited invoice lines
    (credits reach invoices either way: rating evaluates a month on demand)."""
    month = Period.parse(period) if period else Period.previous(now=timezone.now())
    run = finance_reports_generate(period=month, statements=True)
    return {"period": run.period, "tenants": run.tenants, "evaluations": run.evaluations, "breached": run.breached,
            "failed": len(run.failed)}
