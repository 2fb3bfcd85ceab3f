"""Stripe calls localstripe does not serve, tested at the gateway's seam (its HTTP client).

localstripe has no POST /v1/invoices/{id}/finalize, and it answers a declined /pay with
200 (Stripe answers 402 card_error). Here the gateway's HTTP transport is replaced by one
that answers those two requests with the JSON Stripe documents and passes every other
request through to localstripe, so the rest of the push still runs against it.
"""

import json
import re
import time
from datetime import UTC, datetime

import pytest
import stripe  # the seam itself: a transport for the SDK, as billing.stripe_gateway builds it

from billing import stripe_gateway
from billing.models import Invoice, InvoiceStatus, InvoiceStatusChange
from billing.periods import Period
from billing.services import invoice_bill_tenant
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db
NOV = Period.parse("2026-11")

# POST /v1/invoices/{id}/finalize response, as in Stripe's API reference (2025-04-30.basil),
# shortened to the fields our gateway and a reader care about; ids/amounts are filled in.
DOCUMENTED_FINALIZED_INVOICE = {
    "id": "in_1MtGmCLkdIwHu7ix6PgS6g8S", "object": "invoice", "account_country": "US",
    "account_name": "Stripe Docs", "amount_due": 0, "amount_paid": 0, "amount_overpaid": 0, "amount_remaining": 0,
    "attempt_count": 0, "attempted": False, "auto_advance": False, "billing_reason": "manual",
    "collection_method": "charge_automatically", "created": 1680641304, "currency": "usd",
    "customer": "cus_NeZw0zvTyquTfF", "customer_email": "jennyrosen@example.com", "description": None,
    "hosted_invoice_url": "https://invoice.stripe.com/i/acct_1M2JTkLkdIwHu7ix/test_YWNjdF8xTTJKVGtMa2RJd0h1N2l4",
    "lines": {"object": "list", "data": [], "has_more": False, "total_count": 0,
              "url": "/v1/invoices/in_1MtGmCLkdIwHu7ix6PgS6g8S/lines"},
    "livemode": False, "metadata": {}, "number": "9545A614-0001", "paid": False, "status": "open",
    "status_transitions": {"finalized_at": 1680641304, "marked_uncollectible_at": None, "paid_at": None,
                           "voided_at": None},
    "subtotal": 0, "total": 0,
}
# A declined charge on POST /v1/invoices/{id}/pay: HTTP 402 with Stripe's card_error body.
DOCUMENTED_CARD_DECLINED = {"error": {
    "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
    "message": "Your card was declined.", "charge": "ch_3MtGmCLkdIwHu7ix0snN0B15",
    "doc_url": "https://stripe.com/docs/error-codes/card-declined"}}


class SeamClient(stripe.RequestsClient):
    """Answers finalize (and, if asked, pay with a decline) itself; passes the rest on."""

    name = "seam"

    def __init__(self, *, decline_pay=False, **kwargs):
        super().__init__(**kwargs)
        self.decline_pay = decline_pay
        self.seen: list[tuple[str, str, str | None]] = []

    def request(self, method, url, headers, post_data=None, **kwargs):
        path = url.split("://", 1)[1].split("/", 1)[1]
        self.seen.append((method, "/" + path, (headers or {}).get("Idempotency-Key")))
        if match := re.fullmatch(r"v1/invoices/(in_\w+)/finalize", path):
            local, _, _ = super().request("get", url.rsplit("/", 1)[0], headers)
            current = json.loads(local)
            body = DOCUMENTED_FINALIZED_INVOICE | {
                "id": match.group(1), "customer": current["customer"], "currency": current["currency"],
                "subtotal": current["subtotal"], "total": current["total"], "amount_due": current["total"],
                "amount_remaining": current["total"], "lines": current["lines"], "metadata": current["metadata"],
                "status_transitions": DOCUMENTED_FINALIZED_INVOICE["status_transitions"] | {
                    "finalized_at": int(time.time())}}
            return json.dumps(body), 200, {"Request-Id": "req_seam"}
        if self.decline_pay and re.fullmatch(r"v1/invoices/in_\w+/pay", path):
            return json.dumps(DOCUMENTED_CARD_DECLINED), 402, {"Request-Id": "req_seam"}
        return super().request(method, url, headers, post_data, **kwargs)


@pytest.fixture
def seam(monkeypatch, stripe_settings):
    def install(**options):
        client = SeamClient(**options, timeout=10)
        monkeypatch.setattr(stripe_gateway, "_new_http_client", lambda *, timeout_seconds: client)
        return client
    return install


class DocumentedResponse(stripe.HTTPClient):
    """Answers every request with one documented body; records what was sent."""

    name = "documented"

    def __init__(self, body: dict, status: int = 200):
        super().__init__()
        self.body, self.status, self.seen = body, status, []

    def request(self, method, url, headers, post_data=None, **kwargs):
        self.seen.append((method, url, headers.get("Idempotency-Key"), headers.get("Stripe-Version")))
        return json.dumps(self.body), self.status, {"Request-Id": "req_doc"}

    def close(self):
        pass


@pytest.mark.parametrize("status", [200, 402])
def test_gateway_reads_stripes_documented_responses(status, monkeypatch, stripe_settings):
    body = DOCUMENTED_FINALIZED_INVOICE if status == 200 else DOCUMENTED_CARD_DECLINED
    client = DocumentedResponse(body, status)
    monkeypatch.setattr(stripe_gateway, "_new_http_client", lambda *, timeout_seconds: client)
    if status == 200:
        result = stripe_gateway.invoice_finalize(invoice_id="in_1MtGmCLkdIwHu7ix6PgS6g8S",
                                                 idempotency_key="greentier:invoice:7:finalize")
        assert result == stripe_gateway.StripeInvoice(
            id="in_1MtGmCLkdIwHu7ix6PgS6g8S", customer_id="cus_NeZw0zvTyquTfF", status="open", subtotal_minor=0,
            total_minor=0, currency="USD", metadata={}, line_metadata=(), paid_at=None,
            hosted_invoice_url=DOCUMENTED_FINALIZED_INVOICE["hosted_invoice_url"])
        path = "/v1/invoices/in_1MtGmCLkdIwHu7ix6PgS6g8S/finalize"
        key = "greentier:invoice:7:finalize"
    else:
        with pytest.raises(stripe_gateway.StripeCardDeclined) as excinfo:
            stripe_gateway.invoice_pay(invoice_id="in_1MtGmCLkdIwHu7ix6PgS6g8S",
                                       idempotency_key="greentier:invoice:7:pay")
        assert str(excinfo.value) == ("paying Stripe invoice in_1MtGmCLkdIwHu7ix6PgS6g8S: payment declined: "
                                      "Your card was declined.")
        assert (excinfo.value.retryable, excinfo.value.stripe_code) == (False, "card_declined")
        path = "/v1/invoices/in_1MtGmCLkdIwHu7ix6PgS6g8S/pay"
        key = "greentier:invoice:7:pay"
    assert client.seen == [("post", stripe_settings.url + path, key, stripe.api_version)]


def test_customer_without_payment_method_gets_a_finalised_open_invoice(seam, prices, billing_tenant):
    client = seam()
    tenant = billing_tenant()
    result = invoice_bill_tenant(tenant=tenant, period=NOV)
    assert (result.status, result.total_minor) == (InvoiceStatus.OPEN, 4900)
    with tenant_scope(tenant.id):
        invoice = Invoice.objects.get()
        changes = list(InvoiceStatusChange.objects.values_list("from_status", "to_status", "source"))
    finalize = [s for s in client.seen if s[1].endswith("/finalize")]
    assert finalize == [("post", f"/v1/invoices/{invoice.stripe_invoice_id}/finalize",
                         f"greentier:invoice:{invoice.id}:finalize")]
    assert not [s for s in client.seen if s[1].endswith("/pay")]
    assert changes == [("", "draft", "rating"), ("draft", "open", "stripe:push")]
    assert invoice.stripe_error == ""


def test_declined_card_marks_the_invoice_payment_failed(seam, prices, billing_tenant, ready_account):
    client = seam(decline_pay=True)
    tenant = billing_tenant()
    ready_account(tenant)
    before = datetime.now(UTC)
    result = invoice_bill_tenant(tenant=tenant, period=NOV)
    assert (result.status, result.total_minor) == (InvoiceStatus.PAYMENT_FAILED, 4900)
    with tenant_scope(tenant.id):
        invoice = Invoice.objects.get()
    assert [s for s in client.seen if s[1].endswith("/pay")] == [
        ("post", f"/v1/invoices/{invoice.stripe_invoice_id}/pay", f"greentier:invoice:{invoice.id}:pay")]
    assert invoice.stripe_synced_at >= before
    # A later run does not pay again: the invoice left draft; Stripe's retries and webhooks take over.
    client.seen.clear()
    assert invoice_bill_tenant(tenant=tenant, period=NOV).status == InvoiceStatus.PAYMENT_FAILED
    assert client.seen == []
