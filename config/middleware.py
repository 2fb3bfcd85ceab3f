from django.conf import settings
from django.http import HttpResponse

from config.errors import json_error


class RequestBodyLimitMiddleware:
    """Answer 413 for a declared body over API_MAX_BODY_BYTES, before reading it.

    Bodies without Content-Length (chunked) are still bounded by Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE when read, which the API error handler turns into 413.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.limit = settings.API_MAX_BODY_BYTES
        # Batch uploads carry files; they get their own limit (plus room for the form).
        self.upload_limit = settings.BATCH_MAX_BYTES + 1024 * 1024

    def __call__(self, request):
        return self.refuse(request) or self.get_response(request)

    def refuse(self, request) -> HttpResponse | None:
        """The 400/413 answer for this request's declared length, or None to go on."""
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return json_error("bad_request", "Content-Length is not a number.", 400)
        uploads = request.path == "/v1/batches" or request.path.endswith("/candidates")
        limit = self.upload_limit if uploads else self.limit
        if length > limit:
            return json_error(
                "payload_too_large",
                f"Request body is {length} bytes; the limit is {limit} bytes.",
                413,
            )
        return None


class DatabaseUnavailableMiddleware:
    """A lost database connection is a clean 503 with Retry-After, never a 500 page, for
    views outside DRF (the lean predict view, health, portal); DRF views get the same
    from config.errors.api_exception_handler. Django reconnects on the next request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        from config.errors import DATABASE_DOWN, database_unavailable

        if isinstance(exception, DATABASE_DOWN):
            return database_unavailable()
        return None
