"""Stripe webhooks: verify, store once, process after commit (services for Stripe events).

Delivery is at-least-once and unordered, so:
* an event is stored once (StripeEvent.event_id is unique); a redelivery of a stored,
  processed event changes nothing;
* processing runs in a Celery task queued with transaction.on_commit, locks the event
  row and marks it processed in the same transaction as its effect;
* effects are ordered by the event's `created`, not by arrival: paid and void are final
  (a late invoice.payment_failed never downgrades a paid invoice), an older failure does
  not override a newer state, and for customer.updated the newest event (ties broken by
  event id) wins.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone

from billing import stripe_gateway as gateway
from billing.models import BillingAccount, Invoice, InvoiceStatus, StripeEvent
from billing.services import invoice_status_set
from tenants.scope import all_tenants_scope, tenant_scope

INVOICE_EVENTS = {
    "invoice.paid": InvoiceStatus.PAID,
    "invoice.payment_succeeded": InvoiceStatus.PAID,  # what localstripe (and older API versions) send
    "invoice.payment_failed": InvoiceStatus.PAYMENT_FAILED,
    "invoice.voided": InvoiceStatus.VOID,
    "invoice.marked_uncollectible": InvoiceStatus.PAYMENT_FAILED,
}


def stripe_webhook_receive(*, payload: bytes, signature_header: str | None, secret: str) -> tuple[StripeEvent, bool]:
    """Verify a delivery, store its event once and queue processing after commit.

    Returns (event row, is_new). Raises gateway.WebhookVerificationError, writing
    nothing, for a missing, forged, tampered or expired signature or a malformed body.
    A redelivered event that is not processed yet is queued again (processing is
    idempotent), which recovers a task lost with a broker outage.
    """
    event = gateway.webhook_event_verify(payload=payload, signature_header=signature_header, secret=secret)
    from billing.tasks import stripe_event_process_task

    with transaction.atomic():
        row, created = StripeEvent.objects.get_or_create(
            event_id=event.id,
            defaults={"type": event.type[:100], "created": event.created, "livemode": event.livemode,
                      "payload": event.payload})
        if row.processed_at is None:
            transaction.on_commit(lambda: stripe_event_process_task.delay(stripe_event_id=row.id))
    return row, created


def stripe_event_process(*, stripe_event_id: int) -> str:
    """Apply one stored event, once. Returns what happened (also kept as its outcome)."""
    with transaction.atomic():
        row = StripeEvent.objects.select_for_update().get(id=stripe_event_id)
        if row.processed_at is not None:
            return f"already processed: {row.outcome}"
        if row.type in INVOICE_EVENTS:
            outcome = _invoice_event(row, INVOICE_EVENTS[row.type])
        elif row.type == "customer.updated":
            outcome = _customer_event(row)
        else:
            outcome = f"ignored: {row.type} is not handled"
        row.processed_at = timezone.now()
        row.outcome = outcome[:300]
        row.save(update_fields=["processed_at", "outcome"])
    return outcome


def _event_time(row: StripeEvent) -> datetime:
    return datetime.fromtimestamp(row.created, UTC)


def _find_invoice(remote: gateway.StripeInvoice) -> tuple[int, int] | None:
    """(invoice id, tenant id) of the local invoice a Stripe invoice belongs to.

    By its recorded Stripe id; failing that (the event beat our push recording it) by the
    greentier_invoice_id metadata, if the Stripe customer is that tenant's.
    """
    with all_tenants_scope():
        found = Invoice.all_tenants.filter(stripe_invoice_id=remote.id).values_list("id", "tenant_id").first()
        if found is not None:
            return found
        claimed = remote.metadata.get("greentier_invoice_id") or next(
            (m["greentier_invoice_id"] for m in remote.line_metadata if m.get("greentier_invoice_id")), None)
        if not claimed or not str(claimed).isdigit():
            return None
        candidate = Invoice.all_tenants.filter(id=int(claimed), stripe_invoice_id__isnull=True).values_list(
            "id", "tenant_id").first()
        if candidate is None or not BillingAccount.all_tenants.filter(
                tenant_id=candidate[1], stripe_customer_id=remote.customer_id).exists():
            return None
        return candidate


def _invoice_event(row: StripeEvent, status: str) -> str:
    remote = gateway.invoice_from_event_object(row.payload["data"]["object"])
    found = _find_invoice(remote)
    if found is None:
        return f"ignored: no local invoice for Stripe invoice {remote.id}"
    invoice_id, tenant_id = found
    with tenant_scope(tenant_id):
        invoice = Invoice.objects.select_for_update().get(id=invoice_id)
        if not invoice.stripe_invoice_id:
            invoice.stripe_invoice_id = remote.id
            invoice.save(update_fields=["stripe_invoice_id", "updated_at"])
        before = invoice.status
        paid_at = datetime.fromtimestamp(remote.paid_at, UTC) if remote.paid_at else _event_time(row)
        changed = invoice_status_set(invoice=invoice, status=status, source=f"webhook:{row.type}",
                                     at=_event_time(row), event_id=row.event_id, event_created=row.created,
                                     paid_at=paid_at)
    if changed:
        return f"invoice {invoice_id}: {before} -> {status}"
    return f"invoice {invoice_id}: stays {before} ({status} from an older or final-state event is ignored)"


def _customer_event(row: StripeEvent) -> str:
    customer = gateway.customer_from_event_object(row.payload["data"]["object"])
    with all_tenants_scope():
        found = BillingAccount.all_tenants.filter(stripe_customer_id=customer.id).values_list(
            "id", "tenant_id").first()
    if found is None:
        return f"ignored: no billing account for Stripe customer {customer.id}"
    account_id, tenant_id = found
    with tenant_scope(tenant_id):
        account = BillingAccount.objects.select_for_update().get(id=account_id)
        if account.customer_event_created is not None and (row.created, row.event_id) <= (
                account.customer_event_created, account.customer_event_id):
            return f"billing account {account_id}: kept newer customer data from {account.customer_event_id}"
        account.customer_email = customer.email[:254]
        account.has_payment_method = customer.has_payment_method
        account.customer_event_created, account.customer_event_id = row.created, row.event_id
        account.save(update_fields=["customer_email", "has_payment_method", "customer_event_created",
                                    "customer_event_id", "updated_at"])
    return f"billing account {account_id}: customer data updated"
