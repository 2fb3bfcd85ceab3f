"""Staff tools: SLA terms (edited here), their evaluations and generated reports.

The admin runs in all_tenants_scope (config.admin_scope), so tenant-owned rows are read
through `all_tenants`. Targets are entered in Wh per 1,000 predictions and milliseconds
and stored in microjoules and microseconds.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from django import forms
from django.contrib import admin

from reports import formatting as fmt
from reports.models import Report, SlaEvaluation, SlaTerms
from reports.sla import SlaError, sla_terms_validate
from tenants.admin import AllTenantsAdmin, AuditedAdminMixin
from tenants.scope import tenant_scope

UJ_PER_WH = Decimal(fmt.UJ_PER_WH)


class SlaTermsForm(forms.ModelForm):
    target_wh_per_1k = forms.DecimalField(
        label="Target energy (Wh per 1,000 predictions)", max_digits=24, decimal_places=12,
        min_value=Decimal("0.000000000001"),
        help_text="Guaranteed energy per 1,000 online predictions of this family in this mode, PUE included. "
                  "Stored in microjoules (1 Wh = 3,600,000,000 uJ).")
    target_latency_p95_ms = forms.DecimalField(
        label="p95 latency target (ms)", required=False, max_digits=12, decimal_places=3, min_value=Decimal("0.001"),
        help_text="Optional. Reported against the registry's profiled p95; never credited.")

    class Meta:
        model = SlaTerms
        fields = ["tenant", "family", "mode", "effective_from", "target_wh_per_1k", "target_latency_p95_ms",
                  "minor_breach_limit_percent", "minor_credit_percent", "major_credit_percent", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["target_wh_per_1k"] = fmt.uj_to_wh(self.instance.target_energy_per_1k_uj).normalize()
            if self.instance.target_latency_p95_us is not None:
                self.initial["target_latency_p95_ms"] = Decimal(self.instance.target_latency_p95_us) / 1000

    def clean(self):
        cleaned = super().clean()
        tenant, effective_from = cleaned.get("tenant"), cleaned.get("effective_from")
        if tenant is not None and effective_from is not None:
            try:
                sla_terms_validate(tenant_id=tenant.id, effective_from=effective_from)
            except SlaError as exc:
                self.add_error("effective_from", str(exc))
        return cleaned

    def _post_clean(self):
        # Model validation checks the unique constraint through SlaTerms.objects, which
        # (fail closed) needs a tenant in scope; the admin runs in all_tenants_scope.
        tenant = self.cleaned_data.get("tenant")
        if tenant is None:
            return super()._post_clean()
        with tenant_scope(tenant.id):
            return super()._post_clean()

    def save(self, commit=True):
        wh = self.cleaned_data["target_wh_per_1k"]
        self.instance.target_energy_per_1k_uj = int((wh * UJ_PER_WH).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        ms = self.cleaned_data.get("target_latency_p95_ms")
        self.instance.target_latency_p95_us = None if ms is None else int(
            (ms * 1000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        return super().save(commit=commit)


@admin.register(SlaTerms)
class SlaTermsAdmin(AuditedAdminMixin, AllTenantsAdmin):
    audit_action = "sla_terms.change"

    form = SlaTermsForm
    list_display = ["tenant", "family", "mode", "effective_from", "target_wh", "target_latency_p95_us",
                    "minor_breach_limit_percent", "minor_credit_percent", "major_credit_percent", "evaluated"]
    list_filter = ["mode", "family"]
    search_fields = ["tenant__slug", "note"]
    ordering = ["tenant__slug", "family__name", "mode", "-effective_from"]
    fieldsets = [
        (None, {"fields": ["tenant", "family", "mode", "effective_from", "note"],
                "description": "A version is in force from its start until the next version of the same tenant, family "
                               "and mode starts. To change terms, add a version; versions already evaluated are "
                               "read-only, and a new one cannot start inside a month already evaluated or invoiced."}),
        ("Targets", {"fields": ["target_wh_per_1k", "target_latency_p95_ms"]}),
        ("Credit schedule (percent of the charges of the predictions covered)", {"fields": [
            "minor_breach_limit_percent", "minor_credit_percent", "major_credit_percent"],
            "description": "Measured at or below the target: met. Up to the limit over the target (inclusive): the "
                           "minor credit. Beyond: the major credit."}),
    ]

    @admin.display(description="target Wh / 1,000")
    def target_wh(self, obj: SlaTerms) -> str:
        return fmt.wh_per_1k(obj.target_energy_per_1k_uj)

    @admin.display(boolean=True, description="evaluated")
    def evaluated(self, obj: SlaTerms) -> bool:
        return SlaEvaluation.all_tenants.filter(terms=obj).exists()

    def has_change_permission(self, request, obj=None):
        # Evaluated terms stay as they were: the evaluations copied them, and an edited
        # history would no longer explain the credits.
        if obj is not None and self.evaluated(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and self.evaluated(obj):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(SlaEvaluation)
class SlaEvaluationAdmin(AllTenantsAdmin):
    list_display = ["tenant", "period_label", "family_name", "mode", "target", "measured", "margin_percent", "outcome",
                    "breach_band", "credit_minor", "currency", "latency_outcome"]
    list_filter = ["outcome", "mode", "period_start"]
    search_fields = ["tenant__slug", "family_name"]
    readonly_fields = [f.name for f in SlaEvaluation._meta.fields]

    @admin.display(description="target Wh / 1,000")
    def target(self, obj: SlaEvaluation) -> str:
        return fmt.wh_per_1k(obj.target_energy_per_1k_uj)

    @admin.display(description="measured Wh / 1,000")
    def measured(self, obj: SlaEvaluation) -> str:
        return fmt.wh_per_1k(obj.measured_energy_per_1k_uj)

    def has_add_permission(self, request):
        return False  # evaluations come from reports.sla, once per month

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Report)
class ReportAdmin(AllTenantsAdmin):
    list_display = ["id", "tenant", "kind", "period", "status", "pages", "size_bytes", "fingerprint_short",
                    "requested_by", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["tenant__slug", "fingerprint", "sha256"]
    readonly_fields = [f.name for f in Report._meta.fields]

    @admin.display(description="fingerprint")
    def fingerprint_short(self, obj: Report) -> str:
        return obj.fingerprint[:16]

    def has_add_permission(self, request):
        return False  # reports come from carbon_report / sla_report, beat, or POST /v1/reports
