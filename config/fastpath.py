"""The prediction hot path, served at the WSGI level.

`POST /v1/models/{family}/predict` is most of the traffic, and for a small model
Django's middleware stack (sessions, CSRF, auth, messages, WhiteNoise...) costs more CPU
than the prediction itself. None of that stack does anything for an API-key request, so
this WSGI wrapper sends the predict route straight to `inference.apis.predict_view` and
everything else to Django unchanged.

It keeps what the middleware stack gives the route (tests/test_fastpath.py checks each
against the full stack, response for response):

- the metering clock, stamped before anything else so metering charges the whole request;
- the request id (X-Request-ID, and on every log line) and the Prometheus request metrics;
- ALLOWED_HOSTS, SECURE_SSL_REDIRECT and the security headers (nosniff, referrer and
  opener policies, HSTS over TLS, X-Frame-Options);
- the body-size limit (413), Content-Length, the 503 for a lost database, Django's
  exception handling (JSON 500 with the traceback logged) and 4xx logging;
- Django's request_started / request_finished signals, which manage database connections.

PREDICT_FAST_PATH=0 turns it off (every request then goes through the full stack); it
also turns itself off if the URLconf routes the path elsewhere.
"""

from __future__ import annotations

import re
import time

from django.conf import settings
from django.core import signals
from django.core.handlers.exception import response_for_exception
from django.core.handlers.wsgi import WSGIHandler, WSGIRequest, get_script_name
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import Resolver404, resolve, set_script_prefix, set_urlconf
from django.utils.log import log_response

from config.errors import DATABASE_DOWN, database_unavailable
from config.middleware import RequestBodyLimitMiddleware
from config.observability import request_id_for, request_id_var, request_observe
from inference.energy import thread_cpu_us

PREDICT_ROUTE = "v1/models/<slug:family>/predict"
# Django's <slug:...> converter, anchored like the resolver anchors a path().
_PREDICT_PATH = re.compile(r"/v1/models/(?P<family>[-a-zA-Z0-9_]+)/predict\Z")


def _unused_get_response(request):  # pragma: no cover - the middlewares' hooks are called directly
    raise AssertionError("not part of a middleware chain")


def _routes_to_predict() -> bool:
    from inference.apis import PredictApi

    try:
        match = resolve("/v1/models/probe/predict")
    except Resolver404:
        return False
    return getattr(match.func, "cls", None) is PredictApi and match.route == PREDICT_ROUTE


class PredictFastPath:
    """WSGI application: the predict route served lean, everything else by Django."""

    def __init__(self, django_app: WSGIHandler):
        from inference.apis import predict_view

        self.django_app = django_app
        self.view = predict_view
        self.enabled = settings.PREDICT_FAST_PATH and _routes_to_predict()
        self.body_limit = RequestBodyLimitMiddleware(_unused_get_response)
        self.security = SecurityMiddleware(_unused_get_response)
        self.frame_options = XFrameOptionsMiddleware(_unused_get_response)

    def __call__(self, environ, start_response):
        match = _PREDICT_PATH.match(environ.get("PATH_INFO", "")) if self.enabled else None
        if match is None:
            return self.django_app(environ, start_response)
        cpu_start_us = thread_cpu_us()
        started = time.perf_counter()
        set_script_prefix(get_script_name(environ))
        signals.request_started.send(sender=WSGIHandler, environ=environ)
        request = WSGIRequest(environ)
        request.meter_cpu_start_us = cpu_start_us
        request_id = request.request_id = request_id_for(request.META)
        token = request_id_var.set(request_id)
        try:
            response = self._respond(request, match["family"])
        finally:
            request_id_var.reset(token)
        request_observe(route=PREDICT_ROUTE, method=request.method, status=response.status_code, started=started)
        response["X-Request-ID"] = request_id
        response._resource_closers.append(request.close)  # closing the response sends request_finished
        response._handler_class = WSGIHandler
        start_response(f"{response.status_code} {response.reason_phrase}", [
            *response.items(), *(("Set-Cookie", c.output(header="")) for c in response.cookies.values())])
        return response

    def _respond(self, request: WSGIRequest, family: str):
        set_urlconf(settings.ROOT_URLCONF)
        try:
            request.get_host()  # ALLOWED_HOSTS, as CommonMiddleware checks it
            response = (self.body_limit.refuse(request) or self.security.process_request(request)
                        or self.view(request, family))
        except DATABASE_DOWN:
            response = database_unavailable()
        except Exception as exc:  # Django's own conversion: 400 for DisallowedHost, JSON 500 logged
            response = response_for_exception(request, exc)
        response = self.security.process_response(request, response)
        response = self.frame_options.process_response(request, response)
        if not response.streaming and not response.has_header("Content-Length"):
            response.headers["Content-Length"] = str(len(response.content))
        if response.status_code >= 400:
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        return response
