"""Stripe: the one module that imports the SDK (ARCHITECTURE.md, "one module per outside system").

Functions take explicit arguments and return our own frozen types; every write takes an
idempotency key the caller builds from our own ids ("greentier:invoice:12:line:345"),
so a retried or resumed call never creates a second object while Stripe remembers the
key (at least 24 hours). billing.services also looks objects up by the metadata we put
on them, which covers a resume after the key has expired.

Errors become ours, with a message that says what failed:
  StripeUnavailable   network failure, timeout, 5xx, 429, a concurrent-key conflict:
                      retry later; nothing we sent was wrong
  StripeCardDeclined  the customer's payment method was declined (402)
  StripeNotFound      the object does not exist (404)
  StripeRejected      Stripe refused the request (bad parameters, bad key, key reuse)
  StripeNotConfigured STRIPE_API_KEY is empty

Configuration comes from settings: STRIPE_API_KEY, STRIPE_API_BASE (empty = api.stripe.com;
tests point it at localstripe), STRIPE_MAX_NETWORK_RETRIES (default 2: the SDK retries
connection errors and 5xx with backoff, reusing the same idempotency key) and
STRIPE_TIMEOUT_SECONDS (default 30).

Which calls localstripe serves (tested against it) and which are tested at this module's
seam with Stripe's documented JSON is listed in docs/billing.md.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import stripe
from django.conf import settings

PLATFORM_PRODUCT_ID = "greentier-platform"
WEBHOOK_TOLERANCE_SECONDS = 300  # Stripe's default: a signed timestamp older than 5 minutes is refused


# --- our errors -----------------------------------------------------------------------------

class StripeGatewayError(Exception):
    """A Stripe call failed; `retryable` says whether trying again later can help."""

    retryable = False

    def __init__(self, message: str, *, http_status: int | None = None, stripe_code: str = ""):
        super().__init__(message)
        self.http_status = http_status
        self.stripe_code = stripe_code


class StripeUnavailable(StripeGatewayError):
    retryable = True


class StripeRejected(StripeGatewayError):
    pass


class StripeNotFound(StripeRejected):
    pass


class StripeCardDeclined(StripeGatewayError):
    pass


class StripeNotConfigured(StripeGatewayError):
    pass


class WebhookVerificationError(Exception):
    """A webhook request that must be refused with 400; `code` is the API error code."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


# --- our types ------------------------------------------------------------------------------

@dataclass(frozen=True)
class StripeCustomer:
    id: str
    name: str
    email: str
    has_payment_method: bool  # a default payment method or source to charge
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StripeInvoiceItem:
    id: str
    amount_minor: int
    currency: str  # upper-case ISO code, like ours
    invoice_id: str | None  # None while pending
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StripeInvoice:
    id: str
    customer_id: str
    status: str  # draft, open, paid, uncollectible, void
    subtotal_minor: int
    total_minor: int
    currency: str
    metadata: dict
    line_metadata: tuple[dict, ...]  # metadata of the lines on the first page
    paid_at: int | None  # Unix seconds
    hosted_invoice_url: str = ""

    def carries(self, *, key: str, value: str) -> bool:
        """True if the invoice or one of its lines has metadata[key] == value."""
        return self.metadata.get(key) == value or any(m.get(key) == value for m in self.line_metadata)


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    created: int  # Unix seconds
    livemode: bool
    object: dict  # data.object: the Stripe object the event is about, as plain JSON
    payload: dict  # the whole event


# --- the client -----------------------------------------------------------------------------

_clients: dict[tuple, stripe.StripeClient] = {}
_clients_lock = threading.Lock()


def _new_http_client(*, timeout_seconds: float) -> stripe.HTTPClient:
    """The HTTP transport. Tests of calls localstripe lacks replace this (the seam)."""
    return stripe.RequestsClient(timeout=timeout_seconds)


def _client() -> stripe.StripeClient:
    api_key = settings.STRIPE_API_KEY
    if not api_key:
        raise StripeNotConfigured("STRIPE_API_KEY is not set; Stripe calls are impossible until it is")
    base = settings.STRIPE_API_BASE or ""
    retries = int(getattr(settings, "STRIPE_MAX_NETWORK_RETRIES", 2))
    timeout = float(getattr(settings, "STRIPE_TIMEOUT_SECONDS", 30))
    key = (api_key, base, retries, timeout, _new_http_client)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = stripe.StripeClient(
                api_key, base_addresses={"api": base} if base else None, max_network_retries=retries,
                http_client=_new_http_client(timeout_seconds=timeout))
            _clients[key] = client
    return client


@contextlib.contextmanager
def _errors(action: str) -> Iterator[None]:
    """Translate the SDK's exceptions into ours, naming the action that failed."""
    try:
        yield
    except stripe.CardError as exc:
        raise StripeCardDeclined(f"{action}: payment declined: {exc.user_message}", http_status=exc.http_status,
                                 stripe_code=exc.code or "") from None
    except stripe.APIConnectionError as exc:
        raise StripeUnavailable(f"{action}: Stripe unreachable: {_network_detail(exc.user_message)}") from None
    except stripe.RateLimitError as exc:
        raise StripeUnavailable(f"{action}: Stripe rate limit: {exc.user_message}", http_status=429) from None
    except (stripe.AuthenticationError, stripe.PermissionError) as exc:
        raise StripeRejected(f"{action}: Stripe refused our API key: {exc.user_message}",
                             http_status=exc.http_status) from None
    except stripe.IdempotencyError as exc:
        raise StripeRejected(f"{action}: idempotency key reused with other parameters: {exc.user_message}",
                             http_status=exc.http_status) from None
    except stripe.StripeError as exc:
        status = exc.http_status
        if status == 404:
            raise StripeNotFound(f"{action}: not found in Stripe: {exc.user_message}", http_status=404,
                                 stripe_code=exc.code or "") from None
        if status is None or status >= 500 or status == 409:
            # 409: a request with the same idempotency key is still running; retrying resolves it.
            raise StripeUnavailable(f"{action}: Stripe error {status}: {exc.user_message}",
                                    http_status=status) from None
        raise StripeRejected(f"{action}: Stripe refused the request ({status}): {exc.user_message}",
                             http_status=status, stripe_code=exc.code or "") from None


def _network_detail(message: str | None) -> str:
    """The SDK's connection message without its boilerplate, on one line, short."""
    text = message or ""
    if "(Network error:" in text:
        text = text.split("(Network error:", 1)[1].rsplit(")", 1)[0]
    text = " ".join(text.split())
    errno = re.search(r"\[Errno -?\d+\][^\"')]*", text)
    if errno:  # "ConnectionError: [Errno 111] Connection refused"
        text = f"{text.split(':', 1)[0]}: {errno.group(0).strip()}"
    return text if len(text) <= 200 else text[:197] + "..."


def _plain(obj: Any) -> dict:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _customer(obj: Any) -> StripeCustomer:
    data = _plain(obj)
    settings_ = data.get("invoice_settings") or {}
    return StripeCustomer(
        id=data["id"], name=data.get("name") or "", email=data.get("email") or "",
        has_payment_method=bool(settings_.get("default_payment_method") or data.get("default_source")),
        metadata=dict(data.get("metadata") or {}))


def customer_from_event_object(data: dict) -> StripeCustomer:
    """Our customer type from a webhook's data.object (already verified JSON)."""
    return _customer(data)


def _invoice(obj: Any) -> StripeInvoice:
    data = _plain(obj)
    lines = (data.get("lines") or {}).get("data") or []
    transitions = data.get("status_transitions") or {}
    return StripeInvoice(
        id=data["id"], customer_id=data.get("customer") or "", status=data.get("status") or "",
        subtotal_minor=int(data.get("subtotal") or 0), total_minor=int(data.get("total") or 0),
        currency=(data.get("currency") or "").upper(), metadata=dict(data.get("metadata") or {}),
        line_metadata=tuple(dict(line.get("metadata") or {}) for line in lines),
        paid_at=transitions.get("paid_at"), hosted_invoice_url=data.get("hosted_invoice_url") or "")


def invoice_from_event_object(data: dict) -> StripeInvoice:
    """Our invoice type from a webhook's data.object (already verified JSON)."""
    return _invoice(data)


def _item(obj: Any) -> StripeInvoiceItem:
    data = _plain(obj)
    invoice = data.get("invoice")
    return StripeInvoiceItem(
        id=data["id"], amount_minor=int(data.get("amount") or 0), currency=(data.get("currency") or "").upper(),
        invoice_id=invoice if isinstance(invoice, str) else (invoice or {}).get("id"),
        metadata=dict(data.get("metadata") or {}))


def _options(idempotency_key: str) -> dict:
    if not idempotency_key or not idempotency_key.startswith("greentier:"):
        raise ValueError(f"idempotency keys are built from our ids, 'greentier:...'; got {idempotency_key!r}")
    return {"idempotency_key": idempotency_key}


# --- customers and the base subscription ---------------------------------------------------

def customer_create(*, tenant_id: int, slug: str, name: str, idempotency_key: str) -> StripeCustomer:
    with _errors(f"creating the Stripe customer of tenant {slug}"):
        return _customer(_client().v1.customers.create(
            params={"name": name, "description": f"greentier tenant {slug}",
                    "metadata": {"greentier_tenant_id": str(tenant_id), "greentier_tenant_slug": slug}},
            options=_options(idempotency_key)))


def customer_update(*, customer_id: str, name: str, idempotency_key: str) -> StripeCustomer:
    with _errors(f"updating Stripe customer {customer_id}"):
        return _customer(_client().v1.customers.update(customer_id, params={"name": name},
                                                       options=_options(idempotency_key)))


def customer_get(*, customer_id: str) -> StripeCustomer:
    with _errors(f"reading Stripe customer {customer_id}"):
        return _customer(_client().v1.customers.retrieve(customer_id))


def _exists(fetch, action: str) -> bool:
    try:
        with _errors(action):
            fetch()
        return True
    except StripeNotFound:
        return False


def _create_once(create, action: str) -> None:
    """Create an object with a fixed id; "already exists" (400 resource_already_exists on
    Stripe, 409 on localstripe) means another worker created it first, which is fine."""
    try:
        with _errors(action):
            create()
    except (StripeRejected, StripeUnavailable) as exc:
        if exc.http_status == 409 or exc.stripe_code == "resource_already_exists":
            return
        raise


def base_plan_ensure(*, currency: str) -> str:
    """The id of the zero-amount monthly plan every base subscription uses, created once.

    A Plan (not a Price) because localstripe implements Plans; Stripe accepts a plan id
    wherever a price id goes. Its id is fixed per currency, so creating it is idempotent.
    """
    client = _client()
    plan_id = f"greentier-base-{currency.lower()}"
    if _exists(lambda: client.v1.plans.retrieve(plan_id), f"reading Stripe plan {plan_id}"):
        return plan_id
    if not _exists(lambda: client.v1.products.retrieve(PLATFORM_PRODUCT_ID),
                   f"reading Stripe product {PLATFORM_PRODUCT_ID}"):
        _create_once(lambda: client.v1.products.create(
            params={"id": PLATFORM_PRODUCT_ID, "name": "greentier platform"},
            options=_options(f"greentier:product:{PLATFORM_PRODUCT_ID}")), "creating the greentier platform product")
    _create_once(lambda: client.v1.plans.create(
        params={"id": plan_id, "amount": 0, "currency": currency.lower(), "interval": "month",
                "product": PLATFORM_PRODUCT_ID, "nickname": f"greentier base ({currency})"},
        options=_options(f"greentier:plan:{plan_id}")), f"creating Stripe plan {plan_id}")
    return plan_id


def subscription_create(*, customer_id: str, plan_id: str, tenant_id: int, idempotency_key: str) -> str:
    """Start the tenant's base subscription (the container its invoice items are billed on)."""
    with _errors(f"creating the base subscription of Stripe customer {customer_id}"):
        subscription = _client().v1.subscriptions.create(
            params={"customer": customer_id, "items": [{"plan": plan_id}],
                    "metadata": {"greentier_tenant_id": str(tenant_id)}},
            options=_options(idempotency_key))
    return subscription["id"]


# --- invoice items and invoices -------------------------------------------------------------

def invoice_items_for_customer(*, customer_id: str) -> list[StripeInvoiceItem]:
    """Every invoice item Stripe lists for the customer (pending and invoiced)."""
    with _errors(f"listing invoice items of Stripe customer {customer_id}"):
        page = _client().v1.invoice_items.list(params={"customer": customer_id, "limit": 100})
        return [_item(item) for item in page.auto_paging_iter()]


def invoice_item_create(*, customer_id: str, subscription_id: str, amount_minor: int, currency: str,
                        description: str, metadata: dict[str, str], idempotency_key: str) -> StripeInvoiceItem:
    with _errors(f"adding invoice item {idempotency_key}"):
        return _item(_client().v1.invoice_items.create(
            params={"customer": customer_id, "subscription": subscription_id, "amount": amount_minor,
                    "currency": currency.lower(), "description": description[:500], "metadata": metadata},
            options=_options(idempotency_key)))


def invoices_for_customer(*, customer_id: str) -> list[StripeInvoice]:
    with _errors(f"listing invoices of Stripe customer {customer_id}"):
        page = _client().v1.invoices.list(params={"customer": customer_id, "limit": 100})
        return [_invoice(invoice) for invoice in page.auto_paging_iter()]


def invoice_create(*, customer_id: str, subscription_id: str, description: str, metadata: dict[str, str],
                   idempotency_key: str) -> StripeInvoice:
    """A draft invoice collecting the subscription's pending invoice items."""
    with _errors(f"creating Stripe invoice {idempotency_key}"):
        return _invoice(_client().v1.invoices.create(
            params={"customer": customer_id, "subscription": subscription_id,
                    "pending_invoice_items_behavior": "include", "description": description,
                    "metadata": metadata},
            options=_options(idempotency_key)))


def invoice_get(*, invoice_id: str) -> StripeInvoice:
    with _errors(f"reading Stripe invoice {invoice_id}"):
        return _invoice(_client().v1.invoices.retrieve(invoice_id))


def invoice_pay(*, invoice_id: str, idempotency_key: str) -> StripeInvoice:
    """Charge the customer's default payment method now (Stripe finalises a draft first).

    Raises StripeCardDeclined when the charge fails; the invoice then stays open.
    """
    with _errors(f"paying Stripe invoice {invoice_id}"):
        return _invoice(_client().v1.invoices.pay(invoice_id, options=_options(idempotency_key)))


def invoice_finalize(*, invoice_id: str, idempotency_key: str) -> StripeInvoice:
    """Finalise a draft for a customer without a payment method: it becomes open and payable
    (Stripe's hosted invoice page). Not served by localstripe; tested at the seam."""
    with _errors(f"finalising Stripe invoice {invoice_id}"):
        return _invoice(_client().v1.invoices.finalize_invoice(invoice_id, options=_options(idempotency_key)))


# --- webhooks -------------------------------------------------------------------------------

def webhook_event_verify(*, payload: bytes, signature_header: str | None, secret: str,
                         tolerance_seconds: int = WEBHOOK_TOLERANCE_SECONDS) -> WebhookEvent:
    """Check Stripe-Signature (HMAC-SHA256 of "<t>.<body>" with the endpoint's secret, and
    t no older than the tolerance), then parse the event.

    Raises WebhookVerificationError with code webhook_signature_missing,
    webhook_signature_invalid (forged, tampered, malformed), webhook_signature_expired,
    webhook_not_configured or webhook_payload_invalid.
    """
    if not secret:
        raise WebhookVerificationError("webhook_not_configured", "STRIPE_WEBHOOK_SECRET is not set on this server.")
    if not signature_header:
        raise WebhookVerificationError("webhook_signature_missing", "Stripe-Signature header is missing.")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookVerificationError("webhook_payload_invalid", "Body is not UTF-8.") from None
    try:
        stripe.WebhookSignature.verify_header(text, signature_header, secret, tolerance_seconds)
    except stripe.SignatureVerificationError as exc:
        if "tolerance" in exc.user_message:
            raise WebhookVerificationError(
                "webhook_signature_expired",
                f"Stripe-Signature timestamp is older than {tolerance_seconds} s; replays are refused.") from None
        raise WebhookVerificationError("webhook_signature_invalid",
                                       f"Stripe-Signature does not verify: {exc.user_message}") from None
    try:
        event = json.loads(text)
        data = event["data"]["object"]
        if not isinstance(data, dict):
            raise TypeError
        return WebhookEvent(id=str(event["id"]), type=str(event["type"]), created=int(event["created"]),
                            livemode=bool(event.get("livemode", False)), object=data, payload=event)
    except (ValueError, KeyError, TypeError):
        raise WebhookVerificationError("webhook_payload_invalid",
                                       "Body is not a Stripe event (needs id, type, created, data.object).") from None
