"""Reads for reports: stored reports, and every input a report is made from.

Each `*_inputs` function returns plain JSON values only (ints in stored units,
strings for decimals and UTC datetimes), because the report's fingerprint is the
SHA-256 of exactly this structure (reports.documents.inputs_fingerprint) and the PDF is
drawn from it and nothing else. Usage is read only through inference.selectors.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.db.models import Case, CharField, Count, Max, Min, QuerySet, Sum, Value, When

from billing.periods import Period
from inference.models import ModelVariant
from inference.selectors import USAGE_SUMS, batch_jobs_finished, savings_for_period, usage_by_variant, usage_hours
from reports.models import Report, SlaEvaluation
from reports.periods import ReportPeriod
from tenants.models import Tenant
from tenants.scope import tenant_scope

CARBON_REPORT_FORMAT = "greentier-carbon-report/1"
SLA_STATEMENT_FORMAT = "greentier-sla-statement/1"
FINANCE_SLA_FORMAT = "greentier-finance-sla/1"
REVENUE_SUMMARY_FORMAT = "greentier-revenue-summary/1"
INVOICE_FORMAT = "greentier-invoice/1"

_KIND = re.compile(r"\((direct|lifecycle)([^)]*)\)\s*$")
_PUE = re.compile(r"PUE\s+([0-9]+(?:\.[0-9]+)?)")


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- stored reports ------------------------------------------------------------------------


def report_list(*, tenant: Tenant) -> QuerySet[Report]:
    """The tenant's reports, newest first. Call inside tenant_scope(tenant.id)."""
    return Report.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def sla_evaluation_list(*, tenant: Tenant, start: datetime, end: datetime) -> QuerySet[SlaEvaluation]:
    """The tenant's stored SLA evaluations of the months starting in [start, end), in
    statement order (month, family, mode, terms span)."""
    return (SlaEvaluation.objects.filter(tenant=tenant, period_start__gte=start, period_start__lt=end)
            .order_by("period_start", "family_name", "mode", "span_start", "id"))


def report_get(*, tenant: Tenant, report_id: int) -> Report:
    """Raises Report.DoesNotExist for a missing id and, identically, for another tenant's."""
    if not 0 < report_id < 2**63:
        raise Report.DoesNotExist(f"no report {report_id}")
    return Report.objects.filter(tenant=tenant).get(id=report_id)


# --- the annual carbon report ---------------------------------------------------------------


def _sums(row: dict) -> dict:
    return {name: int(row.get(name) or 0) for name in USAGE_SUMS}


def _intensity_kind(source: str) -> tuple[str, str]:
    """('lifecycle', 'annual average') from 'codecarbon-annual-average:GBR:2023 (lifecycle, annual average)'."""
    match = _KIND.search(source or "")
    if not match:
        return "unknown", ""
    return match.group(1), match.group(2).strip(", ").strip()


def carbon_report_inputs(*, tenant: Tenant, period: ReportPeriod) -> dict:
    """Everything the annual carbon report shows, for the tenant and the (complete) months of `period`."""
    start, end = period.start, period.end
    with tenant_scope(tenant.id):
        rows = usage_hours(tenant=tenant, start=start, end=end)
        ledger = rows.order_by().aggregate(records=Count("id"), first=Min("hour"), last=Max("hour"),
                                           **{f"{name}__all": Sum(name) for name in USAGE_SUMS})
        # Sums per month in one GROUP BY over a CASE of hour ranges: plain comparisons, so
        # no per-row date truncation (SQLite runs Trunc in Python) and no hourly rows to
        # fetch and convert (~0.2 s for a year on SQLite).
        months = period.months()
        monthly = {month.label: dict.fromkeys(USAGE_SUMS, 0) for month in months}
        month_of = Case(*(When(hour__gte=m.start, hour__lt=m.end, then=Value(m.label)) for m in months),
                        output_field=CharField())
        for row in (rows.order_by().annotate(month=month_of).values("month")
                    .annotate(**{name: Sum(name) for name in USAGE_SUMS})):
            bucket = monthly[row["month"]]
            for name in USAGE_SUMS:
                bucket[name] += row[name] or 0
        variants_used = usage_by_variant(tenant=tenant, start=start, end=end)
        energy_methods = list(rows.order_by().values("energy_method").annotate(
            records=Count("id"), predictions=Sum("predictions"), energy_uj=Sum("energy_uj")).order_by("energy_method"))
        intensity_sources = list(rows.order_by().values("intensity_source").annotate(
            records=Count("id"), energy_uj=Sum("energy_uj"), co2e_ug=Sum("co2e_ug")).order_by("intensity_source"))
        savings = savings_for_period(tenant=tenant, start=start, end=end)
        jobs = list(batch_jobs_finished(tenant=tenant, start=start, end=end))

    variant_ids = sorted({row["variant_id"] for row in variants_used})
    registry = {v.id: v for v in ModelVariant.objects.filter(id__in=variant_ids).select_related("version__family")}
    served = {}
    for row in variants_used:
        entry = served.setdefault(row["variant_id"], {"predictions": 0, "energy_uj": 0, "modes": set()})
        entry["predictions"] += row["predictions"] or 0
        entry["energy_uj"] += row["energy_uj"] or 0
        entry["modes"].add(row["mode"] if row["source"] == "online" else "~batch")  # "~": sorts after the modes

    models = []
    for variant_id in variant_ids:
        v = registry[variant_id]
        per_kwh = v.accuracy_per_kwh
        models.append({
            "family": v.version.family.name, "variant": v.name, "technique": v.technique,
            "is_default": v.version.family.default_variant_id == v.id, "accuracy": str(v.accuracy),
            "accuracy_metric": v.accuracy_metric, "energy_per_1k_uj": v.energy_per_1k_uj,
            "accuracy_per_kwh": None if per_kwh is None else str(per_kwh), "energy_method": v.energy_method,
            "latency_p95_us": v.latency_p95_us, "profile_batch_size": v.profile_batch_size,
            "model_version": v.version.version, "dataset": f"{v.version.dataset_name} {v.version.dataset_version}",
            "dataset_sha256": v.version.dataset_sha256, "training_energy_uj": v.training_energy_uj,
            "training_co2e_ug": v.training_co2e_ug, "predictions": served[variant_id]["predictions"],
            "energy_uj": served[variant_id]["energy_uj"],
            "modes": [m.lstrip("~") for m in sorted(served[variant_id]["modes"])],
        })

    month_rows = [{"month": label, **sums} for label, sums in monthly.items()]

    pue = sorted({m.group(1) for row in energy_methods for m in [_PUE.search(row["energy_method"])] if m})
    return {
        "format": CARBON_REPORT_FORMAT,
        "tenant": {"slug": tenant.slug, "name": tenant.name, "grid_zone": tenant.grid_zone, "tier": tenant.tier},
        "period": {"label": period.label, "start": iso(start), "end": iso(end)},
        "totals": {name: int(ledger[f"{name}__all"] or 0) for name in USAGE_SUMS},
        "months": month_rows,
        "by_variant": [{"family": r["family"], "variant": r["variant"], "mode": r["mode"], "source": r["source"],
                        **_sums(r)} for r in variants_used],
        "savings": savings.as_json(),
        "batch_jobs": [{
            "id": job.id, "tier": job.tier, "mode": job.mode, "finished_at": iso(job.finished_at),
            "planned_start": iso(job.planned_start), "planned_end": iso(job.planned_end),
            "run_now_g_per_kwh": str(job.run_now_g_per_kwh), "planned_g_per_kwh": str(job.planned_g_per_kwh),
            "actual_g_per_kwh": None if job.actual_g_per_kwh is None else str(job.actual_g_per_kwh),
            "plan_method": job.plan_method, "plan_measurable": job.plan_measurable, "energy_uj": job.energy_uj,
            "co2e_ug": job.co2e_ug, "run_now_co2e_ug": job.run_now_co2e_ug, "saved_co2e_ug": job.saved_co2e_ug,
        } for job in jobs],
        "models": models,
        "methodology": {
            "energy_methods": [{"method": r["energy_method"], "records": r["records"],
                                "predictions": int(r["predictions"] or 0), "energy_uj": int(r["energy_uj"] or 0)}
                               for r in energy_methods],
            "intensity_sources": [{"source": r["intensity_source"], "kind": _intensity_kind(r["intensity_source"])[0],
                                   "qualifier": _intensity_kind(r["intensity_source"])[1], "records": r["records"],
                                   "energy_uj": int(r["energy_uj"] or 0), "co2e_ug": int(r["co2e_ug"] or 0)}
                                  for r in intensity_sources],
            "pue": pue,
        },
        "provenance": {"ledger_records": ledger["records"] or 0, "first_hour": iso(ledger["first"]),
                       "last_hour": iso(ledger["last"]), "batch_jobs": len(jobs)},
    }


# --- SLA statements ----------------------------------------------------------------------------


def _credit_lines_by_reference(*, tenant: Tenant, period: Period) -> tuple[dict | None, dict[str, dict]]:
    """The month's invoice (if rated) and its SLA credit lines by reference."""
    from billing.models import InvoiceLine, LineKind
    from billing.selectors import invoice_for_period

    invoice = invoice_for_period(tenant=tenant, period=period)
    if invoice is None:
        return None, {}
    with tenant_scope(tenant.id):
        lines = (InvoiceLine.objects.filter(tenant=tenant, invoice=invoice, kind=LineKind.SLA_CREDIT)
                 .order_by("position"))
        credits = {line.reference: {"position": line.position, "amount_minor": line.amount_minor} for line in lines}
    return {"id": invoice.id, "status": invoice.status, "total_minor": invoice.total_minor,
            "currency": invoice.currency}, credits


def evaluation_json(evaluation: SlaEvaluation, *, invoice: dict | None, credit_lines: dict[str, dict]) -> dict:
    line = credit_lines.get(evaluation.reference)
    return {
        "id": evaluation.id, "month": evaluation.period_label, "family": evaluation.family_name,
        "mode": evaluation.mode, "span_start": iso(evaluation.span_start), "span_end": iso(evaluation.span_end),
        "terms_id": evaluation.terms_id, "target_energy_per_1k_uj": evaluation.target_energy_per_1k_uj,
        "minor_breach_limit_percent": str(evaluation.minor_breach_limit_percent),
        "minor_credit_percent": str(evaluation.minor_credit_percent),
        "major_credit_percent": str(evaluation.major_credit_percent),
        "predictions": evaluation.predictions, "energy_uj": evaluation.energy_uj,
        "measured_energy_per_1k_uj": evaluation.measured_energy_per_1k_uj,
        "margin_percent": None if evaluation.margin_percent is None else str(evaluation.margin_percent),
        "outcome": evaluation.outcome, "breach_band": evaluation.breach_band,
        "target_latency_p95_us": evaluation.target_latency_p95_us,
        "profiled_latency_p95_us": evaluation.profiled_latency_p95_us,
        "latency_outcome": evaluation.latency_outcome, "latency_basis": evaluation.latency_basis,
        "currency": evaluation.currency, "charges_minor": evaluation.charges_minor,
        "credit_percent": str(evaluation.credit_percent), "credit_minor": evaluation.credit_minor,
        "invoice": None if invoice is None else {
            "id": invoice["id"], "status": invoice["status"],
            "credit_line_position": None if line is None else line["position"],
            "credited_minor": 0 if line is None else line["amount_minor"]},
    }


def sla_statement_inputs(*, tenant: Tenant, period: ReportPeriod,
                         evaluations: dict[str, list[SlaEvaluation]]) -> dict:
    """The statement's inputs from the month-by-month evaluations (reports.sla, stored)."""
    rows, months_without_terms = [], []
    for month in period.months():
        month_evaluations = evaluations.get(month.label, [])
        if not month_evaluations:
            months_without_terms.append(month.label)
            continue
        invoice, credit_lines = _credit_lines_by_reference(tenant=tenant, period=month)
        rows.extend(evaluation_json(e, invoice=invoice, credit_lines=credit_lines) for e in month_evaluations)
    return {
        "format": SLA_STATEMENT_FORMAT,
        "tenant": {"slug": tenant.slug, "name": tenant.name, "grid_zone": tenant.grid_zone,
                   "currency": tenant.currency},
        "period": {"label": period.label, "start": iso(period.start), "end": iso(period.end)},
        "evaluations": rows,
        "months_without_terms": months_without_terms,
    }


def invoice_inputs(*, tenant: Tenant, invoice) -> dict:
    """An invoice (billing.selectors.invoice_get, lines prefetched) as document inputs."""
    return {
        "format": INVOICE_FORMAT,
        "tenant": {"slug": tenant.slug, "name": tenant.name, "grid_zone": tenant.grid_zone,
                   "currency": tenant.currency},
        "invoice": {"id": invoice.id, "period": invoice.period_label, "start": iso(invoice.period_start),
                    "end": iso(invoice.period_end), "currency": invoice.currency, "status": invoice.status,
                    "status_text": invoice.get_status_display(), "total_minor": invoice.total_minor,
                    "energy_uj": invoice.energy_uj, "co2e_ug": invoice.co2e_ug,
                    "stripe_invoice_id": invoice.stripe_invoice_id or "", "created_at": iso(invoice.created_at),
                    "paid_at": iso(invoice.paid_at)},
        "lines": [{"position": line.position, "kind": line.kind, "mode": line.mode, "tier": line.tier,
                   "description": line.description, "span_start": iso(line.span_start),
                   "span_end": iso(line.span_end), "quantity": f"{line.quantity:f}",
                   "unit_price_minor": f"{line.unit_price_minor:f}", "unit_divisor": line.unit_divisor,
                   "amount_minor": line.amount_minor, "energy_uj": line.energy_uj, "co2e_ug": line.co2e_ug}
                  for line in invoice.lines.all()],
    }


# --- finance (cross-tenant) ------------------------------------------------------------------


def finance_sla_inputs(*, period: Period, evaluations: dict[int, list[SlaEvaluation]]) -> dict:
    """Every tenant's evaluations for a month (already evaluated by the caller)."""
    tenants = {t.id: t for t in Tenant.objects.filter(id__in=list(evaluations)).order_by("slug")}
    rows = []
    for tenant in tenants.values():
        invoice, credit_lines = _credit_lines_by_reference(tenant=tenant, period=period)
        for evaluation in evaluations[tenant.id]:
            rows.append({"tenant": tenant.slug, "tenant_name": tenant.name,
                         **evaluation_json(evaluation, invoice=invoice, credit_lines=credit_lines)})
    return {"format": FINANCE_SLA_FORMAT, "period": {"label": period.label, "start": iso(period.start),
                                                      "end": iso(period.end)}, "evaluations": rows}


def revenue_summary_inputs(*, period: Period) -> dict:
    """Per tenant that existed in the month: its invoice (if rated), SLA credits and usage."""
    from billing.models import InvoiceLine, LineKind
    from billing.selectors import invoice_for_period, tenants_billable_for_period
    from inference.selectors import usage_total

    rows = []
    for tenant in tenants_billable_for_period(period=period):
        invoice = invoice_for_period(tenant=tenant, period=period)
        with tenant_scope(tenant.id):
            usage = usage_total(tenant=tenant, start=period.start, end=period.end)
            credits = 0 if invoice is None else (InvoiceLine.objects.filter(
                tenant=tenant, invoice=invoice, kind=LineKind.SLA_CREDIT).aggregate(s=Sum("amount_minor"))["s"] or 0)
        rows.append({
            "tenant": tenant.slug, "tenant_name": tenant.name, "tier": tenant.tier, "currency": tenant.currency,
            "invoice": None if invoice is None else {"id": invoice.id, "status": invoice.status,
                                                     "currency": invoice.currency, "total_minor": invoice.total_minor,
                                                     "sla_credits_minor": credits},
            "predictions": usage.predictions, "energy_uj": usage.energy_uj, "co2e_ug": usage.co2e_ug,
            "embodied_co2e_ug": usage.embodied_co2e_ug,
        })
    return {"format": REVENUE_SUMMARY_FORMAT, "period": {"label": period.label, "start": iso(period.start),
                                                          "end": iso(period.end)}, "tenants": rows}
