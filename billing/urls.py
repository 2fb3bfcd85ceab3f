from django.urls import path

from billing import apis

urlpatterns = [
    path("invoices", apis.InvoiceListApi.as_view(), name="invoices"),
    path("invoices/<int:invoice_id>", apis.InvoiceDetailApi.as_view(), name="invoice-detail"),
    path("stripe/webhook", apis.stripe_webhook, name="stripe-webhook"),
]
