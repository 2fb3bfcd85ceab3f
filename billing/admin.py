"""Staff tools: the price book (edited here), invoices, billing accounts, Stripe events.

The admin runs in all_tenants_scope (config.admin_scope), so tenant-owned rows are read
through `all_tenants`.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from billing.models import (
    BillingAccount,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    PriceVersion,
    StripeEvent,
)
from billing.money import format_major
from tenants.admin import AllTenantsAdmin, AuditedAdminMixin


@admin.register(PriceVersion)
class PriceVersionAdmin(AuditedAdminMixin, admin.ModelAdmin):
    audit_action = "price.change"

    list_display = ["currency", "effective_from", "base_fee_standard_minor", "base_fee_green_minor",
                    "standard_per_1k_minor", "efficiency_per_1k_minor", "accurate_per_1k_minor", "batch_per_1k_minor",
                    "green_premium_percent", "used_on_invoices"]
    list_filter = ["currency"]
    ordering = ["currency", "-effective_from"]
    fieldsets = [
        (None, {"fields": ["currency", "effective_from", "note"],
                "description": "All amounts are minor units of the currency (cents; yen for JPY). A version is in "
                               "force from its start until the next version of the same currency starts. To change "
                               "prices, add a version starting when the change applies."}),
        ("Monthly base fee (prorated by time in each tier)", {"fields": ["base_fee_standard_minor",
                                                                       "base_fee_green_minor"]}),
        ("Per 1,000 predictions (sub-minor precision allowed)", {"fields": [
            "standard_per_1k_minor", "efficiency_per_1k_minor", "accurate_per_1k_minor", "batch_per_1k_minor"]}),
        ("Green tier", {"fields": ["green_premium_percent"]}),
    ]

    @admin.display(boolean=True, description="on invoices")
    def used_on_invoices(self, obj: PriceVersion) -> bool:
        return InvoiceLine.all_tenants.filter(price_version=obj).exists()

    def has_change_permission(self, request, obj=None):
        # A version invoices were rated with stays as it was: the invoices copied its
        # amounts anyway, and an edited history would no longer explain them.
        if obj is not None and self.used_on_invoices(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and self.used_on_invoices(obj):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(Invoice)
class InvoiceAdmin(AllTenantsAdmin):
    list_display = ["id", "tenant", "period_label", "status", "currency", "total", "stripe_invoice_id",
                    "stripe_error_short", "created_at"]
    list_filter = ["status", "currency", "period_start"]
    search_fields = ["tenant__slug", "stripe_invoice_id"]
    readonly_fields = [f.name for f in Invoice._meta.fields] + ["lines_table"]
    actions = ["push_to_stripe"]

    @admin.display(description="total")
    def total(self, obj: Invoice) -> str:
        return f"{obj.currency} {format_major(obj.total_minor, obj.currency)}"

    @admin.display(description="lines")
    def lines_table(self, obj: Invoice) -> str:
        # Rendered, not an inline: an inline formset would query InvoiceLine.objects, which
        # refuses to run in the admin's all_tenants_scope (fail closed).
        rows = InvoiceLine.all_tenants.filter(invoice=obj).order_by("position")
        return format_html(
            "<table><tr><th>#</th><th>kind</th><th>description</th><th>span</th><th>quantity</th><th>unit price "
            "(minor)</th><th>divisor</th><th>amount (minor)</th><th>Stripe item</th></tr>{}</table>",
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} - {}</td><td>{}</td><td>{}</td>"
                                 "<td>{}</td><td>{}</td><td>{}</td></tr>",
                             ((ln.position, ln.kind, ln.description, ln.span_start, ln.span_end, ln.quantity,
                               ln.unit_price_minor, ln.unit_divisor, ln.amount_minor, ln.stripe_invoice_item_id or "")
                              for ln in rows)))

    @admin.display(description="Stripe error")
    def stripe_error_short(self, obj: Invoice) -> str:
        return obj.stripe_error[:80]

    def has_add_permission(self, request):
        return False  # invoices come from rating (run_invoices), never by hand

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Push selected draft invoices to Stripe now")
    def push_to_stripe(self, request, queryset):
        from billing.services import InvoiceSyncError, invoice_push_to_stripe

        for invoice in queryset.filter(status=InvoiceStatus.DRAFT):
            try:
                invoice_push_to_stripe(invoice=invoice)
                self.message_user(request, f"invoice {invoice.id} pushed")
            except InvoiceSyncError as exc:
                self.message_user(request, f"invoice {invoice.id}: {exc}", level=messages.ERROR)


@admin.register(BillingAccount)
class BillingAccountAdmin(AllTenantsAdmin):
    list_display = ["tenant", "stripe_customer_id", "stripe_subscription_id", "subscription_currency",
                    "has_payment_method", "customer_email", "updated_at"]
    search_fields = ["tenant__slug", "stripe_customer_id"]
    readonly_fields = ["customer_event_created", "customer_event_id", "created_at", "updated_at"]


@admin.register(StripeEvent)
class StripeEventAdmin(admin.ModelAdmin):
    list_display = ["event_id", "type", "created", "received_at", "processed_at", "outcome"]
    list_filter = ["type"]
    search_fields = ["event_id"]
    readonly_fields = [f.name for f in StripeEvent._meta.fields]

    def has_add_permission(self, request):
        return False
