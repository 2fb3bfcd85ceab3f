"""Request ids, structured JSON logs and Prometheus metrics.

- Every request gets an id (the caller's X-Request-ID if it is sane, else a new one),
  echoed in the response and attached to every log line written while handling it.
- LOG_FORMAT=json (the default outside debug) writes one JSON object per log line.
- /metrics serves Prometheus metrics: requests, latency, predictions, energy and Celery
  queue depth. Under gunicorn set PROMETHEUS_MULTIPROC_DIR so all workers' samples are
  aggregated (docs/deploy.md). Protect it with METRICS_TOKEN or at the network edge.
"""

from __future__ import annotations

import contextvars
import functools
import hmac
import json
import logging
import os
import re
import time

from django.conf import settings
from django.http import HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

REQUESTS = Counter("greentier_http_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram("greentier_http_request_seconds", "HTTP request latency", ["route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
PREDICTIONS = Counter("greentier_predictions_total", "Predictions served", ["mode", "source"])
ENERGY = Counter("greentier_energy_joules_total", "Metered energy of served predictions (J)", ["source"])
QUEUE_DEPTH = Gauge("greentier_celery_queue_depth", "Messages waiting in a Celery queue", ["queue"],
                    multiprocess_mode="livemax")


# Labelled children are looked up once per label set (labels() costs ~10 us per call).
@functools.lru_cache(maxsize=4096)
def _requests_child(route: str, method: str, status: int):
    return REQUESTS.labels(route, method, str(status))


@functools.lru_cache(maxsize=1024)
def _latency_child(route: str):
    return LATENCY.labels(route)


@functools.lru_cache(maxsize=64)
def predictions_child(mode: str, source: str):
    return PREDICTIONS.labels(mode, source)


@functools.lru_cache(maxsize=8)
def energy_child(source: str):
    return ENERGY.labels(source)


def request_id_for(meta: dict) -> str:
    """The caller's X-Request-ID if it is sane, else a new one."""
    incoming = meta.get("HTTP_X_REQUEST_ID", "")
    return incoming if _REQUEST_ID.match(incoming) else os.urandom(16).hex()


def request_observe(*, route: str, method: str, status: int, started: float) -> None:
    _requests_child(route, method, status).inc()
    _latency_child(route).observe(time.perf_counter() - started)


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = request.request_id = request_id_for(request.META)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        match = getattr(request, "resolver_match", None)
        request_observe(route=match.route if match is not None else "unmatched", method=request.method,
                        status=response.status_code, started=started)
        response["X-Request-ID"] = request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record):
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "") or None,
            "pid": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def _queue_depths() -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER or not settings.CELERY_BROKER_URL.startswith("redis"):
        return
    try:
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=1, socket_connect_timeout=1)
        for queue in settings.CELERY_QUEUE_NAMES:
            QUEUE_DEPTH.labels(queue).set(client.llen(queue))
    except Exception:  # nosec B110 - a metrics scrape must not fail because the broker is down
        pass


def metrics_view(request):
    token = settings.METRICS_TOKEN
    if token and not hmac.compare_digest(request.META.get("HTTP_AUTHORIZATION", ""), f"Bearer {token}"):
        return HttpResponse(status=401)
    _queue_depths()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        payload = generate_latest(registry)
    else:
        payload = generate_latest()
    return HttpResponse(payload, content_type=CONTENT_TYPE_LATEST)
