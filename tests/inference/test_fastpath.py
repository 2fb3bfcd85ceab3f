"""The WSGI fast path for the predict route (config/fastpath.py).

Every response it gives is compared with what the full Django middleware stack gives
for the same request (the test client always takes the full stack), so the two cannot
drift apart: status, body, and the set of headers.
"""

from __future__ import annotations

import json
import logging

import pytest
from django.core import signals
from django.db import OperationalError, close_old_connections
from django.test import Client, RequestFactory, override_settings

from config import wsgi
from config.fastpath import PREDICT_ROUTE, PredictFastPath
from config.observability import _requests_child
from inference.metering import usage_flush
from inference.models import UsageHour
from tenants.models import Scope
from tenants.scope import tenant_scope

pytestmark = pytest.mark.django_db

PATH = "/v1/models/digits-classifier/predict"
ROW = [0, 0, 5, 13, 9, 1, 0, 0] * 8
# Headers whose values legitimately differ per response.
VOLATILE = {"x-request-id"}
# The full stack refuses some requests (bad Content-Length, oversized body, disallowed
# host) in a middleware that sits outside the security ones, so those answers lack
# these headers (nor Content-Length); the fast path always sends them.
SECURITY_HEADERS = {"x-frame-options", "x-content-type-options", "referrer-policy", "cross-origin-opener-policy"}


class Served:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status_code, self.headers, self.content = status, headers, body

    def json(self):
        return json.loads(self.content)


def wsgi_call(app, method="POST", path=PATH, body=b"", content_type="application/json", **extra) -> Served:
    """One request through a WSGI application, as gunicorn makes it."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    environ = RequestFactory().generic(method, path, body, content_type=content_type, **extra).environ
    captured = {}

    def start_response(status, headers):
        captured["status"] = int(status.split()[0])
        captured["headers"] = {name.lower(): value for name, value in headers}

    # As Django's test client does: the test's transaction must survive the request's
    # connection housekeeping.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        response = app(environ, start_response)
        content = b"".join(response)
        if hasattr(response, "close"):
            response.close()  # what the server does: sends request_finished
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return Served(captured["status"], captured["headers"], content)


def full_stack(method="POST", path=PATH, body=b"", content_type="application/json", **extra) -> Served:
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    response = Client().generic(method, path, body, content_type=content_type, **extra)
    return Served(response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content)


def comparable(body: bytes):
    """The body without the per-request measurements (CPU time and what follows from it)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and "usage" in data:
        data["usage"] = sorted(data["usage"])
    return data


@pytest.fixture
def tenant(make_tenant):
    return make_tenant()


@pytest.fixture
def key(digits_family, tenant, make_key):
    return make_key(tenant).raw_key


@pytest.fixture
def app():
    fast = PredictFastPath(wsgi.django_application)
    assert fast.enabled
    return fast


def cases(key, read_only_key):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    return {
        "ok": dict(body={"inputs": [ROW, ROW], "mode": "standard"}, **auth),
        "efficiency": dict(body={"inputs": [ROW], "mode": "efficiency"}, **auth),
        "no key": dict(body={"inputs": [ROW]}),
        "bad key": dict(body={"inputs": [ROW]}, HTTP_AUTHORIZATION="Bearer gt_live_nope"),
        "no predict scope": dict(body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {read_only_key}"),
        "query string": dict(path=PATH + "?debug=1", body={"inputs": [ROW]}, **auth),
        "wrong media type": dict(body=b"inputs=1", content_type="text/plain", **auth),
        "malformed json": dict(body=b'{"inputs": [', **auth),
        "nan": dict(body=b'{"inputs": [[NaN]]}', **auth),
        "wrong width": dict(body={"inputs": [[1, 2, 3]]}, **auth),
        "empty batch": dict(body={"inputs": []}, **auth),
        "unknown mode": dict(body={"inputs": [ROW], "mode": "turbo"}, **auth),
        "unknown family": dict(path="/v1/models/no-such-family/predict", body={"inputs": [ROW]}, **auth),
        "GET": dict(method="GET", body=b"", **auth),
        "too large": dict(body=b"[" + b"0," * (3 * 1024 * 1024) + b"0]", **auth),
        "disallowed host": dict(body={"inputs": [ROW]}, HTTP_HOST="evil.example", **auth),
        "bad content length": dict(body={"inputs": [ROW]}, CONTENT_LENGTH="lots", **auth),
    }


def test_every_response_matches_the_full_middleware_stack(app, key, make_tenant, make_key, digits_family):
    read_only_key = make_key(make_tenant(), scopes=[Scope.USAGE]).raw_key
    for name, case in cases(key, read_only_key).items():
        fast = wsgi_call(app, **case)
        slow = full_stack(**case)
        assert fast.status_code == slow.status_code, name
        assert comparable(fast.content) == comparable(slow.content), name
        assert set(slow.headers) <= set(fast.headers), name
        assert set(fast.headers) - set(slow.headers) <= SECURITY_HEADERS | {"content-length"}, name
        for header in set(slow.headers) - VOLATILE - {"content-length"}:  # the usage figures vary in length
            assert fast.headers[header] == slow.headers[header], (name, header)


def test_the_predict_route_skips_the_middleware_stack(app, key):
    def refuse(environ, start_response):
        raise AssertionError(f"{environ['PATH_INFO']} went through the full stack")

    app.django_app = refuse
    response = wsgi_call(app, body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    assert response.json()["model"]["family"] == "digits-classifier"


@pytest.mark.parametrize("path", ["/healthz", PATH + "/", "/v1/models/digits-classifier/predictions",
                                  "/v1/models/a.b/predict", "/api/v1/models/x/predict"])
def test_other_paths_go_to_django(app, path):
    seen = []

    def django_app(environ, start_response):
        seen.append(environ["PATH_INFO"])
        start_response("204 No Content", [])
        return []

    app.django_app = django_app
    assert wsgi_call(app, path=path).status_code == 204
    assert seen == [path]


def test_predictions_are_metered_with_the_whole_request_cpu(app, key, tenant):
    response = wsgi_call(app, body={"inputs": [ROW] * 3}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 200
    usage = response.json()["usage"]
    usage_flush()
    with tenant_scope(tenant.id):
        rows = list(UsageHour.objects.all())
    assert [(r.predictions, r.requests, r.cpu_us, r.energy_uj) for r in rows] == [
        (3, 1, usage["cpu_us"], usage["energy_uj"])]
    assert rows[0].cpu_us > rows[0].inference_cpu_us > 0  # the framework is charged, not just the model


def test_request_ids_and_metrics(app, key):
    child = _requests_child(PREDICT_ROUTE, "POST", 200)
    before = child._value.get()
    given = wsgi_call(app, body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_REQUEST_ID="abc-123")
    assert given.headers["x-request-id"] == "abc-123"
    made = wsgi_call(app, body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_REQUEST_ID="bad id!")
    assert len(made.headers["x-request-id"]) == 32 and made.headers["x-request-id"] != "bad id!"
    assert child._value.get() == before + 2


def test_a_lost_database_is_a_503_and_a_crash_a_json_500(app, key):
    def db_down(request, family):
        raise OperationalError("server closed the connection unexpectedly")

    app.view = db_down
    down = wsgi_call(app, body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert down.status_code == 503 and down.headers["retry-after"] == "5"
    assert down.json()["code"] == "service_unavailable"

    def crash(request, family):
        raise ZeroDivisionError("bug")

    app.view = crash
    records = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = records.append
    logging.getLogger("django.request").addHandler(handler)
    try:
        with override_settings(DEBUG=False, DEBUG_PROPAGATE_EXCEPTIONS=False):
            broken = wsgi_call(app, body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {key}")
    finally:
        logging.getLogger("django.request").removeHandler(handler)
    assert broken.status_code == 500
    assert broken.json() == {"code": "internal_error", "detail": "Internal server error."}
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in records)  # traceback logged


def test_request_signals_are_sent(app, key):
    seen = []

    def started(sender, **kwargs):
        seen.append("started")

    def finished(sender, **kwargs):
        seen.append("finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    try:
        wsgi_call(app, body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {key}")
    finally:
        signals.request_started.disconnect(started)
        signals.request_finished.disconnect(finished)
    assert seen == ["started", "finished"]


def test_production_tls_settings_apply(key):
    with override_settings(DEBUG=False, SECURE_SSL_REDIRECT=True, SECURE_HSTS_SECONDS=3600,
                           SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")):
        app = PredictFastPath(wsgi.django_application)
        plain = wsgi_call(app, body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {key}")
        assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
        secure = wsgi_call(app, body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {key}",
                           HTTP_X_FORWARDED_PROTO="https")
        assert secure.status_code == 200
        assert secure.headers["strict-transport-security"].startswith("max-age=3600")


def test_it_can_be_switched_off(key):
    with override_settings(PREDICT_FAST_PATH=False):
        app = PredictFastPath(wsgi.django_application)
    assert not app.enabled
    calls = []
    django_app = app.django_app

    def counting(environ, start_response):
        calls.append(environ["PATH_INFO"])
        return django_app(environ, start_response)

    app.django_app = counting
    assert wsgi_call(app, body={"inputs": [ROW]}, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    assert calls == [PATH]


def test_it_switches_itself_off_when_the_urlconf_routes_elsewhere(settings):
    settings.ROOT_URLCONF = "tests.inference.urls_without_predict"
    assert not PredictFastPath(wsgi.django_application).enabled
