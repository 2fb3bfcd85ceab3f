"""Sustainability SLAs (terms and their monthly evaluations) and generated reports.

SLA terms live here, in reports, rather than in billing: an SLA is a promise about
measured energy, evaluated from the usage ledger and the model registry like every
other report figure. Billing only receives the resulting credits through its hook
(billing.credits), so billing never depends on reports (ARCHITECTURE.md: reports ->
billing -> inference).

Units: energy in integer microjoules (`_uj`; 1 Wh = 3.6e9 uJ, 1 kWh = 3.6e12 uJ, see
carbon/units.py), latency in integer microseconds (`_us`), money in integer minor
units of `currency` (`_minor`), percentages as decimals (20 = 20 %).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from inference.models import Mode, ModelFamily
from tenants.models import TenantOwnedModel

PERCENT = {"max_digits": 6, "decimal_places": 2,
           "validators": [MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(100))]}


class SlaTerms(TenantOwnedModel):
    """One version of a tenant's energy SLA for one model family and mode.

    A version is in force from `effective_from` until the next version of the same
    tenant, family and mode starts. Changing terms means adding a version; a version
    that has been evaluated is read-only (the admin enforces it), and no version may
    start inside a month already evaluated or invoiced (reports.sla.sla_terms_validate),
    so a change never alters a past evaluation.
    """

    family = models.ForeignKey(ModelFamily, on_delete=models.PROTECT, related_name="+")
    mode = models.CharField(max_length=16, choices=Mode.choices)
    effective_from = models.DateTimeField(help_text="UTC. In force from this instant until the next version starts.")
    # Guaranteed inference energy per 1,000 online predictions, microjoules (1 Wh = 3.6e9 uJ).
    target_energy_per_1k_uj = models.BigIntegerField(validators=[MinValueValidator(1)])
    # Optional p95 latency target, microseconds. Checked against the registry's profiled p95
    # of the variants that served the mode (per-request latency is not in the ledger).
    target_latency_p95_us = models.BigIntegerField(null=True, blank=True, validators=[MinValueValidator(1)])
    # Credit schedule: a breach up to minor_breach_limit_percent over the target (inclusive)
    # earns minor_credit_percent of the charges; beyond it, major_credit_percent.
    minor_breach_limit_percent = models.DecimalField(default=Decimal("20"), **PERCENT)
    minor_credit_percent = models.DecimalField(default=Decimal("10"), **PERCENT)
    major_credit_percent = models.DecimalField(default=Decimal("25"), **PERCENT)
    note = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["tenant", "family", "mode", "effective_from"]
        verbose_name = "SLA terms version"
        verbose_name_plural = "SLA terms"
        constraints = [
            models.UniqueConstraint(fields=["tenant", "family", "mode", "effective_from"],
                                    name="slaterms_one_version_per_instant"),
            models.CheckConstraint(condition=models.Q(target_energy_per_1k_uj__gt=0), name="slaterms_target_positive"),
            models.CheckConstraint(
                condition=models.Q(target_latency_p95_us__isnull=True) | models.Q(target_latency_p95_us__gt=0),
                name="slaterms_latency_positive"),
            models.CheckConstraint(
                condition=models.Q(minor_breach_limit_percent__gte=0, minor_credit_percent__gte=0,
                                   minor_credit_percent__lte=100, major_credit_percent__gte=0,
                                   major_credit_percent__lte=100),
                name="slaterms_percent_range"),
            models.CheckConstraint(condition=models.Q(minor_credit_percent__lte=models.F("major_credit_percent")),
                                   name="slaterms_minor_credit_not_above_major"),
            models.CheckConstraint(condition=models.Q(mode__in=Mode.values), name="slaterms_mode_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.family_id}/{self.mode} from {self.effective_from:%Y-%m-%d}"


class Outcome(models.TextChoices):
    MET = "met", "Met"
    BREACHED = "breached", "Breached"
    NO_USAGE = "no_usage", "No usage (nothing to measure)"


class LatencyOutcome(models.TextChoices):
    NOT_SET = "not_set", "No latency target"
    MET = "met", "Met"
    MISSED = "missed", "Missed"
    NO_USAGE = "no_usage", "No usage"


class SlaEvaluation(TenantOwnedModel):
    """The frozen result of one terms version over one month (or the part of the month the
    version was in force). Written once per tenant, terms and period (unique); every value
    it was computed from is copied here, so it explains itself after the terms change.
    """

    terms = models.ForeignKey(SlaTerms, on_delete=models.PROTECT, related_name="evaluations")
    period_start = models.DateTimeField()  # the month, UTC, half-open
    period_end = models.DateTimeField()
    span_start = models.DateTimeField()  # the part of the month these terms were in force
    span_end = models.DateTimeField()
    family_name = models.CharField(max_length=63)
    mode = models.CharField(max_length=16, choices=Mode.choices)
    currency = models.CharField(max_length=3)

    # Copies of the terms.
    target_energy_per_1k_uj = models.BigIntegerField()
    target_latency_p95_us = models.BigIntegerField(null=True, blank=True)
    minor_breach_limit_percent = models.DecimalField(max_digits=6, decimal_places=2)
    minor_credit_percent = models.DecimalField(max_digits=6, decimal_places=2)
    major_credit_percent = models.DecimalField(max_digits=6, decimal_places=2)

    # Measured, from the ledger: online predictions of the family in the mode, in the span.
    predictions = models.BigIntegerField()
    energy_uj = models.BigIntegerField()
    measured_energy_per_1k_uj = models.BigIntegerField(null=True, blank=True)  # rounded half-even; None: no usage
    # (measured - target) / target x 100, rounded half-even to 0.01; positive = over target.
    margin_percent = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    breach_band = models.CharField(max_length=8, blank=True, default="")  # "", "minor" or "major"

    profiled_latency_p95_us = models.BigIntegerField(null=True, blank=True)
    latency_outcome = models.CharField(max_length=16, choices=LatencyOutcome.choices)
    latency_basis = models.CharField(max_length=200, blank=True, default="")

    # The credit: credit_percent of what those predictions were charged.
    charges_minor = models.BigIntegerField()
    credit_percent = models.DecimalField(max_digits=6, decimal_places=2)
    credit_minor = models.BigIntegerField()  # <= 0
    evaluated_at = models.DateTimeField()

    class Meta(TenantOwnedModel.Meta):
        ordering = ["period_start", "family_name", "mode", "span_start"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "terms", "period_start"], name="slaevaluation_once_per_period"),
            models.CheckConstraint(condition=models.Q(credit_minor__lte=0), name="slaevaluation_credit_not_positive"),
            models.CheckConstraint(condition=models.Q(outcome__in=Outcome.values), name="slaevaluation_outcome_valid"),
            models.CheckConstraint(condition=models.Q(span_end__gt=models.F("span_start")),
                                   name="slaevaluation_span_not_empty"),
        ]
        indexes = [models.Index(fields=["period_start"], name="slaevaluation_period")]

    def __str__(self) -> str:
        return f"{self.family_name}/{self.mode} {self.period_start:%Y-%m}: {self.outcome}"

    @property
    def period_label(self) -> str:
        return f"{self.period_start:%Y-%m}"

    @property
    def reference(self) -> str:
        """What the invoice's credit line carries (InvoiceLine.reference)."""
        return f"sla-evaluation:{self.id}"


class ReportKind(models.TextChoices):
    CARBON_REPORT = "carbon_report", "Annual carbon report"
    SLA_STATEMENT = "sla_statement", "SLA compliance statement"


class ReportStatus(models.TextChoices):
    PENDING = "pending", "Pending (queued for generation)"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Report(TenantOwnedModel):
    """One generated (or requested) PDF for a tenant.

    The file is content-addressed: MEDIA_ROOT/reports/<tenant_id>/<kind>-<period>-<fingerprint>.pdf,
    where the fingerprint is the SHA-256 of the canonical JSON of every input; the same
    inputs give the same file (byte for byte), written once.
    """

    kind = models.CharField(max_length=16, choices=ReportKind.choices)
    period = models.CharField(max_length=7)  # "2026" (a year) or "2026-11" (a month)
    period_start = models.DateTimeField()  # UTC, half-open
    period_end = models.DateTimeField()
    status = models.CharField(max_length=8, choices=ReportStatus.choices, default=ReportStatus.PENDING)
    fingerprint = models.CharField(max_length=64, blank=True, default="")  # hex SHA-256 of the inputs
    sha256 = models.CharField(max_length=64, blank=True, default="")  # hex SHA-256 of the PDF bytes
    size_bytes = models.BigIntegerField(default=0)
    pages = models.PositiveIntegerField(default=0)
    path = models.CharField(max_length=255, blank=True, default="")  # relative to MEDIA_ROOT
    error = models.TextField(blank=True, default="")
    requested_by = models.CharField(max_length=150, blank=True, default="")  # "cli", "beat", "api:<key prefix>"
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=ReportKind.values), name="report_kind_valid"),
            models.CheckConstraint(condition=models.Q(status__in=ReportStatus.values), name="report_status_valid"),
        ]
        indexes = [models.Index(fields=["tenant", "kind", "period"], name="report_tenant_kind_period")]

    def __str__(self) -> str:
        return f"{self.kind} {self.period} (tenant {self.tenant_id}, {self.status})"
