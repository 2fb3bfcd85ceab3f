"""Invoices API for tenants, and Stripe's webhook endpoint."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from billing.models import Invoice
from billing.money import format_major
from billing.selectors import invoice_get, invoice_list
from billing.stripe_gateway import WebhookVerificationError
from billing.webhooks import stripe_webhook_receive
from carbon.units import ug_to_g, uj_to_kwh
from config.errors import json_error
from tenants.models import Scope
from tenants.views import TenantAPIView


def _decimal(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros: 1000, 0.5, 42.125."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class InvoiceLineOutput(serializers.Serializer):
    position = serializers.IntegerField()
    kind = serializers.CharField()
    mode = serializers.CharField(help_text="Prediction mode of a predictions line, else empty.")
    tier = serializers.CharField()
    description = serializers.CharField()
    span_start = serializers.DateTimeField()
    span_end = serializers.DateTimeField()
    quantity = serializers.SerializerMethodField(help_text="Decimal string: predictions, seconds, or minor units.")
    unit_price_minor = serializers.SerializerMethodField(
        help_text="Decimal string, minor units per unit_divisor units.")
    unit_divisor = serializers.IntegerField()
    amount_minor = serializers.IntegerField(help_text="round(quantity x unit_price_minor / unit_divisor).")
    amount = serializers.SerializerMethodField(help_text="amount_minor in major units, e.g. '12.34'.")
    energy_uj = serializers.IntegerField()
    co2e_ug = serializers.IntegerField()

    def get_quantity(self, line) -> str:
        return _decimal(line.quantity)

    def get_unit_price_minor(self, line) -> str:
        return _decimal(line.unit_price_minor)

    def get_amount(self, line) -> str:
        return format_major(line.amount_minor, self.context["currency"])


class InvoiceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    period = serializers.CharField(source="period_label")
    period_start = serializers.DateTimeField()
    period_end = serializers.DateTimeField()
    currency = serializers.CharField()
    status = serializers.CharField()
    total_minor = serializers.IntegerField()
    total = serializers.SerializerMethodField(help_text="total_minor in major units, e.g. '12.34'.")
    energy_uj = serializers.IntegerField()
    energy_kwh = serializers.SerializerMethodField()
    co2e_ug = serializers.IntegerField(help_text="Operational + embodied CO2e of the usage billed, micrograms.")
    co2e_g = serializers.SerializerMethodField()
    stripe_invoice_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    paid_at = serializers.DateTimeField(allow_null=True)

    def get_total(self, invoice) -> str:
        return format_major(invoice.total_minor, invoice.currency)

    def get_energy_kwh(self, invoice) -> str:
        return _decimal(uj_to_kwh(invoice.energy_uj))

    def get_co2e_g(self, invoice) -> str:
        return _decimal(ug_to_g(invoice.co2e_ug))


class InvoiceDetailOutput(InvoiceOutput):
    lines = serializers.SerializerMethodField()

    @extend_schema_field(InvoiceLineOutput(many=True))
    def get_lines(self, invoice) -> list[dict]:
        return InvoiceLineOutput(invoice.lines.all(), many=True, context={"currency": invoice.currency}).data


class InvoiceListApi(TenantAPIView):
    required_scope = Scope.USAGE

    @extend_schema(responses=InvoiceOutput(many=True))
    def get(self, request, *, tenant):
        return Response(InvoiceOutput(invoice_list(tenant=tenant), many=True).data)


class InvoiceDetailApi(TenantAPIView):
    required_scope = Scope.USAGE

    @extend_schema(responses=InvoiceDetailOutput)
    def get(self, request, invoice_id: int, *, tenant):
        try:
            invoice = invoice_get(tenant=tenant, invoice_id=invoice_id)
        except Invoice.DoesNotExist:
            raise NotFound("No such invoice.") from None
        return Response(InvoiceDetailOutput(invoice).data)


@csrf_exempt
def stripe_webhook(request):
    """POST /v1/stripe/webhook: Stripe's deliveries. Authenticated by Stripe-Signature,
    not an API key; the tenant is found later from the Stripe ids in the event."""
    if request.method != "POST":
        return json_error("method_not_allowed", "Use POST.", 405)
    try:
        row, is_new = stripe_webhook_receive(payload=request.body, signature_header=request.headers.get(
            "Stripe-Signature"), secret=settings.STRIPE_WEBHOOK_SECRET)
    except WebhookVerificationError as exc:
        return json_error(exc.code, exc.detail, 503 if exc.code == "webhook_not_configured" else 400)
    return JsonResponse({"received": True, "event_id": row.event_id, "duplicate": not is_new})
