"""Idempotency-Key for POST /v1/models/{family}/predict (Stripe's semantics).

The first request with a key runs and is metered; its 200 response is stored (24 h).
Retries with the same key and the same body get the stored body, metered nothing more;
the same key with a different body is a 422. Concurrent duplicates wait for the first
(up to IDEMPOTENCY_WAIT_SECONDS) and then replay it. Requests that fail validation
store nothing, so the client may fix and retry with the same key.

Keys live in the Django cache (Redis in production: `cache.add` is an atomic SET NX),
scoped by tenant. If the store is down, requests *with* a key get a 503 (we cannot
promise at-most-once); requests without a key are unaffected.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache

MAX_KEY_LENGTH = 255


class IdempotencyError(Exception):
    def __init__(self, detail: str, *, code: str, status: int):
        super().__init__(detail)
        self.detail, self.code, self.status = detail, code, status


@dataclass(frozen=True)
class Claim:
    cache_key: str
    fingerprint: str
    replay: bytes | None  # a stored response body to return as is, or None: run the request


def _store_error(exc: Exception) -> IdempotencyError:
    return IdempotencyError(f"The idempotency store is unavailable ({type(exc).__name__}); retry shortly.",
                            code="idempotency_unavailable", status=503)


def idempotency_claim(*, tenant_id: int, key: str, family: str, body: bytes) -> Claim:
    """Claim a key for this request, or find the response to replay.

    Raises IdempotencyError: 400 for a malformed key, 422 for a key reused with another
    body, 409 if the first request is still running after the wait, 503 if the store is
    unreachable."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise IdempotencyError(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters.",
                               code="invalid_idempotency_key", status=400)
    cache_key = f"idem:{tenant_id}:{hashlib.sha256(key.encode()).hexdigest()}"
    fingerprint = hashlib.sha256(family.encode() + b"\0" + body).hexdigest()
    ttl = settings.IDEMPOTENCY_TTL_SECONDS
    try:
        if cache.add(cache_key, {"fp": fingerprint, "body": None}, timeout=ttl):
            return Claim(cache_key=cache_key, fingerprint=fingerprint, replay=None)
        deadline = time.monotonic() + settings.IDEMPOTENCY_WAIT_SECONDS
        while True:
            stored = cache.get(cache_key)
            if stored is None:  # the first request failed validation and released the key
                if cache.add(cache_key, {"fp": fingerprint, "body": None}, timeout=ttl):
                    return Claim(cache_key=cache_key, fingerprint=fingerprint, replay=None)
                continue
            if stored["fp"] != fingerprint:
                raise IdempotencyError("This Idempotency-Key was used with a different request body.",
                                       code="idempotency_key_reused", status=422)
            if stored["body"] is not None:
                return Claim(cache_key=cache_key, fingerprint=fingerprint, replay=stored["body"])
            if time.monotonic() > deadline:
                raise IdempotencyError("A request with this Idempotency-Key is still in progress.",
                                       code="request_in_progress", status=409)
            time.sleep(0.01)
    except IdempotencyError:
        raise
    except Exception as exc:  # redis errors of several types: the store is down
        raise _store_error(exc) from None


def idempotency_complete(*, claim: Claim, body: bytes) -> None:
    """Store the successful response. Best effort: if the store fails now, the request
    was still served and metered once; a retry would then run again."""
    try:
        cache.set(claim.cache_key, {"fp": claim.fingerprint, "body": body},
                  timeout=settings.IDEMPOTENCY_TTL_SECONDS)
    except Exception:  # nosec B110 - documented best effort
        pass


def idempotency_release(*, claim: Claim) -> None:
    """The request failed before doing anything: let the key be used again."""
    try:
        cache.delete(claim.cache_key)
    except Exception:  # nosec B110 - the key then simply expires
        pass
