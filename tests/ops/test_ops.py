"""Request ids, JSON logs, /metrics, and the dead-letter record on a real worker."""

from __future__ import annotations

import json
import logging
import time

import pytest
from rest_framework.test import APIClient

from ops.models import DeadLetter


@pytest.mark.django_db
def test_request_id_is_echoed_or_generated():
    client = APIClient()
    assert client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", HTTP_X_REQUEST_ID="bad id with spaces")["X-Request-ID"]
    assert len(generated) == 32 and generated != "bad id with spaces"


def test_json_log_lines_carry_the_request_id():
    from config.observability import JsonFormatter, RequestIdFilter, request_id_var

    token = request_id_var.set("req-9")
    try:
        record = logging.LogRecord("greentier.test", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert line["message"] == "hello world"
    assert line["request_id"] == "req-9"
    assert line["level"] == "WARNING"
    assert line["ts"].endswith("Z")


@pytest.mark.django_db
def test_metrics_expose_requests_and_predictions(digits_family, make_tenant, api_client_for, settings):
    client = api_client_for(make_tenant())
    row = [float(i % 17) for i in range(64)]
    response = client.generic("POST", "/v1/models/digits-classifier/predict",
                              json.dumps({"inputs": [row] * 3, "mode": "efficiency"}), content_type="application/json")
    assert response.status_code == 200
    text = APIClient().get("/metrics").content.decode()
    assert 'greentier_http_requests_total{method="POST",route="v1/models/<slug:family>/predict",status="200"}' in text
    assert 'greentier_predictions_total{mode="efficiency",source="online"}' in text
    assert "greentier_energy_joules_total" in text
    settings.METRICS_TOKEN = "s3cret"
    assert APIClient().get("/metrics").status_code == 401
    assert APIClient().get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200


def _wait_for(query, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = query()
        if found is not None:
            return found
        time.sleep(0.3)
    raise AssertionError("timed out")


def test_poison_task_is_dead_lettered_after_bounded_deliveries(celery_worker):
    from tests.celery_tasks import crash_worker

    result = crash_worker.apply_async(queue=celery_worker.queue)
    letter = _wait_for(lambda: DeadLetter.objects.filter(task_id=result.id, reason="poison").first())
    assert letter.task_name == "tests.crash_worker"
    assert letter.deliveries == 6  # CELERY_MAX_DELIVERIES = 5 runs, the 6th delivery is dropped
    assert celery_worker.proc.poll() is None  # the worker itself survived


def test_failed_task_is_dead_lettered_after_retries(celery_worker):
    from tests.celery_tasks import always_fails

    result = always_fails.apply_async(queue=celery_worker.queue)
    letter = _wait_for(lambda: DeadLetter.objects.filter(task_id=result.id, reason="failed").first())
    assert "broken on purpose" in letter.error
    assert letter.task_name == "tests.always_fails"
