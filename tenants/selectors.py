"""Reads for tenants and API keys."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings

from django.db.models import QuerySet
from django.utils import timezone

from tenants import keys
from tenants.models import ApiKey, Tenant, TierChange
from tenants.scope import all_tenants_scope

# last_used_at is a hint for humans; writing it on every request would cost a
# database round trip per prediction, so it is refreshed at most once a minute.
LAST_USED_RESOLUTION = timedelta(minutes=1)


# Authenticated keys are cached in-process for a few seconds so the prediction hot path
# needs no database round trip. Revoking in this process takes effect at once; other
# processes see it within API_KEY_CACHE_SECONDS (docs/operations.md).
_key_cache: dict[str, tuple[float, ApiKey]] = {}


def api_key_cache_clear() -> None:
    _key_cache.clear()


def api_key_authenticate(*, raw_key: str) -> ApiKey | None:
    """The active key for a raw key string, with its tenant loaded, or None.

    Malformed keys and bad checksums are rejected before any database access. The
    row look-up is cross-tenant by nature (the key is what names the tenant).
    """
    ttl = settings.API_KEY_CACHE_SECONDS
    if ttl:  # only keys that parsed and matched are cached
        cached = _key_cache.get(raw_key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
    parsed = keys.parse(raw_key)
    if parsed is None:
        return None
    api_key = _api_key_lookup(raw_key=raw_key, lookup_id=parsed.lookup_id)
    if ttl and api_key is not None:
        if len(_key_cache) > 10_000:
            _key_cache.clear()
        _key_cache[raw_key] = (time.monotonic() + ttl, api_key)
    return api_key


def _api_key_lookup(*, raw_key: str, lookup_id: str) -> ApiKey | None:
    parsed_lookup = lookup_id
    with all_tenants_scope():
        api_key = (
            ApiKey.all_tenants.select_related("tenant")
            .filter(lookup_id=parsed_lookup, revoked_at__isnull=True)
            .first()
        )
        if api_key is None or not keys.matches(raw_key, api_key.secret_sha256):
            return None
        now = timezone.now()
        if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
            ApiKey.all_tenants.filter(id=api_key.id).update(last_used_at=now)
            api_key.last_used_at = now
    return api_key


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant=tenant).order_by("-created_at", "-id")


def tenant_get_by_slug(*, slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()


def tier_history(*, tenant: Tenant, start, end) -> list[tuple]:
    """[(from, to, tier)] covering the half-open [start, end) as the tier changed within it."""
    from tenants.models import TierChange

    changes = list(TierChange.objects.filter(tenant=tenant, effective_at__lt=end).order_by("effective_at", "id"))
    before = [c for c in changes if c.effective_at <= start]
    inside = [c for c in changes if c.effective_at > start]
    if before:
        tier = before[-1].to_tier
    elif inside:
        tier = inside[0].from_tier
    else:
        tier = tenant.tier
    spans, cursor = [], start
    for change in inside:
        spans.append((cursor, change.effective_at, tier))
        cursor, tier = change.effective_at, change.to_tier
    spans.append((cursor, end, tier))
    return [s for s in spans if s[0] < s[1]]


def tier_change_list(*, tenant: Tenant) -> QuerySet[TierChange]:
    """The tenant's tier switches, newest first (who and when)."""
    return TierChange.objects.filter(tenant=tenant).order_by("-effective_at", "-id")


def audit_events(*, tenant: Tenant, limit: int = 200):
    """The tenant's own audit events, newest first (run inside tenant_scope)."""
    from tenants.models import AuditEvent

    return AuditEvent.objects.filter(tenant=tenant).order_by("-created_at", "-id")[:limit]
