"""Price book, billing accounts, invoices and Stripe's events.

Money is integer minor units of `currency` (`_minor`, cents; yen for JPY). Prices per
1,000 predictions keep sub-minor precision (6 decimal places of a minor unit) because a
prediction costs a fraction of a cent; only a line's amount is rounded (billing.money).
Energy is integer microjoules (`_uj`), emissions integer micrograms CO2e (`_ug`).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from tenants.models import TenantOwnedModel, Tier

CURRENCY_VALIDATOR = RegexValidator(r"^[A-Z]{3}$", "ISO 4217 code, e.g. EUR.")
SUB_MINOR = {"max_digits": 18, "decimal_places": 6, "validators": [MinValueValidator(Decimal(0))]}


class PriceVersion(models.Model):
    """One complete price list for one currency, in force from `effective_from` until the
    next version of the same currency starts. Platform-wide (not tenant-owned).

    Invoices copy every amount they use, so editing or adding a version never changes an
    invoice already created; the admin also makes versions used on invoices read-only.
    """

    currency = models.CharField(max_length=3, validators=[CURRENCY_VALIDATOR])
    effective_from = models.DateTimeField(help_text="UTC. In force from this instant until the next version starts.")
    # Monthly base fees, minor units per calendar month; prorated by the seconds a tenant spends in each tier.
    base_fee_standard_minor = models.BigIntegerField(validators=[MinValueValidator(0)],
                                                     help_text="Monthly base fee, standard tier, minor units.")
    base_fee_green_minor = models.BigIntegerField(validators=[MinValueValidator(0)],
                                                  help_text="Monthly base fee, green tier, minor units.")
    # Minor units per 1,000 predictions (e.g. 42.5 = EUR 0.425 per 1,000).
    standard_per_1k_minor = models.DecimalField(**SUB_MINOR,
                                                help_text="Minor units per 1,000 standard-mode predictions.")
    efficiency_per_1k_minor = models.DecimalField(**SUB_MINOR,
                                                  help_text="Minor units per 1,000 efficiency-mode predictions.")
    accurate_per_1k_minor = models.DecimalField(**SUB_MINOR,
                                                help_text="Minor units per 1,000 accurate-mode predictions.")
    batch_per_1k_minor = models.DecimalField(**SUB_MINOR, help_text="Minor units per 1,000 batch predictions.")
    # Percentage added to usage charged while the tenant is on the green tier (20 = +20%).
    green_premium_percent = models.DecimalField(max_digits=7, decimal_places=3, default=Decimal("20"),
                                                validators=[MinValueValidator(Decimal(0))])
    note = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["currency", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["currency", "effective_from"], name="priceversion_one_per_instant"),
            models.CheckConstraint(
                condition=models.Q(base_fee_standard_minor__gte=0, base_fee_green_minor__gte=0,
                                   standard_per_1k_minor__gte=0, efficiency_per_1k_minor__gte=0,
                                   accurate_per_1k_minor__gte=0, batch_per_1k_minor__gte=0,
                                   green_premium_percent__gte=0),
                name="priceversion_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.currency} prices from {self.effective_from:%Y-%m-%d %H:%M}Z"

    def clean(self):
        from django.core.exceptions import ValidationError

        from billing.money import CURRENCY_EXPONENTS

        if self.currency and self.currency not in CURRENCY_EXPONENTS:
            raise ValidationError({"currency": f"unknown currency; use one of {', '.join(sorted(CURRENCY_EXPONENTS))}"})


class BillingAccount(TenantOwnedModel):
    """A tenant's Stripe customer and base subscription (one per tenant)."""

    stripe_customer_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    stripe_subscription_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    subscription_currency = models.CharField(max_length=3, blank=True, default="")
    customer_name_synced = models.CharField(max_length=200, blank=True, default="")  # last name sent to Stripe
    # From Stripe's customer.updated events (the newest event wins, see billing.webhooks).
    customer_email = models.CharField(max_length=254, blank=True, default="")
    has_payment_method = models.BooleanField(default=False)
    customer_event_created = models.BigIntegerField(null=True, blank=True)  # Unix seconds of that event
    customer_event_id = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        constraints = [models.UniqueConstraint(fields=["tenant"], name="billingaccount_one_per_tenant")]

    def __str__(self) -> str:
        return f"billing account of tenant {self.tenant_id}"


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", "Draft (rated; not yet in Stripe, or Stripe sync pending)"
    OPEN = "open", "Open (in Stripe, awaiting payment)"
    PAID = "paid", "Paid"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    VOID = "void", "Void"


class Invoice(TenantOwnedModel):
    """One tenant's bill for one calendar month. Its lines are frozen when it is created."""

    period_start = models.DateTimeField()  # UTC, inclusive
    period_end = models.DateTimeField()  # UTC, exclusive
    currency = models.CharField(max_length=3, validators=[CURRENCY_VALIDATOR])
    status = models.CharField(max_length=16, choices=InvoiceStatus.choices, default=InvoiceStatus.DRAFT)
    total_minor = models.BigIntegerField()  # sum of the lines' amount_minor (credits included)
    energy_uj = models.BigIntegerField(default=0)  # energy of the usage billed
    co2e_ug = models.BigIntegerField(default=0)  # operational + embodied CO2e of the usage billed

    stripe_invoice_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    # Why the last push to Stripe failed, for staff and the next run; empty once synced.
    stripe_error = models.TextField(blank=True, default="")
    stripe_error_at = models.DateTimeField(null=True, blank=True)
    stripe_attempts = models.PositiveIntegerField(default=0)
    stripe_synced_at = models.DateTimeField(null=True, blank=True)

    # The Stripe event that last set the status (webhooks arrive out of order).
    status_event_created = models.BigIntegerField(null=True, blank=True)  # Unix seconds
    status_event_id = models.CharField(max_length=255, blank=True, default="")
    paid_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "period_start"], name="invoice_one_per_tenant_period"),
            models.CheckConstraint(condition=models.Q(status__in=InvoiceStatus.values), name="invoice_status_valid"),
            models.CheckConstraint(condition=models.Q(period_end__gt=models.F("period_start")),
                                   name="invoice_period_not_empty"),
        ]
        indexes = [models.Index(fields=["status", "period_start"], name="invoice_status_period")]

    def __str__(self) -> str:
        return f"invoice {self.id} ({self.period_start:%Y-%m}, tenant {self.tenant_id})"

    @property
    def period_label(self) -> str:
        return f"{self.period_start:%Y-%m}"


class LineKind(models.TextChoices):
    BASE_FEE = "base_fee", "Base fee"
    PREDICTIONS = "predictions", "Predictions"
    BATCH_PREDICTIONS = "batch_predictions", "Batch predictions"
    GREEN_PREMIUM = "green_premium", "Green tier premium"
    SLA_CREDIT = "sla_credit", "SLA credit"


class InvoiceLine(TenantOwnedModel):
    """amount_minor = round_minor(quantity x unit_price_minor / unit_divisor), copied at rating.

    quantity and unit are per kind: base fee = seconds in the tier x monthly fee / seconds
    in the month; predictions = count x price per 1,000 / 1,000; green premium = the green
    usage charges (minor units) x percent / 100; SLA credit = 1 x (negative) amount / 1.
    """

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    kind = models.CharField(max_length=20, choices=LineKind.choices)
    mode = models.CharField(max_length=16, blank=True, default="")  # predictions lines
    tier = models.CharField(max_length=16, blank=True, default="", choices=Tier.choices)
    description = models.CharField(max_length=300)
    span_start = models.DateTimeField()
    span_end = models.DateTimeField()
    quantity = models.DecimalField(max_digits=24, decimal_places=6)
    unit_price_minor = models.DecimalField(max_digits=20, decimal_places=6)
    unit_divisor = models.BigIntegerField(validators=[MinValueValidator(1)])
    amount_minor = models.BigIntegerField()
    energy_uj = models.BigIntegerField(default=0)
    co2e_ug = models.BigIntegerField(default=0)
    price_version = models.ForeignKey(PriceVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reference = models.CharField(max_length=200, blank=True, default="")  # e.g. the SLA evaluation a credit came from
    stripe_invoice_item_id = models.CharField(max_length=255, null=True, blank=True, unique=True)

    class Meta(TenantOwnedModel.Meta):
        ordering = ["invoice", "position"]
        constraints = [
            models.UniqueConstraint(fields=["invoice", "position"], name="invoiceline_unique_position"),
            models.CheckConstraint(condition=models.Q(unit_divisor__gte=1), name="invoiceline_divisor_positive"),
            models.CheckConstraint(condition=models.Q(kind__in=LineKind.values), name="invoiceline_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount_minor}"


class InvoiceStatusChange(TenantOwnedModel):
    """Audit trail: every status an invoice took, when, and what caused it."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, choices=InvoiceStatus.choices)
    at = models.DateTimeField()
    source = models.CharField(max_length=100)  # "rating", "stripe:push", "webhook:invoice.paid"
    stripe_event_id = models.CharField(max_length=255, blank=True, default="")

    class Meta(TenantOwnedModel.Meta):
        ordering = ["at", "id"]


class StripeEvent(models.Model):
    """Every verified Stripe event, stored once (its id is unique) before processing.

    Not tenant-owned: the tenant is only known after looking up the Stripe ids inside,
    which the processing task does in all_tenants_scope.
    """

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    created = models.BigIntegerField()  # Stripe's Unix seconds; orders events of one object
    livemode = models.BooleanField(default=False)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
