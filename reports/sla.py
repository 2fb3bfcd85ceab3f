"""Sustainability SLAs: monthly evaluation of energy per 1,000 predictions, and credits.

The rules (docs/reports.md has worked examples):

* Terms are per tenant, model family and mode, versioned by `effective_from`. A month
  is cut at every version start inside it; each version is evaluated over its part.
* Measured = sum(energy_uj) x 1,000 / sum(predictions) over the tenant's ONLINE ledger
  rows of the family in the mode, in that part of the month. Batch predictions are not
  covered: they are billed on their own line whatever their mode.
* Met when measured <= target (exactly at the target is met). Otherwise breached:
  "minor" when measured <= target x (1 + limit / 100) (exactly limit% over is still
  minor), "major" beyond. Comparisons are exact (fractions), never floats.
* Credit = credit% (minor 10 %, major 25 % by default) of the charges of those
  predictions: what rating them alone gives with the invoice's own prices, tiers and
  rounding (billing.rating.rate_lines), prediction lines plus their green premium.
  Rounded once, half away from zero (billing.money); never positive.
* Latency: the registry's profiled p95 (per profiling batch) of the variants that served
  the mode, worst of them, against the optional target. Reported, never credited:
  per-request latency is not in the ledger, so it is not a measurement of the service.
* An evaluation is written once per tenant, terms version and month (unique
  constraint) and then only read. A month with any evaluation is closed: later terms
  changes cannot add to it. The credit provider returns the stored evaluations' credits,
  so an invoice rated (once) for the month carries them exactly once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.credits import CreditError, CreditLine
from billing.money import line_amount_minor
from billing.periods import Period, PeriodError
from inference.models import Mode, ModelFamily, ModelVariant, Source
from inference.selectors import usage_for_family_mode
from reports import formatting as fmt
from reports.models import LatencyOutcome, Outcome, SlaEvaluation, SlaTerms
from tenants.models import Tenant
from tenants.scope import all_tenants_scope, tenant_scope

logger = logging.getLogger(__name__)

MINOR, MAJOR = "minor", "major"


class SlaError(ValueError):
    """SLA terms or an evaluation that cannot be accepted; the message says what to fix."""


# --- the rule -----------------------------------------------------------------------------


@dataclass(frozen=True)
class EnergyOutcome:
    outcome: str  # Outcome
    band: str  # "", MINOR or MAJOR
    credit_percent: Decimal
    measured_energy_per_1k_uj: int | None  # rounded half-even, for display
    margin_percent: Decimal | None  # positive = over the target


def sla_energy_outcome(*, target_energy_per_1k_uj: int, energy_uj: int, predictions: int,
                       minor_breach_limit_percent: Decimal, minor_credit_percent: Decimal,
                       major_credit_percent: Decimal) -> EnergyOutcome:
    """Met, minor breach or major breach of an energy target; pure and exact.

    measured = energy_uj x 1000 / predictions. met: measured <= target. minor:
    target < measured <= target x (100 + limit) / 100. major: above that.
    """
    if predictions <= 0:
        return EnergyOutcome(Outcome.NO_USAGE, "", Decimal(0), None, None)
    measured = Fraction(energy_uj * 1000, predictions)
    target = Fraction(target_energy_per_1k_uj)
    rounded = round(measured)  # Fraction rounds half to even
    margin = Fraction(100) * (measured - target) / target
    margin_percent = (Decimal(margin.numerator) / Decimal(margin.denominator)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    if measured <= target:
        return EnergyOutcome(Outcome.MET, "", Decimal(0), rounded, margin_percent)
    if measured * 100 <= target * (100 + Fraction(minor_breach_limit_percent)):
        return EnergyOutcome(Outcome.BREACHED, MINOR, Decimal(minor_credit_percent), rounded, margin_percent)
    return EnergyOutcome(Outcome.BREACHED, MAJOR, Decimal(major_credit_percent), rounded, margin_percent)


def sla_credit_minor(*, charges_minor: int, credit_percent: Decimal) -> int:
    """-(charges x percent / 100), rounded once by billing.money (half away from zero)."""
    if charges_minor <= 0 or credit_percent <= 0:
        return 0
    return -line_amount_minor(quantity=charges_minor, unit_price_minor=Decimal(credit_percent), unit_divisor=100)


# --- terms ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TermsSpan:
    terms: SlaTerms
    start: datetime
    end: datetime


def sla_terms_spans(*, tenant: Tenant, start: datetime, end: datetime) -> list[TermsSpan]:
    """Each terms version in force during [start, end), clipped to the part it covers."""
    with tenant_scope(tenant.id):
        versions = list(SlaTerms.objects.filter(tenant=tenant, effective_from__lt=end)
                        .select_related("family").order_by("family__name", "mode", "effective_from", "id"))
    spans: list[TermsSpan] = []
    for i, terms in enumerate(versions):
        following = versions[i + 1] if i + 1 < len(versions) else None
        same_key = following is not None and (following.family_id, following.mode) == (terms.family_id, terms.mode)
        version_end = following.effective_from if same_key else end
        span_start, span_end = max(terms.effective_from, start), min(version_end, end)
        if span_start < span_end:
            spans.append(TermsSpan(terms=terms, start=span_start, end=span_end))
    return spans


def sla_terms_validate(*, tenant_id: int, effective_from: datetime) -> None:
    """Raise SlaError if terms starting at `effective_from` would reach into a month that
    is already evaluated or invoiced: that month's credits are settled."""
    from billing.models import Invoice

    with tenant_scope(tenant_id):
        evaluated = (SlaEvaluation.objects.filter(tenant_id=tenant_id, period_end__gt=effective_from)
                     .order_by("-period_start").first())
        invoiced = (Invoice.objects.filter(tenant_id=tenant_id, period_end__gt=effective_from)
                    .order_by("-period_start").first())
    if evaluated is not None:
        raise SlaError(f"the SLA for {evaluated.period_label} is already evaluated; new terms must start on or after "
                       f"{evaluated.period_end:%Y-%m-%d %H:%M} UTC")
    if invoiced is not None:
        raise SlaError(f"{invoiced.period_label} is already invoiced; new terms must start on or after "
                       f"{invoiced.period_end:%Y-%m-%d %H:%M} UTC")


def sla_terms_create(*, tenant: Tenant, family: ModelFamily, mode: str, effective_from: datetime,
                     target_energy_per_1k_uj: int, target_latency_p95_us: int | None = None,
                     minor_breach_limit_percent: Decimal = Decimal("20"), minor_credit_percent: Decimal = Decimal("10"),
                     major_credit_percent: Decimal = Decimal("25"), note: str = "") -> SlaTerms:
    """Add a terms version. Raises SlaError for a bad mode, a non-positive target, a
    naive datetime or a start inside a month already evaluated or invoiced."""
    if mode not in Mode.values:
        raise SlaError(f"mode must be one of {', '.join(Mode.values)}")
    if effective_from.utcoffset() is None:
        raise SlaError("effective_from must be timezone-aware (UTC)")
    if target_energy_per_1k_uj <= 0:
        raise SlaError("the energy target must be a positive number of microjoules per 1,000 predictions")
    sla_terms_validate(tenant_id=tenant.id, effective_from=effective_from)
    with tenant_scope(tenant.id):
        if SlaTerms.objects.filter(tenant=tenant, family=family, mode=mode, effective_from=effective_from).exists():
            raise SlaError(f"{family.name}/{mode} already has terms starting {effective_from:%Y-%m-%d %H:%M} UTC")
        return SlaTerms.objects.create(
            tenant=tenant, family=family, mode=mode, effective_from=effective_from,
            target_energy_per_1k_uj=target_energy_per_1k_uj, target_latency_p95_us=target_latency_p95_us,
            minor_breach_limit_percent=minor_breach_limit_percent, minor_credit_percent=minor_credit_percent,
            major_credit_percent=major_credit_percent, note=note)


def sla_tenant_ids_with_terms(*, start: datetime, end: datetime) -> list[int]:
    """Tenants with terms in force at some point of [start, end) (cross-tenant, for runs)."""
    with all_tenants_scope():
        # A version that starts before `end` is in force from then on, until replaced.
        return sorted(set(SlaTerms.all_tenants.filter(effective_from__lt=end).values_list("tenant_id", flat=True)))


# --- measuring ---------------------------------------------------------------------------------


def _charges_minor(*, tenant: Tenant, period: Period, rows: list[tuple]) -> int:
    """What rating these usage rows alone charges: prediction lines and their green premium."""
    from billing.rating import RatingError, TierSpan, UsageRow, billable_start_for, prices_for_window, rate_lines
    from tenants.selectors import tier_history

    if not rows:
        return 0
    billable_start = billable_start_for(tenant=tenant, period=period)
    with tenant_scope(tenant.id):
        spans = [TierSpan(a, b, tier) for a, b, tier in tier_history(tenant=tenant, start=billable_start,
                                                                        end=period.end)]
    try:
        lines = rate_lines(
            period=period, currency=tenant.currency, billable_start=billable_start, tier_spans=spans,
            prices=prices_for_window(currency=tenant.currency, start=billable_start, end=period.end),
            usage=[UsageRow(hour, mode, Source.ONLINE, predictions, energy_uj, co2e_ug)
                   for hour, mode, predictions, energy_uj, co2e_ug in rows])
    except RatingError as exc:
        raise SlaError(f"cannot price the SLA credit for tenant {tenant.slug} in {period.label}: {exc}") from None
    return sum(line.amount_minor for line in lines if line.kind in ("predictions", "green_premium"))


def _evaluate_span(*, tenant: Tenant, period: Period, span: TermsSpan, now: datetime) -> SlaEvaluation:
    terms = span.terms
    with tenant_scope(tenant.id):
        usage = usage_for_family_mode(tenant=tenant, family_id=terms.family_id, mode=terms.mode, start=span.start,
                                   end=span.end)
        by_variant = list(usage.values("variant_id").annotate(predictions=Sum("predictions"),
                                                              energy_uj=Sum("energy_uj")).order_by("variant_id"))
        hourly = [(r["hour"], terms.mode, r["predictions"], r["energy_uj"], r["co2e_ug"] + r["embodied_co2e_ug"])
                  for r in usage.values("hour").annotate(
                      predictions=Sum("predictions"), energy_uj=Sum("energy_uj"), co2e_ug=Sum("co2e_ug"),
                      embodied_co2e_ug=Sum("embodied_co2e_ug")).order_by("hour")]
    predictions = sum(r["predictions"] for r in by_variant)
    energy_uj = sum(r["energy_uj"] for r in by_variant)
    result = sla_energy_outcome(
        target_energy_per_1k_uj=terms.target_energy_per_1k_uj, energy_uj=energy_uj, predictions=predictions,
        minor_breach_limit_percent=terms.minor_breach_limit_percent,
        minor_credit_percent=terms.minor_credit_percent, major_credit_percent=terms.major_credit_percent)

    served = [r["variant_id"] for r in by_variant if r["predictions"] > 0]
    variants = list(ModelVariant.objects.filter(id__in=served).order_by("name"))
    latency = max((v.latency_p95_us for v in variants), default=None)
    if not variants:
        latency_outcome, basis = LatencyOutcome.NO_USAGE, ""
    else:
        names = ", ".join(v.name for v in variants)
        basis = (f"registry-profiled p95 per batch of {max(v.profile_batch_size for v in variants)} rows, worst of "
                 f"{len(variants)} variant{'s' * (len(variants) != 1)} ({names})")[:200]
        if terms.target_latency_p95_us is None:
            latency_outcome = LatencyOutcome.NOT_SET
        else:
            latency_outcome = LatencyOutcome.MET if latency <= terms.target_latency_p95_us else LatencyOutcome.MISSED

    charges = _charges_minor(tenant=tenant, period=period, rows=hourly) if result.outcome == Outcome.BREACHED else 0
    return SlaEvaluation(
        tenant=tenant, terms=terms, period_start=period.start, period_end=period.end, span_start=span.start,
        span_end=span.end, family_name=terms.family.name, mode=terms.mode, currency=tenant.currency,
        target_energy_per_1k_uj=terms.target_energy_per_1k_uj, target_latency_p95_us=terms.target_latency_p95_us,
        minor_breach_limit_percent=terms.minor_breach_limit_percent,
        minor_credit_percent=terms.minor_credit_percent, major_credit_percent=terms.major_credit_percent,
        predictions=predictions, energy_uj=energy_uj, measured_energy_per_1k_uj=result.measured_energy_per_1k_uj,
        margin_percent=result.margin_percent, outcome=result.outcome, breach_band=result.band,
        profiled_latency_p95_us=latency, latency_outcome=latency_outcome, latency_basis=basis,
        charges_minor=charges, credit_percent=result.credit_percent,
        credit_minor=sla_credit_minor(charges_minor=charges, credit_percent=result.credit_percent),
        evaluated_at=now)


def _stored(tenant: Tenant, period: Period) -> list[SlaEvaluation]:
    with tenant_scope(tenant.id):
        return list(SlaEvaluation.objects.filter(tenant=tenant, period_start=period.start)
                    .order_by("family_name", "mode", "span_start", "id"))


def sla_evaluate_period(*, tenant: Tenant, period: Period, now: datetime | None = None) -> list[SlaEvaluation]:
    """The tenant's SLA evaluations for a month: computed and stored on the first call,
    returned unchanged on every later one (whatever changed in the ledger or the terms).

    Returns [] when no terms were in force. Raises SlaError for a month that has not
    ended, or when a breach cannot be priced (no price in effect).
    """
    now = now or timezone.now()
    stored = _stored(tenant, period)
    if stored:
        return stored
    spans = sla_terms_spans(tenant=tenant, start=period.start, end=period.end)
    if not spans:
        return []
    try:
        period.ensure_ended(now=now)
    except PeriodError as exc:
        raise SlaError(f"SLA terms apply to {period.label}, which cannot be evaluated yet: {exc}") from None
    evaluations = [_evaluate_span(tenant=tenant, period=period, span=span, now=now) for span in spans]
    try:
        with tenant_scope(tenant.id), transaction.atomic():
            for evaluation in evaluations:
                evaluation.save(force_insert=True)
    except IntegrityError:
        # Another worker evaluated the month between our read and our insert: theirs stands.
        stored = _stored(tenant, period)
        if not stored:
            raise
        return stored
    logger.info("sla: tenant %s %s evaluated: %s", tenant.slug, period.label,
                ", ".join(f"{e.family_name}/{e.mode} {e.outcome}" for e in evaluations))
    return _stored(tenant, period)


def sla_credit_description(evaluation: SlaEvaluation) -> str:
    return (f"SLA credit {evaluation.period_label}: {evaluation.family_name} {evaluation.mode} mode used "
            f"{fmt.wh_per_1k(evaluation.measured_energy_per_1k_uj)} Wh per 1,000 predictions, target "
            f"{fmt.wh_per_1k(evaluation.target_energy_per_1k_uj)} Wh "
            f"({fmt.percent(evaluation.margin_percent, 2, signed=True)}); "
            f"{fmt.percent(evaluation.credit_percent, 0)} of "
            f"{fmt.money(evaluation.charges_minor, evaluation.currency)}")


def sla_credits(*, tenant: Tenant, period: Period) -> list[CreditLine]:
    """billing.credits provider (registered in ReportsConfig.ready): one negative line per
    breached evaluation of the month. Deterministic: evaluations are stored once.

    Raises CreditError (which stops that tenant's invoice) when the month cannot be
    evaluated or priced, or when the tenant's currency changed since the evaluation.
    """
    from django.utils import timezone

    if period.end > timezone.now():
        return []  # a month in progress (a price preview) has no credits yet: SLAs are judged after it ends
    try:
        evaluations = sla_evaluate_period(tenant=tenant, period=period)
    except SlaError as exc:
        raise CreditError(str(exc)) from None
    lines = []
    for evaluation in evaluations:
        if evaluation.credit_minor >= 0:
            continue
        if evaluation.currency != tenant.currency:
            raise CreditError(f"SLA evaluation {evaluation.id} was priced in {evaluation.currency} but tenant "
                              f"{tenant.slug} is now billed in {tenant.currency}; credit it by hand")
        lines.append(CreditLine(description=sla_credit_description(evaluation)[:300],
                                amount_minor=evaluation.credit_minor, span_start=evaluation.span_start,
                                span_end=evaluation.span_end, reference=evaluation.reference))
    return lines
