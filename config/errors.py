"""One JSON error shape for every API error: {"code": <stable>, "detail": <human>}.

Validation errors add "errors": {field: [messages]}. Used by DRF's exception handler and
by the Django-level handlers (404/500 outside DRF views, 413 from the body-limit
middleware), so a client never sees an HTML error page from /v1/ or /api/.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """An error raised by a service with its own stable code and HTTP status."""

    def __init__(self, detail: str, *, code: str, status_code: int = status.HTTP_400_BAD_REQUEST):
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.error_code = code


_CODES = {
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
    exceptions.ValidationError: "invalid_request",
}


def error_body(code: str, detail: str, **extra) -> dict:
    return {"code": code, "detail": detail, **extra}


def json_error(code: str, detail: str, status_code: int, **extra) -> JsonResponse:
    return JsonResponse(error_body(code, detail, **extra), status=status_code)


def _first_message(errors) -> str:
    if isinstance(errors, dict):
        for key, value in errors.items():
            msg = _first_message(value)
            return msg if key == "non_field_errors" else f"{key}: {msg}"
    if isinstance(errors, list) and errors:
        return _first_message(errors[0])
    return str(errors)


DATABASE_DOWN = (OperationalError, InterfaceError)


def database_unavailable() -> JsonResponse:
    response = json_error("service_unavailable", "The database is unavailable; retry in a few seconds.", 503)
    response["Retry-After"] = "5"
    return response


def api_exception_handler(exc, context):
    if isinstance(exc, DATABASE_DOWN):
        logger.warning("database unavailable: %s", exc)
        return database_unavailable()
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, RequestDataTooBig):
        return Response(error_body("payload_too_large", "Request body is larger than the limit."), status=413)

    response = exception_handler(exc, context)
    if response is None:
        # Unhandled: log with traceback, answer with the same JSON shape.
        logger.exception("unhandled API error", exc_info=exc)
        return Response(error_body("internal_error", "Internal server error."), status=500)

    if isinstance(exc, ApiError):
        code = exc.error_code
        body = error_body(code, str(exc.detail))
    elif isinstance(exc, exceptions.ValidationError):
        body = error_body("invalid_request", _first_message(exc.detail), errors=exc.detail)
    else:
        code = next((c for cls, c in _CODES.items() if isinstance(exc, cls)), None)
        if code is None:
            code = exc.get_codes() if isinstance(exc.get_codes(), str) else "error"
        body = error_body(code, str(exc.detail))
    response.data = body
    return response


def _is_api_path(path: str) -> bool:
    return path.startswith(("/v1/", "/api/")) or path in ("/healthz", "/readyz")


def handler404(request, exception=None):
    if _is_api_path(request.path):
        return json_error("not_found", "Not found.", 404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def handler500(request):
    if _is_api_path(request.path):
        return json_error("internal_error", "Internal server error.", 500)
    from django.views.defaults import server_error

    return server_error(request)


def handler400(request, exception=None):
    if _is_api_path(request.path):
        return json_error("bad_request", "Bad request.", 400)
    from django.views.defaults import bad_request

    return bad_request(request, exception)
