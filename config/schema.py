"""OpenAPI post-processing: every operation documents the shared JSON error responses.

Each API error has the same body ({"code", "detail"}); rather than repeat it on every
view, this hook adds the statuses any operation can answer with, so the schema tells
clients the truth (and schemathesis' status-code conformance check holds us to it).
"""

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "description": "stable, machine-readable error code"},
        "detail": {"type": "string", "description": "what went wrong and how to fix it"},
        "errors": {"type": "object", "description": "per-field messages, for validation errors",
                   "additionalProperties": True},
    },
    "required": ["code", "detail"],
}
COMMON = {
    "400": "Invalid request: the detail says what to fix",
    "401": "Missing, malformed or revoked API key",
    "403": "The API key lacks the scope this operation needs",
    "404": "Not found (another tenant's object answers exactly like a missing one)",
    "405": "Method not allowed",
    "406": "Not acceptable",
    "413": "Request body too large",
    "415": "Unsupported media type",
    "429": "Rate or energy budget limit reached",
    "503": "A backing service (database, idempotency store) is unavailable; retry",
}
AUTHENTICATED_ONLY = {"401", "403"}


def add_error_responses(result, generator, request, public):
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            authenticated = bool(operation.get("security"))
            for status, description in COMMON.items():
                if status in AUTHENTICATED_ONLY and not authenticated:
                    continue
                existing = operation["responses"].setdefault(status, {"description": description})
                existing.setdefault("description", description)
                existing["content"] = {"application/json": {"schema": ref}}
    return result
