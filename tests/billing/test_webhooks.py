"""POST /v1/stripe/webhook: signature matrix, dedupe, out-of-order and repeated deliveries."""

import itertools
import time
from datetime import UTC, datetime

import pytest
from django.test import Client

from billing.models import (
    BillingAccount,
    Invoice,
    InvoiceStatus,
    InvoiceStatusChange,
    StripeEvent,
)
from billing.periods import Period
from billing.services import invoice_create_for_period
from tenants.scope import tenant_scope

from .conftest import event_body, sign

pytestmark = pytest.mark.django_db
NOV = Period.parse("2026-11")
URL = "/v1/stripe/webhook"


@pytest.fixture
def pushed(prices, billing_tenant):
    """A tenant with an open invoice already in Stripe (ids as Stripe would have them)."""
    tenant = billing_tenant()
    invoice, _ = invoice_create_for_period(tenant=tenant, period=NOV)
    with tenant_scope(tenant.id):
        BillingAccount.objects.create(tenant=tenant, stripe_customer_id=f"cus_T{tenant.id}",
                                      stripe_subscription_id=f"sub_T{tenant.id}", subscription_currency="EUR")
        Invoice.objects.filter(id=invoice.id).update(stripe_invoice_id=f"in_T{invoice.id}", status="open")
        invoice.refresh_from_db()
    return tenant, invoice


def invoice_object(invoice, *, status, paid_at=None):
    return {"id": invoice.stripe_invoice_id, "object": "invoice", "customer": f"cus_T{invoice.tenant_id}",
            "status": status, "subtotal": invoice.total_minor, "total": invoice.total_minor, "currency": "eur",
            "metadata": {"greentier_invoice_id": str(invoice.id)},
            "status_transitions": {"finalized_at": 1, "paid_at": paid_at, "voided_at": None},
            "lines": {"object": "list", "data": [], "has_more": False}}


def customer_object(tenant, *, email, payment_method):
    return {"id": f"cus_T{tenant.id}", "object": "customer", "email": email, "name": tenant.name,
            "invoice_settings": {"default_payment_method": payment_method}, "default_source": None, "metadata": {}}


def deliver(body, *, signature=None, client=None):
    headers = {} if signature is False else {"HTTP_STRIPE_SIGNATURE": signature or sign(body)}
    return (client or Client()).post(URL, data=body, content_type="application/json", **headers)


def snapshot(invoice):
    with tenant_scope(invoice.tenant_id):
        fresh = Invoice.objects.get(id=invoice.id)
        account = BillingAccount.objects.get()
        changes = list(InvoiceStatusChange.objects.filter(invoice=invoice).values_list("from_status", "to_status",
                                                                                        "source"))
    return (fresh.status, fresh.paid_at, fresh.status_event_id, account.customer_email, account.has_payment_method,
            changes)


def paid_body(invoice, created):
    return event_body("evt_paid", "invoice.paid", invoice_object(invoice, status="paid", paid_at=created - 5), created)


@pytest.mark.parametrize(("case", "expected_code"), [
    ("forged_secret", "webhook_signature_invalid"),
    ("tampered_body", "webhook_signature_invalid"),
    ("expired_timestamp", "webhook_signature_expired"),
    ("missing_header", "webhook_signature_missing"),
    ("malformed_header", "webhook_signature_invalid"),
])
def test_bad_signatures_are_400_and_change_nothing(case, expected_code, pushed, django_capture_on_commit_callbacks):
    tenant, invoice = pushed
    now = int(time.time())
    body = paid_body(invoice, now)
    signature = {
        "forged_secret": sign(body, secret="whsec_someone_else"),
        "tampered_body": sign(body),
        "expired_timestamp": sign(body, timestamp=now - 301),
        "missing_header": False,
        "malformed_header": "v1=deadbeef",
    }[case]
    if case == "tampered_body":
        body = body.replace(b'"total": %d' % invoice.total_minor, b'"total": 1')
    before = snapshot(invoice)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = deliver(body, signature=signature)
    assert response.status_code == 400
    assert response.json()["code"] == expected_code
    assert set(response.json()) == {"code", "detail"}
    assert callbacks == []
    assert StripeEvent.objects.count() == 0
    assert snapshot(invoice) == before


def test_valid_signature_is_accepted_and_processed_after_commit(pushed, django_capture_on_commit_callbacks):
    tenant, invoice = pushed
    now = int(time.time())
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = deliver(paid_body(invoice, now))
    assert (response.status_code, response.json()) == (200, {"received": True, "event_id": "evt_paid",
                                                             "duplicate": False})
    assert snapshot(invoice)[0] == "open"  # nothing applied before the commit
    assert len(callbacks) == 1
    callbacks[0]()  # the commit happens: the task runs (eagerly here)
    status, paid_at, event_id, *_ = snapshot(invoice)
    assert (status, paid_at, event_id) == ("paid", datetime.fromtimestamp(now - 5, UTC), "evt_paid")
    assert StripeEvent.objects.get().outcome == f"invoice {invoice.id}: open -> paid"


def test_get_is_405_json():
    response = Client().get(URL)
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")


def test_unconfigured_secret_is_503(settings):
    settings.STRIPE_WEBHOOK_SECRET = ""
    body = event_body("evt_x", "invoice.paid", {"id": "in_x"}, int(time.time()))
    response = deliver(body)
    assert (response.status_code, response.json()["code"]) == (503, "webhook_not_configured")


def test_signed_but_malformed_event_is_400(django_capture_on_commit_callbacks):
    body = b'{"id": "evt_1", "type": "invoice.paid"}'
    response = deliver(body)
    assert (response.status_code, response.json()["code"]) == (400, "webhook_payload_invalid")
    assert StripeEvent.objects.count() == 0


@pytest.mark.parametrize("order", list(itertools.permutations(["failed", "paid", "customer"])))
def test_three_events_delivered_three_times_in_any_order_end_the_same(order, pushed,
                                                                      django_capture_on_commit_callbacks):
    tenant, invoice = pushed
    t0 = int(time.time()) - 120
    bodies = {
        "failed": event_body("evt_failed", "invoice.payment_failed", invoice_object(invoice, status="open"), t0),
        "paid": event_body("evt_paid", "invoice.paid", invoice_object(invoice, status="paid", paid_at=t0 + 59),
                           t0 + 60),
        "customer": event_body("evt_customer", "customer.updated",
                               customer_object(tenant, email="billing@acme.test", payment_method="pm_1"), t0 + 30),
    }
    duplicates = []
    for _ in range(3):
        for name in order:
            with django_capture_on_commit_callbacks(execute=True):
                response = deliver(bodies[name])
            assert response.status_code == 200
            duplicates.append(response.json()["duplicate"])

    assert duplicates == [False] * 3 + [True] * 6
    status, paid_at, event_id, email, has_pm, changes = snapshot(invoice)
    assert (status, paid_at, event_id, email, has_pm) == (
        "paid", datetime.fromtimestamp(t0 + 59, UTC), "evt_paid", "billing@acme.test", True)
    # One side effect: the invoice became paid exactly once, whatever came first.
    paid_from = "payment_failed" if order.index("failed") < order.index("paid") else "open"
    assert [c for c in changes if c[1] == "paid"] == [(paid_from, "paid", "webhook:invoice.paid")]
    assert StripeEvent.objects.count() == 3
    assert sorted(StripeEvent.objects.filter(processed_at__isnull=False).values_list("event_id", flat=True)) == [
        "evt_customer", "evt_failed", "evt_paid"]


@pytest.mark.parametrize("newest_first", [True, False])
def test_newest_customer_update_wins_whatever_the_arrival_order(newest_first, pushed,
                                                                django_capture_on_commit_callbacks):
    tenant, invoice = pushed
    t0 = int(time.time())
    old = event_body("evt_c1", "customer.updated", customer_object(tenant, email="old@acme.test", payment_method=None),
                     t0)
    new = event_body("evt_c2", "customer.updated",
                     customer_object(tenant, email="new@acme.test", payment_method="pm_9"), t0 + 1)
    for body in ([new, old] if newest_first else [old, new]):
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(body).status_code == 200
    assert snapshot(invoice)[3:5] == ("new@acme.test", True)


def test_late_failure_after_a_newer_failure_and_void_are_final(pushed, django_capture_on_commit_callbacks):
    tenant, invoice = pushed
    t0 = int(time.time())
    events = [("evt_f2", "invoice.payment_failed", t0 + 10), ("evt_f1", "invoice.payment_failed", t0),
              ("evt_void", "invoice.voided", t0 + 20), ("evt_paid", "invoice.paid", t0 + 30)]
    for event_id, type_, created in events:
        with django_capture_on_commit_callbacks(execute=True):
            deliver(event_body(event_id, type_, invoice_object(invoice, status="open"), created))
    status, _, event_id, *_, changes = snapshot(invoice)
    assert (status, event_id) == ("void", "evt_void")
    assert [c[1] for c in changes] == ["draft", "payment_failed", "void"]
    assert dict(StripeEvent.objects.values_list("event_id", "outcome"))["evt_f1"] == (
        f"invoice {invoice.id}: stays payment_failed (payment_failed from an older or final-state event is ignored)")


def test_events_for_unknown_objects_and_types_are_stored_and_ignored(pushed, django_capture_on_commit_callbacks):
    tenant, invoice = pushed
    t0 = int(time.time())
    for body in (event_body("evt_a", "invoice.paid", {"id": "in_other", "customer": "cus_other", "metadata": {}}, t0),
                 event_body("evt_b", "charge.refunded", {"id": "ch_1"}, t0),
                 event_body("evt_c", "customer.updated", {"id": "cus_other"}, t0)):
        with django_capture_on_commit_callbacks(execute=True):
            assert deliver(body).status_code == 200
    assert dict(StripeEvent.objects.values_list("event_id", "outcome")) == {
        "evt_a": "ignored: no local invoice for Stripe invoice in_other",
        "evt_b": "ignored: charge.refunded is not handled",
        "evt_c": "ignored: no billing account for Stripe customer cus_other"}
    assert snapshot(invoice)[0] == "open"


def test_event_that_beats_our_push_finds_the_invoice_by_metadata(pushed, django_capture_on_commit_callbacks):
    tenant, invoice = pushed
    with tenant_scope(tenant.id):
        Invoice.objects.filter(id=invoice.id).update(stripe_invoice_id=None)
    remote = invoice_object(invoice, status="paid", paid_at=int(time.time()))
    remote["id"] = "in_not_recorded_yet"
    with django_capture_on_commit_callbacks(execute=True):
        deliver(event_body("evt_early", "invoice.paid", remote, int(time.time())))
    with tenant_scope(tenant.id):
        fresh = Invoice.objects.get(id=invoice.id)
    assert (fresh.status, fresh.stripe_invoice_id) == ("paid", "in_not_recorded_yet")


def test_metadata_of_another_tenants_customer_is_not_trusted(pushed, billing_tenant,
                                                            django_capture_on_commit_callbacks):
    tenant, invoice = pushed
    with tenant_scope(tenant.id):
        Invoice.objects.filter(id=invoice.id).update(stripe_invoice_id=None)
    remote = invoice_object(invoice, status="paid", paid_at=int(time.time()))
    remote.update(id="in_elsewhere", customer="cus_someone_else")
    with django_capture_on_commit_callbacks(execute=True):
        deliver(event_body("evt_x", "invoice.paid", remote, int(time.time())))
    with tenant_scope(tenant.id):
        assert Invoice.objects.get(id=invoice.id).status == InvoiceStatus.OPEN
