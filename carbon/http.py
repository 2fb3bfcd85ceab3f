"""GET JSON from a grid-data API: timeouts, bounded retries, Django-cache, failure back-off.

Shared plumbing for the per-system client modules (uk_carbon_intensity.py,
electricitymaps.py); they build URLs and read the documented response formats.
Every failure becomes carbon.exceptions.ProviderError.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any

import requests
from django.core.cache import cache

from carbon import conf
from carbon.exceptions import ProviderError

logger = logging.getLogger(__name__)

RETRYABLE_STATUS = {429, 500, 502, 503, 504}
_MISSING = object()


def _cache_key(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"{conf.cache_key_prefix()}:http:{digest}"


def _down_key(provider: str) -> str:
    return f"{conf.cache_key_prefix()}:down:{provider}"


def _cache_get(key: str):
    try:
        return cache.get(key, _MISSING)
    except Exception:  # a cache outage must not stop intensity lookups
        logger.warning("carbon: cache read failed for %s", key, exc_info=True)
        return _MISSING


def _cache_set(key: str, value, timeout: int) -> None:
    try:
        cache.set(key, value, timeout)
    except Exception:
        logger.warning("carbon: cache write failed for %s", key, exc_info=True)


def get_json(*, provider: str, url: str, params: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, cache_seconds: int | None = None,
             back_off: bool = True) -> Any:
    """GET `url` and return its decoded JSON body, from the Django cache when fresh.

    Retries a timeout, a connection error, 429 and 5xx up to CARBON_HTTP_RETRIES times
    with exponential back-off; any other 4xx fails at once. After a final failure the
    provider is skipped for CARBON_PROVIDER_BACKOFF_SECONDS (unless back_off=False, for
    optional follow-up requests), so callers on a hot path do not wait for the same
    timeout again. Raises ProviderError.
    """
    params = dict(params or {})
    key = _cache_key(provider, url, json.dumps(sorted(params.items())))
    cached = _cache_get(key)
    if cached is not _MISSING:
        return cached
    down = _cache_get(_down_key(provider))
    if down is not _MISSING:
        raise ProviderError(provider, f"skipped for a while after a failure: {down}")
    try:
        body = _get_with_retries(provider=provider, url=url, params=params, headers=headers or {})
    except ProviderError as exc:
        if back_off:
            _cache_set(_down_key(provider), exc.reason, conf.provider_backoff_seconds())
        raise
    _cache_set(key, body, conf.live_cache_seconds() if cache_seconds is None else cache_seconds)
    return body


def _get_with_retries(*, provider: str, url: str, params: dict[str, str], headers: dict[str, str]) -> Any:
    timeout = conf.http_timeout_seconds()
    retries = max(0, conf.http_retries())
    reason = "no attempt made"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(conf.http_backoff_seconds() * 2 ** (attempt - 1))
        try:
            response = requests.get(url, params=params, headers=headers, timeout=timeout)
        except requests.Timeout:
            reason = f"no response within {timeout:g} s from {url}"
            continue
        except requests.RequestException as exc:
            reason = f"cannot reach {url}: {exc.__class__.__name__}"
            continue
        if response.status_code in RETRYABLE_STATUS:
            reason = f"HTTP {response.status_code} from {url}"
            continue
        if response.status_code != 200:
            raise ProviderError(provider, f"HTTP {response.status_code} from {url}: {response.text[:200]!r}")
        try:
            return response.json()
        except ValueError:
            raise ProviderError(provider, f"response from {url} is not JSON: {response.text[:80]!r}") from None
    raise ProviderError(provider, f"{reason} (after {retries + 1} attempts)")
