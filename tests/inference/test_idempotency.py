"""Idempotency-Key on predictions: one side effect, one body, per key."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from inference.metering import usage_flush
from inference.models import UsageHour
from tenants.scope import tenant_scope

ROW = [float(i % 17) for i in range(64)]


def _post(base, key, body, idem=None):
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return requests.post(f"{base}/v1/models/digits-classifier/predict", data=json.dumps(body), headers=headers,
                         timeout=30)


def _ledger(tenant):
    with tenant_scope(tenant.id):
        return [(u.predictions, u.requests) for u in UsageHour.objects.all()]


def test_same_key_ten_times_at_once_is_one_side_effect(live_gunicorn, digits_family, make_tenant, make_key):
    base, proc, _ = live_gunicorn
    tenant = make_tenant()
    key = make_key(tenant).raw_key
    body = {"inputs": [ROW] * 3, "mode": "efficiency"}
    with ThreadPoolExecutor(10) as pool:
        responses = list(pool.map(lambda _: _post(base, key, body, idem="order-42"), range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert len({r.content for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
    # a different body under the same key is refused, and meters nothing
    other = _post(base, key, {"inputs": [ROW] * 4}, idem="order-42")
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    # another key is a new request
    assert _post(base, key, body, idem="order-43").status_code == 200
    proc.terminate()
    proc.wait(30)
    usage_flush()
    assert sum(p for p, _ in _ledger(tenant)) == 6
    assert sum(r for _, r in _ledger(tenant)) == 2


@pytest.mark.django_db
def test_failed_validation_releases_the_key(digits_family, make_tenant, api_client_for):
    client = api_client_for(make_tenant())
    bad = client.generic("POST", "/v1/models/digits-classifier/predict", json.dumps({"inputs": [[1.0]]}),
                         content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    assert bad.status_code == 400
    good = client.generic("POST", "/v1/models/digits-classifier/predict", json.dumps({"inputs": [ROW]}),
                          content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    assert good.status_code == 200
    again = client.generic("POST", "/v1/models/digits-classifier/predict", json.dumps({"inputs": [ROW]}),
                           content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")
    assert again.content == good.content
    assert again["Idempotent-Replayed"] == "true"
    usage_flush()
    with tenant_scope(client.api_key.tenant_id):
        assert [(u.predictions, u.requests) for u in UsageHour.objects.all()] == [(1, 1)]


@pytest.mark.django_db
def test_bad_idempotency_key_is_400(digits_family, make_tenant, api_client_for):
    client = api_client_for(make_tenant())
    response = client.generic("POST", "/v1/models/digits-classifier/predict", json.dumps({"inputs": [ROW]}),
                              content_type="application/json", HTTP_IDEMPOTENCY_KEY="x" * 300)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"


@pytest.mark.django_db
def test_store_down_is_503_for_keyed_requests_only(digits_family, make_tenant, api_client_for, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    client = api_client_for(make_tenant())
    keyed = client.generic("POST", "/v1/models/digits-classifier/predict", json.dumps({"inputs": [ROW]}),
                           content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    assert keyed.status_code == 503
    assert keyed.json()["code"] == "idempotency_unavailable"
    plain = client.generic("POST", "/v1/models/digits-classifier/predict", json.dumps({"inputs": [ROW]}),
                           content_type="application/json")
    assert plain.status_code == 200
