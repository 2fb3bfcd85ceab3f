"""Writes: rating a month into a frozen invoice, pushing it to Stripe, the monthly run.

An invoice's life: `invoice_create_for_period` rates the month once and stores the
invoice and its lines (status draft); the lines never change after that.
`invoice_push_to_stripe` then makes the Stripe side match, step by step, recording each
Stripe id locally the moment Stripe returns it:

    customer -> base subscription -> one invoice item per line -> invoice -> pay or finalise

Each step first checks what is already recorded, then what an interrupted attempt left in
Stripe (found by the metadata we attach), and only then creates, with an idempotency key
built from our ids. So a run killed at any instant and run again ends with one local and
one Stripe invoice per tenant and period, with the same total.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from django.db import IntegrityError, connection
from django.db.models import F
from django.utils import timezone

from billing import stripe_gateway as gateway
from billing.credits import CreditError
from billing.models import (
    BillingAccount,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    InvoiceStatusChange,
)
from billing.money import format_major
from billing.periods import Period, PeriodError
from billing.rating import RatingError, invoice_lines_for_period
from billing.selectors import (
    invoice_drafts,
    invoice_for_period,
    tenants_billable_for_period,
)
from tenants.models import Tenant
from tenants.scope import tenant_scope

TERMINAL = {InvoiceStatus.PAID, InvoiceStatus.VOID}
# Which status may follow which. paid and void are final; a failed payment can still be
# paid later (Stripe retries) but never goes back to plain "open".
ALLOWED = {
    InvoiceStatus.DRAFT: {InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.PAYMENT_FAILED, InvoiceStatus.VOID},
    InvoiceStatus.OPEN: {InvoiceStatus.PAID, InvoiceStatus.PAYMENT_FAILED, InvoiceStatus.VOID},
    InvoiceStatus.PAYMENT_FAILED: {InvoiceStatus.PAID, InvoiceStatus.VOID},
}
STRIPE_STATUS = {
    "open": InvoiceStatus.OPEN, "paid": InvoiceStatus.PAID, "void": InvoiceStatus.VOID,
    "uncollectible": InvoiceStatus.PAYMENT_FAILED,
}
_PUSH_LOCK_NAMESPACE = 0x6774_6276 << 32  # "gtbv": advisory-lock keys of invoice pushes


class BillingError(Exception):
    """A billing step failed; the message says what and is safe to show to staff."""


class InvoiceSyncError(BillingError):
    """Pushing an invoice to Stripe failed. The invoice stays draft with the reason noted."""

    def __init__(self, message: str, *, invoice_id: int, retryable: bool):
        super().__init__(message)
        self.invoice_id = invoice_id
        self.retryable = retryable


RUN_ERRORS = (BillingError, RatingError, CreditError, PeriodError)


# --- invoice status -----------------------------------------------------------------------------

def invoice_status_set(*, invoice: Invoice, status: str, source: str, at: datetime, event_id: str = "",
                       event_created: int | None = None, paid_at: datetime | None = None) -> bool:
    """Move a locked invoice (select_for_update, inside its tenant_scope) to `status` if allowed.

    Returns False, changing nothing, when the move is not allowed (paid and void are
    final) or when it comes from a Stripe event older than the one that set the current
    status. Each change is recorded as an InvoiceStatusChange.
    """
    current = invoice.status
    if status == current or current in TERMINAL or status not in ALLOWED.get(current, ()):
        return False
    if (event_created is not None and status not in TERMINAL and invoice.status_event_created is not None
            and event_created < invoice.status_event_created):
        return False
    invoice.status = status
    fields = ["status", "updated_at"]
    if event_created is not None:
        invoice.status_event_created, invoice.status_event_id = event_created, event_id
        fields += ["status_event_created", "status_event_id"]
    if status == InvoiceStatus.PAID:
        invoice.paid_at = paid_at or at
        fields.append("paid_at")
    invoice.save(update_fields=fields)
    InvoiceStatusChange.objects.create(tenant_id=invoice.tenant_id, invoice=invoice, from_status=current,
                                       to_status=status, at=at, source=source[:100], stripe_event_id=event_id)
    return True


# --- rating into an invoice -----------------------------------------------------------------

def invoice_create_for_period(*, tenant: Tenant, period: Period) -> tuple[Invoice, bool]:
    """The tenant's invoice for `period`: rated and stored on the first call, returned
    unchanged (never re-rated) on every later one. Returns (invoice, created).

    Raises RatingError (no price in effect, bad usage rows), CreditError (a bad SLA
    credit) or BillingError (the tenant did not exist in the period); nothing is written then.
    """
    with tenant_scope(tenant.id):
        existing = Invoice.objects.filter(tenant=tenant, period_start=period.start).first()
    if existing is not None:
        return existing, False
    drafts = invoice_lines_for_period(tenant=tenant, period=period)
    if not drafts:
        raise BillingError(f"tenant {tenant.slug} did not exist during {period.label}; nothing to bill")
    now = timezone.now()
    try:
        with tenant_scope(tenant.id):
            invoice = Invoice.objects.create(
                tenant=tenant, period_start=period.start, period_end=period.end, currency=tenant.currency,
                total_minor=sum(d.amount_minor for d in drafts), energy_uj=sum(d.energy_uj for d in drafts),
                co2e_ug=sum(d.co2e_ug for d in drafts))
            InvoiceLine.objects.bulk_create([
                InvoiceLine(
                    tenant=tenant, invoice=invoice, position=position, kind=d.kind, mode=d.mode, tier=d.tier,
                    description=d.description[:300], span_start=d.span_start, span_end=d.span_end,
                    quantity=d.quantity, unit_price_minor=d.unit_price_minor, unit_divisor=d.unit_divisor,
                    amount_minor=d.amount_minor, energy_uj=d.energy_uj, co2e_ug=d.co2e_ug,
                    price_version_id=d.price_version_id, reference=d.reference[:200])
                for position, d in enumerate(drafts, start=1)
            ])
            InvoiceStatusChange.objects.create(tenant=tenant, invoice=invoice, from_status="",
                                               to_status=InvoiceStatus.DRAFT, at=now, source="rating")
    except IntegrityError:
        # Another worker created it between our check and insert: theirs is the one.
        with tenant_scope(tenant.id):
            existing = Invoice.objects.filter(tenant=tenant, period_start=period.start).first()
        if existing is None:
            raise
        return existing, False
    return invoice, True


# --- Stripe -----------------------------------------------------------------------------------

def billing_account_sync(*, tenant: Tenant, currency: str | None = None) -> BillingAccount:
    """Make sure the tenant has a Stripe customer (with its current name) and a base
    subscription in `currency` (default: the tenant's). Raises gateway errors as they come;
    what succeeded before is recorded, so calling again resumes."""
    currency = currency or tenant.currency
    with tenant_scope(tenant.id):
        account = BillingAccount.objects.filter(tenant=tenant).first()
    if account is None:
        try:
            with tenant_scope(tenant.id):
                account = BillingAccount.objects.create(tenant=tenant)
        except IntegrityError:
            with tenant_scope(tenant.id):
                account = BillingAccount.objects.get(tenant=tenant)

    if not account.stripe_customer_id:
        customer = gateway.customer_create(tenant_id=tenant.id, slug=tenant.slug, name=tenant.name,
                                           idempotency_key=f"greentier:tenant:{tenant.id}:customer")
        account = _account_update(account, stripe_customer_id=customer.id, customer_name_synced=tenant.name)
    elif account.customer_name_synced != tenant.name:
        digest = hashlib.sha256(tenant.name.encode()).hexdigest()[:16]
        gateway.customer_update(customer_id=account.stripe_customer_id, name=tenant.name,
                                idempotency_key=f"greentier:tenant:{tenant.id}:customer:name:{digest}")
        account = _account_update(account, customer_name_synced=tenant.name)

    if not account.stripe_subscription_id:
        plan_id = gateway.base_plan_ensure(currency=currency)
        subscription_id = gateway.subscription_create(
            customer_id=account.stripe_customer_id, plan_id=plan_id, tenant_id=tenant.id,
            idempotency_key=f"greentier:tenant:{tenant.id}:subscription:{currency}")
        account = _account_update(account, stripe_subscription_id=subscription_id, subscription_currency=currency)
    elif account.subscription_currency != currency:
        raise BillingError(f"tenant {tenant.slug} is billed in {currency} but its Stripe subscription "
                           f"{account.stripe_subscription_id} is in {account.subscription_currency}; "
                           "end that subscription in Stripe and clear it on the billing account first")
    return account


def _account_update(account: BillingAccount, **values) -> BillingAccount:
    with tenant_scope(account.tenant_id):
        BillingAccount.objects.filter(id=account.id).update(**values, updated_at=timezone.now())
        return BillingAccount.objects.get(id=account.id)


@contextlib.contextmanager
def _push_lock(invoice_id: int) -> Iterator[bool]:
    """A PostgreSQL session advisory lock per invoice: two workers never push the same one
    at once. Released on exit, and by PostgreSQL if the worker dies."""
    if connection.vendor != "postgresql":
        yield True  # the embedded SQLite demo runs one process
        return
    key = _PUSH_LOCK_NAMESPACE + invoice_id
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        locked = cursor.fetchone()[0]
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def _metadata(invoice: Invoice, **extra: str) -> dict[str, str]:
    return {"greentier_invoice_id": str(invoice.id), "greentier_tenant_id": str(invoice.tenant_id),
            "greentier_period": invoice.period_label, **extra}


def _items_push(*, invoice: Invoice, account: BillingAccount) -> None:
    with tenant_scope(invoice.tenant_id):
        lines = list(InvoiceLine.objects.filter(invoice=invoice).order_by("position"))
    missing = [line for line in lines if not line.stripe_invoice_item_id]
    if not missing:
        return
    # Items an interrupted attempt created but did not record.
    found = {item.metadata.get("greentier_line_id"): item
             for item in gateway.invoice_items_for_customer(customer_id=account.stripe_customer_id)
             if item.metadata.get("greentier_invoice_id") == str(invoice.id)}
    for line in missing:
        item = found.get(str(line.id))
        if item is None:
            item = gateway.invoice_item_create(
                customer_id=account.stripe_customer_id, subscription_id=account.stripe_subscription_id,
                amount_minor=line.amount_minor, currency=invoice.currency,
                description=(f"{line.description} [{line.span_start:%Y-%m-%d %H:%M} - "
                             f"{line.span_end:%Y-%m-%d %H:%M} UTC]"),
                metadata=_metadata(invoice, greentier_line_id=str(line.id)),
                idempotency_key=f"greentier:invoice:{invoice.id}:line:{line.id}")
        elif item.amount_minor != line.amount_minor:
            raise BillingError(f"Stripe invoice item {item.id} of line {line.id} is {item.amount_minor}, "
                               f"not {line.amount_minor}; it was changed in Stripe, fix it there")
        with tenant_scope(invoice.tenant_id):
            InvoiceLine.objects.filter(id=line.id).update(stripe_invoice_item_id=item.id)


def _stripe_invoice_ensure(*, invoice: Invoice, account: BillingAccount) -> gateway.StripeInvoice:
    if invoice.stripe_invoice_id:
        return gateway.invoice_get(invoice_id=invoice.stripe_invoice_id)
    remote = next((r for r in gateway.invoices_for_customer(customer_id=account.stripe_customer_id)
                   if r.carries(key="greentier_invoice_id", value=str(invoice.id))), None)
    if remote is None:
        remote = gateway.invoice_create(
            customer_id=account.stripe_customer_id, subscription_id=account.stripe_subscription_id,
            description=f"greentier usage {invoice.period_label}", metadata=_metadata(invoice),
            idempotency_key=f"greentier:invoice:{invoice.id}:create")
    with tenant_scope(invoice.tenant_id):
        Invoice.objects.filter(id=invoice.id).update(stripe_invoice_id=remote.id)
    invoice.stripe_invoice_id = remote.id
    return remote


def _check_matches(invoice: Invoice, remote: gateway.StripeInvoice) -> None:
    if remote.currency and remote.currency != invoice.currency:
        raise BillingError(f"Stripe invoice {remote.id} is in {remote.currency}, local invoice {invoice.id} in "
                           f"{invoice.currency}")
    if remote.subtotal_minor != invoice.total_minor:
        raise BillingError(f"Stripe invoice {remote.id} adds up to {remote.subtotal_minor} but local invoice "
                           f"{invoice.id} totals {invoice.total_minor}; it holds items that are not this "
                           "invoice's or lacks some. Not collecting it: check it in the Stripe dashboard")


def _collect(*, invoice: Invoice, account: BillingAccount,
             remote: gateway.StripeInvoice) -> tuple[gateway.StripeInvoice, bool]:
    """Pay the draft if the customer has a payment method, else finalise it (Stripe then
    collects through its hosted invoice page). Returns (invoice, declined)."""
    if remote.status != "draft":
        return remote, False  # an earlier attempt collected it already
    customer = gateway.customer_get(customer_id=account.stripe_customer_id)
    if customer.has_payment_method:
        try:
            paid = gateway.invoice_pay(invoice_id=remote.id, idempotency_key=f"greentier:invoice:{invoice.id}:pay")
            return paid, False
        except gateway.StripeCardDeclined:
            return remote, True
    return gateway.invoice_finalize(invoice_id=remote.id,
                                    idempotency_key=f"greentier:invoice:{invoice.id}:finalize"), False


def _note_error(invoice: Invoice, message: str) -> None:
    with tenant_scope(invoice.tenant_id):
        Invoice.objects.filter(id=invoice.id).update(stripe_error=message, stripe_error_at=timezone.now(),
                                                     updated_at=timezone.now())


def invoice_push_to_stripe(*, invoice: Invoice) -> Invoice:
    """Put a draft invoice into Stripe and collect it; a no-op for any other status.

    Safe to call again at any point, including after a crash mid-way (see the module
    docstring). On failure the invoice stays draft, `stripe_error` says why and
    InvoiceSyncError is raised: retryable for Stripe outages, not for a refused request
    or a Stripe invoice that does not match ours.
    """
    tenant = Tenant.objects.get(id=invoice.tenant_id)
    with _push_lock(invoice.id) as locked:
        if not locked:
            raise InvoiceSyncError(f"invoice {invoice.id} is being pushed by another worker right now",
                                   invoice_id=invoice.id, retryable=True)
        with tenant_scope(tenant.id):
            invoice = Invoice.objects.get(id=invoice.id)
            if invoice.status != InvoiceStatus.DRAFT:
                return invoice
            Invoice.objects.filter(id=invoice.id).update(stripe_attempts=F("stripe_attempts") + 1)
        try:
            account = billing_account_sync(tenant=tenant, currency=invoice.currency)
            _items_push(invoice=invoice, account=account)
            remote = _stripe_invoice_ensure(invoice=invoice, account=account)
            _check_matches(invoice, remote)
            remote, declined = _collect(invoice=invoice, account=account, remote=remote)
        except gateway.StripeGatewayError as exc:
            message = f"{exc} (invoice kept as draft; the next run retries)" if exc.retryable else str(exc)
            _note_error(invoice, message)
            raise InvoiceSyncError(message, invoice_id=invoice.id, retryable=exc.retryable) from None
        except BillingError as exc:
            _note_error(invoice, str(exc))
            raise InvoiceSyncError(str(exc), invoice_id=invoice.id, retryable=False) from None

        now = timezone.now()
        with tenant_scope(tenant.id):
            invoice = Invoice.objects.select_for_update().get(id=invoice.id)
            invoice.stripe_error, invoice.stripe_error_at, invoice.stripe_synced_at = "", None, now
            invoice.save(update_fields=["stripe_error", "stripe_error_at", "stripe_synced_at", "updated_at"])
            status = InvoiceStatus.PAYMENT_FAILED if declined else STRIPE_STATUS.get(remote.status)
            if status is not None:
                paid_at = datetime.fromtimestamp(remote.paid_at, UTC) if remote.paid_at else None
                invoice_status_set(invoice=invoice, status=status, source="stripe:push", at=now, paid_at=paid_at)
    return invoice


def invoice_push_drafts(*, tenant: Tenant) -> list[Invoice]:
    """Push every draft invoice of the tenant, oldest period first, stopping at the first
    failure (a later invoice must not pick up an earlier one's pending Stripe items)."""
    return [invoice_push_to_stripe(invoice=draft) for draft in invoice_drafts(tenant=tenant)]


# --- the monthly run ----------------------------------------------------------------------------

@dataclass(frozen=True)
class TenantBillResult:
    tenant_slug: str
    invoice_id: int
    created: bool
    status: str
    currency: str
    total_minor: int

    def as_dict(self) -> dict:
        return {"tenant": self.tenant_slug, "invoice_id": self.invoice_id, "created": self.created,
                "status": self.status, "currency": self.currency, "total_minor": self.total_minor}


def invoice_bill_tenant(*, tenant: Tenant, period: Period, push: bool = True) -> TenantBillResult:
    """Rate (once) and push one tenant's invoice for the period. Idempotent.

    Raises what invoice_create_for_period and invoice_push_to_stripe raise.
    """
    invoice, created = invoice_create_for_period(tenant=tenant, period=period)
    if push and invoice.status == InvoiceStatus.DRAFT:
        invoice_push_drafts(tenant=tenant)
        with tenant_scope(tenant.id):
            invoice = Invoice.objects.get(id=invoice.id)
    return TenantBillResult(tenant_slug=tenant.slug, invoice_id=invoice.id, created=created, status=invoice.status,
                            currency=invoice.currency, total_minor=invoice.total_minor)


@dataclass
class RunSummary:
    period: str
    dry_run: bool = False
    tenants: int = 0
    created: int = 0
    existing: int = 0
    statuses: Counter = field(default_factory=Counter)
    totals: dict[str, list[int]] = field(default_factory=dict)  # currency -> [invoices, total_minor]
    failed: list[tuple[str, str]] = field(default_factory=list)  # (tenant slug, reason)

    def _add_total(self, currency: str, total_minor: int) -> None:
        entry = self.totals.setdefault(currency, [0, 0])
        entry[0] += 1
        entry[1] += total_minor

    def lines(self) -> list[str]:
        if self.dry_run:
            head = (f"dry run for {self.period}: {self.tenants} tenants; would create {self.created} invoices, "
                    f"{self.existing} already exist; {len(self.failed)} cannot be rated; nothing written")
        else:
            head = (f"period {self.period}: {self.tenants} tenants; {self.created} invoices created, "
                    f"{self.existing} already existed, {len(self.failed)} failed")
        out = [head]
        if self.statuses:
            out.append("status: " + ", ".join(f"{s} {n}" for s, n in sorted(self.statuses.items())))
        for currency, (count, total) in sorted(self.totals.items()):
            out.append(f"total {currency} {format_major(total, currency)} over {count} invoice{'s' * (count != 1)}")
        out.extend(f"FAILED {slug}: {reason}" for slug, reason in self.failed)
        return out


class Progress(Protocol):
    """What the run reports progress to (tqdm fits)."""

    def reset(self, total: int | None = None) -> None: ...

    def update(self, n: int = 1) -> object: ...


def invoice_run_for_period(*, period: Period, tenant_slug: str | None = None, dry_run: bool = False,
                           now: datetime | None = None, progress: Progress | None = None) -> RunSummary:
    """Bill every tenant (or one) for a complete month; `dry_run` rates without writing.

    Resumable: tenants already billed are skipped, half-pushed invoices are finished. A
    tenant's failure is recorded in the summary and the run goes on. Raises PeriodError for
    a month not over yet and BillingError for an unknown or not-yet-existing tenant slug.
    """
    period.ensure_ended(now=now or timezone.now())
    tenants = tenants_billable_for_period(period=period, slug=tenant_slug)
    if tenant_slug is not None and not tenants:
        exists = Tenant.objects.filter(slug=tenant_slug).exists()
        raise BillingError(f"tenant {tenant_slug!r} was created after {period.label}; nothing to bill" if exists
                           else f"no tenant with slug {tenant_slug!r}")
    summary = RunSummary(period=period.label, dry_run=dry_run, tenants=len(tenants))
    if progress is not None:
        progress.reset(total=len(tenants))
    for tenant in tenants:
        try:
            if dry_run:
                existing = invoice_for_period(tenant=tenant, period=period)
                if existing is not None:
                    summary.existing += 1
                    summary._add_total(existing.currency, existing.total_minor)
                else:
                    lines = invoice_lines_for_period(tenant=tenant, period=period)
                    summary.created += 1
                    summary._add_total(tenant.currency, sum(line.amount_minor for line in lines))
            else:
                result = invoice_bill_tenant(tenant=tenant, period=period)
                summary.created += result.created
                summary.existing += not result.created
                summary.statuses[result.status] += 1
                summary._add_total(result.currency, result.total_minor)
        except RUN_ERRORS as exc:
            summary.failed.append((tenant.slug, str(exc)))
        finally:
            if progress is not None:
                progress.update(1)
    return summary
