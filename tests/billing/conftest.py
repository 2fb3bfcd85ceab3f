"""Billing fixtures: localstripe on 127.0.0.1, Stripe settings, prices, backdated tenants."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import select
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
STRIPE_KEY = "sk_test_greentier"
WEBHOOK_SECRET = "whsec_test_greentier_0123456789"
WEBHOOK_ID = "greentier-tests"
NOV = "2026-11"
NOV_START = datetime(2026, 11, 1, tzinfo=UTC)
BEFORE_NOV = datetime(2026, 1, 1, tzinfo=UTC)


class LocalStripe:
    """The running localstripe, and the direct calls tests make to it (as a customer or
    Stripe's dashboard would: adding a card, reading what our code created)."""

    def __init__(self, url: str, proc: subprocess.Popen):
        self.url = url
        self.proc = proc
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {STRIPE_KEY}"

    def get(self, path: str, **params) -> dict:
        response = self.http.get(self.url + path, params=params, timeout=10)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, data: dict) -> dict:
        response = self.http.post(self.url + path, data=data, timeout=10)
        response.raise_for_status()
        return response.json()

    def list_all(self, path: str, **params) -> list[dict]:
        items, after = [], None
        while True:
            page = self.get(path, limit=100, **params, **({"starting_after": after} if after else {}))
            items += page["data"]
            if not page["has_more"]:
                return items
            after = page["data"][-1]["id"]

    def add_card(self, customer_id: str, card: str = "pm_card_visa") -> str:
        pm = self.post(f"/v1/payment_methods/{card}/attach", {"customer": customer_id})
        self.post(f"/v1/customers/{customer_id}", {"invoice_settings[default_payment_method]": pm["id"]})
        return pm["id"]

    def our_invoices(self, customer_id: str, invoice_id: int) -> list[dict]:
        """Stripe invoices of the customer that carry our local invoice id."""
        def carries(inv):
            marks = [inv.get("metadata") or {}] + [line.get("metadata") or {} for line in inv["lines"]["data"]]
            return any(m.get("greentier_invoice_id") == str(invoice_id) for m in marks)
        return [inv for inv in self.list_all("/v1/invoices", customer=customer_id) if carries(inv)]

    def writes(self) -> list[dict]:
        return self.get("/_test/requests")

    def clear_writes(self) -> None:
        self.http.delete(self.url + "/_test/requests", timeout=10).raise_for_status()

    def webhooks_to(self, url: str | None) -> None:
        """Deliver every event to `url`; None stops delivery (localstripe cannot unregister)."""
        self.http.post(f"{self.url}/_config/webhooks/{WEBHOOK_ID}", timeout=10, json={
            "url": url or "http://127.0.0.1:9/disabled", "secret": WEBHOOK_SECRET,
            "events": None if url else ["greentier.never"]}).raise_for_status()


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory):
    """localstripe in a subprocess on 127.0.0.1 and a free port, for the whole session.

    Also exported as STRIPE_* environment variables so Celery workers started by tests
    (tests/conftest.py's service_env copies os.environ) talk to it too.
    """
    log = open(tmp_path_factory.mktemp("localstripe") / "localstripe.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "tests.billing.localstripe_server"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=log, env={**os.environ, "PYTHONPATH": str(ROOT)})
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    if not ready:
        proc.kill()
        raise RuntimeError("localstripe did not start in 30 s")
    port = int(proc.stdout.readline())
    url = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("STRIPE_API_BASE", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET")}
    os.environ.update(STRIPE_API_BASE=url, STRIPE_API_KEY=STRIPE_KEY, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    try:
        yield LocalStripe(url, proc)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture
def stripe_settings(settings, localstripe):
    """Point our gateway at localstripe (no SDK retries: failures show at once)."""
    settings.STRIPE_API_BASE = localstripe.url
    settings.STRIPE_API_KEY = STRIPE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    return localstripe


@pytest.fixture(autouse=True)
def _billing_urls_and_eager_celery(settings):
    """Route /v1/ billing URLs (tests.billing.urls adds them until config/urls.py does) and
    run tasks inline unless a test starts a real worker (celery_worker turns this off)."""
    from config.celery import app

    settings.ROOT_URLCONF = "tests.billing.urls"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = eager


@pytest.fixture
def prices(db):
    """EUR and JPY price books in force since January 2026 (amounts in minor units)."""
    from billing.models import PriceVersion

    eur = PriceVersion.objects.create(
        currency="EUR", effective_from=BEFORE_NOV, base_fee_standard_minor=4900, base_fee_green_minor=9900,
        standard_per_1k_minor=Decimal("50"), efficiency_per_1k_minor=Decimal("30"),
        accurate_per_1k_minor=Decimal("80.5"), batch_per_1k_minor=Decimal("20"),
        green_premium_percent=Decimal("20"))
    jpy = PriceVersion.objects.create(
        currency="JPY", effective_from=BEFORE_NOV, base_fee_standard_minor=5000, base_fee_green_minor=8000,
        standard_per_1k_minor=Decimal("0.5"), efficiency_per_1k_minor=Decimal("0.25"),
        accurate_per_1k_minor=Decimal("1.5"), batch_per_1k_minor=Decimal("0.2"), green_premium_percent=Decimal("20"))
    return {"EUR": eur, "JPY": jpy}


@pytest.fixture
def billing_tenant(make_tenant):
    """A tenant that existed before November 2026 (created_at is backdated)."""
    from tenants.models import Tenant

    def make(created_at: datetime = BEFORE_NOV, **kwargs):
        tenant = make_tenant(**kwargs)
        Tenant.objects.filter(id=tenant.id).update(created_at=created_at)
        tenant.refresh_from_db()
        return tenant

    return make


@pytest.fixture
def variant(make_variant):
    return make_variant()


@pytest.fixture
def ready_account(stripe_settings):
    """A tenant's Stripe customer and subscription, with a card that pays (or `card`)."""
    from billing.services import billing_account_sync

    def make(tenant, card: str | None = "pm_card_visa"):
        account = billing_account_sync(tenant=tenant)
        if card:
            stripe_settings.add_card(account.stripe_customer_id, card)
        return account

    return make


def sign(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def event_body(event_id: str, type_: str, obj: dict, created: int) -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": type_, "created": created, "livemode": False,
                       "api_version": "2026-10-28.endive", "data": {"object": obj}}).encode()
