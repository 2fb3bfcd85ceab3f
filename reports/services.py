"""Writes: generating and storing reports, and the monthly finance reports.

A tenant report (annual carbon report, SLA statement) is built from its inputs
(reports.selectors), rendered (reports.documents) and stored content-addressed:
MEDIA_ROOT/reports/<tenant_id>/<kind>-<period>-<fingerprint>.pdf, written once through a
temporary file and a rename, so a crash never leaves half a PDF under a real name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from billing.periods import Period, PeriodError
from reports import documents
from reports.models import Report, ReportKind, ReportStatus
from reports.pdf import PdfError
from reports.periods import ReportPeriod, ReportPeriodError, complete_months, report_period_parse
from reports.selectors import (
    carbon_report_inputs,
    finance_sla_inputs,
    invoice_inputs,
    revenue_summary_inputs,
    sla_statement_inputs,
)
from reports.sla import SlaError, sla_evaluate_period, sla_tenant_ids_with_terms
from tenants.models import Tenant
from tenants.scope import tenant_scope

logger = logging.getLogger(__name__)


class ReportError(ValueError):
    """A report that cannot be made as asked; `detail` says what to change."""

    def __init__(self, detail: str, *, code: str = "invalid_report"):
        super().__init__(detail)
        self.detail = detail
        self.code = code


class Progress(Protocol):
    """What long runs report progress to (tqdm fits)."""

    def reset(self, total: int | None = None) -> None: ...

    def update(self, n: int = 1) -> object: ...


# --- files -------------------------------------------------------------------------------------


def report_relative_path(*, tenant_id: int, kind: str, period: str, fingerprint: str) -> str:
    return f"reports/{tenant_id}/{kind}-{period}-{fingerprint}.pdf"


def report_file_path(report: Report) -> Path:
    return Path(settings.MEDIA_ROOT) / report.path


def _store_bytes(target: Path, content: bytes) -> bytes:
    """Write `content` at `target` unless a file is there already; returns the stored bytes."""
    if target.exists():
        return target.read_bytes()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(content)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return content


# --- tenant reports ----------------------------------------------------------------------------


def report_period_resolve(kind: str, label: str, *, now: datetime) -> ReportPeriod:
    """The complete months a report of `kind` for `label` covers now. Raises ReportError."""
    if kind not in ReportKind.values:
        raise ReportError(f"kind must be one of {', '.join(ReportKind.values)}", code="invalid_kind")
    try:
        period = report_period_parse(label)
        if kind == ReportKind.CARBON_REPORT and not period.is_year:
            raise ReportError(f"a carbon report covers a calendar year, e.g. {period.label[:4]}", code="invalid_period")
        return complete_months(period, now=now)
    except ReportPeriodError as exc:
        raise ReportError(str(exc), code="invalid_period") from None


def report_inputs(*, tenant: Tenant, kind: str, period: ReportPeriod, now: datetime | None = None) -> dict:
    """Everything a report is drawn from (its fingerprint is their SHA-256). An SLA
    statement first evaluates every month of the period not evaluated yet (stored once,
    see reports.sla). Raises SlaError when a breach cannot be priced."""
    now = now or timezone.now()
    if kind == ReportKind.CARBON_REPORT:
        return carbon_report_inputs(tenant=tenant, period=period)
    evaluations = {month.label: sla_evaluate_period(tenant=tenant, period=month, now=now) for month in period.months()}
    return sla_statement_inputs(tenant=tenant, period=period, evaluations=evaluations)


def report_document_render(*, kind: str, inputs: dict) -> documents.Document:
    """Draw the PDF from the inputs alone. Raises PdfError."""
    if kind == ReportKind.CARBON_REPORT:
        return documents.carbon_report_document(inputs)
    return documents.sla_statement_document(inputs)


def _store_document(*, tenant_id: int, kind: str, period: str, document: documents.Document) -> dict:
    relative = report_relative_path(tenant_id=tenant_id, kind=kind, period=period, fingerprint=document.fingerprint)
    stored = _store_bytes(Path(settings.MEDIA_ROOT) / relative, document.pdf.content)
    return {"fingerprint": document.fingerprint, "sha256": hashlib.sha256(stored).hexdigest(),
            "size_bytes": len(stored), "pages": document.pdf.pages, "path": relative}


def report_generate(*, tenant: Tenant, kind: str, period: str, requested_by: str = "cli",
                    now: datetime | None = None) -> tuple[Report, bool]:
    """Build and store a report now (management command, Celery beat). Returns (report, created).

    Idempotent: when a ready report of the same tenant, kind, period and fingerprint
    exists (nothing changed in its inputs), that one is returned and nothing is written.
    Raises ReportError for a bad kind or period (or one with no complete month),
    SlaError or PdfError when building fails.
    """
    now = now or timezone.now()
    covered = report_period_resolve(kind, period, now=now)
    inputs = report_inputs(tenant=tenant, kind=kind, period=covered, now=now)
    with tenant_scope(tenant.id):
        existing = Report.objects.filter(tenant=tenant, kind=kind, period=covered.label, status=ReportStatus.READY,
                                         fingerprint=documents.inputs_fingerprint(inputs)).order_by("-id").first()
    if existing is not None and report_file_path(existing).exists():
        return existing, False  # nothing changed: no rendering, no new row
    document = report_document_render(kind=kind, inputs=inputs)
    stored = _store_document(tenant_id=tenant.id, kind=kind, period=covered.label, document=document)
    with tenant_scope(tenant.id):
        report = Report.objects.create(
            tenant=tenant, kind=kind, period=covered.label, period_start=covered.start, period_end=covered.end,
            status=ReportStatus.READY, requested_by=requested_by[:150], finished_at=timezone.now(), **stored)
    return report, True


def report_request(*, tenant: Tenant, kind: str, period: str, requested_by: str,
                   now: datetime | None = None) -> Report:
    """Record a request for a report and queue its generation after the transaction commits.

    Validates first: raises ReportError for a bad kind or period; nothing is written then.
    """
    now = now or timezone.now()
    covered = report_period_resolve(kind, period, now=now)
    with tenant_scope(tenant.id):
        report = Report.objects.create(tenant=tenant, kind=kind, period=covered.label, period_start=covered.start,
                                       period_end=covered.end, status=ReportStatus.PENDING,
                                       requested_by=requested_by[:150])
        transaction.on_commit(lambda: _enqueue(report))
    return report


def _enqueue(report: Report) -> None:
    from reports.tasks import report_build_task

    report_build_task.delay(report.id, report.tenant_id)


def report_build(*, report_id: int, tenant_id: int, now: datetime | None = None) -> Report:
    """Build a requested (pending) report. Safe to run twice: a ready or failed report is
    returned as it is. A build that cannot succeed (bad period, unpriceable SLA credit,
    rendering error) marks the report failed with the reason and does not raise; an
    unexpected error marks it failed too, then propagates."""
    with tenant_scope(tenant_id):
        report = Report.objects.select_related("tenant").get(id=report_id, tenant_id=tenant_id)
    if report.status != ReportStatus.PENDING:
        return report
    try:
        covered = ReportPeriod(label=report.period, start=report.period_start, end=report.period_end)
        inputs = report_inputs(tenant=report.tenant, kind=report.kind, period=covered, now=now)
        document = report_document_render(kind=report.kind, inputs=inputs)
        values = {**_store_document(tenant_id=tenant_id, kind=report.kind, period=report.period, document=document),
                  "status": ReportStatus.READY, "error": ""}
    except (SlaError, PdfError, ReportError) as exc:
        logger.warning("reports: report %s failed: %s", report_id, exc)
        values = {"status": ReportStatus.FAILED, "error": str(exc)[:2000]}
    except Exception:
        # Unexpected (a bug, the database away): never leave the tenant polling a report
        # that stays pending; the task's own failure carries the traceback.
        with tenant_scope(tenant_id):
            Report.objects.filter(id=report_id, status=ReportStatus.PENDING).update(
                status=ReportStatus.FAILED, error="internal error while generating the report; staff have the log",
                finished_at=timezone.now())
        raise
    with tenant_scope(tenant_id):
        Report.objects.filter(id=report_id, status=ReportStatus.PENDING).update(finished_at=timezone.now(), **values)
        return Report.objects.get(id=report_id)


@dataclass(frozen=True)
class Verification:
    report: Report
    current_fingerprint: str

    @property
    def matches(self) -> bool:
        return self.report.fingerprint == self.current_fingerprint


def report_verify(*, tenant: Tenant, content: bytes, now: datetime | None = None) -> Verification:
    """Check a PDF we generated against the ledger as it is now: find its stored report by
    the file's SHA-256 and recompute that report's inputs fingerprint.

    Raises ReportError when no report of the tenant has these bytes.
    """
    sha256 = hashlib.sha256(content).hexdigest()
    with tenant_scope(tenant.id):
        report = Report.objects.filter(tenant=tenant, sha256=sha256, status=ReportStatus.READY).order_by("id").first()
    if report is None:
        raise ReportError(f"no report of {tenant.slug} has SHA-256 {sha256[:16]}…; for a copy from elsewhere, hash its "
                          "inputs.json attachment and compare with the fingerprint printed on it",
                          code="unknown_report")
    covered = ReportPeriod(label=report.period, start=report.period_start, end=report.period_end)
    inputs = report_inputs(tenant=tenant, kind=report.kind, period=covered, now=now)
    return Verification(report=report, current_fingerprint=documents.inputs_fingerprint(inputs))


def invoice_pdf(*, tenant: Tenant, invoice_id: int) -> documents.Document:
    """The tenant's invoice as a PDF, rendered on request (nothing is stored: the invoice
    rows are the record). Raises Invoice.DoesNotExist for a missing id and, identically,
    another tenant's; ReportError if rendering fails."""
    from billing.selectors import invoice_get

    with tenant_scope(tenant.id):
        invoice = invoice_get(tenant=tenant, invoice_id=invoice_id)
        inputs = invoice_inputs(tenant=tenant, invoice=invoice)
    try:
        return documents.invoice_document(inputs, issuer_name=settings.INVOICE_ISSUER_NAME,
                                          issuer_address=settings.INVOICE_ISSUER_ADDRESS)
    except PdfError as exc:
        raise ReportError(str(exc), code="render_failed") from exc


def invoice_pdf_filename(document: documents.Document) -> str:
    return f"greentier-invoice-{document.inputs['invoice']['period']}-{document.inputs['tenant']['slug']}.pdf"


# --- finance (cross-tenant) ------------------------------------------------------------------------


@dataclass
class FinanceRun:
    period: str
    tenants: int = 0
    evaluations: int = 0
    breached: int = 0
    credits: dict[str, int] = field(default_factory=dict)  # currency -> credit_minor (negative)
    files: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (tenant slug, reason)
    statements: int = 0

    def lines(self) -> list[str]:
        from reports.formatting import money

        credits = ", ".join(money(v, c) for c, v in sorted(self.credits.items())) or "none"
        out = [f"SLA {self.period}: {self.tenants} tenants with terms, {self.evaluations} evaluations, "
               f"{self.breached} breached; credits {credits}; {self.statements} statements; {len(self.failed)} failed"]
        out += [f"wrote {path}" for path in self.files]
        out += [f"FAILED {slug}: {reason}" for slug, reason in self.failed]
        return out


def finance_output_dir(period: Period) -> Path:
    return Path(settings.MEDIA_ROOT) / "reports" / "finance" / period.label


def finance_reports_generate(*, period: Period, output_dir: Path | None = None, statements: bool = False,
                             progress: Progress | None = None, now: datetime | None = None) -> FinanceRun:
    """Evaluate every tenant's SLA for the month, then write the finance SLA report and the
    revenue/energy summary (CSV and PDF each) to `output_dir`; with `statements`, also
    store each such tenant's SLA statement for the month.

    A tenant whose evaluation fails (no price to value a credit) is listed in `failed`
    and left out; the run goes on. Raises ReportError for a month not over yet.
    """
    now = now or timezone.now()
    try:
        period.ensure_ended(now=now)
    except PeriodError as exc:
        raise ReportError(str(exc), code="invalid_period") from None
    tenant_ids = sla_tenant_ids_with_terms(start=period.start, end=period.end)
    tenants = list(Tenant.objects.filter(id__in=tenant_ids).order_by("slug"))
    run = FinanceRun(period=period.label)
    if progress is not None:
        progress.reset(total=len(tenants))
    evaluations = {}
    for tenant in tenants:
        try:
            found = sla_evaluate_period(tenant=tenant, period=period, now=now)
            if found:
                evaluations[tenant.id] = found
            if statements and found:
                report_generate(tenant=tenant, kind=ReportKind.SLA_STATEMENT, period=period.label,
                                requested_by="finance-run", now=now)
                run.statements += 1
        except (SlaError, PdfError, ReportError) as exc:
            run.failed.append((tenant.slug, str(exc)))
        finally:
            if progress is not None:
                progress.update(1)
    run.tenants = len(evaluations)
    for found in evaluations.values():
        for e in found:
            run.evaluations += 1
            run.breached += e.outcome == "breached"
            if e.credit_minor:
                run.credits[e.currency] = run.credits.get(e.currency, 0) + e.credit_minor

    output_dir = Path(output_dir or finance_output_dir(period))
    output_dir.mkdir(parents=True, exist_ok=True)
    sla = documents.finance_sla_document(finance_sla_inputs(period=period, evaluations=evaluations))
    revenue = documents.revenue_summary_document(revenue_summary_inputs(period=period))
    for name, content in ((f"finance-sla-{period.label}.csv", sla.csv.encode()),
                          (f"finance-sla-{period.label}.pdf", sla.pdf.content),
                          (f"revenue-summary-{period.label}.csv", revenue.csv.encode()),
                          (f"revenue-summary-{period.label}.pdf", revenue.pdf.content)):
        path = output_dir / name
        fd, tmp = tempfile.mkstemp(dir=output_dir, suffix=".part")
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
        os.replace(tmp, path)  # finance files are re-written on every run: they show the current state
        run.files.append(path)
    return run
